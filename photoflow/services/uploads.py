"""Uploads: a client's bytes become photos, with what the client said about them, in one use case.

The web's upload tab and every ws.php upload method (addSimple, upload, add) come here. The target is
checked before any byte is kept or put together; the files take the same way in as every import
(stored under their content address, read by exiftool, rendered, paired); and the client's title,
description, author, tags, level and albums are written in the transaction that writes the photo's
rows, also when the file was a duplicate of a photo already there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, BinaryIO

from photoflow.errors import Invalid, NotFound, PhotoflowError
from photoflow.importer import (
    FileResult,
    ImportOptions,
    Prepared,
    display_name,
    finalise,
    pair_key,
    replace_picture,
)
from photoflow.library import Library
from photoflow.models import Photo
from photoflow.services.photos import PhotoEdit, apply_edit, check_edit
from photoflow.storage import Staged, StorageFull


@dataclass(frozen=True)
class UploadTarget:
    """Whose the upload is and what the client said: albums and tags are added to what a photo has."""

    owner_id: int
    edit: PhotoEdit = field(default_factory=PhotoEdit)
    replace: int | None = None  # the photo whose picture this file becomes (Piwigo's image_id)


def check_target(target: UploadTarget) -> UploadTarget:
    """The target with its texts cleaned; Invalid or NotFound before any byte is kept."""
    edit = check_edit(target.edit)
    # A text the client left empty says nothing (darktable sends every field, most of them empty).
    empty: dict[str, Any] = {
        name: None for name in ("title", "description", "author") if getattr(edit, name) == ""
    }
    edit = replace(edit, **empty, add_albums=True, add_tags=True)
    if target.replace is not None and not Photo.select().where(Photo.id == target.replace).exists():
        raise NotFound("no such photo")
    return replace(target, edit=edit)


def receive(library: Library, reader: BinaryIO, name: str, max_bytes: int) -> Prepared:
    """Stream one file into the datastore and prepare it; a refusal of this file is its result.

    A full disk is the server's state, not the file's: it raises, and the whole upload is refused.
    """
    shown = display_name(name)
    try:
        staged = library.store.stage(reader, max_bytes=max_bytes)
    except StorageFull:
        raise
    except PhotoflowError as exc:
        return Prepared(shown, pair_key(shown), "failed", exc.reason)
    return prepare(library, staged, shown)


def prepare(library: Library, staged: Staged, name: str) -> Prepared:
    """Read, classify and render a staged file (at most one rendering per core at once)."""
    with library.rendering:
        return library.pipeline().prepare(staged, display_name(name), mtime=None)


def upload(library: Library, files: list[Prepared], target: UploadTarget) -> list[FileResult]:
    """Import one shot (the files sharing a base name) for `target`; each file gets its result."""
    target = check_target(target)
    edit = target.edit

    def with_rows(results: list[FileResult]) -> None:
        if edit == PhotoEdit(add_albums=True, add_tags=True):
            return
        for photo_id in dict.fromkeys(r.photo_id for r in results if r.photo_id is not None):
            apply_edit(photo_id, edit)

    if target.replace is not None:
        if len(files) != 1:
            raise Invalid("one picture replaces a photo's picture")
        if files[0].status == "failed":
            return [FileResult(files[0].name, "failed", files[0].reason)]
        return [replace_picture(target.replace, files[0], library.store, with_rows)]
    return finalise(files, ImportOptions(owner_id=target.owner_id), library.store, with_rows)


def upload_one(library: Library, staged: Staged, name: str, target: UploadTarget) -> FileResult:
    """Import one staged file (a Piwigo client's); its result, failed with the reason or not."""
    return upload(library, [prepare(library, staged, name)], target)[0]
