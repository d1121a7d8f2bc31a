"""A photo's `public` flag and capture-day indexes: what a visitor's timeline needs at 100,000 photos.

"May a visitor see this photo?" (level 0, in at least one public album) is asked of every photo when
a visitor's timeline is counted; answered by a join per photo it took 140 ms at 100,000 photos. The
database keeps the answer in `photo.public` itself, by triggers on every table it depends on, in the
same transaction as the change, so it is never stale and no code path can forget it.
"""

from peewee import PostgresqlDatabase

# The rule, once, in SQL (photoflow.access says the same in Python for members and share links).
RULE = (
    "level = 0 AND EXISTS (SELECT 1 FROM photo_album pa JOIN album a ON a.id = pa.album_id "
    "WHERE pa.photo_id = photo.id AND a.is_public)"
)

SQLITE_TRIGGERS = {
    "photo_public_link_insert": "AFTER INSERT ON photo_album BEGIN {update} WHERE id = NEW.photo_id; END",
    "photo_public_link_delete": "AFTER DELETE ON photo_album BEGIN {update} WHERE id = OLD.photo_id; END",
    "photo_public_link_update": (
        "AFTER UPDATE ON photo_album BEGIN {update} WHERE id IN (OLD.photo_id, NEW.photo_id); END"
    ),
    "photo_public_album": (
        "AFTER UPDATE OF is_public ON album BEGIN {update} "
        "WHERE id IN (SELECT photo_id FROM photo_album WHERE album_id = NEW.id); END"
    ),
    "photo_public_level": "AFTER UPDATE OF level ON photo BEGIN {update} WHERE id = NEW.id; END",
}

POSTGRES_FUNCTIONS = {
    # A changed link: the photo on either side of it.
    "photo_public_link": (
        "BEGIN "
        "IF TG_OP <> 'INSERT' THEN {update} WHERE id = OLD.photo_id; END IF; "
        "IF TG_OP <> 'DELETE' THEN {update} WHERE id = NEW.photo_id; END IF; "
        "RETURN NULL; END"
    ),
    "photo_public_album": (
        "BEGIN {update} WHERE id IN (SELECT photo_id FROM photo_album WHERE album_id = NEW.id); "
        "RETURN NULL; END"
    ),
    "photo_public_level": "BEGIN {update} WHERE id = NEW.id; RETURN NULL; END",
}
POSTGRES_TRIGGERS = {
    "photo_public_link": "AFTER INSERT OR UPDATE OR DELETE ON photo_album",
    "photo_public_album": "AFTER UPDATE OF is_public ON album",
    "photo_public_level": "AFTER UPDATE OF level ON photo",
}


def up(migrator, db):
    update = f"UPDATE photo SET public = ({RULE})"
    db.execute_sql("ALTER TABLE photo ADD COLUMN public BOOLEAN NOT NULL DEFAULT FALSE")
    db.execute_sql(update)
    if isinstance(db, PostgresqlDatabase):
        for name, body in POSTGRES_FUNCTIONS.items():
            code = body.format(update=update)
            db.execute_sql(f"CREATE FUNCTION {name}() RETURNS trigger AS $$ {code} $$ LANGUAGE plpgsql")
        for name, when in POSTGRES_TRIGGERS.items():
            db.execute_sql(f"CREATE TRIGGER {name} {when} FOR EACH ROW EXECUTE FUNCTION {name}()")
        day = "(taken_at::date)"
    else:
        for name, body in SQLITE_TRIGGERS.items():
            db.execute_sql(f"CREATE TRIGGER {name} {body.format(update=update)}")
        day = "substr(taken_at, 1, 10)"
    # The timeline counts photos by capture day: for members over every photo, for visitors over the
    # public ones; both read an index in day order, with no table look-up and no sort.
    db.execute_sql(f"CREATE INDEX photo_day ON photo ({day})")
    db.execute_sql(f"CREATE INDEX photo_public_day ON photo (public, {day})")
    # A visitor's grid, newest first: read in order from the public photos alone. (PostgreSQL puts
    # NULLs first in DESC order unless told; the grid puts photos without a date last.)
    order = (
        "taken_at DESC NULLS LAST, id DESC"
        if isinstance(db, PostgresqlDatabase)
        else "taken_at DESC, id DESC"
    )
    db.execute_sql(f"CREATE INDEX photo_public_taken ON photo (public, {order})")
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql(f"CREATE INDEX photo_taken_nulls_last ON photo ({order})")
