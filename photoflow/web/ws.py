"""`/ws.php` over HTTP: a request becomes a `piwigo.Call`, an answer becomes Piwigo's JSON or XML.

The rules of the protocol as its clients use it (../shared/docs/piwigo.md): the format comes from the
query string only (XML when absent); parameters from the POST body on POST (from the query when the
body has none), else from the query, and `method` from the body or else the query — one rule, used for
dispatch and checks alike; never a
redirect (libcurl would turn the POST into a GET); every failure is a `stat: fail` in the asked format,
never an HTML page, and oversized uploads too (darktable takes a proxy's HTML 413 for success).

Darktable sends no Origin, Referer or token, so writes are protected by being POST-only, by refusing
any call that may change state (every POST, and a logout by GET) that a page of another site started
(a present foreign Origin, or Sec-Fetch-Site cross-site), and by SameSite=Lax session cookies; and
there are no CORS headers. A ws.php logout ends the ws.php session (pwg_id) only, never the web's.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

from bottle import Bottle, HTTPResponse, request

from photoflow import piwigo, sessions
from photoflow.access import Viewer
from photoflow.errors import PhotoflowError
from photoflow.importer import display_name
from photoflow.library import Library
from photoflow.piwigo import Call, Upload, WsError
from photoflow.storage import StorageFull
from photoflow.web import multipart
from photoflow.web.context import is_https, root, site
from photoflow.web.upload import MAX_REQUEST_BYTES

log = logging.getLogger("photoflow.ws")

COOKIE = "pwg_id"
# Urlencoded bodies are read whole: digiKam sends its base64 chunks that way.
MAX_FORM_BYTES = 96 * 1024 * 1024
MAX_PARTS = 64
# Piwigo Remote Sync reads XML into classes made for Piwigo 2.9 (strictly: any element they do not
# declare fails it). It says so in its User-Agent, or shows Apache HttpClient's; Piwigo trims
# getStatus for both, and so does Photoflow.
REMOTE_SYNC = ("PiwigoRemoteSync", "Apache-HttpClient/")
STATUS_FIELDS_2_9 = (
    "username", "status", "theme", "language", "pwg_token", "charset", "current_datetime", "version",
    "upload_file_types", "upload_form_chunk_size",
)  # fmt: skip


def install(app: Bottle, library: Library) -> None:
    """The /ws.php route."""

    @app.route("/ws.php", ["GET", "POST"])
    def ws() -> HTTPResponse:
        return handle(library)


def handle(library: Library) -> HTTPResponse:
    """Answer one ws.php request; whatever happens, in Piwigo's envelope."""
    fmt = _format()
    uploads: list[Upload] = []
    try:
        if fmt not in ("json", "rest"):
            raise WsError(piwigo.INVALID_PARAM, f"Invalid parameter format: {fmt!r} is not offered, use json")
        session = sessions.lookup(request.get_cookie(COOKIE) or request.get_cookie("pf_session"))
        viewer = Viewer(user=session.user if session else None)
        params = _params(library, session is not None, uploads)
        name = (params.get("method") or [""])[0] or _query().get("method", [""])[0]
        if piwigo.changes_state(name, request.method):
            _refuse_other_sites()
        call = Call(
            method=name,
            params=params,
            http_method=request.method,
            library=library,
            viewer=viewer,
            session=session,
            address=request.environ.get("REMOTE_ADDR") or "unknown",
            base_url=site(library.config) + root(),
            user_agent=request.headers.get("User-Agent", ""),
            uploads=uploads,
            secret=library.config.secret,
        )
        answer = piwigo.dispatch(call)
    except WsError as error:
        return _failure(fmt, error)
    except StorageFull as exc:  # while the body was being staged, before any method ran
        return _failure(fmt, WsError(piwigo.STORAGE_FULL, piwigo.message(exc)))
    except PhotoflowError as exc:
        return _failure(fmt, WsError(piwigo.INVALID_PARAM, exc.reason))
    except TimeoutError:  # the body came slower than the server's minimum rate (server.py): the
        # client's doing, not a fault of ours to log with a traceback
        log.info("ws.php %s: the request body came too slowly", request.method)
        return _failure(fmt, WsError(408, "The request body came too slowly"))
    except Exception:  # never an HTML 500: clients parse the body whatever happens
        log.exception("ws.php %s failed", request.method)
        return _failure(fmt, WsError(piwigo.SERVER_ERROR, "Internal error"))
    finally:
        for upload in uploads:  # what no handler took (a refused call, an unused part)
            if upload.staged is not None and upload.staged.path.exists():
                upload.staged.path.unlink(missing_ok=True)
    result = answer.result
    strict = any(mark in call.user_agent for mark in REMOTE_SYNC)
    if strict and call.method == "pwg.session.getStatus":
        result = {key: value for key, value in result.items() if key in STATUS_FIELDS_2_9}
    body = piwigo.json_success(result) if fmt == "json" else piwigo.xml_success(result)
    response = _response(fmt, body, 200)
    if answer.new_session:
        # Never Secure over plain http: darktable and Shotwell would not send it back.
        lifetime = int(sessions.SESSION_LIFETIME.total_seconds())
        secure = is_https(library.config)
        response.set_cookie(
            COOKIE,
            answer.new_session,
            path="/",
            httponly=True,
            samesite="lax",
            secure=secure,
            max_age=lifetime,
        )
    if answer.end_session:
        # Only a ws.php session: a logout through ws.php (a client's, or a link another site planted)
        # leaves the same browser's web session alone.
        sessions.end(request.get_cookie(COOKIE))
        response.delete_cookie(COOKIE, path="/")
    return response


def _format() -> str:
    # Read apart from the other parameters and leniently: a query that is not UTF-8 elsewhere still
    # gets its error in the format it asked for.
    raw = request.environ.get("QUERY_STRING", "").encode("latin-1")
    for pair in raw.split(b"&"):
        key, _, value = pair.partition(b"=")
        if key == b"format":
            return value.decode("ascii", "replace").lower() or "rest"
    return "rest"


def _query() -> dict[str, list[str]]:
    cached = request.environ.get("photoflow.ws_query")
    if cached is None:
        raw = request.environ.get("QUERY_STRING", "").encode("latin-1")
        cached = piwigo.read_urlencoded(raw)
        request.environ["photoflow.ws_query"] = cached
    return cached


def _refuse_other_sites() -> None:
    origin = request.headers.get("Origin")
    if origin is not None:
        ours = {f"{scheme}://{request.urlparts.netloc}" for scheme in ("http", "https")}
        if origin not in ours:
            raise WsError(piwigo.ACCESS_DENIED, "Access denied: the request came from another site")
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise WsError(piwigo.ACCESS_DENIED, "Access denied: the request came from another site")


def _params(library: Library, logged_in: bool, uploads: list[Upload]) -> dict[str, list[str]]:
    """The call's parameters: the POST body's on POST, the query's otherwise."""
    if request.method != "POST":
        return dict(_query())
    length = request.content_length
    content_type = request.environ.get("CONTENT_TYPE", "")
    if length > MAX_REQUEST_BYTES:
        raise WsError(
            413, f"The request is larger than the server accepts ({MAX_REQUEST_BYTES // 1024**3} GB)"
        )
    if content_type.lower().startswith("multipart/"):
        if length < 0:
            raise WsError(piwigo.INVALID_PARAM, "The upload must say its length (Content-Length)")

        def receive(field: str, file_name: str, reader: BinaryIO) -> None:
            if not logged_in:
                # A guest's file is not written anywhere: the call will be refused anyway.
                uploads.append(Upload(field, display_name(file_name), None, "log in first"))
                return
            try:
                staged = library.store.stage(reader, max_bytes=MAX_REQUEST_BYTES)
            except StorageFull:
                raise  # the whole call fails (507), as a web upload does
            except PhotoflowError as exc:
                uploads.append(Upload(field, display_name(file_name), None, exc.reason))
                return
            uploads.append(Upload(field, display_name(file_name), staged))

        body = request.environ["wsgi.input"]
        return multipart.parse(body, length, content_type, receive, MAX_PARTS, decode=piwigo.utf8).fields
    if length > MAX_FORM_BYTES:
        raise WsError(413, "The form is larger than the server accepts")
    body = request.environ["wsgi.input"].read(length) if length > 0 else b""
    # As Piwigo: the body's parameters when it has any, else the query's (the Android app POSTs
    # pwg.categories.add with every parameter in the query and no body).
    return piwigo.read_urlencoded(body) or dict(_query())


def _failure(fmt: str, error: WsError) -> HTTPResponse:
    body = piwigo.json_failure(error) if fmt == "json" else piwigo.xml_failure(error)
    return _response(fmt, body, error.code if 400 <= error.code < 600 else 200)


def _response(fmt: str, body: str, status: int) -> HTTPResponse:
    content_type = "application/json; charset=utf-8" if fmt == "json" else "text/xml; charset=utf-8"
    return HTTPResponse(
        body.encode("utf-8"),
        status=status,
        headers={"Content-Type": content_type, "Cache-Control": "no-store"},
    )
