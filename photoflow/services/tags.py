"""Keywords (Piwigo's tags): the ones viewers may see, counted; new ones; names from ids."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from peewee import fn

from photoflow.access import Viewer, visible_photos
from photoflow.errors import Invalid
from photoflow.models import Photo, PhotoTag, Tag
from photoflow.services.text import MAX_TAG, clean_line


@dataclass(frozen=True)
class TagCount:
    """A keyword and how many photos the viewer may see carry it."""

    id: int
    name: str
    count: int


def tag_names_cleaned(names: Iterable[str]) -> list[str]:
    """Keywords as stored: one line each, at most MAX_TAG characters, no empty ones, no repeats."""
    return list(dict.fromkeys(t for t in (clean_line(n)[:MAX_TAG] for n in names) if t))


def tag_counts(viewer: Viewer) -> list[TagCount]:
    """Every keyword on a photo `viewer` may see, with how many such photos carry it, by name."""
    query = (
        Tag.select(Tag.id, Tag.name, fn.COUNT(PhotoTag.photo))
        .join(PhotoTag)
        .join(Photo)
        .where(visible_photos(viewer))
        .group_by(Tag.id, Tag.name)
        .tuples()
    )
    return sorted((TagCount(*row) for row in query), key=lambda t: (t.name.lower(), t.id))


def create_tag(name: str) -> int:
    """A keyword of this name (made when missing); its id."""
    cleaned = tag_names_cleaned([name])
    if not cleaned:
        raise Invalid("the tag name is empty")
    Tag.insert(name=cleaned[0]).on_conflict_ignore().execute()
    return int(Tag.get(Tag.name == cleaned[0]).id)


def tag_names(tag_ids: Iterable[int]) -> tuple[str, ...]:
    """The names of the keywords with these ids (unknown ids are left out)."""
    ids = list(tag_ids)
    return tuple(t.name for t in Tag.select(Tag.name).where(Tag.id.in_(ids))) if ids else ()


def photo_tags(photo_ids: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
    """For each photo, its keywords (id, name) by name: one query for a whole page."""
    ids = list(photo_ids)
    found: dict[int, list[tuple[int, str]]] = {i: [] for i in ids}
    if ids:
        rows = (
            PhotoTag.select(PhotoTag.photo, Tag.id, Tag.name)
            .join(Tag)
            .where(PhotoTag.photo.in_(ids))
            .order_by(Tag.name)
            .tuples()
        )
        for photo_id, tag_id, name in rows:
            found[photo_id].append((tag_id, name))
    return found
