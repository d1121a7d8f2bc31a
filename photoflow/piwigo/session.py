"""ws.php methods of the session and of the protocol itself: login, status, version, reflection."""

from __future__ import annotations

from typing import Any

from photoflow import filetypes, sessions
from photoflow.models import utcnow
from photoflow.piwigo.envelopes import NamedArray
from photoflow.piwigo.protocol import (
    BAD_LOGIN,
    INVALID_PARAM,
    METHODS,
    Answer,
    Call,
    Param,
    WsError,
    message,
    method,
    pwg_token,
)
from photoflow.piwigo.shapes import SIZES

VERSION = "14.5.0"  # the Piwigo release Photoflow answers as (digiKam needs 2.4 or newer)
CHUNK_KB = 500  # upload_form_chunk_size: what the mobile apps cut files into


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


@method("pwg.session.logout", guests=True, writes_by_get=True)
def logout(call: Call, p: dict[str, Any]) -> Answer:
    """End the ws.php session (the HTTP layer ends the one its pwg_id cookie names; never the web's)."""
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
        result["upload_file_types"] = ",".join(filetypes.upload_extensions())
        result["upload_form_chunk_size"] = CHUNK_KB
    return result


@method("pwg.getVersion", guests=True)
def get_version(call: Call, p: dict[str, Any]) -> str:
    """The Piwigo version Photoflow speaks."""
    return VERSION


@method("pwg.plugins.getList")
def plugins_list(call: Call, p: dict[str, Any]) -> list[Any]:
    """No plugins."""
    return []


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
    options: dict[str, Any] = {}
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
