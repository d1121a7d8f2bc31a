"""The database on SQLite and on a real PostgreSQL server: migrations, constraints, transactions."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from peewee import IntegrityError

from photoflow import access, services
from photoflow import db as database
from photoflow.errors import Conflict, Invalid, NotFound
from photoflow.library import Library
from photoflow.models import Album, File, Photo, PhotoAlbum, PhotoTag, Session, Tag, User, utcnow
from tests.conftest import make_config, run_cli


def _photo(owner: User, sha: str, **fields) -> Photo:
    values = (
        dict(
            owner=owner,
            sha256=sha,
            file_name=f"{sha[:6]}.jpg",
            pair_key=sha[:6],
            kind="picture",
            format="JPEG",
            width=3,
            height=2,
        )
        | fields
    )
    return Photo.create(**values)


def test_migrations_are_idempotent_and_reported(config) -> None:
    database.open_database(config.database)
    names = sorted(path.stem for path in database.MIGRATIONS.glob("0*.py"))
    assert names[:3] == ["0001_initial", "0002_web", "0003_public_flag"]
    assert database.migration_status() == [(name, False) for name in names]
    assert database.upgrade() == names
    assert database.upgrade() == []
    assert database.migration_status() == [(name, True) for name in names]
    assert database.is_current()


def test_sqlite_settings(library: Library) -> None:
    sqlite = database.db.obj
    assert sqlite.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert sqlite.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
    assert sqlite.execute_sql("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert sqlite.execute_sql("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_models_and_constraints(any_library: Library) -> None:
    alice = services.create_user("alice", "password one", admin=True)
    with pytest.raises(Conflict):
        services.create_user("ALICE", "password two")
    photo = _photo(alice, "a" * 64, taken_at=utcnow())
    with pytest.raises(IntegrityError), database.db.atomic():
        _photo(alice, "a" * 64)
    File.create(
        photo=photo,
        role="original",
        sha256="a" * 64,
        size=1,
        format="JPEG",
        mime="image/jpeg",
        path="originals/aa/x.jpg",
        original_name="x.jpg",
    )
    album = services.create_album("  Summer   2024 ", alice.id, public=True)
    assert album.title == "Summer 2024"
    album.cover = photo
    album.save()
    PhotoAlbum.create(photo=photo, album=album)
    tag = Tag.create(name="beach")
    PhotoTag.create(photo=photo, tag=tag)
    assert photo.keywords == ["beach"]
    # Deleting the photo takes its files and links with it and clears the cover.
    services.delete_photo(photo.id, any_library.store)
    assert File.select().count() == 0 and PhotoAlbum.select().count() == 0 and PhotoTag.select().count() == 0
    assert Album.get_by_id(album.id).cover is None
    with pytest.raises(NotFound):
        services.delete_photo(photo.id, any_library.store)


def test_users_passwords_and_sessions(any_library: Library) -> None:
    bob = services.create_user("bob", "hunter2hunter2")
    assert bob.password_hash.startswith("$argon2id$")
    assert services.authenticate("bob", "hunter2hunter2").id == bob.id
    assert services.authenticate("Bob", "hunter2hunter2").id == bob.id
    assert services.authenticate("bob", "wrong password") is None
    assert services.authenticate("nobody", "hunter2hunter2") is None
    Session.create(token_hash="t" * 64, user=bob, csrf_token="c", expires_at=utcnow())
    services.set_password(bob.id, "a new password")
    assert Session.select().count() == 0
    assert services.authenticate("bob", "a new password") is not None
    for name, password in (("", "long enough"), ("x" * 65, "long enough"), ("ok", ""), ("ok", "short")):
        with pytest.raises(Invalid):
            services.create_user(name, password)


def test_album_for_import_finds_or_creates(any_library: Library) -> None:
    owner = services.create_user("owner", "password one", admin=True)
    album, created = services.album_for_import("Trip", owner.id, None)
    assert created and not album.is_public
    again, created = services.album_for_import("Trip", owner.id, True)
    assert not created and again.id == album.id and again.is_public


def test_levels(any_library: Library) -> None:
    owner = services.create_user("owner", "password one")
    photo = _photo(owner, "b" * 64)
    services.set_level(photo.id, 8)
    assert Photo.get_by_id(photo.id).level == 8
    with pytest.raises(Invalid):
        services.set_level(photo.id, 3)


def test_read_then_write_transactions_do_not_fail_as_locked(tmp_path: Path) -> None:
    """Two threads each read then write in a transaction, many times: IMMEDIATE makes them wait, not fail."""
    config = make_config(tmp_path)
    database.open_database(config.database)
    database.upgrade()
    owner = services.create_user("owner", "password one")
    errors: list[BaseException] = []

    def worker(prefix: str) -> None:
        try:
            for i in range(40):
                with database.db.atomic():
                    Photo.select().count()  # the read that makes a deferred transaction fail
                    _photo(owner, f"{prefix}{i:063d}"[:64])
        except BaseException as exc:
            errors.append(exc)
        finally:
            database.close_database()

    threads = [threading.Thread(target=worker, args=(p,)) for p in "cd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert Photo.select().count() == 80
    raw = sqlite3.connect(config.database)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
def test_db_status_command(config) -> None:
    result = run_cli(config, "db", "status")
    assert result.returncode == 0, result.stderr
    names = sorted(path.stem for path in database.MIGRATIONS.glob("0*.py"))
    assert "[ ] 0001_initial" in result.stdout and f"{len(names)} pending" in result.stdout
    applied = run_cli(config, "db", "upgrade").stdout.splitlines()
    assert applied == [f"applied {name}" for name in names]
    assert run_cli(config, "db", "upgrade").stdout.strip() == "database is up to date"
    assert "up to date" in run_cli(config, "db", "status").stdout


def test_the_database_keeps_the_public_flag(any_library: Library) -> None:
    """photo.public (kept by triggers) always equals "level 0 and in a public album", on both databases."""
    owner = services.create_user("owner", "password one")
    photos = [_photo(owner, f"{i:064x}") for i in range(6)]
    public = services.create_album("Public", owner.id, public=True)
    private = services.create_album("Private", owner.id)

    def check(step: str) -> set[int]:
        wrong = Photo.select().where(Photo.public != access.public_rule())
        assert not wrong.exists(), f"{step}: {[p.id for p in wrong]}"
        return {p.id for p in Photo.select().where(Photo.public == True)}  # noqa: E712

    assert check("new photos") == set()
    services.add_to_album(public.id, [photos[0].id, photos[1].id, photos[2].id])
    services.add_to_album(private.id, [photos[2].id, photos[3].id])
    assert check("linked") == {photos[0].id, photos[1].id, photos[2].id}
    services.set_level(photos[1].id, 4)
    assert check("level 4") == {photos[0].id, photos[2].id}
    services.remove_from_album(public.id, [photos[2].id])
    assert check("unlinked") == {photos[0].id}
    services.set_album_visibility(private.id, True)
    assert check("album made public") == {photos[0].id, photos[2].id, photos[3].id}
    services.set_level(photos[1].id, 0)
    assert check("level 0 again") == {photos[0].id, photos[1].id, photos[2].id, photos[3].id}
    services.set_photo_albums(photos[4].id, [public.id, private.id])
    services.delete_album(public.id)
    assert check("album deleted") == {photos[2].id, photos[3].id, photos[4].id}
    PhotoAlbum.update(album=private.id).where(PhotoAlbum.photo == photos[5].id).execute()  # no-op
    services.set_album_visibility(private.id, False)
    assert check("private again") == set()
