"""What the web needs: login failures for the rate limit, and a generation counter for the gallery.

The counter goes up, by trigger, with every change that can alter what a gallery shows (photos, their
albums, albums' visibility), in the same transaction as the change. A process may keep an expensive
answer (the timeline of 100,000 photos) as long as the counter has not moved: one cheap read tells it,
and every instance behind a proxy sees the same counter.
"""

import datetime as dt

from peewee import CharField, DateTimeField, IntegerField, Model, PostgresqlDatabase


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


WATCHED = {
    "photo": ("INSERT", "DELETE", "UPDATE OF taken_at, level, sha256, width, height"),
    "photo_album": ("INSERT", "DELETE", "UPDATE"),
    "album": ("INSERT", "DELETE", "UPDATE OF is_public, share_token, cover_id, title"),
}


def up(migrator, db):
    class BaseModel(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class LoginFailure(BaseModel):
        key = CharField(max_length=300, index=True)  # "ip:ADDRESS" or "user:NAME"
        at = DateTimeField(default=utcnow, index=True)

    class LibraryState(BaseModel):
        name = CharField(max_length=32, primary_key=True)
        value = IntegerField(default=0)

    db.create_tables([LoginFailure, LibraryState])
    LibraryState.create(name="generation", value=0)
    postgres = isinstance(db, PostgresqlDatabase)
    if postgres:
        db.execute_sql(
            "CREATE FUNCTION bump_generation() RETURNS trigger AS $$ BEGIN "
            "UPDATE library_state SET value = value + 1 WHERE name = 'generation'; RETURN NULL; "
            "END $$ LANGUAGE plpgsql"
        )
    for table, events in WATCHED.items():
        for n, event in enumerate(events):
            name = f"{table}_generation_{n}"
            if postgres:
                db.execute_sql(
                    f"CREATE TRIGGER {name} AFTER {event} ON {table} "
                    f"FOR EACH STATEMENT EXECUTE FUNCTION bump_generation()"
                )
            else:
                db.execute_sql(
                    f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN "
                    f"UPDATE library_state SET value = value + 1 WHERE name = 'generation'; END"
                )
