"""Photos: their level, text and albums, and deleting them."""

from __future__ import annotations

from photoflow.db import db
from photoflow.errors import Invalid, NotFound
from photoflow.importer import lock_content
from photoflow.models import Album, File, Photo, PhotoAlbum, utcnow
from photoflow.services.text import MAX_DESCRIPTION, MAX_PHOTO_TITLE, clean_text
from photoflow.storage import Datastore

LEVELS = (0, 1, 2, 4, 8)


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
        changes["title"] = clean_text(title, MAX_PHOTO_TITLE, "title")
    if description is not None:
        changes["description"] = clean_text(description, MAX_DESCRIPTION, "description")
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
