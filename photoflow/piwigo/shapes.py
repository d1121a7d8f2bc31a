"""What ws.php answers look like: Piwigo's image and category shapes, and the URLs they carry.

A page of images costs a fixed number of queries whatever its size: the albums, the files and (for
getInfo) the tags of all its photos are each read in one query.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from photoflow import gallery, services, urls
from photoflow.imaging import GRID_HEIGHTS, PREVIEW, PREVIEW_EDGE
from photoflow.models import Album, Photo
from photoflow.piwigo.envelopes import NamedArray
from photoflow.piwigo.protocol import Call

CATEGORY_ATTRIBUTES = (
    "id",
    "url",
    "nb_images",
    "total_nb_images",
    "nb_categories",
    "date_last",
    "max_date_last",
    "status",
)
IMAGE_ATTRIBUTES = (
    "id",
    "element_url",
    "page_url",
    "file",
    "width",
    "height",
    "hit",
    "date_available",
    "date_creation",
)


# Piwigo's size names, onto Photoflow's derivatives: a grid height, or the photo page's preview.
_LARGE, _MEDIUM, _SMALL = (str(h) for h in GRID_HEIGHTS[:3])
SIZES: dict[str, str] = {
    "square": _SMALL,
    "thumb": _MEDIUM,
    "2small": _MEDIUM,
    "xsmall": _LARGE,
    "small": _LARGE,
    "medium": PREVIEW,
    "large": PREVIEW,
    "xlarge": PREVIEW,
    "xxlarge": PREVIEW,
}


def photo_url(call: Call, photo_id: int) -> str:
    """The photo's page."""
    return f"{call.base_url}/photo/{photo_id}"


def album_url(call: Call, album_id: int) -> str:
    """The album's page."""
    return f"{call.base_url}/album/{album_id}"


def derivative_url(call: Call, photo: Photo, size: str) -> str:
    """One of the photo's derivatives."""
    return call.base_url + urls.derivative(photo.id, photo.sha256, size)


def date(value: dt.datetime | None) -> str | None:
    """Piwigo's date and time: `2026-05-01 09:30:00`."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


def url_name(name: str) -> str:
    """A tag's name as Piwigo puts it in URLs."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def derivatives(call: Call, photo: Photo) -> dict[str, dict[str, Any]]:
    """Piwigo's size names with the URL and the size each is drawn at."""
    w, h = max(1, photo.width), max(1, photo.height)
    drawn: dict[str, dict[str, Any]] = {}
    for size in dict.fromkeys(SIZES.values()):  # four derivatives under nine names
        if size == PREVIEW:
            scale = min(1.0, PREVIEW_EDGE / max(w, h))
            width, height = max(1, round(w * scale)), max(1, round(h * scale))
        else:
            height = min(int(size), h)
            width = max(1, round(w * height / h))
        drawn[size] = {"url": derivative_url(call, photo, size), "width": width, "height": height}
    return {name: drawn[size] for name, size in SIZES.items()}


# The photo's columns an image shape reads (not the full metadata a page of 500 would drag along).
IMAGE_COLUMNS = (
    Photo.id, Photo.sha256, Photo.width, Photo.height, Photo.file_name, Photo.title, Photo.description,
    Photo.author, Photo.level, Photo.taken_at, Photo.created_at, Photo.updated_at,
)  # fmt: skip


def images(call: Call, photos: list[Photo], full: bool = False) -> list[dict[str, Any]]:
    """Piwigo's image shapes for a page of photos: a fixed number of queries for the whole page."""
    ids = [photo.id for photo in photos]
    albums = gallery.albums_of_photos(ids, call.viewer)
    files = gallery.shown_files(ids)
    tags = services.photo_tags(ids) if full else {}
    return [
        _image(call, photo, albums[photo.id], files.get(photo.id), tags.get(photo.id)) for photo in photos
    ]


def _image(
    call: Call,
    photo: Photo,
    albums: list[gallery.AlbumRef],
    original: Any,
    tags: list[tuple[int, str]] | None,
) -> dict[str, Any]:
    role = original.role if original is not None else "original"
    image: dict[str, Any] = {
        "id": photo.id,
        "width": photo.width,
        "height": photo.height,
        "hit": 0,
        "file": photo.file_name,
        "name": photo.title or None,
        "comment": photo.description or None,
        "date_creation": date(photo.taken_at),
        "date_available": date(photo.created_at),
        "page_url": photo_url(call, photo.id),
        "element_url": f"{call.base_url}/photo/{photo.id}/file/{role}",
        "derivatives": derivatives(call, photo),
        "categories": NamedArray(
            [
                {
                    "id": album_id,
                    "url": album_url(call, album_id),
                    "page_url": photo_url(call, photo.id) + f"?album={album_id}",
                }
                for album_id, _title in albums
            ],
            "category",
            ("id", "url", "page_url"),
        ),
    }
    if tags is None:
        return image
    image.update(
        {
            "author": photo.author or None,
            "level": photo.level if call.viewer.is_member else None,
            "md5sum": original.md5 if original is not None else None,
            "filesize": round(original.size / 1024) if original is not None else None,
            "rating_score": None,
            "rates": {"score": None, "count": 0, "average": None},
            "tags": NamedArray(
                [{"id": tag_id, "name": name, "url_name": url_name(name)} for tag_id, name in tags],
                "tag",
                ("id",),
            ),
            "lastmodified": date(photo.updated_at),
        }
    )
    return image


def category(
    call: Call, album: Album, summary: gallery.AlbumSummary, rank: int, fullname: bool
) -> dict[str, Any]:
    """Piwigo's category shape for an album (flat: every album is at the top level)."""
    last = date(summary.last_added)
    return {
        "id": album.id,
        "url": album_url(call, album.id),
        "nb_images": summary.count,
        "total_nb_images": summary.count,
        "nb_categories": 0,
        "date_last": last,
        "max_date_last": last,
        "status": "public" if album.is_public else "private",
        "name": album.title,
        "comment": album.description or "",
        "permalink": None,
        "uppercats": str(album.id),
        "global_rank": str(rank),
        "id_uppercat": None,
        # Only a cover the caller may see: a level-4 cover of a public album would name a hidden photo.
        "representative_picture_id": str(summary.cover.id) if summary.cover and summary.chosen else None,
        "tn_url": None,
        "fullname": album.title if fullname else None,
    }
