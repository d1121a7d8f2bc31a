"""The import pipeline shared by every door: the command line, web uploads, ws.php and the console.

A file travels in two steps:

1. `Pipeline.prepare` (in a worker process for command-line imports, in the request thread for
   uploads): stage the bytes in the datastore while hashing them, read the metadata with exiftool,
   decide the type from the content, render the derivatives and give every file its content address.
   Slow work, no database writes.
2. `finalise` (in one process, one short write transaction per group of files that share a base
   name): pair pictures, RAWs and sidecars, and write the rows. Files first, rows last.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from peewee import IntegrityError, PostgresqlDatabase, fn

from photoflow import imaging
from photoflow.db import db
from photoflow.errors import Invalid, NotFound, PhotoflowError
from photoflow.faults import crash_point
from photoflow.filetypes import classify
from photoflow.filetypes import display_name as display_name  # the doors import it from here too
from photoflow.filetypes import pair_key as pair_key
from photoflow.metadata import ExifReader, Metadata, normalise
from photoflow.models import Album, File, Photo, PhotoAlbum, PhotoTag, Tag, utcnow
from photoflow.storage import Datastore, Staged, StorageFull

# The first half of the PostgreSQL advisory lock that `finalise` takes per owner ("PF" + 1).
_PAIRING_LOCK = 0x50460001


@dataclass
class Prepared:
    """One file after step 1: stored under its content address (or refused), with what was read."""

    name: str
    key: str
    status: str  # "ok", "duplicate" or "failed"
    reason: str = ""
    role: str = ""  # "original", "raw" or "sidecar"
    sha256: str = ""
    md5: str = ""
    size: int = 0
    format: str = ""
    mime: str = ""
    path: str = ""
    meta: Metadata | None = None
    width: int = 0
    height: int = 0
    rendered: bool = False  # derivatives were written under sha256
    render_error: str = ""
    mtime: float | None = None
    photo_id: int | None = None  # for duplicates: the photo that already holds these bytes


@dataclass
class FileResult:
    """What became of one offered file."""

    name: str
    status: str  # "imported", "duplicate", "attached" or "failed"
    reason: str = ""
    photo_id: int | None = None
    role: str = ""


@dataclass
class ImportOptions:
    """Who imports, into which album, with what the client said about the pictures."""

    owner_id: int
    album_id: int | None = None
    level: int = 0
    title: str | None = None
    description: str | None = None
    author: str | None = None
    tags: tuple[str, ...] = ()


@dataclass
class ImportSummary:
    """The results of a batch, counted."""

    results: list[FileResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        """How many files ended with this status."""
        return sum(1 for r in self.results if r.status == status)

    @property
    def failed(self) -> list[FileResult]:
        """The files that failed, with their reasons."""
        return [r for r in self.results if r.status == "failed"]


# -- step 1: prepare ---------------------------------------------------------------------------------


class Pipeline:
    """The per-process tools of step 1: the datastore and one long-lived exiftool."""

    def __init__(self, store: Datastore, reader: ExifReader, max_bytes: int | None = None) -> None:
        self.store = store
        self.reader = reader
        self.max_bytes = max_bytes

    def close(self) -> None:
        """Stop the exiftool process."""
        self.reader.close()

    def warm_up(self) -> None:
        """Start exiftool in the background (it takes a tenth of a second); the first read waits for it."""
        self.reader.start()

    def prepare_path(self, path: Path, name: str | None = None, want_preview: bool = True) -> Prepared:
        """Stage and prepare a file on the server."""
        shown = display_name(name or path.name)
        try:
            mtime = path.stat().st_mtime
            staged = self.store.stage_file(path, self.max_bytes)
        except PhotoflowError as exc:
            return Prepared(shown, pair_key(shown), "failed", exc.reason)
        except OSError as exc:
            return Prepared(shown, pair_key(shown), "failed", f"cannot read the file: {exc.strerror or exc}")
        try:
            return self.prepare(staged, shown, mtime, want_preview)
        except StorageFull as exc:  # a batch reports it per file, like a full disk while staging
            return Prepared(shown, pair_key(shown), "failed", exc.reason)

    def prepare(self, staged: Staged, name: str, mtime: float | None, want_preview: bool = True) -> Prepared:
        """Read, classify and render a staged file, then give it its content address.

        `want_preview` False skips rendering a RAW whose picture is in the same batch.
        """
        item = Prepared(
            name, pair_key(name), "ok", sha256=staged.sha256, md5=staged.md5, size=staged.size, mtime=mtime
        )
        try:
            existing = File.get_or_none(File.sha256 == staged.sha256)
            if existing is not None:
                self.store.discard(staged)
                return replace(item, status="duplicate", role=existing.role, photo_id=existing.photo_id)
            meta = self.read_metadata(staged.path)
            kind = classify(staged.path, meta)
            item = replace(item, meta=meta, format=kind.format, mime=kind.mime)
            item.role = {"picture": "original", "raw": "raw", "sidecar": "sidecar"}[kind.kind]
            if kind.kind == "picture" or (kind.kind == "raw" and want_preview):
                try:
                    self.render_into(staged.path, item)
                except PhotoflowError as exc:
                    if kind.kind == "picture":
                        raise
                    # A RAW without a usable preview can still attach to its picture.
                    item.render_error = exc.reason
            item.path = self.store.commit(staged, item.role, kind.extension)
            return item
        except StorageFull:
            # Not this file's fault: the caller answers for the whole request (a web upload's 507).
            self.store.discard(staged)
            raise
        except PhotoflowError as exc:
            self.store.discard(staged)
            return replace(item, status="failed", reason=exc.reason)
        except BaseException:
            self.store.discard(staged)
            raise

    def read_metadata(self, path: Path) -> Metadata:
        """Normalised metadata of a stored file (a datastore path: never a client's name)."""
        return normalise(self.reader.read(path))

    def render(self, path: Path, raw: bool, meta: Metadata | None = None) -> imaging.Rendered:
        """Make the derivatives of a stored file: a picture itself, or a RAW's embedded preview."""
        if not raw:
            return imaging.render(path)
        if meta is None:
            meta = self.read_metadata(path)
        data = imaging.raw_preview(path)
        if not imaging.usable_preview(data):
            data = self._exiftool_preview(path, meta)
        if data is None:
            raise Invalid("the RAW file has no usable embedded preview")
        rendered = imaging.render(io.BytesIO(data), orientation=meta.orientation)
        # Report the RAW's own size when its preview has the same shape (a preview is often smaller).
        if meta.width and meta.height:
            w, h = (
                (meta.height, meta.width) if meta.orientation in (5, 6, 7, 8) else (meta.width, meta.height)
            )
            if abs(w / h - rendered.width / rendered.height) < 0.02:
                rendered.width, rendered.height = w, h
        return rendered

    def _exiftool_preview(self, path: Path, meta: Metadata) -> bytes | None:
        # LibRaw does not know every container (a CR3 without its raw track, say); exiftool does.
        for tag, _size in sorted(meta.previews.items(), key=lambda kv: -kv[1]):
            try:
                data = self.reader.extract(path, tag)
            except PhotoflowError:
                continue
            if imaging.usable_preview(data):
                return data
        return None

    def render_into(self, path: Path, item: Prepared) -> None:
        """Render a stored file's derivatives under its hash and record its size in `item`."""
        rendered = self.render(path, item.role == "raw", item.meta)
        self.store.write_derivatives(item.sha256, rendered.outputs)
        item.width, item.height, item.rendered = rendered.width, rendered.height, True


# -- step 2: finalise ------------------------------------------------------------------------------


@dataclass
class _Plan:
    """What one group's transaction did, for the clean-up after it commits."""

    results: list[FileResult] = field(default_factory=list)
    remove_blobs: list[str] = field(default_factory=list)
    remove_derivatives: list[str] = field(default_factory=list)


# What a caller writes with the rows, in the same transaction: given the results of the group.
WithRows = Callable[[list[FileResult]], None]


def finalise(
    group: list[Prepared], options: ImportOptions, store: Datastore, with_rows: WithRows | None = None
) -> list[FileResult]:
    """Pair one group of prepared files that share a base name and write their rows.

    Runs in one short write transaction; retried when a concurrent importer committed the same bytes
    first, in which case those files come out as duplicates. `with_rows` runs inside it, after the
    rows: an upload's title, tags, level and albums are written with the photo or not at all.
    """
    for attempt in range(3):
        plan = _Plan()
        try:
            with db.atomic():
                _lock_pairing(options.owner_id)
                lock_content(p.sha256 for p in group if p.sha256)
                _pair_group([_still_there(p, store) for p in group], options, plan)
                if with_rows is not None:
                    with_rows(plan.results)
                crash_point("in-transaction")
            break
        except IntegrityError:
            if attempt == 2:
                raise
    crash_point("committed")
    for sha in plan.remove_derivatives:
        store.remove_derivatives(sha)
    for rel in plan.remove_blobs:
        if not File.select().where(File.path == rel).exists():
            store.remove(rel)
    return plan.results


def _lock_pairing(owner_id: int) -> None:
    """On PostgreSQL, wait until no other transaction is pairing this owner's files.

    Pairing reads (is there a photo this RAW belongs to?) before it writes. SQLite runs write
    transactions one at a time (IMMEDIATE), but PostgreSQL runs them side by side under READ
    COMMITTED: a JPEG arriving at one instance and its RAW at another, finalised at the same moment,
    would not see each other's uncommitted photo and would become two photos. The lock is released at
    commit or rollback; the transactions it orders are short (no slow work inside them).
    """
    if isinstance(db.obj, PostgresqlDatabase):
        db.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (_PAIRING_LOCK, owner_id))


VANISHED = "the photo with these bytes was deleted while this file was imported; import it again"


def _still_there(p: Prepared, store: Datastore) -> Prepared:
    """A file whose stored copy or whose earlier photo went away since step 1 fails with its reason.

    A delete of the same bytes may have run between this file's staging and this transaction (it
    removes a file no row refers to); a row written now would point at nothing. Checked under the
    content lock, which a delete holds while it removes files.
    """
    if p.status == "ok" and not store.exists(p.path):
        return replace(p, status="failed", reason=VANISHED)
    if p.status == "duplicate" and p.photo_id is not None:
        existing = File.get_or_none(File.sha256 == p.sha256)
        if existing is None:
            return replace(p, status="failed", reason=VANISHED)
        if existing.photo_id != p.photo_id:  # deleted, then imported again by someone else
            return replace(p, photo_id=existing.photo_id, role=existing.role)
    return p


def lock_content(shas: Iterable[str]) -> None:
    """On PostgreSQL, hold these content addresses until commit, so that a delete's "no row refers
    to this file, remove it" and an import's "the file is there, write its row" never interleave.
    SQLite's write transactions (IMMEDIATE) are one at a time already. Taken in order: no deadlock."""
    if isinstance(db.obj, PostgresqlDatabase):
        for sha in sorted(set(shas)):
            db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (int(sha[:15], 16),))


def _pair_group(group: list[Prepared], options: ImportOptions, plan: _Plan) -> None:
    items = [_recheck_duplicate(p) for p in group]
    for p in items:
        if p.status == "failed":
            plan.results.append(FileResult(p.name, "failed", p.reason))
    pictures = sorted((p for p in items if p.role == "original" and p.status != "failed"), key=_pick_order)
    raws = sorted((p for p in items if p.role == "raw" and p.status != "failed"), key=_pick_order)
    sidecars = [p for p in items if p.role == "sidecar" and p.status != "failed"]

    anchor: Photo | None = None
    if pictures:
        anchor = _place_picture(pictures[0], options, plan, with_raw=bool(raws))
    if raws:
        anchor = _place_raw(raws[0], anchor, options, plan) or anchor
    # Further pictures or RAWs with the same base name (IMG_1.jpg and IMG_1.png) are shots of their own.
    for extra in pictures[1:]:
        _place_picture(extra, options, plan, with_raw=False)
    for extra in raws[1:]:
        _place_raw(extra, None, options, plan)
    for sidecar in sidecars:
        _place_sidecar(sidecar, anchor, options, plan)


def _pick_order(p: Prepared) -> tuple[int, str]:
    # JPEG first: it is what cameras and darktable export, and what every browser shows.
    return (0 if p.format == "JPEG" else 1, p.name)


def _recheck_duplicate(p: Prepared) -> Prepared:
    if p.status != "ok":
        return p
    existing = File.get_or_none(File.sha256 == p.sha256)
    if existing is None:
        return p
    return replace(p, status="duplicate", role=existing.role, photo_id=existing.photo_id, rendered=False)


def _place_picture(p: Prepared, options: ImportOptions, plan: _Plan, with_raw: bool) -> Photo:
    if p.status == "duplicate":
        photo = Photo.get_by_id(p.photo_id)
        plan.results.append(FileResult(p.name, "duplicate", "already imported", photo.id, p.role))
        _link_album(photo, options)
        return photo
    photo = None if with_raw else _raw_only_photo_for(p, options.owner_id)
    if photo is not None:
        # The picture of a RAW imported earlier: it becomes what the photo is shown from.
        plan.remove_derivatives.append(photo.sha256)
        _apply_picture(photo, p)
        photo.save()
        _add_file(photo, p)
        plan.results.append(FileResult(p.name, "attached", "picture for an earlier RAW", photo.id, p.role))
    else:
        photo = _new_photo(p, options)
        _add_file(photo, p)
        plan.results.append(FileResult(p.name, "imported", "", photo.id, p.role))
    add_keywords(photo, [*(p.meta.keywords if p.meta else ()), *options.tags])
    _link_album(photo, options)
    return photo


def _place_raw(p: Prepared, anchor: Photo | None, options: ImportOptions, plan: _Plan) -> Photo | None:
    if p.status == "duplicate":
        photo = Photo.get_by_id(p.photo_id)
        plan.results.append(FileResult(p.name, "duplicate", "already imported", photo.id, p.role))
        _link_album(photo, options)
        return photo
    target = anchor if anchor is not None and not _has_role(anchor, "raw") else None
    if target is None and anchor is None:
        target = _picture_photo_for(p, options.owner_id)
    if target is not None:
        _add_file(target, p)
        if p.rendered:
            plan.remove_derivatives.append(p.sha256)
        if anchor is None:
            _link_album(target, options)
        plan.results.append(FileResult(p.name, "attached", "RAW of " + target.file_name, target.id, p.role))
        return target
    if not p.rendered:
        plan.remove_blobs.append(p.path)
        reason = p.render_error or "RAW file has no preview and no picture to pair with"
        plan.results.append(FileResult(p.name, "failed", reason))
        return None
    photo = _new_photo(p, options)
    _add_file(photo, p)
    add_keywords(photo, [*(p.meta.keywords if p.meta else ()), *options.tags])
    _link_album(photo, options)
    plan.results.append(FileResult(p.name, "imported", "shown from the RAW's preview", photo.id, p.role))
    return photo


def _place_sidecar(p: Prepared, anchor: Photo | None, options: ImportOptions, plan: _Plan) -> None:
    if p.status == "duplicate":
        plan.results.append(FileResult(p.name, "duplicate", "already imported", p.photo_id, p.role))
        return
    photo = anchor or _photo_for_sidecar(p, options.owner_id)
    if photo is None:
        plan.remove_blobs.append(p.path)
        plan.results.append(
            FileResult(p.name, "failed", "no photo with this base name to attach the sidecar to")
        )
        return
    # The newest sidecar wins: darktable rewrites it after every edit.
    for old in File.select().where((File.photo == photo) & (File.role == "sidecar")):
        plan.remove_blobs.append(old.path)
        old.delete_instance()
    _add_file(photo, p)
    if p.meta is not None:
        _apply_sidecar(photo, p.meta)
        photo.save()
        add_keywords(photo, [*photo.keywords, *p.meta.keywords])
    plan.results.append(FileResult(p.name, "attached", "sidecar of " + photo.file_name, photo.id, p.role))


# -- matching earlier imports ----------------------------------------------------------------------


def _same_time(a: dt.datetime | None, b: dt.datetime | None) -> bool:
    return a is not None and b is not None and abs((a - b).total_seconds()) < 1


def _raw_only_photo_for(p: Prepared, owner_id: int) -> Photo | None:
    """An earlier RAW-only photo that this picture belongs to, by darktable's DerivedFrom or name and time."""
    candidates = Photo.select().where((Photo.owner == owner_id) & (Photo.kind == "raw"))
    derived = (p.meta.derived_from or "").casefold() if p.meta else ""
    if derived:
        raw_file = (
            File.select()
            .join(Photo)
            .where(
                (Photo.owner == owner_id)
                & (Photo.kind == "raw")
                & (File.role == "raw")
                & (fn.LOWER(File.original_name) == derived)
            )
            .first()
        )
        if raw_file is not None:
            return raw_file.photo
    taken = _local_time(p)
    for photo in candidates.where(Photo.pair_key == p.key):
        if _same_time(photo.taken_at, taken):
            return photo
    return None


def _picture_photo_for(p: Prepared, owner_id: int) -> Photo | None:
    """An earlier picture without a RAW that this RAW belongs to."""
    without_raw = (
        (Photo.owner == owner_id)
        & (Photo.kind == "picture")
        & ~fn.EXISTS(File.select().where((File.photo == Photo.id) & (File.role == "raw")))
    )
    name = p.name.casefold()
    derived = Photo.select().where(without_raw & (fn.LOWER(Photo.derived_from) == name)).first()
    if derived is not None:
        return derived
    taken = _local_time(p)
    for photo in Photo.select().where(without_raw & (Photo.pair_key == p.key)):
        if _same_time(photo.taken_at, taken):
            return photo
    return None


def _photo_for_sidecar(p: Prepared, owner_id: int) -> Photo | None:
    """The photo a late sidecar describes: by the RAW it names, else by base name (the newest)."""
    derived = (p.meta.derived_from or "").casefold() if p.meta else ""
    if derived:
        found = (
            File.select()
            .join(Photo)
            .where((Photo.owner == owner_id) & (fn.LOWER(File.original_name) == derived))
            .first()
        )
        if found is not None:
            return found.photo
    query = Photo.select().where((Photo.owner == owner_id) & (Photo.pair_key == p.key))
    return query.order_by(Photo.id.desc()).first()


# -- rows --------------------------------------------------------------------------------------------


def _local_time(p: Prepared) -> dt.datetime | None:
    taken = p.meta.taken_at if p.meta else None
    if taken is None:
        return None
    return taken.replace(tzinfo=None)


def _date_fields(p: Prepared) -> dict[str, object]:
    taken = p.meta.taken_at if p.meta else None
    if taken is not None:
        offset = taken.utcoffset()
        return {
            "taken_at": taken.replace(tzinfo=None),
            "taken_offset": None if offset is None else int(offset.total_seconds() // 60),
            "date_source": p.meta.date_source if p.meta else None,
        }
    if p.mtime is not None:
        try:
            # The file's own time, in the server's local time zone, as cameras record local time.
            return {
                "taken_at": dt.datetime.fromtimestamp(p.mtime),
                "taken_offset": None,
                "date_source": "file time",
            }
        except (OverflowError, OSError, ValueError):
            pass
    return {"taken_at": None, "taken_offset": None, "date_source": None}


def _metadata_fields(meta: Metadata | None) -> dict[str, object]:
    if meta is None:
        return {}
    return {
        "camera_make": meta.make,
        "camera_model": meta.model,
        "lens": meta.lens,
        "exposure_time": meta.exposure_time,
        "aperture": meta.aperture,
        "iso": meta.iso,
        "focal_length": meta.focal_length,
        "focal_length_35mm": meta.focal_length_35mm,
        "flash": meta.flash,
        "gps_lat": meta.gps_lat,
        "gps_lon": meta.gps_lon,
        "gps_alt": meta.gps_alt,
        "orientation": meta.orientation,
        "software": meta.software,
        "derived_from": meta.derived_from,
        "edited": meta.edited,
        "rating": meta.rating,
        "color_labels": ",".join(meta.color_labels),
        "title": meta.title or "",
        "description": meta.description or "",
        "metadata_json": json.dumps(meta.tags, ensure_ascii=False, default=str),
    }


def _new_photo(p: Prepared, options: ImportOptions) -> Photo:
    fields = {
        "owner": options.owner_id,
        "sha256": p.sha256,
        "file_name": p.name,
        "pair_key": p.key,
        "kind": "picture" if p.role == "original" else "raw",
        "format": p.format,
        "width": p.width,
        "height": p.height,
        "level": options.level,
        **_date_fields(p),
        **_metadata_fields(p.meta),
    }
    if options.title:
        fields["title"] = options.title
    if options.description:
        fields["description"] = options.description
    if options.author:
        fields["author"] = options.author
    return Photo.create(**fields)


def _apply_picture(photo: Photo, p: Prepared) -> None:
    """Show `photo` from the picture `p` from now on.

    The picture (a camera JPEG, or darktable's export: the developed version) wins for every field it
    fills; title, description and rating it leaves empty keep what the photo had.
    """
    photo.sha256 = p.sha256
    photo.kind = "picture"
    photo.format = p.format
    photo.file_name = p.name
    photo.width, photo.height = p.width, p.height
    for name, value in {**_date_fields(p), **_metadata_fields(p.meta)}.items():
        if name in ("title", "description", "rating") and value in (None, ""):
            continue
        setattr(photo, name, value)
    photo.updated_at = utcnow()


def _apply_sidecar(photo: Photo, meta: Metadata) -> None:
    # The sidecar is where darktable keeps the photographer's latest judgement: it wins when it says.
    if meta.rating is not None:
        photo.rating = meta.rating
    if meta.title:
        photo.title = meta.title
    if meta.description:
        photo.description = meta.description
    if meta.color_labels:
        photo.color_labels = ",".join(meta.color_labels)
    if meta.edited is not None:
        photo.edited = meta.edited
    if meta.derived_from and not photo.derived_from:
        photo.derived_from = meta.derived_from
    photo.updated_at = utcnow()


def _add_file(photo: Photo, p: Prepared) -> File:
    return File.create(
        photo=photo,
        role=p.role,
        sha256=p.sha256,
        size=p.size,
        format=p.format,
        mime=p.mime,
        path=p.path,
        original_name=p.name,
        md5=p.md5 or None,
    )


def _has_role(photo: Photo, role: str) -> bool:
    return File.select().where((File.photo == photo) & (File.role == role)).exists()


def add_keywords(photo: Photo | int, names: Iterable[str]) -> None:
    """Give a photo these keywords too (new tags are made); the ones it has stay."""
    wanted = list(dict.fromkeys(n.strip()[:200] for n in names if n and n.strip()))
    if not wanted:
        return
    Tag.insert_many([{"name": n} for n in wanted]).on_conflict_ignore().execute()
    tags = Tag.select().where(Tag.name.in_(wanted))
    photo_id = photo if isinstance(photo, int) else photo.id
    rows = [{"photo": photo_id, "tag": t.id} for t in tags]
    PhotoTag.insert_many(rows).on_conflict_ignore().execute()


def _link_album(photo: Photo, options: ImportOptions) -> None:
    if options.album_id is None:
        return
    PhotoAlbum.insert(photo=photo.id, album=options.album_id).on_conflict_ignore().execute()
    Album.update(updated_at=utcnow()).where(Album.id == options.album_id).execute()


# -- replacing a picture -----------------------------------------------------------------------------


def replace_picture(
    photo_id: int, p: Prepared, store: Datastore, with_rows: WithRows | None = None
) -> FileResult:
    """Show a photo from a new picture from now on (Piwigo's overwrite): its id, albums, tags, level and
    what the person set by hand stay; the old picture's file and derivatives go. `with_rows` runs in
    the same transaction, as in `finalise`."""
    if p.status == "duplicate":
        if p.photo_id == photo_id:
            result = FileResult(p.name, "duplicate", "this picture already", photo_id, p.role)
            if with_rows is not None:
                with db.atomic():
                    with_rows([result])
            return result
        raise Invalid(f"this file is already photo {p.photo_id}")
    if p.role != "original":
        store.remove(p.path)
        raise Invalid("only a picture can replace a photo's picture")
    with db.atomic():
        photo = Photo.get_or_none(Photo.id == photo_id)
        if photo is None:
            raise NotFound("no such photo")
        old_sha = photo.sha256
        old = list(File.select().where((File.photo == photo) & (File.role == "original")))
        _apply_picture(photo, p)
        photo.save()
        for row in old:
            row.delete_instance()
        _add_file(photo, p)
        result = FileResult(p.name, "imported", "replaced the photo's picture", photo_id, p.role)
        if with_rows is not None:
            with_rows([result])
    for row in old:
        if not File.select().where(File.path == row.path).exists():
            store.remove(row.path)
    if old_sha != photo.sha256 and not Photo.select().where(Photo.sha256 == old_sha).exists():
        store.remove_derivatives(old_sha)
    return result


# -- undoing a pair ----------------------------------------------------------------------------------


def unpair_raw(photo_id: int, pipeline: Pipeline) -> Photo:
    """Split a photo's RAW off into a photo of its own (one action to undo a wrong pair)."""
    photo = Photo.get_or_none(Photo.id == photo_id)
    if photo is None:
        raise NotFound("no such photo")
    raw = File.get_or_none((File.photo == photo) & (File.role == "raw"))
    if raw is None or photo.kind == "raw":
        raise Invalid("this photo has no separate RAW to split off")
    source = pipeline.store.resolve(raw.path)
    meta = pipeline.read_metadata(source)
    item = Prepared(
        raw.original_name,
        pair_key(raw.original_name),
        "ok",
        role="raw",
        sha256=raw.sha256,
        size=raw.size,
        format=raw.format,
        mime=raw.mime,
        path=raw.path,
        meta=meta,
    )
    pipeline.render_into(source, item)
    with db.atomic():
        new = _new_photo(item, ImportOptions(owner_id=photo.owner_id, level=photo.level))
        File.update(photo=new).where(File.id == raw.id).execute()
        # Same base name and time would pair them again on the next import; remember they differ.
        new.pair_key = f"{item.key}#{new.id}"
        new.save()
        links = PhotoAlbum.select(PhotoAlbum.album).where(PhotoAlbum.photo == photo)
        for link in links:
            PhotoAlbum.insert(photo=new.id, album=link.album_id).on_conflict_ignore().execute()
    return new
