"""What every request handler needs: who is asking, the CSRF rules, cookies, pages and JSON answers.

Handlers call `current()` for the request's context; the viewer comes from the session cookie, and
for URLs under /s/<token> also from the share link the token opens.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from bottle import HTTPResponse, redirect, request, response, template

from photoflow import sessions
from photoflow.access import Viewer
from photoflow.config import Config
from photoflow.errors import Forbidden
from photoflow.library import Library
from photoflow.models import Album, Session
from photoflow.services import text as text_limits

VIEWS = Path(__file__).resolve().parents[2] / "views"
SESSION_COOKIE = "pf_session"
PIWIGO_COOKIE = "pwg_id"  # ws.php's session cookie (web/ws.py), the same sessions
CSRF_COOKIE = "pf_csrf"  # the anonymous forms' token (login, first admin), double-submitted
FLASH_COOKIE = "pf_flash"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# One list for every page: bottle caches a compiled template under (id(lookup list), name), so a list made
# anew at each call compiled the template again on every page and kept each copy in bottle.TEMPLATES for
# good (about 12 kB a page: the soak's RSS grew by 45-200 MB in minutes). tests/test_memory.py
TEMPLATE_LOOKUP = [str(VIEWS)]


@dataclass
class Context:
    """One request as the handlers see it."""

    library: Library
    viewer: Viewer
    session: Session | None = None
    shared: Album | None = None  # the album a share link opened, for URLs under /s/<token>
    prefix: str = ""  # "/s/<token>" under a share link: every viewing URL keeps it
    flash: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def csrf_token(self) -> str:
        """The token forms and scripts send back with every change."""
        if self.session is not None:
            return self.session.csrf_token
        return anonymous_csrf_token()

    @property
    def root(self) -> str:
        """The URL prefix ("" at the root of the host); every link in a page starts with it."""
        return root()

    def url(self, path: str) -> str:
        """A viewing URL, under the share prefix when the request came through a share link."""
        return self.prefix + path

    def absolute(self, path: str) -> str:
        """A full URL for `path` on this server (share links and feeds leave the site)."""
        return site(self.library.config) + root() + path


def current() -> Context:
    """The context of the request being handled (made once per request)."""
    ctx = request.environ.get("photoflow.context")
    if ctx is None:
        raise RuntimeError("no Photoflow context: the request did not pass through the app's hook")
    return ctx


def begin(library: Library) -> Context:
    """Make the request's context from its session cookie (the before-request hook)."""
    session = sessions.lookup(request.get_cookie(SESSION_COOKIE))
    if session is None and request.method in ("GET", "HEAD"):
        # A Piwigo client logged in through ws.php holds only its pwg_id cookie, and fetches the
        # element_url, derivative and page URLs its answers carry with it (the mobile apps show a
        # member's private photos that way). It opens reads only: no form post ever rides on it.
        session = sessions.lookup(request.get_cookie(PIWIGO_COOKIE))
    viewer = Viewer(user=session.user if session else None)
    flash = request.get_cookie(FLASH_COOKIE) or ""
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    ctx = Context(library=library, viewer=viewer, session=session, flash=flash[:300])
    request.environ["photoflow.context"] = ctx
    return ctx


def open_share(ctx: Context, album: Album, token: str) -> None:
    """Let this request see `album` through its share link, and keep the link in every URL."""
    ctx.shared = album
    ctx.prefix = "/s/" + quote(token, safe="")
    ctx.viewer = Viewer(user=ctx.viewer.user, shared_album_id=album.id)


# -- cookies -----------------------------------------------------------------------------------------


def _secure() -> bool:
    return is_https(current().library.config)


def is_https(config: Config, environ: dict[str, Any] | None = None) -> bool:
    """The visitor came over https: so configured (URL_SCHEME), or so says a trusted proxy.
    `environ` is this request's (default: the one Bottle is answering)."""
    env = request.environ if environ is None else environ
    return config.url_scheme == "https" or env.get("wsgi.url_scheme") == "https"


def root() -> str:
    """This request's URL prefix (URL_PREFIX, as SCRIPT_NAME), without a trailing slash."""
    return request.environ.get("SCRIPT_NAME", "").rstrip("/")


def site(config: Config) -> str:
    """scheme://host[:port] of this site as the visitor reached it."""
    return f"{'https' if is_https(config) else 'http'}://{request.urlparts.netloc}"


def set_session_cookie(token: str) -> None:
    """Give the browser its session id: HttpOnly, SameSite=Lax, Secure under https."""
    response.set_cookie(
        SESSION_COOKIE, token, path="/", httponly=True, samesite="lax", secure=_secure(),
        max_age=int(sessions.SESSION_LIFETIME.total_seconds()),
    )  # fmt: skip


def clear_session_cookie() -> None:
    """Forget the session id."""
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure())


def anonymous_csrf_token() -> str:
    """The visitor's form token, from their cookie or a new one (set on the response)."""
    token = request.environ.get("photoflow.anon_csrf") or request.get_cookie(CSRF_COOKIE)
    if not token or len(token) > 100:
        token = secrets.token_urlsafe(32)
        response.set_cookie(CSRF_COOKIE, token, path="/", httponly=True, samesite="strict", secure=_secure())
    request.environ["photoflow.anon_csrf"] = token
    return token


def flash(message: str) -> None:
    """A one-line message for the next page (after a redirect)."""
    response.set_cookie(
        FLASH_COOKIE, message[:300], path="/", httponly=True, samesite="lax", secure=_secure()
    )


# -- checks ------------------------------------------------------------------------------------------


def check_origin() -> None:
    """Refuse a change that a page of another site started (Origin, or Sec-Fetch-Site, when present)."""
    origin = request.headers.get("Origin")
    if origin and origin != "null":
        expected = f"{request.urlparts.scheme}://{request.urlparts.netloc}"
        configured = site(current().library.config)
        if origin not in (expected, configured):
            raise Forbidden("this request came from another site")
    elif origin == "null":
        raise Forbidden("this request came from an opaque origin")
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise Forbidden("this request came from another site")


def check_csrf() -> None:
    """Every change carries the page's token, in a form field or the X-CSRF-Token header."""
    check_origin()
    ctx = current()
    given = request.headers.get("X-CSRF-Token")
    if given is None and not request.environ.get("CONTENT_TYPE", "").lower().startswith("multipart/"):
        # Only a small urlencoded form is read for its field; a multipart body (an upload) is never
        # parsed (nor spooled) by Bottle before the token and the session are known to be good.
        given = request.forms.get("csrf")
    # A member's session holds the token; a visitor's form (log in, first admin) is double-submitted.
    session = ctx.session
    expected = session.csrf_token if session is not None else request.get_cookie(CSRF_COOKIE) or ""
    if not expected or not sessions.csrf_matches(expected, given):
        raise Forbidden("the form has expired: reload the page and try again")


def safe_next(target: str | None, default: str = "/") -> str:
    """A local path to go back to; anything pointing elsewhere becomes `default`."""
    if not target:
        return default
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
    ):
        return default
    return target


# -- answers -----------------------------------------------------------------------------------------


def json_for_script(value: Any) -> str:
    """JSON safe inside <script type="application/json">: no '<', '>' or '&' can close the element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(view: str, /, status: int = 200, **values: Any) -> str:
    """Render views/<view>.tpl with what every page needs."""
    ctx = current()
    response.status = status
    response.content_type = "text/html; charset=utf-8"
    # Pages change with the library; nobody's shared cache may keep a member's or a share link's.
    private = ctx.viewer.is_member or ctx.shared is not None
    response.set_header("Cache-Control", "private, no-store" if private else "no-cache")
    values.setdefault("title", "Photoflow")
    return template(
        view,
        template_lookup=TEMPLATE_LOOKUP,
        ctx=ctx,
        json_for_script=json_for_script,
        limits=text_limits,  # the forms' maxlength: the limits the services check
        **values,
    )


def answer_json(value: Any, status: int = 200) -> HTTPResponse:
    """A JSON answer that no shared cache keeps."""
    body = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return HTTPResponse(
        body,
        status=status,
        headers={"Content-Type": "application/json; charset=utf-8", "Cache-Control": "private, no-cache"},
    )


def go(path: str, message: str = "") -> None:
    """Redirect (303) to `path` (a path of the app: the URL prefix goes in front), with an optional
    message for the next page."""
    if message:
        flash(message)
    redirect(root() + path, 303)
