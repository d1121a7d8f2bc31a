"""Photos: one edit for their text, level, albums and tags (every door's), and deleting them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from photoflow.db import db
from photoflow.errors import Invalid, NotFound
from photoflow.importer import add_keywords, lock_content
from photoflow.models import Album, File, Photo, PhotoAlbum, PhotoTag, utcnow
from photoflow.services.tags import tag_names_cleaned
from photoflow.services.text import MAX_AUTHOR, MAX_DESCRIPTION, MAX_PHOTO_TITLE, clean_text
from photoflow.storage import Datastore

LEVELS = (0, 1, 2, 4, 8)


@dataclass(frozen=True)
class PhotoEdit:
    """What a person or a client changes about a photo; None leaves a field as it is.

    `albums` and `tags` are the exact set unless `add_albums`/`add_tags` say they come on top of what
    the photo has. `fill_only` writes a text only where the photo has none (Piwigo's fill_if_empty).
    """

    title: str | None = None
    description: str | None = None
    author: str | None = None
    level: int | None = None
    albums: tuple[int, ...] | None = None
    add_albums: bool = False
    tags: tuple[str, ...] | None = None
    add_tags: bool = False
    fill_only: bool = False


_TEXTS = (("title", MAX_PHOTO_TITLE), ("description", MAX_DESCRIPTION), ("author", MAX_AUTHOR))


def check_edit(edit: PhotoEdit) -> PhotoEdit:
    """The edit with its texts cleaned; Invalid or NotFound before anything is written or kept."""
    if edit.level is not None and edit.level not in LEVELS:
        raise Invalid(f"level must be one of {', '.join(map(str, LEVELS))}")
    cleaned: dict[str, Any] = {
        name: clean_text(getattr(edit, name), limit, name)
        for name, limit in _TEXTS
        if getattr(edit, name) is not None
    }
    if edit.albums:
        found = {a for (a,) in Album.select(Album.id).where(Album.id.in_(edit.albums)).tuples()}
        missing = [a for a in edit.albums if a not in found]
        if missing:
            raise NotFound(f"album {missing[0]} does not exist")
    if edit.tags is not None:
        cleaned["tags"] = tuple(tag_names_cleaned(edit.tags))
    return replace(edit, **cleaned) if cleaned else edit


def update_photo(photo_id: int, edit: PhotoEdit) -> None:
    """Change a photo's title, description, author, level, albums and tags, in one transaction."""
    edit = check_edit(edit)
    with db.atomic():
        apply_edit(photo_id, edit)


def apply_edit(photo_id: int, edit: PhotoEdit) -> None:
    """`update_photo` inside a transaction the caller holds (an import writing the photo's rows)."""
    photo = Photo.get_or_none(Photo.id == photo_id)
    if photo is None:
        raise NotFound("no such photo")
    changes: dict[str, object] = {}
    for name, _limit in _TEXTS:
        value = getattr(edit, name)
        if value is not None and not (edit.fill_only and getattr(photo, name)):
            changes[name] = value
    if edit.level is not None:
        changes["level"] = edit.level
    if changes:
        Photo.update(**changes, updated_at=utcnow()).where(Photo.id == photo_id).execute()
    if edit.albums is not None:
        _set_albums(photo_id, edit.albums, only_add=edit.add_albums)
    if edit.tags is not None:
        if not edit.add_tags:
            PhotoTag.delete().where(PhotoTag.photo == photo_id).execute()
        add_keywords(photo_id, edit.tags)


def set_level(photo_id: int, level: int) -> None:
    """Set a photo's privacy level (0 everyone, 1/2/4/8 members only)."""
    update_photo(photo_id, PhotoEdit(level=level))


def set_photo_albums(photo_id: int, album_ids: list[int]) -> None:
    """Put a photo in exactly these albums."""
    update_photo(photo_id, PhotoEdit(albums=tuple(album_ids)))


def _set_albums(photo_id: int, album_ids: Iterable[int], only_add: bool) -> None:
    wanted = {a for (a,) in Album.select(Album.id).where(Album.id.in_(list(album_ids))).tuples()}
    current = {a for (a,) in PhotoAlbum.select(PhotoAlbum.album).where(PhotoAlbum.photo == photo_id).tuples()}
    gone = set() if only_add else current - wanted
    if gone:
        PhotoAlbum.delete().where((PhotoAlbum.photo == photo_id) & PhotoAlbum.album.in_(list(gone))).execute()
        Album.update(cover=None).where(Album.id.in_(list(gone)) & (Album.cover == photo_id)).execute()
    if wanted - current:
        PhotoAlbum.insert_many([{"photo": photo_id, "album": a} for a in wanted - current]).execute()
    if gone or wanted - current:
        Album.update(updated_at=utcnow()).where(Album.id.in_(list(gone | (wanted - current)))).execute()


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
