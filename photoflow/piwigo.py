"""The Piwigo web-service protocol (`/ws.php`): a table from method name to handler, and the envelopes.

Darktable's Piwigo export, digiKam, Shotwell, the Piwigo mobile apps, Piwigo Remote Sync and the PyPI
`piwigo2` client talk to Photoflow as to a Piwigo. Each handler is a thin call into Photoflow's own
services, with the same visibility rule, the same import pipeline and the same sessions as every
other door; it answers in Piwigo's shapes, quirks included (../shared/docs/piwigo.md).

This module knows nothing of HTTP: `photoflow/web/ws.py` turns a request into a `Call` and an
`Answer` back into JSON or XML. Nothing here imports Bottle.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes
from xml.sax.saxutils import escape, quoteattr

from peewee import fn

from photoflow import access, gallery, services, sessions
from photoflow.access import Viewer
from photoflow.db import db
from photoflow.errors import Conflict, Forbidden, Invalid, NotFound, PhotoflowError, TooLarge
from photoflow.importer import (
    FileResult,
    ImportOptions,
    add_keywords,
    display_name,
    finalise,
    replace_picture,
)
from photoflow.library import Library
from photoflow.models import Album, File, Photo, PhotoAlbum, PhotoTag, Session, Tag, parse_id, utcnow
from photoflow.storage import Staged, StorageFull

VERSION = "14.5.0"  # the Piwigo release Photoflow answers as (digiKam needs 2.4 or newer)
SIZES = ("square", "thumb", "2small", "xsmall", "small", "medium", "large", "xlarge", "xxlarge")
CHUNK_KB = 500  # upload_form_chunk_size: what the mobile apps cut files into
UPLOAD_TYPES = "jpg,jpeg,png,webp,tif,tiff,heic,heif,avif,dng,cr2,cr3,nef,nrw,arw,raf,orf,rw2,pef,srw,xmp"
MAX_PER_PAGE = 500
MAX_CHUNK_BYTES = 64 * 1024 * 1024
MAX_TEXT = 5000

# Piwigo's error codes (include/ws_core.inc.php).
MISSING_PARAM = 1002
INVALID_PARAM = 1003
INVALID_METHOD = 501
ACCESS_DENIED = 401
INVALID_TOKEN = 403
NOT_FOUND = 404
POST_ONLY = 405
BAD_LOGIN = 999
SERVER_ERROR = 500
# Not Piwigo's (it has no code for a full disk), but a failure every client shows, as the web's 507.
STORAGE_FULL = 507


class WsError(Exception):
    """A Piwigo failure: `stat: fail` with a code; codes 400-599 are also the HTTP status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- what a call carries ---------------------------------------------------------------------------


@dataclass
class Upload:
    """A file part of the request, already streamed into the datastore's staging area."""

    field: str
    name: str
    staged: Staged | None  # None when it was refused (too large, a guest's) and not kept
    reason: str = ""


@dataclass
class Call:
    """One ws.php request, as the HTTP layer understood it."""

    method: str
    params: dict[str, list[str]]
    http_method: str
    library: Library
    viewer: Viewer
    session: Session | None
    address: str
    base_url: str  # scheme://host, for the URLs answers carry
    user_agent: str = ""
    uploads: list[Upload] = field(default_factory=list)
    secret: str = ""

    def get(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


@dataclass
class Answer:
    """A handler's result, and what the HTTP layer must do with the session cookie."""

    result: Any
    new_session: str | None = None  # the new pwg_id value after a login
    end_session: bool = False


# -- XML shapes: Piwigo's named arrays and structs (include/ws_core.inc.php) -------------------------


@dataclass
class NamedArray:
    """A list whose items are <item_name> elements in XML (some keys as attributes); a list in JSON."""

    items: list[Any]
    item_name: str
    attributes: tuple[str, ...] = ()


@dataclass
class NamedStruct:
    """A dict written as one <name> element in XML (some keys as attributes); a dict in JSON."""

    content: dict[str, Any]
    name: str
    attributes: tuple[str, ...] = ()


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


# -- parameters ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """A declared parameter: its type, whether it may be absent, whether it takes a list."""

    name: str
    type: str = "string"  # "string", "int", "positive", "bool", "float"
    optional: bool = False
    default: Any = None
    array: bool = False
    max_value: int | None = None


_TRUE = {"true", "1", "on", "yes"}
_FALSE = {"false", "0", "off", "no", ""}
_INT = re.compile(r"^-?\d{1,18}$")


def _value(param: Param, raw: str) -> Any:
    if "\x00" in raw:
        raise WsError(INVALID_PARAM, f"Invalid parameter {param.name}")
    if param.type == "string":
        return raw
    if param.type == "bool":
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise WsError(INVALID_PARAM, f"Invalid boolean parameter {param.name}")
    if param.type in ("int", "positive"):
        text = raw.strip()
        if not _INT.match(text):
            raise WsError(INVALID_PARAM, f"Invalid integer parameter {param.name}")
        number = int(text)
        if param.type == "positive" and number < 0:
            raise WsError(INVALID_PARAM, f"Invalid positive integer parameter {param.name}")
        if param.max_value is not None and number > param.max_value:
            number = param.max_value
        return number
    if param.type == "float":
        try:
            number = float(raw)
        except ValueError:
            raise WsError(INVALID_PARAM, f"Invalid float parameter {param.name}") from None
        if not math.isfinite(number):
            raise WsError(INVALID_PARAM, f"Invalid float parameter {param.name}")
        return number
    raise AssertionError(param.type)


def _check_params(call: Call, declared: tuple[Param, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    missing = []
    for param in declared:
        raw = call.params.get(param.name) or call.params.get(param.name + "[]")
        if raw and all(v == "" for v in raw) and (not param.optional or param.type != "string"):
            # PHP never type-checks an empty optional value (`parent=` means "none"), and an empty
            # required one is missing.
            raw = None
        if not raw:
            if not param.optional:
                missing.append(param.name)
            values[param.name] = [] if param.array else param.default
            continue
        if param.array:
            items: list[str] = []
            for entry in raw:
                items += (
                    [part for part in re.split(r"[\s,;|]+", entry) if part]
                    if param.type != "string"
                    else [entry]
                )
            values[param.name] = [_value(param, item) for item in items]
        else:
            if len(raw) > 1:
                raise WsError(INVALID_PARAM, f"Invalid parameter {param.name}: one value expected")
            values[param.name] = _value(param, raw[0])
    if missing:
        raise WsError(MISSING_PARAM, "Missing parameters: " + ",".join(missing))
    return values


# -- the method table ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """One ws.php method: its handler, parameters and who may call it how."""

    name: str
    handler: Callable[[Call, dict[str, Any]], Any]
    params: tuple[Param, ...] = ()
    description: str = ""
    post_only: bool = False
    admin_only: bool = False
    guests: bool = False  # callable without logging in
    token: bool = False  # needs the session's pwg_token


METHODS: dict[str, Method] = {}


def method(name: str, *params: Param, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a handler under `name` in the table."""

    def register(handler: Callable[..., Any]) -> Callable[..., Any]:
        description = (handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else ""
        METHODS[name] = Method(name, handler, tuple(params), description, **options)
        return handler

    return register


def dispatch(call: Call) -> Answer:
    """Run one call: the method's rules first (POST, login, token, parameters), then its handler."""
    entry = METHODS.get(call.method)
    if entry is None:
        raise WsError(INVALID_METHOD, "Method name is not valid" if call.method else 'Missing "method" name')
    if entry.post_only and call.http_method != "POST":
        raise WsError(POST_ONLY, "This method requires HTTP POST")
    if not entry.guests and not call.viewer.is_member:
        raise WsError(ACCESS_DENIED, "Access denied")
    if entry.admin_only and not call.viewer.is_admin:
        raise WsError(ACCESS_DENIED, "Access denied")
    declared = entry.params + ((Param("pwg_token"),) if entry.token else ())
    values = _check_params(call, declared)
    if entry.token and not hmac.compare_digest(pwg_token(call), call.get("pwg_token") or ""):
        raise WsError(INVALID_TOKEN, "Invalid security token")
    try:
        result = entry.handler(call, values)
    except WsError:
        raise
    except NotFound as exc:
        raise WsError(NOT_FOUND, message(exc)) from None
    except Forbidden as exc:
        raise WsError(ACCESS_DENIED, message(exc)) from None
    except (Invalid, Conflict, TooLarge) as exc:
        raise WsError(INVALID_PARAM, message(exc)) from None
    except StorageFull as exc:
        raise WsError(STORAGE_FULL, message(exc)) from None
    except PhotoflowError as exc:
        raise WsError(SERVER_ERROR, message(exc)) from None
    return result if isinstance(result, Answer) else Answer(result)


def message(exc: PhotoflowError) -> str:
    """A refusal's reason as Piwigo clients show it: a sentence."""
    return exc.reason[:1].upper() + exc.reason[1:]


def pwg_token(call: Call) -> str:
    """The session's security token (a guest's is tied to nothing and opens nothing)."""
    seed = call.session.token_hash if call.session is not None else "guest"
    return hmac.new(call.secret.encode(), seed.encode(), hashlib.sha256).hexdigest()[:32]


# -- envelopes -----------------------------------------------------------------------------------------


def to_json(value: Any) -> Any:
    """Plain JSON values: named arrays and structs become lists and dicts."""
    if isinstance(value, NamedArray):
        return [to_json(v) for v in value.items]
    if isinstance(value, NamedStruct):
        return {k: to_json(v) for k, v in value.content.items()}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


def json_success(result: Any) -> str:
    """`{"stat":"ok","result":...}`."""
    return json.dumps({"stat": "ok", "result": to_json(result)}, ensure_ascii=False, separators=(",", ":"))


def json_failure(error: WsError) -> str:
    """`{"stat":"fail","err":...,"message":...}`."""
    return json.dumps({"stat": "fail", "err": error.code, "message": error.message}, ensure_ascii=False)


def xml_success(result: Any) -> str:
    """Piwigo's rest encoder: `<rsp stat="ok">` and the result, nulls left out, booleans 1/0."""
    out: list[str] = []
    _xml(result, out, ())
    body = "".join(out)
    if not isinstance(result, dict | list | NamedArray | NamedStruct):
        # A plain value (getVersion, login's 1) stands alone: digiKam reads the version with
        # `.?(\d)\.(\d).*` over the whole text, which a leading newline before "14.5.0" defeats.
        return f'<?xml version="1.0" encoding="utf-8" ?>\n<rsp stat="ok">{body}</rsp>'
    return '<?xml version="1.0" encoding="utf-8" ?>\n<rsp stat="ok">\n' + body + "\n</rsp>"


def xml_failure(error: WsError) -> str:
    """`<rsp stat="fail"><err code=".." msg=".."/></rsp>`."""
    err = f'<err code="{error.code}" msg={quoteattr(_scalar(error.message))} />'
    return f'<?xml version="1.0"?>\n<rsp stat="fail">\n\t{err}\n</rsp>'


# Characters XML 1.0 cannot carry, even escaped: a stored album title with a control character made
# the whole answer unparseable.
_NOT_NAME = re.compile(r"[^A-Za-z0-9._-]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return "" if value is None else _NOT_XML.sub("", str(value))


def _xml(value: Any, out: list[str], attributes: tuple[str, ...]) -> None:
    if isinstance(value, NamedArray):
        for item in value.items:
            _element(value.item_name, item, out, value.attributes)
    elif isinstance(value, NamedStruct):
        _element(value.name, value.content, out, value.attributes)
    elif isinstance(value, dict):
        for key, item in value.items():
            if item is None or key in attributes:
                continue
            _element(key, item, out, ())
    elif isinstance(value, list | tuple):
        for item in value:
            _element("item", item, out, ())
    else:
        out.append(escape(_scalar(value)))


def _element(name: str, value: Any, out: list[str], attributes: tuple[str, ...]) -> None:
    # Some names are the client's own words (pwg.images.exist answers by file name): anything but a
    # name's characters becomes "_", or `filename_list=a<b` wrote markup into the answer.
    name = _NOT_NAME.sub("_", name) or "_"
    if not (name[:1].isalpha() or name[:1] == "_"):
        name = "_" + name  # XML names cannot start with a digit: Piwigo writes <_2small>, <_3f0e...>
    attrs = ""
    if isinstance(value, dict) and attributes:
        attrs = "".join(
            f" {key}={quoteattr(_scalar(value[key]))}" for key in attributes if value.get(key) is not None
        )
    inner: list[str] = []
    _xml(value, inner, attributes)
    body = "".join(inner)
    out.append(f"<{name}{attrs}>{body}</{name}>" if body else f"<{name}{attrs} />")


# -- URLs and shapes -------------------------------------------------------------------------------------


def _photo_url(call: Call, photo_id: int) -> str:
    return f"{call.base_url}/photo/{photo_id}"


def _album_url(call: Call, album_id: int) -> str:
    return f"{call.base_url}/album/{album_id}"


def _derivative_url(call: Call, photo: Photo, size: str) -> str:
    return f"{call.base_url}/d/{size}/{photo.id}-{photo.sha256[:16]}.jpg"


def _date(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


def _derivatives(call: Call, photo: Photo) -> dict[str, dict[str, Any]]:
    """Piwigo's size names, mapped onto Photoflow's grid heights and preview."""
    w, h = max(1, photo.width), max(1, photo.height)

    def box(height: int) -> tuple[int, int]:
        height = min(height, h)
        return max(1, round(w * height / h)), height

    def fit(edge: int) -> tuple[int, int]:
        scale = min(1.0, edge / max(w, h))
        return max(1, round(w * scale)), max(1, round(h * scale))

    chosen = {
        "square": ("100", box(100)),
        "thumb": ("250", box(250)),
        "2small": ("250", box(250)),
        "xsmall": ("500", box(500)),
        "small": ("500", box(500)),
        "medium": ("preview", fit(2048)),
        "large": ("preview", fit(2048)),
        "xlarge": ("preview", fit(2048)),
        "xxlarge": ("preview", fit(2048)),
    }
    return {
        name: {"url": _derivative_url(call, photo, size), "width": dims[0], "height": dims[1]}
        for name, (size, dims) in chosen.items()
    }


def _visible_photo(call: Call, photo_id: int) -> Photo:
    return access.photo_for(call.viewer, photo_id)


def _editable_album(call: Call, album_id: int) -> Album:
    album = Album.get_or_none(Album.id == album_id)
    if album is None:
        raise WsError(NOT_FOUND, f"Album {album_id} does not exist")
    return album


# -- session ---------------------------------------------------------------------------------------------


@method("pwg.session.login", Param("username"), Param("password"), post_only=True, guests=True)
def login(call: Call, p: dict[str, Any]) -> Answer:
    """Log in; the answer carries a new pwg_id session cookie (the same account and sessions as the web)."""
    try:
        user = sessions.login(p["username"], p["password"], call.address)
    except sessions.RateLimited as exc:
        raise WsError(BAD_LOGIN, message(exc)) from None
    if user is None:
        raise WsError(BAD_LOGIN, "Invalid username/password")
    started = sessions.start(user)
    return Answer(True, new_session=started.token)


@method("pwg.session.logout", guests=True)
def logout(call: Call, p: dict[str, Any]) -> Answer:
    """End the session."""
    if call.session is not None:
        Session.delete().where(Session.token_hash == call.session.token_hash).execute()
    return Answer(True, end_session=True)


@method("pwg.session.getStatus", guests=True)
def get_status(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """Who is logged in, the security token, and the server's settings."""
    user = call.viewer.user
    status = "guest" if user is None else ("webmaster" if user.is_admin else "normal")
    result: dict[str, Any] = {
        "username": user.name if user else "guest",
        "status": status,
        "theme": "modus",
        "language": "en_GB",
        "pwg_token": pwg_token(call),
        "charset": "utf-8",
        "current_datetime": utcnow().strftime("%Y-%m-%d %H:%M:%S"),
        "version": VERSION,
        "available_sizes": list(SIZES),
    }
    if user is not None and user.is_admin:
        result["upload_file_types"] = UPLOAD_TYPES
        result["upload_form_chunk_size"] = CHUNK_KB
    return result


@method("pwg.getVersion", guests=True)
def get_version(call: Call, p: dict[str, Any]) -> str:
    """The Piwigo version Photoflow speaks."""
    return VERSION


# -- reflection ------------------------------------------------------------------------------------------


@method("reflection.getMethodList", guests=True)
def method_list(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """Every method name."""
    return {"methods": NamedArray(sorted(METHODS), "method")}


@method("reflection.getMethodDetails", Param("methodName"), guests=True)
def method_details(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """A method's description, options (post_only, admin_only) and parameters."""
    entry = METHODS.get(p["methodName"])
    if entry is None:
        raise WsError(INVALID_PARAM, "Requested method does not exist")
    options: dict[str, Any] | list[Any] = {}
    if entry.post_only:
        options["post_only"] = True
    if entry.admin_only:
        options["admin_only"] = True
    params = [
        {
            "name": param.name,
            "optional": param.optional,
            "acceptArray": param.array,
            "type": {"positive": "int positive", "int": "int", "bool": "bool", "float": "float"}.get(
                param.type, "mixed"
            ),
            **({"defaultValue": param.default} if param.default is not None else {}),
        }
        for param in entry.params
    ]
    if entry.token:
        params.append({"name": "pwg_token", "optional": False, "acceptArray": False, "type": "mixed"})
    return {"name": entry.name, "description": entry.description, "params": params, "options": options or []}


# -- albums ----------------------------------------------------------------------------------------------


def _category(
    call: Call,
    album: Album,
    counts: dict[int, int],
    latest: dict[int, Any],
    rank: int,
    fullname: bool,
    covers: set[int],
) -> dict[str, Any]:
    count = counts.get(album.id, 0)
    last = _date(latest[album.id]) if latest.get(album.id) else None
    return {
        "id": album.id,
        "url": _album_url(call, album.id),
        "nb_images": count,
        "total_nb_images": count,
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
        "representative_picture_id": str(album.cover_id) if album.cover_id in covers else None,
        "tn_url": None,
        "fullname": album.title if fullname else None,
    }


def _counts(viewer: Viewer) -> tuple[dict[int, int], dict[int, Any]]:
    """Per album: how many photos the viewer may see, and when the last was added."""
    query = (
        PhotoAlbum.select(PhotoAlbum.album, fn.COUNT(Photo.id), fn.MAX(PhotoAlbum.added_at).coerce(False))
        .join(Photo)
        .where(access.visible_photos(viewer))
        .group_by(PhotoAlbum.album)
        .tuples()
    )
    counts, latest = {}, {}
    for album_id, count, last in query:
        counts[album_id] = count
        latest[album_id] = last if isinstance(last, dt.datetime) else _parse_time(last)
    return counts, latest


def _parse_time(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


@method(
    "pwg.categories.getList",
    Param("cat_id", "positive", optional=True, default=0),
    Param("recursive", "bool", optional=True, default=False),
    Param("public", "bool", optional=True, default=False),
    Param("tree_output", "bool", optional=True, default=False),
    Param("fullname", "bool", optional=True, default=False),
    Param("thumbnail_size", optional=True, default="thumb"),
    guests=True,
)
def categories_list(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """The albums the caller may see (Photoflow's albums are flat: every one is top level)."""
    query = Album.select().where(access.visible_albums(call.viewer)).order_by(fn.LOWER(Album.title), Album.id)
    if p["public"]:
        query = query.where(Album.is_public == True)  # noqa: E712
    if p["cat_id"]:
        # Piwigo answers an album's children and the album itself; ours have no children.
        query = query.where(Album.id == p["cat_id"])
    albums = list(query)
    counts, latest = _counts(call.viewer)
    wanted = [album.cover_id for album in albums if album.cover_id]
    covers = {
        photo_id
        for (photo_id,) in Photo.select(Photo.id)
        .where(Photo.id.in_(wanted) & access.visible_photos(call.viewer))
        .tuples()
    }
    cats = [
        _category(call, album, counts, latest, rank, p["fullname"], covers)
        for rank, album in enumerate(albums, 1)
    ]
    return {"categories": NamedArray(cats, "category", CATEGORY_ATTRIBUTES)}


@method(
    "pwg.categories.add",
    Param("name"),
    Param("parent", "positive", optional=True),
    Param("comment", optional=True, default=""),
    Param("visible", "bool", optional=True, default=True),
    Param("status", optional=True),
    Param("commentable", "bool", optional=True, default=True),
    post_only=True,
)
def categories_add(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """A new album: public when status is "public" (darktable's "everyone"), private otherwise."""
    if p["parent"]:
        # Albums are flat in Photoflow: a parent must exist and be visible, and the album is made at the
        # top level beside it.
        access.album_for(call.viewer, p["parent"])
    if p["status"] not in (None, "public", "private"):
        raise WsError(INVALID_PARAM, "Invalid parameter status: public or private")
    user = access.require_member(call.viewer)
    album = services.create_album(
        _text(p["name"], 200),
        user.id,
        public=p["status"] == "public",
        description=_text(p["comment"], MAX_TEXT),
    )
    return {"info": "Album added", "id": album.id}


@method(
    "pwg.categories.delete",
    Param("category_id", "positive", array=True),
    Param("photo_deletion_mode", optional=True, default="no_delete"),
    post_only=True,
    token=True,
)
def categories_delete(call: Call, p: dict[str, Any]) -> None:
    """Delete albums; their photos stay in the library (whatever photo_deletion_mode says)."""
    albums = [_editable_album(call, album_id) for album_id in p["category_id"]]
    if not all(access.may_delete_album(call.viewer, album) for album in albums):
        raise WsError(ACCESS_DENIED, "Access denied: only an album's owner or an administrator may delete it")
    for album in albums:
        services.delete_album(album.id)
    return None


@method(
    "pwg.categories.getImages",
    Param("cat_id", "positive", optional=True, array=True),
    Param("recursive", "bool", optional=True, default=False),
    Param("per_page", "positive", optional=True, default=100, max_value=MAX_PER_PAGE),
    Param("page", "positive", optional=True, default=0),
    Param("order", optional=True),
    guests=True,
)
def categories_images(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """A page of photos of albums (or of everything), newest first; `count` is the number on this page."""
    condition = access.visible_photos(call.viewer)
    if p["cat_id"]:
        albums = []
        for album_id in p["cat_id"]:
            try:
                albums.append(access.album_for(call.viewer, album_id))
            except NotFound:
                raise WsError(NOT_FOUND, "Invalid category") from None
        in_albums = fn.EXISTS(
            PhotoAlbum.select(PhotoAlbum.photo).where(
                (PhotoAlbum.photo == Photo.id) & PhotoAlbum.album.in_([a.id for a in albums])
            )
        )
        condition = condition & in_albums
    query = Photo.select().where(condition)
    total = query.count()
    per_page = max(1, p["per_page"])
    photos = list(
        query.order_by(Photo.taken_at.desc(nulls="last"), Photo.id.desc())
        .offset(p["page"] * per_page)
        .limit(per_page)
    )
    images = [_image(call, photo, brief=True) for photo in photos]
    paging = {"page": p["page"], "per_page": per_page, "count": len(images), "total_count": total}
    return {
        "paging": NamedStruct(paging, "paging", ("page", "per_page", "count", "total_count")),
        "images": NamedArray(images, "image", IMAGE_ATTRIBUTES),
    }


def _image(call: Call, photo: Photo, brief: bool = False) -> dict[str, Any]:
    albums = gallery.albums_of(photo, call.viewer)
    original = (
        File.select()
        .where((File.photo == photo.id) & (File.role.in_(["original", "raw"])))
        .order_by(File.role)
        .first()
    )  # "original" sorts before "raw": the picture when there is one (element_url, md5sum, filesize)
    image: dict[str, Any] = {
        "id": photo.id,
        "width": photo.width,
        "height": photo.height,
        "hit": 0,
        "file": photo.file_name,
        "name": photo.title or None,
        "comment": photo.description or None,
        "date_creation": _date(photo.taken_at),
        "date_available": _date(photo.created_at),
        "page_url": _photo_url(call, photo.id),
        "element_url": f"{call.base_url}/photo/{photo.id}/file/{original.role if original else 'original'}",
        "derivatives": _derivatives(call, photo),
        "categories": NamedArray(
            [
                {
                    "id": a.id,
                    "url": _album_url(call, a.id),
                    "page_url": _photo_url(call, photo.id) + f"?album={a.id}",
                }
                for a in albums
            ],
            "category",
            ("id", "url", "page_url"),
        ),
    }
    if brief:
        return image
    tags = Tag.select().join(PhotoTag).where(PhotoTag.photo == photo.id).order_by(Tag.name)
    image.update(
        {
            "author": photo.author or None,
            "level": photo.level if call.viewer.is_member else None,
            "md5sum": original.md5 if original else None,
            "filesize": round(original.size / 1024) if original else None,
            "rating_score": None,
            "rates": {"score": None, "count": 0, "average": None},
            "tags": NamedArray(
                [{"id": t.id, "name": t.name, "url_name": _url_name(t.name)} for t in tags], "tag", ("id",)
            ),
            "lastmodified": _date(photo.updated_at),
        }
    )
    return image


def _url_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


# -- images ----------------------------------------------------------------------------------------------


def _text(value: str | None, limit: int) -> str:
    text = "".join(ch for ch in (value or "") if ch.isprintable() or ch in "\n\t").strip()
    if len(text) > limit:
        raise WsError(INVALID_PARAM, f"A text parameter is longer than {limit} characters")
    return text


def _level(value: int | None) -> int:
    level = value or 0
    if level not in services.LEVELS:
        raise WsError(INVALID_PARAM, "Invalid level: 0, 1, 2, 4 or 8")
    return level


def _tags(raw: str | None) -> tuple[str, ...]:
    return tuple(t for t in (part.strip()[:200] for part in (raw or "").split(",")) if t)


def _import(call: Call, upload: Upload, options: ImportOptions, replace: int | None = None) -> FileResult:
    """The same import as every other door: prepare (metadata, type, derivatives), then the rows."""
    if upload.staged is None:
        raise WsError(INVALID_PARAM, upload.reason or "The file was refused")
    library = call.library
    with library.rendering:
        item = library.pipeline().prepare(upload.staged, display_name(upload.name), mtime=None)
    if item.status == "failed":
        raise WsError(INVALID_PARAM, f"The file was refused: {item.reason}")
    if replace is not None:
        return replace_picture(replace, item, library.store)
    results = finalise([item], options, library.store)
    result = results[0]
    if result.status == "failed":
        raise WsError(INVALID_PARAM, f"The file was refused: {result.reason}")
    return result


def _after_import(call: Call, photo_id: int, options: ImportOptions, albums: list[int]) -> None:
    """What the client said about the picture, also for a duplicate (the same file sent again)."""
    changes: dict[str, Any] = {}
    if options.title:
        changes["title"] = options.title
    if options.description:
        changes["description"] = options.description
    if options.author:
        changes["author"] = options.author
    if options.level:
        changes["level"] = options.level
    if changes:
        changes["updated_at"] = utcnow()
        Photo.update(**changes).where(Photo.id == photo_id).execute()
    for album_id in albums:
        services.add_to_album(album_id, [photo_id])
    if options.tags:
        add_keywords(photo_id, list(options.tags))


def _albums_for_upload(call: Call, ids: list[int]) -> list[int]:
    for album_id in ids:
        _editable_album(call, album_id)
    return ids


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
    user = access.require_member(call.viewer)
    albums = _albums_for_upload(call, p["category"])
    options = ImportOptions(
        owner_id=user.id,
        album_id=albums[0] if albums else None,
        level=_level(p["level"]),
        title=_text(p["name"], 500) or None,
        description=_text(p["comment"], MAX_TEXT) or None,
        author=_text(p["author"], 200) or None,
        tags=_tags(p["tags"]),
    )
    target = None
    if p["image_id"]:
        target = _visible_photo(call, p["image_id"]).id
    result = _import(call, upload, options, replace=target)
    assert result.photo_id is not None
    _after_import(call, result.photo_id, options, albums)
    url = _photo_url(call, result.photo_id) + (f"?album={albums[0]}" if albums else "")
    return {"image_id": result.photo_id, "url": url}


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
    user = access.require_member(call.viewer)
    if p["chunks"] < 1 or p["chunk"] >= p["chunks"]:
        raise WsError(INVALID_PARAM, "Invalid chunk number")
    name = display_name(p["name"] or part.name)
    # Every check before any piece is kept or put together: a refusal after `assemble` left the whole
    # file behind in tmp/.
    albums = _albums_for_upload(call, p["category"])
    options = ImportOptions(
        owner_id=user.id,
        album_id=albums[0] if albums else None,
        level=_level(p["level"]),
        tags=_tags(p["tags"]),
    )
    target = _visible_photo(call, p["image_id"]).id if p["image_id"] else None
    key = _chunk_key(user.id, "upload", name, ",".join(map(str, p["category"])))
    chunks = call.library.store.chunks
    chunks.put(key, p["chunk"], part.staged.path)
    if p["chunk"] < p["chunks"] - 1:
        return None
    staged = chunks.assemble(key, p["chunks"])
    result = _import(call, Upload("file", name, staged), options, replace=target)
    assert result.photo_id is not None
    _after_import(call, result.photo_id, options, albums)
    photo = Photo.get_by_id(result.photo_id)
    first = albums[0] if albums else None
    category = None
    if first is not None:
        album = Album.get_by_id(first)
        nb = PhotoAlbum.select().where(PhotoAlbum.album == first).count()
        category = {"id": first, "nb_photos": str(nb), "label": album.title}  # a string, as Piwigo's
    return {
        "image_id": photo.id,
        "src": _derivative_url(call, photo, "250"),
        "square_src": _derivative_url(call, photo, "100"),
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
    user = access.require_member(call.viewer)
    md5 = p["original_sum"].lower()
    if not re.fullmatch(r"[0-9a-f]{32}", md5):
        raise WsError(INVALID_PARAM, "Invalid original_sum: an MD5 in hexadecimal")
    existing = File.select(File.photo).where(File.md5 == md5).first()
    if p["check_uniqueness"] and existing is not None and not p["image_id"]:
        raise WsError(SERVER_ERROR, "file already exists")
    # Every check before the pieces are put together: a refusal after `assemble` left the whole file
    # behind in tmp/.
    albums = _albums_for_upload(call, _category_list(p["categories"]))
    tag_names = _tag_names(p["tag_ids"])
    options = ImportOptions(
        owner_id=user.id,
        album_id=albums[0] if albums else None,
        level=_level(p["level"]),
        title=_text(p["name"], 500) or None,
        description=_text(p["comment"], MAX_TEXT) or None,
        author=_text(p["author"], 200) or None,
        tags=tag_names,
    )
    name = p["original_filename"] or p["name"] or f"{md5}.jpg"
    target = _visible_photo(call, p["image_id"]).id if p["image_id"] else None
    key = _chunk_key(user.id, "add", md5)
    staged = call.library.store.chunks.assemble(key, None)
    if staged.md5 != md5:
        call.library.store.discard(staged)
        raise WsError(SERVER_ERROR, "MD5 checksum chunked file mismatched")
    result = _import(call, Upload("file", name, staged), options, replace=target)
    assert result.photo_id is not None
    _after_import(call, result.photo_id, options, albums)
    return {"image_id": result.photo_id, "url": _photo_url(call, result.photo_id)}


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


def _tag_names(raw: str | None) -> tuple[str, ...]:
    ids = [i for i in map(parse_id, re.split(r"[\s,;|]+", raw or "")) if i is not None]
    return tuple(t.name for t in Tag.select().where(Tag.id.in_(ids))) if ids else ()


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
    photo = _visible_photo(call, p["image_id"])
    image = _image(call, photo)
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
    photo = _visible_photo(call, p["image_id"])
    single, multiple = p["single_value_mode"], p["multiple_value_mode"]
    if single not in ("fill_if_empty", "replace") or multiple not in ("append", "replace"):
        raise WsError(INVALID_PARAM, "Invalid single_value_mode or multiple_value_mode")
    changes: dict[str, Any] = {}
    for param, column, limit in (
        ("name", "title", 500),
        ("author", "author", 200),
        ("comment", "description", MAX_TEXT),
    ):
        if p[param] is None:
            continue
        if single == "replace" or not getattr(photo, column):
            changes[column] = _text(p[param], limit)
    if p["level"] is not None:
        changes["level"] = _level(p["level"])
    with db.atomic():
        if changes:
            changes["updated_at"] = utcnow()
            Photo.update(**changes).where(Photo.id == photo.id).execute()
        if p["categories"] is not None:
            albums = _albums_for_upload(call, _category_list(p["categories"]))
            if multiple == "replace":
                services.set_photo_albums(photo.id, albums)
            else:
                for album_id in albums:
                    services.add_to_album(album_id, [photo.id])
        if p["tag_ids"] is not None:
            names = list(_tag_names(p["tag_ids"]))
            if multiple == "replace":
                PhotoTag.delete().where(PhotoTag.photo == photo.id).execute()
            add_keywords(photo.id, names)
    return None


@method("pwg.images.delete", Param("image_id", "positive", array=True), post_only=True, token=True)
def delete(call: Call, p: dict[str, Any]) -> int:
    """Delete photos: members their own, admins any; all or none."""
    photos = [_visible_photo(call, photo_id) for photo_id in p["image_id"]]
    if not all(access.may_delete_photo(call.viewer, photo) for photo in photos):
        raise WsError(ACCESS_DENIED, "Access denied: only a photo's owner or an administrator may delete it")
    for photo in photos:
        services.delete_photo(photo.id, call.library.store)
    return len(photos)


@method("pwg.images.rate", Param("image_id", "positive"), Param("rate", "float"), post_only=True)
def rate(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """Accepted and not kept: Photoflow's ratings are the photographer's, from the file and the console."""
    _visible_photo(call, p["image_id"])
    return {"score": None, "average": None, "count": 0}


# -- tags and plugins ------------------------------------------------------------------------------------


@method("pwg.tags.getList", Param("sort_by_counter", "bool", optional=True, default=False))
def tags_list(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """Every keyword, with how many photos carry it."""
    query = (
        Tag.select(Tag.id, Tag.name, fn.COUNT(PhotoTag.photo).alias("counter"))
        .join(PhotoTag)
        .join(Photo)
        .where(access.visible_photos(call.viewer))
        .group_by(Tag.id, Tag.name)
    )
    rows = [{"id": t.id, "name": t.name, "url_name": _url_name(t.name), "counter": t.counter} for t in query]
    rows.sort(key=(lambda r: -r["counter"]) if p["sort_by_counter"] else (lambda r: r["name"].lower()))
    return {"tags": NamedArray(rows, "tag", ("id", "counter", "url_name"))}


@method("pwg.tags.add", Param("name"), post_only=True)
def tags_add(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """A new keyword (or the one of that name)."""
    name = _text(p["name"], 200)
    if not name:
        raise WsError(INVALID_PARAM, "Invalid tag name")
    Tag.insert(name=name).on_conflict_ignore().execute()
    return {"info": "Tag added", "id": Tag.get(Tag.name == name).id}


@method("pwg.plugins.getList")
def plugins_list(call: Call, p: dict[str, Any]) -> list[Any]:
    """No plugins."""
    return []


# -- chunks ----------------------------------------------------------------------------------------------


def _chunk_key(user_id: int, *parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return f"{user_id}-{digest}"


def read_urlencoded(body: bytes) -> dict[str, list[str]]:
    """Parameters of an application/x-www-form-urlencoded body, as PHP reads them; invalid UTF-8 refused."""
    params: dict[str, list[str]] = {}
    for pair in body.split(b"&"):
        if not pair:
            continue
        key, _, value = pair.partition(b"=")
        name = utf8(unquote_to_bytes(key.replace(b"+", b" ")))
        text = utf8(unquote_to_bytes(value.replace(b"+", b" ")))
        params.setdefault(name, []).append(text)
    return params


def utf8(raw: bytes) -> str:
    """Text a client sent; Invalid (1003) unless it is UTF-8.

    Darktable cuts every value at 511 bytes, sometimes inside a character: a broken sequence at the very
    end is that cut, and is dropped rather than the whole upload refused.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(raw) - 3 and exc.reason == "unexpected end of data":
            return raw[: exc.start].decode("utf-8", "strict")
        raise WsError(INVALID_PARAM, "Invalid parameter: not UTF-8") from None
