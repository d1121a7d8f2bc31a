"""The protocol of ws.php: parameters, the method table and its dispatch, errors, urlencoded bodies.

Nothing here knows a method: the handlers (session, categories, images, tags) register themselves in
`METHODS` with `@method`, and `dispatch` applies a method's rules (POST only, members only, the
security token, declared parameters) before its handler runs. Nothing here imports Bottle.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

from photoflow.access import Viewer
from photoflow.errors import Conflict, Forbidden, Invalid, NotFound, PhotoflowError, TooLarge
from photoflow.library import Library
from photoflow.models import Session
from photoflow.storage import Staged, StorageFull

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
            real = float(raw)
        except ValueError:
            raise WsError(INVALID_PARAM, f"Invalid float parameter {param.name}") from None
        if not math.isfinite(real):
            raise WsError(INVALID_PARAM, f"Invalid float parameter {param.name}")
        return real
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
    # Changes state even when called by GET (a logout): refused when another site started the request.
    writes_by_get: bool = False
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


def changes_state(name: str, http_method: str) -> bool:
    """Whether a call of this method may change something: every POST, and the few methods that do by GET.

    A call that may is refused when another site started it (photoflow/web/ws.py): a link or a
    redirect carries the session cookie (SameSite=Lax) on a top-level GET.
    """
    entry = METHODS.get(name)
    return http_method == "POST" or (entry is not None and entry.writes_by_get)


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


# -- urlencoded bodies, as PHP reads them ----------------------------------------------------------


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
