"""Bytes: derivatives, originals, RAWs and sidecars, album zips and Atom feeds.

Every route asks the visibility rule first and answers the same 404 for what may not be seen as for
what does not exist. Files are found through the database, never from a path in the URL.
Derivative URLs carry the shown file's hash, so a public one can be cached forever: a new picture
for the photo means a new URL. Private answers are `Cache-Control: private`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote
from xml.etree import ElementTree as ET

from bottle import Bottle, HTTPResponse, request

from photoflow import access, gallery, services, urls
from photoflow.access import ANONYMOUS
from photoflow.errors import Invalid, NotFound
from photoflow.filetypes import name_for
from photoflow.imaging import SIZES
from photoflow.library import Library
from photoflow.models import File, Photo, parse_id
from photoflow.web.context import Context, current, open_share, site
from photoflow.web.context import root as url_prefix

# A public picture never changes under its URL, so browsers keep it for good; a shared cache (a proxy,
# a CDN) must ask again every time (s-maxage=0), and its question passes the access check, so an album
# made private is closed to it at once. (A browser that already showed a picture keeps its bytes.)
IMMUTABLE = "public, max-age=31536000, s-maxage=0, immutable"
PRIVATE = "private, max-age=3600"
# A download's URL names a photo, not its bytes: a replaced picture (ws.php's image_id), or an id that
# SQLite hands out again after the newest photo was deleted, serves other bytes under it. So browsers
# keep it but ask again each time (a 304 while the ETag, the file's hash, is the same).
REVALIDATE = "public, no-cache, s-maxage=0"
ROLES = ("original", "raw", "sidecar")
WHAT = {"pictures": ("original",), "raws": ("raw",), "both": ("original", "raw", "sidecar")}
MAX_SELECTION = 2000
FEED_ENTRIES = 50
FEED_SIZE = "500"  # the grid height each entry's enclosure shows


def install(app: Bottle, library: Library) -> None:
    """The file routes, plain and under a share link's /s/<token> prefix."""

    def shared(handler: Any) -> Any:
        def through_link(token: str, **kwargs: Any) -> Any:
            ctx = current()
            open_share(ctx, services.album_by_share_token(token), token)
            return handler(**kwargs)

        return through_link

    for path, handler in (
        (urls.DERIVATIVE_ROUTE, derivative),
        ("/photo/<photo_id:int>/file/<role>", download),
        ("/album/<album_id:int>/download", album_zip),
        ("/download", selection_zip),
    ):
        app.route(path, ["GET", "HEAD"], handler)
        app.route("/s/<token>" + path, ["GET", "HEAD"], shared(handler))
    app.route("/album/<album_id:int>/feed.atom", ["GET", "HEAD"], feed)


# -- single files ------------------------------------------------------------------------------------


def derivative(size: str, photo_id: int, sha: str) -> HTTPResponse:
    """A grid picture or preview."""
    ctx = current()
    if size not in SIZES:
        raise NotFound("no such size")
    shown, public = access.photo_file_for(ctx.viewer, photo_id)
    if not shown.startswith(sha):
        raise NotFound("no such picture")  # an old URL: the photo is shown from another file now
    path = ctx.library.store.resolve(ctx.library.store.derivative_path(shown, size))
    return send(path, "image/jpeg", etag=f"{shown[:32]}-{size}", cache=IMMUTABLE if public else PRIVATE)


def download(photo_id: int, role: str) -> HTTPResponse:
    """The original, the RAW or the sidecar, as an attachment under its own file name."""
    ctx = current()
    if role not in ROLES:
        raise NotFound("no such file")
    photo = access.photo_for(ctx.viewer, photo_id)
    stored = File.select().where((File.photo == photo.id) & (File.role == role)).first()
    if stored is None:
        raise NotFound("no such file")
    path = ctx.library.store.resolve(stored.path)
    cache = REVALIDATE if photo.public else PRIVATE  # only what anyone may see may be kept by anyone
    name = name_for(stored.original_name, stored.mime)
    return send(path, stored.mime, etag=stored.sha256[:32], cache=cache, attachment=name)


def send(path: Path, mime: str, etag: str, cache: str, attachment: str | None = None) -> HTTPResponse:
    """A stored file, with ETag and Last-Modified; 304 to a matching conditional request; HEAD works."""
    stat = path.stat()
    etag_value = f'"{etag}"'
    modified = email.utils.formatdate(stat.st_mtime, usegmt=True)
    headers = {"ETag": etag_value, "Last-Modified": modified, "Cache-Control": cache}
    if attachment is not None:
        headers["Content-Disposition"] = content_disposition(attachment)
    if _not_modified(etag_value, stat.st_mtime):
        return HTTPResponse(status=304, headers=headers)
    headers["Content-Type"] = mime
    library = current().library
    if library.config.accel_redirect:
        # Access is checked: nginx sends the bytes (ranges and conditional requests included).
        inside = path.relative_to(library.store.root).as_posix()
        headers["X-Accel-Redirect"] = library.config.accel_redirect + quote(inside)
        return HTTPResponse(status=200, headers=headers)
    headers["Content-Length"] = str(stat.st_size)
    headers["Accept-Ranges"] = "bytes"
    ranged = _range(stat.st_size)
    if ranged is not None:
        start, end = ranged
        headers["Content-Range"] = f"bytes {start}-{end}/{stat.st_size}"
        headers["Content-Length"] = str(end - start + 1)
        body = b"" if request.method == "HEAD" else _file_part(path, start, end - start + 1)
        return HTTPResponse(body, status=206, headers=headers)
    body = b"" if request.method == "HEAD" else open(path, "rb")  # noqa: SIM115 (the server closes it)
    return HTTPResponse(body, status=200, headers=headers)


def _not_modified(etag: str, mtime: float) -> bool:
    match = request.headers.get("If-None-Match")
    if match is not None:
        return etag in [tag.strip() for tag in match.split(",")] or match.strip() == "*"
    since = request.headers.get("If-Modified-Since")
    if since:
        try:
            when = email.utils.parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
        return int(mtime) <= when.timestamp()
    return False


def _range(size: int) -> tuple[int, int] | None:
    header = request.headers.get("Range", "")
    if not header.startswith("bytes=") or "," in header or size == 0:
        return None
    first, _, last = header[6:].partition("-")
    try:
        if first:
            start = int(first)
            end = int(last) if last else size - 1
        else:
            start, end = max(0, size - int(last)), size - 1
    except ValueError:
        return None
    if start > end or start >= size:
        return None
    return start, min(end, size - 1)


def _file_part(path: Path, start: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        fh.seek(start)
        while length > 0:
            chunk = fh.read(min(1 << 16, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def content_disposition(name: str) -> str:
    """attachment; with an ASCII fallback and the real name as RFC 5987 UTF-8 (names are display text)."""
    name = "".join(ch for ch in name if ch.isprintable() and ch not in "/\\") or "download"
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in name)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


# -- zips --------------------------------------------------------------------------------------------


def album_zip(album_id: int) -> HTTPResponse:
    """An album's files as a zip, streamed as it is built."""
    ctx = current()
    album = access.album_for(ctx.viewer, album_id)
    photos = Photo.select().where(access.album_photos(ctx.viewer, album))
    return _zip(ctx, photos, _zip_name(album.title))


def selection_zip() -> HTTPResponse:
    """Chosen photos (?ids=1,2,3) as a zip."""
    ctx = current()
    ids = [parse_id(part.strip()) for part in (request.query.get("ids") or "").split(",") if part.strip()]
    if None in ids:
        raise Invalid("ids must be photo numbers separated by commas")
    if not ids or len(ids) > MAX_SELECTION:
        raise Invalid(f"choose between 1 and {MAX_SELECTION} photos")
    photos = Photo.select().where(Photo.id.in_(ids) & access.visible_photos(ctx.viewer))
    return _zip(ctx, photos, "photoflow-selection.zip")


def _zip_name(title: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in " -_." else "_" for ch in title).strip() or "album"
    return safe[:100] + ".zip"


def _zip(ctx: Context, photos: Any, name: str) -> HTTPResponse:
    what = request.query.get("what") or "pictures"
    if what not in WHAT:
        raise Invalid("what must be pictures, raws or both")
    rows = list(
        File.select(File.path, File.original_name, File.mime, Photo.taken_at)
        .join(Photo)
        .where(Photo.id.in_(photos.select(Photo.id)) & File.role.in_(WHAT[what]))
        .order_by(Photo.taken_at.desc(nulls="last"), Photo.id.desc(), File.role)
        .tuples()
    )
    if not rows:
        raise NotFound("nothing to download")
    store = ctx.library.store
    entries = [(store.resolve(path), name_for(original, mime), taken) for path, original, mime, taken in rows]
    headers = {
        "Content-Type": "application/zip",
        "Content-Disposition": content_disposition(name),
        "Cache-Control": "private, no-store",
        "X-Accel-Buffering": "no",  # nginx passes each piece on as it is made
    }
    if request.method == "HEAD":
        return HTTPResponse(b"", headers=headers)
    return HTTPResponse(stream_zip(entries), headers=headers)


class _Sink:
    """What zipfile writes to: bytes collected until the generator hands them on."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def stream_zip(entries: list[tuple[Path, str, dt.datetime | None]]) -> Iterator[bytes]:
    """A zip of `entries` (path, name, time) built as it is sent: no temporary file, little memory.

    Stored, not deflated: pictures and RAWs do not shrink. Names are the files' own, made unique.
    """
    sink = _Sink()
    used: set[str] = set()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:  # type: ignore[call-overload]
        for path, original, taken in entries:
            info = zipfile.ZipInfo(_unique(_member_name(original), used), _zip_time(taken, path))
            info.compress_type = zipfile.ZIP_STORED
            with archive.open(info, "w", force_zip64=True) as member, open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    member.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


def _member_name(original: str) -> str:
    name = PurePosixPath(original.replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable()).strip(". ")
    return name[:200] or "photo"


def _unique(name: str, used: set[str]) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    candidate, n = name, 2
    while candidate.lower() in used:
        candidate = f"{stem} ({n}){'.' + ext if ext else ''}"
        n += 1
    used.add(candidate.lower())
    return candidate


def _zip_time(taken: dt.datetime | None, path: Path) -> tuple[int, int, int, int, int, int]:
    when = (
        taken
        if taken is not None and taken.year >= 1980
        else dt.datetime.fromtimestamp(os.path.getmtime(path))
    )
    if when.year < 1980:
        when = dt.datetime(1980, 1, 1)
    return (when.year, when.month, when.day, when.hour, when.minute, when.second)


# -- feeds -------------------------------------------------------------------------------------------

ATOM = "http://www.w3.org/2005/Atom"


def feed(album_id: int) -> HTTPResponse:
    """The Atom feed of a public album: its newest photos, as a visitor sees them."""
    ctx = current()
    album = access.album_for(ANONYMOUS, album_id)  # feeds are for public albums only, whoever asks
    entries = gallery.album_entries(ANONYMOUS, album)[:FEED_ENTRIES]
    base = site(ctx.library.config) + url_prefix()
    ET.register_namespace("", ATOM)
    root = ET.Element(f"{{{ATOM}}}feed")
    updated = album.updated_at or dt.datetime(1970, 1, 1)
    _text(root, "title", album.title)
    _text(root, "id", f"{base}/album/{album.id}")
    _text(root, "updated", _rfc3339(updated))
    ET.SubElement(root, f"{{{ATOM}}}link", href=f"{base}/album/{album.id}/feed.atom", rel="self")
    ET.SubElement(root, f"{{{ATOM}}}link", href=f"{base}/album/{album.id}", rel="alternate", type="text/html")
    author = ET.SubElement(root, f"{{{ATOM}}}author")
    _text(author, "name", "Photoflow")
    photos = {p.id: p for p in Photo.select().where(Photo.id.in_([e.id for e in entries]))}
    for entry in entries:
        photo = photos[entry.id]
        item = ET.SubElement(root, f"{{{ATOM}}}entry")
        _text(item, "title", photo.title or photo.file_name)
        _text(item, "id", f"{base}/photo/{photo.id}")
        _text(item, "updated", _rfc3339(photo.updated_at or updated))
        ET.SubElement(
            item, f"{{{ATOM}}}link", href=f"{base}/photo/{photo.id}?album={album.id}", rel="alternate"
        )
        image = base + urls.derivative(photo.id, photo.sha256, FEED_SIZE)
        ET.SubElement(item, f"{{{ATOM}}}link", href=image, rel="enclosure", type="image/jpeg")
        summary = photo.description or ""
        _text(item, "summary", summary)
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "Content-Type": "application/atom+xml; charset=utf-8",
        "ETag": etag,
        "Cache-Control": "public, no-cache",  # revalidated each time: an album made private closes at once
    }
    if request.headers.get("If-None-Match") == etag:
        return HTTPResponse(status=304, headers=headers)
    return HTTPResponse(b"" if request.method == "HEAD" else body, headers=headers)


def _text(parent: ET.Element, tag: str, text: str) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}{tag}").text = text


def _rfc3339(when: dt.datetime) -> str:
    return when.replace(microsecond=0).isoformat() + "Z"
