"""`create_app(library)`: the Bottle application, its hooks, its error pages and its security headers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from bottle import Bottle, HTTPError, HTTPResponse, request, response

from photoflow import db as database
from photoflow.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PhotoflowError,
    TooLarge,
    Unavailable,
)
from photoflow.library import Library
from photoflow.models import ID_DIGITS
from photoflow.sessions import RateLimited
from photoflow.storage import StorageFull
from photoflow.web import account, files, pages, proxy, upload, ws
from photoflow.web.context import begin, go, is_https, page

log = logging.getLogger("photoflow.web")

# Scripts and styles only from our own files: pages carry their data in JSON blocks, never inline code.
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
FILE_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "same-origin"))
STATUS = {
    NotFound: 404,
    Forbidden: 403,
    Invalid: 400,
    TooLarge: 413,
    Conflict: 409,
    RateLimited: 429,
    StorageFull: 507,
    Unavailable: 503,
}


class PhotoflowApp(Bottle):
    """Bottle, with the security headers on every answer, errors and redirects included."""

    def __init__(self, library: Library) -> None:
        super().__init__(catchall=True)
        self.library = library
        self.proxies = proxy.Proxies(library.config.trusted_proxies)

    def wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        proxy.from_proxy(environ, self.proxies)
        proxy.under_prefix(environ, self.library.config.url_prefix)
        return proxy.logged(environ, start_response, self._answer)

    def _answer(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        https = is_https(self.library.config, environ)

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if not status.startswith("413"):  # after a 413 cheroot closes the connection unread
                _discard_unread_body(environ)
            present = {name.lower(): value for name, value in headers}
            # The page headers (CSP, framing) only on documents: on each of a grid's hundred pictures
            # they would be bytes before the first thumbnails, and mean nothing there.
            wanted = SECURITY_HEADERS if "html" in present.get("content-type", "") else FILE_HEADERS
            headers = list(headers) + [(k, v) for k, v in wanted if k.lower() not in present]
            if https:
                headers.append(("Strict-Transport-Security", "max-age=31536000"))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return super().wsgi(environ, start)


def _discard_unread_body(environ: dict[str, Any]) -> None:
    """Read away what is left of a request body the app did not want (a refused upload, say).

    cheroot would otherwise drain it with one read of all that is left, holding it whole in memory
    before answering; in pieces, it costs time on the wire but no memory.
    """
    body = environ.get("wsgi.input")
    if body is None or environ.get("photoflow.drained"):
        return
    environ["photoflow.drained"] = True
    try:
        while body.read(64 * 1024):
            pass
    except (OSError, ValueError):
        pass  # the client went away: nothing left to read


def create_app(library: Library) -> PhotoflowApp:
    """The web application serving `library`."""
    app = PhotoflowApp(library)
    # Ids in paths follow models.ID_DIGITS. Bottle's own int filter takes any number of any digits:
    # /album/99999999999999999999 made SQLite raise OverflowError, a 500 where a 404 belongs.
    app.router.add_filter("int", lambda conf: (ID_DIGITS, int, lambda x: str(int(x))))

    @app.hook("before_request")
    def _begin() -> None:
        if request.path.startswith(("/static/", "/healthz")):
            request.environ["photoflow.context"] = None
            return
        begin(library)

    # Each cheroot thread keeps its own database connection from one request to the next (peewee's
    # connections are per thread): opening one costs more than most requests themselves.

    _error_pages(app)

    @app.get("/healthz")
    def healthz() -> HTTPResponse:
        # Says whether this instance can serve, and nothing about what it holds.
        try:
            database.ping()
            ok = True
        except Exception:
            ok = False
            database.close_database()  # a broken connection: the next request opens a new one
        body = json.dumps({"status": "ok" if ok else "database unavailable"})
        return HTTPResponse(body, status=200 if ok else 503, headers={"Content-Type": "application/json"})

    files.install(app, library)
    account.install(app, library)
    upload.install(app, library)
    ws.install(app, library)
    pages.install(app, library)
    return app


def _error_pages(app: Bottle) -> None:
    """Every PhotoflowError becomes its status, with one clear line; anything else is a logged 500."""

    def handle(callback: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except PhotoflowError as exc:
                return error_answer(exc)

        return wrapper

    app.install(handle)

    for status in HTTP_REASONS:

        @app.error(status)
        def _error(error: HTTPError) -> Any:
            reason = HTTP_REASONS.get(error.status_code) or str(error.body or "That request was refused.")
            if error.status_code == 500:
                rid = proxy.request_id(request.environ)
                log.error(
                    "request %s: unhandled error on %s %s: %s", rid, request.method, request.path,
                    error.exception, exc_info=error.exception,
                )  # fmt: skip
                # The visitor sees no traceback, only the id that finds it in the log.
                reason = f"{reason} (request {rid})"
            if wants_json():
                response.content_type = "application/json; charset=utf-8"
                return json.dumps({"error": reason})
            return _render_error(error.status_code, reason)


# What Bottle's own refusals say (Photoflow's own errors carry their reasons).
HTTP_REASONS = {
    400: "",
    403: "",
    404: "There is nothing here.",
    405: "That is not how this address is used.",
    413: "That is more than Photoflow accepts.",
    500: "Something went wrong on the server.",
}


def error_answer(exc: PhotoflowError) -> Any:
    """The answer for a refused request: JSON for scripts, a page for people."""
    status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
    if isinstance(exc, Forbidden) and current_is_visitor() and request.method in ("GET", "HEAD"):
        # A visitor asking for a members' page: the login page, then back here.
        # Paths carried in forms and queries leave out the URL prefix; go() puts it in front.
        here = request.path + ("?" + request.query_string if request.query_string else "")
        go("/login?next=" + quote(here, safe=""))
    if wants_json():
        headers = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        return HTTPResponse(json.dumps({"error": exc.reason}), status=status, headers=headers)
    if isinstance(exc, RateLimited):
        response.set_header("Retry-After", str(exc.retry_after))
    return _render_error(status, exc.reason[:1].upper() + exc.reason[1:] + ".")


def current_is_visitor() -> bool:
    """True when nobody is logged in on this request."""
    ctx = request.environ.get("photoflow.context")
    return ctx is not None and not ctx.viewer.is_member


def wants_json() -> bool:
    """Scripts (fetch/XHR) and the JSON API get JSON errors."""
    return (
        request.path.startswith("/api/")
        or "application/json" in request.headers.get("Accept", "")
        or (request.path.startswith("/upload") and request.method == "POST")
    )


def _render_error(status: int, reason: str) -> str:
    ctx = request.environ.get("photoflow.context")
    if ctx is None:
        response.status = status
        response.content_type = "text/plain; charset=utf-8"
        return reason
    return page("error", status=status, title=f"{status}", reason=reason)
