"""What the grid shows: the timeline (days and their counts), the photos of a range of days, an album's
photos, and a photo's neighbours — always through the visibility rule of `photoflow.access`.

Photos are ordered newest capture first (photos without a date last, by id). A grid entry is what
pig.js needs and no more: id, the shown file's hash (the derivative URLs carry it) and aspect ratio.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from peewee import SQL, PostgresqlDatabase, Select, fn

from photoflow import urls
from photoflow.access import Viewer, album_photos, visible_albums, visible_in_album, visible_photos
from photoflow.db import db
from photoflow.describe import camera_name
from photoflow.models import Album, File, LibraryState, Photo, PhotoAlbum

NO_DATE = "undated"
# The first screen: enough photos to fill a large monitor twice over, whole days where they are small.
FIRST_SCREEN = 120


@dataclass(frozen=True)
class Entry:
    """One photo in a grid."""

    id: int
    sha: str
    width: int
    height: int
    day: str  # YYYY-MM-DD, or NO_DATE

    def as_json(self) -> list[object]:
        """The compact form the pages' scripts read: [id, hash prefix, aspect ratio, day]."""
        return [self.id, self.sha[: urls.HASH_PREFIX], round(self.width / max(1, self.height), 4), self.day]


_ENTRY = (Photo.id, Photo.sha256, Photo.width, Photo.height, Photo.taken_at)


def _entries(query: Any) -> list[Entry]:
    rows = query.select(*_ENTRY).tuples()
    return [Entry(pid, sha, w or 1, h or 1, _day(taken)) for pid, sha, w, h, taken in rows.iterator()]


def _album_entries(query: Any) -> Iterator[tuple[int, Entry]]:
    """(album id, Entry) from rows of an album id and the entry's columns."""
    for album_id, pid, sha, w, h, taken in query.tuples().iterator():
        yield album_id, Entry(pid, sha, w or 1, h or 1, _day(taken))


def _as_time(value: object) -> dt.datetime | None:
    """A time as the database gave it back from an aggregate (SQLite: text)."""
    if isinstance(value, dt.datetime) or value is None:
        return value
    try:
        return dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _day(taken: dt.datetime | str | None) -> str:
    if taken is None:
        return NO_DATE
    return str(taken)[:10]


def _ordered(query: Any) -> Any:
    return query.order_by(Photo.taken_at.desc(nulls="last"), Photo.id.desc())


# -- the timeline ----------------------------------------------------------------------------------


class _TimelineCache:
    """Timelines by viewer kind, kept while the library's generation has not moved."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._store: dict[tuple[str, str], tuple[int, list[tuple[str, int]]]] = {}

    def get(self, key: tuple[str, str], generation: int) -> list[tuple[str, int]] | None:
        with self._lock:
            found = self._store.get(key)
        return found[1] if found and found[0] == generation else None

    def put(self, key: tuple[str, str], generation: int, value: list[tuple[str, int]]) -> None:
        with self._lock:
            if len(self._store) > 256:
                self._store.clear()
            self._store[key] = (generation, value)


_cache = _TimelineCache()


def timeline(viewer: Viewer) -> list[tuple[str, int]]:
    """Every day with photos `viewer` may see, newest first, with its count; undated photos last."""
    key = (str(db.obj.database) if db.obj is not None else "", viewer.kind)
    generation = LibraryState.generation()
    cached = _cache.get(key, generation)
    if cached is not None:
        return cached
    query = (
        Photo.select(_day_sql().alias("day"), fn.COUNT(Photo.id).alias("n"))
        .where(visible_photos(viewer))
        .group_by(_day_sql())
        .order_by(_day_sql().desc(nulls="last"))
        .tuples()
    )
    result = [(str(d) if d is not None else NO_DATE, n) for d, n in query]
    _cache.put(key, generation, result)
    return result


def _day_sql() -> Any:
    # The capture day (taken_at is local time: no time zone), written exactly as the indexes of
    # migration 0003 are, so the count reads them in order. coerce(False): peewee would otherwise
    # read the value back through the datetime field.
    if isinstance(db.obj, PostgresqlDatabase):
        return Photo.taken_at.cast("date").coerce(False)
    return fn.SUBSTR(Photo.taken_at, SQL("1"), SQL("10")).coerce(False)  # SQLite keeps ISO text


def days(viewer: Viewer, newest: str, oldest: str) -> list[Entry]:
    """The photos `viewer` may see taken on the days from `newest` back to `oldest` (inclusive)."""
    condition = visible_photos(viewer)
    if newest == NO_DATE or oldest == NO_DATE:
        condition = condition & Photo.taken_at.is_null()
        if newest != NO_DATE:
            raise ValueError("the undated photos come last: ask for them alone")
    else:
        start, end = _parse_day(oldest), _parse_day(newest) + dt.timedelta(days=1)
        condition = condition & (Photo.taken_at >= start) & (Photo.taken_at < end)
    return _entries(_ordered(Photo.select().where(condition)))


def _parse_day(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d")


def first_screen(viewer: Viewer, limit: int = FIRST_SCREEN) -> list[Entry]:
    """The newest photos, about `limit` of them, the last day made whole when it is small.

    What the gallery page carries inline, so the first rows draw without another request. A day cut
    short (thousands of photos) is completed by the page's script, which compares with the timeline.
    """
    head = _entries(_ordered(Photo.select().where(visible_photos(viewer))).limit(limit))
    if len(head) < limit or head[-1].day == NO_DATE:
        return head
    last = head[-1].day
    whole = days(viewer, last, last)
    if len(whole) > limit:
        return head
    return [e for e in head if e.day != last] + whole


# -- albums ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlbumSummary:
    """An album as `viewer` sees it: how many of its photos, when the last was added, its cover.

    `cover` is the chosen cover when the viewer may see it, else the newest photo the viewer may see
    there; `chosen` says which.
    """

    count: int = 0
    last_added: dt.datetime | None = None
    cover: Entry | None = None
    chosen: bool = False


@dataclass(frozen=True)
class AlbumCard:
    """An album as the albums page shows it."""

    album: Album
    count: int
    cover: Entry | None


def album_cards(viewer: Viewer) -> list[AlbumCard]:
    """Every album `viewer` may see, newest change first, with its visible count and cover."""
    albums = list(
        Album.select().where(visible_albums(viewer)).order_by(Album.updated_at.desc(), Album.id.desc())
    )
    summaries = album_summaries(viewer, [album.id for album in albums])
    return [AlbumCard(a, summaries[a.id].count, summaries[a.id].cover) for a in albums]


def album_summaries(viewer: Viewer, album_ids: list[int]) -> dict[int, AlbumSummary]:
    """The summary of each of these albums (already checked visible): three queries for any number."""
    if not album_ids:
        return {}
    shown = visible_in_album(viewer)
    counts = (
        PhotoAlbum.select(PhotoAlbum.album, fn.COUNT(Photo.id), fn.MAX(PhotoAlbum.added_at).coerce(False))
        .join(Photo)
        .where(PhotoAlbum.album.in_(album_ids) & shown)
        .group_by(PhotoAlbum.album)
        .tuples()
    )
    found = {album_id: (count, _as_time(last)) for album_id, count, last in counts}
    chosen = dict(
        _album_entries(
            PhotoAlbum.select(PhotoAlbum.album, *_ENTRY)
            .join(Photo)
            .switch(PhotoAlbum)
            .join(Album, on=((Album.id == PhotoAlbum.album) & (Album.cover == PhotoAlbum.photo)))
            .where(PhotoAlbum.album.in_(album_ids) & shown)
        )
    )
    # The newest photo of each album without a visible chosen cover: ranked within its album.
    rest = [a for a in album_ids if a in found and a not in chosen]
    newest: dict[int, Entry] = {}
    if rest:
        rank = fn.ROW_NUMBER().over(
            partition_by=[PhotoAlbum.album], order_by=[Photo.taken_at.desc(nulls="last"), Photo.id.desc()]
        )
        ranked = (
            PhotoAlbum.select(*(c.alias(f"c{i}") for i, c in enumerate((PhotoAlbum.album, *_ENTRY))))
            .select_extend(rank.alias("rank"))
            .join(Photo)
            .where(PhotoAlbum.album.in_(rest) & shown)
            .alias("ranked")
        )
        columns = [getattr(ranked.c, f"c{i}") for i in range(len(_ENTRY) + 1)]
        newest = dict(_album_entries(Select([ranked], columns).where(ranked.c.rank == 1).bind(db)))
    summaries = {}
    for album_id in album_ids:
        count, last = found.get(album_id, (0, None))
        cover = chosen.get(album_id) or newest.get(album_id)
        summaries[album_id] = AlbumSummary(count, last, cover, album_id in chosen)
    return summaries


def album_entries(viewer: Viewer, album: Album) -> list[Entry]:
    """The photos of `album` that `viewer` may see, newest first."""
    return _entries(_ordered(Photo.select().where(album_photos(viewer, album))))


class AlbumRef(NamedTuple):
    """An album as a list of a photo's albums names it."""

    id: int
    title: str


def albums_of(photo: Photo, viewer: Viewer) -> list[AlbumRef]:
    """The albums a photo is in that `viewer` may see, by title."""
    return albums_of_photos([photo.id], viewer)[photo.id]


def albums_of_photos(photo_ids: list[int], viewer: Viewer) -> dict[int, list[AlbumRef]]:
    """For each photo, the albums it is in that `viewer` may see, by title: one query for them all."""
    found: dict[int, list[AlbumRef]] = {photo_id: [] for photo_id in photo_ids}
    if photo_ids:
        rows = (
            PhotoAlbum.select(PhotoAlbum.photo, Album.id, Album.title)
            .join(Album)
            .where(PhotoAlbum.photo.in_(photo_ids) & visible_albums(viewer))
            .order_by(Album.title, Album.id)
            .tuples()
        )
        for photo_id, album_id, title in rows:
            found[photo_id].append(AlbumRef(album_id, title))
    return found


def page_of_photos(condition: Any, offset: int, limit: int, columns: Iterable[Any]) -> Any:
    """The photos meeting `condition`, newest first, from `offset`: one statement.

    The ids are found first, from the index alone, and only the page's rows are read: skipping
    99,500 photos to the last page of 500 then walks the index, not the table (on PostgreSQL a
    plain OFFSET read every skipped row).
    """
    ids = _ordered(Photo.select(Photo.id).where(condition)).offset(offset).limit(limit)
    return _ordered(Photo.select(*columns).where(Photo.id.in_(ids)))


def shown_files(photo_ids: list[int]) -> dict[int, File]:
    """For each photo, the file it is downloaded as (role, md5, size): its picture, else its RAW."""
    found: dict[int, File] = {}
    if photo_ids:
        # "original" sorts before "raw".
        query = File.select(File.photo, File.role, File.md5, File.size).where(
            File.photo.in_(photo_ids) & File.role.in_(["original", "raw"])
        )
        for row in query.order_by(File.photo, File.role.desc()):
            found[row.photo_id] = row
    return found


# -- neighbours --------------------------------------------------------------------------------------


def neighbours(viewer: Viewer, photo: Photo, album: Album | None = None) -> tuple[int | None, int | None]:
    """The ids of the photos before (newer) and after (older) `photo` in its grid, or None at the ends."""
    condition = album_photos(viewer, album) if album is not None else visible_photos(viewer)
    newer, older = _newer_than(photo), _older_than(photo)
    before = Photo.select(Photo.id).where(condition & newer)
    before = before.order_by(Photo.taken_at.asc(nulls="first"), Photo.id.asc()).first()
    after = _ordered(Photo.select(Photo.id).where(condition & older)).first()
    return (before.id if before else None, after.id if after else None)


def _older_than(photo: Photo) -> Any:
    if photo.taken_at is None:
        return Photo.taken_at.is_null() & (Photo.id < photo.id)
    return (
        (Photo.taken_at < photo.taken_at)
        | ((Photo.taken_at == photo.taken_at) & (Photo.id < photo.id))
        | Photo.taken_at.is_null()
    )


def _newer_than(photo: Photo) -> Any:
    if photo.taken_at is None:
        return Photo.taken_at.is_null(False) | (Photo.id > photo.id)
    return (Photo.taken_at > photo.taken_at) | ((Photo.taken_at == photo.taken_at) & (Photo.id > photo.id))


# -- the console's photo table -----------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoRow:
    """One line of the photo table."""

    id: int
    file_name: str
    taken_at: dt.datetime | None
    camera: str
    albums: str
    level: int


def photo_rows(search: str = "", offset: int = 0, limit: int = 50) -> tuple[list[PhotoRow], int]:
    """A page of every photo (newest first), filtered by a search over names, titles and cameras.

    Fast at 100,000 photos: the page is read in index order and only its own albums are looked up.
    """
    query = Photo.select(
        Photo.id, Photo.file_name, Photo.taken_at, Photo.camera_make, Photo.camera_model, Photo.level
    )
    words = search.split()
    for word in words:
        pattern = f"%{word}%"
        query = query.where(
            Photo.file_name.ilike(pattern)
            | Photo.title.ilike(pattern)
            | Photo.camera_model.ilike(pattern)
            | Photo.camera_make.ilike(pattern)
        )
    total = query.count()
    page = list(_ordered(query).offset(max(0, offset)).limit(limit))
    ids = [p.id for p in page]
    names: dict[int, list[str]] = {}
    if ids:
        links = (
            PhotoAlbum.select(PhotoAlbum.photo, Album.title)
            .join(Album)
            .where(PhotoAlbum.photo.in_(ids))
            .order_by(Album.title)
            .tuples()
        )
        for photo_id, title in links:
            names.setdefault(photo_id, []).append(title)
    rows = [
        PhotoRow(
            p.id, p.file_name, p.taken_at, camera_name(p.camera_make, p.camera_model),
            ", ".join(names.get(p.id, [])), p.level,
        )
        for p in page
    ]  # fmt: skip
    return rows, total
