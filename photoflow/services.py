"""Use cases shared by the web, ws.php, the command line and the console: users, albums, photos.

Transactions live here, at the service boundary; slow work (exiftool, Pillow, disk) never runs inside
one. The import pipeline itself is in `photoflow.importer`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from peewee import fn

from photoflow import passwords
from photoflow.db import db
from photoflow.errors import Conflict, Invalid, NotFound, PhotoflowError
from photoflow.importer import Pipeline, lock_content
from photoflow.models import Album, File, Photo, PhotoAlbum, Session, User, utcnow
from photoflow.storage import Datastore

MAX_USER_NAME = 64
MAX_ALBUM_TITLE = 200
MAX_PHOTO_TITLE = 500
MAX_DESCRIPTION = 5000
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


def needs_setup() -> bool:
    """True on a fresh install: no account exists yet, so the first visit may create the first admin."""
    return not User.select().exists()


def create_first_admin(name: str, password: str) -> User:
    """The first account, an admin; Conflict once any account exists (the setup page is gone then)."""
    name = _clean_user_name(name)
    passwords.check_new(password)
    hashed = passwords.hash_password(password)
    with db.atomic():  # IMMEDIATE on SQLite: two first visitors cannot both win
        if User.select().exists():
            raise Conflict("Photoflow is already set up")
        return User.create(name=name, password_hash=hashed, is_admin=True)


def set_admin(user_id: int, admin: bool) -> None:
    """Make an account an admin or not; the last admin stays one."""
    with db.atomic():
        user = User.get_or_none(User.id == user_id)
        if user is None:
            raise NotFound("no such user")
        if not admin and user.is_admin and _admins() <= 1:
            raise Conflict("this is the last administrator: make another one first")
        User.update(is_admin=admin).where(User.id == user_id).execute()


def delete_user(user_id: int, heir_id: int) -> int:
    """Delete an account; its photos and albums pass to `heir_id`, so nothing is lost.

    Returns how many photos changed hands.
    """
    with db.atomic():
        user = User.get_or_none(User.id == user_id)
        if user is None:
            raise NotFound("no such user")
        if user_id == heir_id:
            raise Conflict("an account cannot hand its photos to itself")
        if User.get_or_none(User.id == heir_id) is None:
            raise NotFound("no such user to receive the photos")
        if user.is_admin and _admins() <= 1:
            raise Conflict("this is the last administrator: make another one first")
        moved = Photo.update(owner=heir_id).where(Photo.owner == user_id).execute()
        Album.update(owner=heir_id).where(Album.owner == user_id).execute()
        user.delete_instance()  # sessions go with it
    return moved


def _admins() -> int:
    return User.select().where(User.is_admin == True).count()  # noqa: E712


def users() -> list[User]:
    """Every account, by name."""
    return list(User.select().order_by(fn.LOWER(User.name)))


def default_owner() -> User:
    """The account that owns imports when none is named: the first admin."""
    user = User.select().where(User.is_admin).order_by(User.id).first()
    if user is None:
        raise NotFound("there is no admin account yet: create one with `photoflow create-user NAME --admin`")
    return user


# -- albums ------------------------------------------------------------------------------------------


def _clean_title(title: str) -> str:
    # Control characters and bidirectional overrides are dropped, as in photo titles: they are not
    # text anyone typed, and XML (ws.php) cannot carry some of them.
    title = " ".join("".join(ch for ch in (title or "") if ch.isprintable() or ch.isspace()).split())
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
    """Make an album public or private (at once: every page and file asks at each request)."""
    if not Album.update(is_public=public, updated_at=utcnow()).where(Album.id == album_id).execute():
        raise NotFound("no such album")


def edit_album(album_id: int, title: str | None = None, description: str | None = None) -> Album:
    """Rename or describe an album."""
    changes: dict[str, object] = {"updated_at": utcnow()}
    if title is not None:
        changes["title"] = _clean_title(title)
    if description is not None:
        changes["description"] = _clean_text(description, MAX_DESCRIPTION, "description")
    if not Album.update(**changes).where(Album.id == album_id).execute():
        raise NotFound("no such album")
    return Album.get_by_id(album_id)


def set_cover(album_id: int, photo_id: int | None) -> None:
    """Choose the album's cover among its photos (None: the newest photo)."""
    with db.atomic():
        if (
            photo_id is not None
            and not PhotoAlbum.select()
            .where((PhotoAlbum.album == album_id) & (PhotoAlbum.photo == photo_id))
            .exists()
        ):
            raise Invalid("the cover must be a photo of the album")
        if not Album.update(cover=photo_id, updated_at=utcnow()).where(Album.id == album_id).execute():
            raise NotFound("no such album")


def add_to_album(album_id: int, photo_ids: list[int]) -> int:
    """Put photos in an album; returns how many were not there yet."""
    with db.atomic():
        if Album.get_or_none(Album.id == album_id) is None:
            raise NotFound("no such album")
        there = PhotoAlbum.select(PhotoAlbum.photo).where(PhotoAlbum.album == album_id)
        new = [
            pid
            for (pid,) in Photo.select(Photo.id)
            .where(Photo.id.in_(photo_ids) & Photo.id.not_in(there))
            .tuples()
        ]
        if new:
            PhotoAlbum.insert_many([{"photo": pid, "album": album_id} for pid in new]).execute()
            Album.update(updated_at=utcnow()).where(Album.id == album_id).execute()
    return len(new)


def remove_from_album(album_id: int, photo_ids: list[int]) -> int:
    """Take photos out of an album (they stay in the library); returns how many."""
    with db.atomic():
        removed = (
            PhotoAlbum.delete()
            .where((PhotoAlbum.album == album_id) & PhotoAlbum.photo.in_(photo_ids))
            .execute()
        )
        Album.update(cover=None).where((Album.id == album_id) & Album.cover.in_(photo_ids)).execute()
        Album.update(updated_at=utcnow()).where(Album.id == album_id).execute()
    return removed


def delete_album(album_id: int) -> None:
    """Delete an album; its photos stay in the library."""
    if not Album.delete().where(Album.id == album_id).execute():
        raise NotFound("no such album")


def share_album(album_id: int) -> str:
    """Give a private album a share link token (a new one each time: the old link stops working)."""
    token = secrets.token_urlsafe(24)
    if not Album.update(share_token=token, updated_at=utcnow()).where(Album.id == album_id).execute():
        raise NotFound("no such album")
    return token


def unshare_album(album_id: int) -> None:
    """Revoke an album's share link."""
    if not Album.update(share_token=None, updated_at=utcnow()).where(Album.id == album_id).execute():
        raise NotFound("no such album")


def album_by_share_token(token: str) -> Album:
    """The album a share link opens; NotFound for an unknown or revoked token."""
    album = Album.get_or_none(Album.share_token == token) if token and len(token) <= 64 else None
    if album is None:
        raise NotFound("no such album")
    return album


def album_exists(album_id: int) -> None:
    """NotFound unless the album exists."""
    if not Album.select().where(Album.id == album_id).exists():
        raise NotFound("no such album")


def albums() -> list[Album]:
    """Every album, by title."""
    return list(Album.select().order_by(fn.LOWER(Album.title), Album.id))


# -- photos ------------------------------------------------------------------------------------------


def set_level(photo_id: int, level: int) -> None:
    """Set a photo's privacy level (0 everyone, 1/2/4/8 members only)."""
    if level not in LEVELS:
        raise Invalid(f"level must be one of {', '.join(map(str, LEVELS))}")
    if not Photo.update(level=level, updated_at=utcnow()).where(Photo.id == photo_id).execute():
        raise NotFound("no such photo")


def edit_photo(photo_id: int, title: str | None = None, description: str | None = None) -> None:
    """Change a photo's title or description."""
    changes: dict[str, object] = {"updated_at": utcnow()}
    if title is not None:
        changes["title"] = _clean_text(title, MAX_PHOTO_TITLE, "title")
    if description is not None:
        changes["description"] = _clean_text(description, MAX_DESCRIPTION, "description")
    if not Photo.update(**changes).where(Photo.id == photo_id).execute():
        raise NotFound("no such photo")


def set_photo_albums(photo_id: int, album_ids: list[int]) -> None:
    """Put a photo in exactly these albums."""
    with db.atomic():
        if Photo.get_or_none(Photo.id == photo_id) is None:
            raise NotFound("no such photo")
        wanted = {a for (a,) in Album.select(Album.id).where(Album.id.in_(album_ids)).tuples()}
        current = {
            a for (a,) in PhotoAlbum.select(PhotoAlbum.album).where(PhotoAlbum.photo == photo_id).tuples()
        }
        if current - wanted:
            PhotoAlbum.delete().where(
                (PhotoAlbum.photo == photo_id) & PhotoAlbum.album.in_(list(current - wanted))
            ).execute()
            Album.update(cover=None).where(
                Album.id.in_(list(current - wanted)) & (Album.cover == photo_id)
            ).execute()
        if wanted - current:
            PhotoAlbum.insert_many([{"photo": photo_id, "album": a} for a in wanted - current]).execute()
        if wanted ^ current:
            Album.update(updated_at=utcnow()).where(Album.id.in_(list(wanted ^ current))).execute()


def _clean_text(text: str, limit: int, what: str) -> str:
    text = "".join(ch for ch in (text or "") if ch.isprintable() or ch in "\n\t").strip()
    if len(text) > limit:
        raise Invalid(f"the {what} is longer than {limit} characters")
    return text


def delete_photo(photo_id: int, store: Datastore) -> None:
    """Delete a photo: the rows first, then its files and derivatives."""
    with db.atomic():
        photo = Photo.get_or_none(Photo.id == photo_id)
        if photo is None:
            raise NotFound("no such photo")
        files = list(File.select(File.path, File.sha256).where(File.photo == photo))
        lock_content([photo.sha256, *(f.sha256 for f in files)])
        Album.update(cover=None).where(Album.cover == photo).execute()
        photo.delete_instance()  # files, album and tag links go with it (ON DELETE CASCADE)
        # Removed inside the transaction, under the content lock: an import of the same bytes that
        # was staged meanwhile finds its file gone when it writes its rows, and fails with its reason
        # (importer._still_there) instead of writing a row without a file.
        for f in files:
            store.remove(f.path)
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
