"""Use cases shared by the web, ws.php, the command line and the console: users, albums, photos.

Transactions live here, at the service boundary; slow work (exiftool, Pillow, disk) never runs inside
one. The import pipeline itself is in `photoflow.importer`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from photoflow import passwords
from photoflow.db import db
from photoflow.errors import Conflict, Invalid, NotFound, PhotoflowError
from photoflow.importer import Pipeline
from photoflow.models import Album, File, Photo, Session, User, utcnow
from photoflow.storage import Datastore

MAX_USER_NAME = 64
MAX_ALBUM_TITLE = 200
LEVELS = (0, 1, 2, 4, 8)


# -- users -------------------------------------------------------------------------------------------


def _clean_user_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("the user name is empty")
    if len(name) > MAX_USER_NAME:
        raise Invalid(f"the user name is longer than {MAX_USER_NAME} characters")
    if not name.isprintable():
        raise Invalid("the user name contains control characters")
    return name


def create_user(name: str, password: str, admin: bool = False) -> User:
    """Create an account; Conflict when the name is taken (names compare without case)."""
    name = _clean_user_name(name)
    passwords.check_new(password)
    hashed = passwords.hash_password(password)  # slow: outside the transaction
    with db.atomic():
        if User.select().where(User.name.ilike(name)).exists():
            raise Conflict(f"a user named {name!r} already exists")
        return User.create(name=name, password_hash=hashed, is_admin=admin)


def user_by_name(name: str) -> User:
    """The user with this name (case-insensitive); NotFound otherwise."""
    user = User.get_or_none(User.name.ilike((name or "").strip()))
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


def authenticate(name: str, password: str) -> User | None:
    """The user when name and password match; None otherwise, in the same time either way."""
    user = User.get_or_none(User.name.ilike((name or "").strip()[:MAX_USER_NAME]))
    if not passwords.verify(user.password_hash if user else None, password or ""):
        return None
    assert user is not None
    if passwords.needs_rehash(user.password_hash):
        User.update(password_hash=passwords.hash_password(password)).where(User.id == user.id).execute()
    return user


def set_password(user_id: int, password: str) -> None:
    """Change a password and end every session of that user."""
    passwords.check_new(password)
    hashed = passwords.hash_password(password)
    with db.atomic():
        if not User.update(password_hash=hashed).where(User.id == user_id).execute():
            raise NotFound("no such user")
        Session.delete().where(Session.user == user_id).execute()


def default_owner() -> User:
    """The account that owns imports when none is named: the first admin."""
    user = User.select().where(User.is_admin).order_by(User.id).first()
    if user is None:
        raise NotFound("there is no admin account yet: create one with `photoflow create-user NAME --admin`")
    return user


# -- albums ------------------------------------------------------------------------------------------


def _clean_title(title: str) -> str:
    title = " ".join((title or "").split())
    if not title:
        raise Invalid("the album title is empty")
    if len(title) > MAX_ALBUM_TITLE:
        raise Invalid(f"the album title is longer than {MAX_ALBUM_TITLE} characters")
    return title


def create_album(title: str, owner_id: int | None, public: bool = False, description: str = "") -> Album:
    """A new, empty album."""
    return Album.create(
        title=_clean_title(title), owner=owner_id, is_public=public, description=description or ""
    )


def album_for_import(title: str, owner_id: int, public: bool | None) -> tuple[Album, bool]:
    """The album with this title, created if missing; returns it and whether it was created.

    `public` sets the visibility of a new album, and of an existing one when given explicitly.
    """
    title = _clean_title(title)
    with db.atomic():
        album = Album.select().where(Album.title == title).order_by(Album.id).first()
        if album is None:
            return create_album(title, owner_id, bool(public)), True
        if public is not None and album.is_public != public:
            album.is_public = public
            album.updated_at = utcnow()
            album.save()
        return album, False


def set_album_visibility(album_id: int, public: bool) -> None:
    """Make an album public or private."""
    if not Album.update(is_public=public, updated_at=utcnow()).where(Album.id == album_id).execute():
        raise NotFound("no such album")


# -- photos ------------------------------------------------------------------------------------------


def set_level(photo_id: int, level: int) -> None:
    """Set a photo's privacy level (0 everyone, 1/2/4/8 members only)."""
    if level not in LEVELS:
        raise Invalid(f"level must be one of {', '.join(map(str, LEVELS))}")
    if not Photo.update(level=level, updated_at=utcnow()).where(Photo.id == photo_id).execute():
        raise NotFound("no such photo")


def delete_photo(photo_id: int, store: Datastore) -> None:
    """Delete a photo: the rows first, then its files and derivatives."""
    with db.atomic():
        photo = Photo.get_or_none(Photo.id == photo_id)
        if photo is None:
            raise NotFound("no such photo")
        paths = [f.path for f in File.select(File.path).where(File.photo == photo)]
        Album.update(cover=None).where(Album.cover == photo).execute()
        photo.delete_instance()  # files, album and tag links go with it (ON DELETE CASCADE)
    for rel in paths:
        store.remove(rel)
    store.remove_derivatives(photo.sha256)


# -- derivatives -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderJob:
    """What it takes to (re)make one photo's derivatives: plain values, so it crosses processes."""

    photo_id: int
    sha256: str
    path: str
    raw: bool  # shown from a RAW's embedded preview


def render_jobs(store: Datastore, missing_only: bool = False) -> Iterator[RenderJob]:
    """The photos whose derivatives to make: all, or only those with some derivative missing."""
    query = (
        Photo.select(Photo.id, Photo.sha256, File.path, Photo.kind)
        .join(File, on=(File.sha256 == Photo.sha256))
        .order_by(Photo.id)
        .tuples()
    )
    for photo_id, sha, path, kind in query.iterator():
        if missing_only and store.has_derivatives(sha):
            continue
        yield RenderJob(photo_id, sha, path, kind == "raw")


def render_photo(pipeline: Pipeline, job: RenderJob) -> str:
    """Make one photo's derivatives again from its stored file; returns an error reason or ''."""
    try:
        rendered = pipeline.render(pipeline.store.resolve(job.path), job.raw)
        pipeline.store.write_derivatives(job.sha256, rendered.outputs)
    except PhotoflowError as exc:
        return exc.reason
    return ""
