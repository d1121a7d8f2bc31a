"""Albums: creating, editing, sharing, filling and emptying them."""

from __future__ import annotations

import secrets

from peewee import fn

from photoflow.db import db
from photoflow.errors import Invalid, NotFound
from photoflow.models import Album, Photo, PhotoAlbum, utcnow
from photoflow.services.text import MAX_ALBUM_TITLE, MAX_DESCRIPTION, clean_line, clean_text


def _clean_title(title: str) -> str:
    title = clean_line(title)
    if not title:
        raise Invalid("the album title is empty")
    if len(title) > MAX_ALBUM_TITLE:
        raise Invalid(f"the album title is longer than {MAX_ALBUM_TITLE} characters")
    return title


def create_album(title: str, owner_id: int | None, public: bool = False, description: str = "") -> Album:
    """A new, empty album."""
    return Album.create(
        title=_clean_title(title),
        owner=owner_id,
        is_public=public,
        description=clean_text(description, MAX_DESCRIPTION, "description"),
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
        changes["description"] = clean_text(description, MAX_DESCRIPTION, "description")
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


def albums() -> list[Album]:
    """Every album, by title."""
    return list(Album.select().order_by(fn.LOWER(Album.title), Album.id))
