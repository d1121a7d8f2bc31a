"""ws.php methods on images: the uploads (addSimple, upload in chunks, addChunk + add), and the
methods that look at, describe, find or delete photos.

Each upload method maps its parameters onto one `UploadTarget` and calls the upload service, which
checks the target before a byte is kept, imports the file as every door does, and writes what the
client said about it with the photo's rows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any

from photoflow import access, gallery, services
from photoflow.importer import display_name
from photoflow.models import File, Photo, parse_id
from photoflow.piwigo.envelopes import NamedArray, NamedStruct
from photoflow.piwigo.protocol import (
    ACCESS_DENIED,
    INVALID_PARAM,
    POST_ONLY,
    SERVER_ERROR,
    Call,
    Param,
    Upload,
    WsError,
    method,
)
from photoflow.piwigo.shapes import SIZES, derivative_url, images, photo_url
from photoflow.services import PhotoEdit, UploadTarget, uploads

MAX_CHUNK_BYTES = 64 * 1024 * 1024


# -- uploads -------------------------------------------------------------------------------------------


def _target(call: Call, image_id: int | None, **edit: Any) -> UploadTarget:
    """The checked target of an upload: the caller's, replacing `image_id` if given."""
    user = access.require_member(call.viewer)
    replace = access.photo_for(call.viewer, image_id).id if image_id else None
    return uploads.check_target(UploadTarget(user.id, PhotoEdit(**edit), replace))


def _import(call: Call, upload: Upload, target: UploadTarget) -> int:
    """Import one uploaded file for `target`; the photo's id, or the file's refusal as a Piwigo failure."""
    if upload.staged is None:
        raise WsError(INVALID_PARAM, upload.reason or "The file was refused")
    result = uploads.upload_one(call.library, upload.staged, upload.name, target)
    if result.status == "failed" or result.photo_id is None:
        raise WsError(INVALID_PARAM, f"The file was refused: {result.reason}")
    return result.photo_id


def _described(p: dict[str, Any]) -> dict[str, Any]:
    """What addSimple and add say of a picture in the parameters they share, as a PhotoEdit's fields."""
    return {
        "title": p["name"],
        "description": p["comment"],
        "author": p["author"],
        "level": p["level"] or None,
    }


def _tags(raw: str | None) -> tuple[str, ...] | None:
    """Tag names as the upload methods take them: "a, b, c"."""
    names = tuple(part for part in (raw or "").split(",") if part.strip())
    return names or None


def _ids(raw: str | None) -> list[int]:
    """Ids in a list of any of Piwigo's separators; what is not an id is passed over."""
    return [i for i in map(parse_id, re.split(r"[\s,;|]+", raw or "")) if i is not None]


def _category_list(raw: str | None) -> list[int]:
    """Piwigo's `categories`: "12;34,2" is album 12, and album 34 at rank 2 (ranks ignored)."""
    ids = []
    for part in (raw or "").split(";"):
        first = part.split(",")[0].strip()
        if not first:
            continue
        album_id = parse_id(first)  # (isdigit() let "²" and 20-digit ids through to 500s)
        if album_id is None:
            raise WsError(INVALID_PARAM, "Invalid parameter categories")
        ids.append(album_id)
    return ids


def _chunk_key(user_id: int, *parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return f"{user_id}-{digest}"


@method(
    "pwg.images.addSimple",
    Param("category", "positive", optional=True, array=True),
    Param("name", optional=True),
    Param("author", optional=True),
    Param("comment", optional=True),
    Param("level", "positive", optional=True, default=0),
    Param("tags", optional=True),
    Param("image_id", "positive", optional=True),
    post_only=True,
)
def add_simple(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """Upload one picture (multipart, file part `image`); with image_id, replace that photo's picture."""
    upload = next((u for u in reversed(call.uploads) if u.field == "image"), None)
    if upload is None:
        raise WsError(POST_ONLY, "file upload failed: no file in the image part")
    target = _target(
        call,
        p["image_id"],
        **_described(p),
        albums=tuple(p["category"]) or None,
        tags=_tags(p["tags"]),
    )
    photo_id = _import(call, upload, target)
    albums = p["category"]
    return {
        "image_id": photo_id,
        "url": photo_url(call, photo_id) + (f"?album={albums[0]}" if albums else ""),
    }


@method(
    "pwg.images.upload",
    Param("name", optional=True),
    Param("category", "positive", optional=True, array=True),
    Param("level", "positive", optional=True, default=0),
    Param("chunk", "positive", optional=True, default=0),
    Param("chunks", "positive", optional=True, default=1),
    Param("image_id", "positive", optional=True),
    Param("tags", optional=True),
    Param("original_sum", optional=True),
    post_only=True,
    token=True,
)
def upload(call: Call, p: dict[str, Any]) -> dict[str, Any] | None:
    """Upload a file in chunks (file part `file`); the last chunk imports it."""
    part = next((u for u in reversed(call.uploads) if u.field == "file"), None)
    if part is None or part.staged is None:
        raise WsError(POST_ONLY, "file upload failed" + (f": {part.reason}" if part and part.reason else ""))
    if p["chunks"] < 1 or p["chunk"] >= p["chunks"]:
        raise WsError(INVALID_PARAM, "Invalid chunk number")
    name = p["name"] or part.name
    # Every check before any piece is kept or put together: a refusal after `assemble` left the whole
    # file behind in tmp/.
    albums = p["category"]
    target = _target(
        call, p["image_id"], level=p["level"] or None, albums=tuple(albums) or None, tags=_tags(p["tags"])
    )
    key = _chunk_key(target.owner_id, "upload", display_name(name), ",".join(map(str, albums)))
    chunks = call.library.store.chunks
    chunks.put(key, p["chunk"], part.staged.path)
    if p["chunk"] < p["chunks"] - 1:
        return None
    photo_id = _import(call, Upload("file", name, chunks.assemble(key, p["chunks"])), target)
    photo = access.photo_for(call.viewer, photo_id)
    category = None
    if albums:
        album = access.album_for(call.viewer, albums[0])
        count = gallery.album_summaries(call.viewer, [album.id])[album.id].count
        category = {"id": album.id, "nb_photos": str(count), "label": album.title}  # a string, as Piwigo's
    return {
        "image_id": photo.id,
        "src": derivative_url(call, photo, SIZES["thumb"]),
        "square_src": derivative_url(call, photo, SIZES["square"]),
        "name": photo.title or photo.file_name,
        "category": category,
    }


@method(
    "pwg.images.addChunk",
    Param("data"),
    Param("original_sum"),
    Param("type", optional=True, default="file"),
    Param("position", "positive"),
    post_only=True,
)
def add_chunk(call: Call, p: dict[str, Any]) -> None:
    """One base64 piece of a file that pwg.images.add will put together (digiKam)."""
    user = access.require_member(call.viewer)
    if not re.fullmatch(r"[0-9a-fA-F]{32}", p["original_sum"]):
        raise WsError(INVALID_PARAM, "Invalid original_sum: an MD5 in hexadecimal")
    if p["type"] not in ("file", "thumb", "high"):
        raise WsError(INVALID_PARAM, "Invalid type")
    try:
        data = base64.b64decode(p["data"], validate=False)
    except (binascii.Error, ValueError):
        raise WsError(INVALID_PARAM, "Invalid data: base64 expected") from None
    if len(data) > MAX_CHUNK_BYTES:
        raise WsError(INVALID_PARAM, "The chunk is too large")
    if p["type"] == "file":
        key = _chunk_key(user.id, "add", p["original_sum"].lower())
        call.library.store.chunks.put_bytes(key, p["position"], data)
    return None


@method(
    "pwg.images.add",
    Param("original_sum"),
    Param("original_filename", optional=True),
    Param("name", optional=True),
    Param("author", optional=True),
    Param("date_creation", optional=True),
    Param("comment", optional=True),
    Param("categories", optional=True),
    Param("tag_ids", optional=True),
    Param("level", "positive", optional=True, default=0),
    Param("check_uniqueness", "bool", optional=True, default=True),
    Param("image_id", "positive", optional=True),
    post_only=True,
)
def add(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """Put the chunks sent by addChunk together and import the file."""
    access.require_member(call.viewer)
    md5 = p["original_sum"].lower()
    if not re.fullmatch(r"[0-9a-f]{32}", md5):
        raise WsError(INVALID_PARAM, "Invalid original_sum: an MD5 in hexadecimal")
    if p["check_uniqueness"] and not p["image_id"] and File.select().where(File.md5 == md5).exists():
        raise WsError(SERVER_ERROR, "file already exists")
    # Every check before the pieces are put together: a refusal after `assemble` left the whole file
    # behind in tmp/.
    target = _target(
        call,
        p["image_id"],
        **_described(p),
        albums=tuple(_category_list(p["categories"])) or None,
        tags=services.tag_names(_ids(p["tag_ids"])) or None,
    )
    name = p["original_filename"] or p["name"] or f"{md5}.jpg"
    staged = call.library.store.chunks.assemble(_chunk_key(target.owner_id, "add", md5), None)
    if staged.md5 != md5:
        call.library.store.discard(staged)
        raise WsError(SERVER_ERROR, "MD5 checksum chunked file mismatched")
    photo_id = _import(call, Upload("file", name, staged), target)
    return {"image_id": photo_id, "url": photo_url(call, photo_id)}


@method(
    "pwg.images.uploadCompleted",
    Param("image_id", "positive", optional=True, array=True),
    Param("category_id", "positive", optional=True),
    post_only=True,
    token=True,
)
def upload_completed(call: Call, p: dict[str, Any]) -> bool:
    """The end of a batch (darktable sends category_id 0 for a new album): nothing left to do."""
    return True


# -- looking, describing, deleting ---------------------------------------------------------------------


@method(
    "pwg.images.exist",
    Param("md5sum_list", optional=True),
    Param("filename_list", optional=True),
)
def exist(call: Call, p: dict[str, Any]) -> dict[str, str | None]:
    """For each MD5 or file name, the id (as a string) of the photo holding it, or null."""
    if not p["md5sum_list"] and not p["filename_list"]:
        return {}  # digiKam asks with a misspelt parameter and needs stat ok to go on
    by_md5 = bool(p["md5sum_list"])
    wanted = [part for part in re.split(r"[\s,;|]+", p["md5sum_list"] or p["filename_list"] or "") if part]
    column = File.md5 if by_md5 else File.original_name
    keys = [w.lower() for w in wanted] if by_md5 else wanted
    rows = (
        File.select(column, File.photo)
        .join(Photo)
        .where(column.in_(keys) & access.visible_photos(call.viewer))
        .tuples()
    )
    found = {key: str(photo_id) for key, photo_id in rows}
    return {w: found.get(w.lower() if by_md5 else w) for w in wanted}


@method(
    "pwg.images.getInfo",
    Param("image_id", "positive"),
    Param("comments_page", "positive", optional=True),
    Param("comments_per_page", "positive", optional=True),
    guests=True,
)
def get_info(call: Call, p: dict[str, Any]) -> NamedStruct:
    """Everything about one photo the caller may see."""
    image = images(call, [access.photo_for(call.viewer, p["image_id"])], full=True)[0]
    # In XML Piwigo writes every plain value as an attribute of <image>, but for name and comment.
    scalars = tuple(
        key for key, value in image.items() if not isinstance(value, dict | list | NamedArray | NamedStruct)
    )
    return NamedStruct(image, "image", tuple(key for key in scalars if key not in ("name", "comment")))


@method(
    "pwg.images.setInfo",
    Param("image_id", "positive"),
    Param("file", optional=True),
    Param("name", optional=True),
    Param("author", optional=True),
    Param("date_creation", optional=True),
    Param("comment", optional=True),
    Param("categories", optional=True),
    Param("tag_ids", optional=True),
    Param("level", "positive", optional=True),
    Param("single_value_mode", optional=True, default="fill_if_empty"),
    Param("multiple_value_mode", optional=True, default="append"),
    post_only=True,
)
def set_info(call: Call, p: dict[str, Any]) -> None:
    """Change a photo's title, author, description, level, albums or tags."""
    photo = access.photo_for(call.viewer, p["image_id"])
    single, multiple = p["single_value_mode"], p["multiple_value_mode"]
    if single not in ("fill_if_empty", "replace") or multiple not in ("append", "replace"):
        raise WsError(INVALID_PARAM, "Invalid single_value_mode or multiple_value_mode")
    categories = p["categories"]
    edit = PhotoEdit(
        title=p["name"],
        author=p["author"],
        description=p["comment"],
        level=p["level"],
        fill_only=single == "fill_if_empty",
        albums=tuple(_category_list(categories)) if categories is not None else None,
        add_albums=multiple == "append",
        tags=services.tag_names(_ids(p["tag_ids"])) if p["tag_ids"] is not None else None,
        add_tags=multiple == "append",
    )
    services.update_photo(photo.id, edit)
    return None


@method("pwg.images.delete", Param("image_id", "positive", array=True), post_only=True, token=True)
def delete(call: Call, p: dict[str, Any]) -> int:
    """Delete photos: members their own, admins any; all or none."""
    photos = [access.photo_for(call.viewer, photo_id) for photo_id in p["image_id"]]
    if not all(access.may_delete_photo(call.viewer, photo) for photo in photos):
        raise WsError(ACCESS_DENIED, "Access denied: only a photo's owner or an administrator may delete it")
    for photo in photos:
        services.delete_photo(photo.id, call.library.store)
    return len(photos)


@method("pwg.images.rate", Param("image_id", "positive"), Param("rate", "float"), post_only=True)
def rate(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """Accepted and not kept: Photoflow's ratings are the photographer's, from the file and the console."""
    access.photo_for(call.viewer, p["image_id"])
    return {"score": None, "average": None, "count": 0}
