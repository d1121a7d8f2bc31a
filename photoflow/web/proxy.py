"""What arrives before the app sees a request: the reverse proxy's headers (believed only from the
proxies the configuration trusts), a request id, and the access log line written when the answer ends."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import quote

access_log = logging.getLogger("photoflow.access")

FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST", "HTTP_X_REQUEST_ID")
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")


class Proxies:
    """The trusted proxies of the configuration, as networks."""

    def __init__(self, networks: Iterable[str]) -> None:
        self.networks = [ipaddress.ip_network(n) for n in networks]

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def from_proxy(environ: dict[str, Any], proxies: Proxies) -> None:
    """Apply X-Forwarded-For/-Proto/-Host when the peer is a trusted proxy; drop them otherwise.

    Bottle reads X-Forwarded-Proto and -Host for `request.urlparts` whoever sent them; left in place, a
    client could pick the host of the links in a feed, or the origin a change is checked against.
    """
    peer = environ.get("REMOTE_ADDR") or ""
    headers = {name: environ.pop(name) for name in FORWARDED if name in environ}
    if not proxies.trusts(peer):
        return
    hops = [hop.strip() for hop in headers.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    # The client is the nearest address that is not one of our proxies (the ones before it are as the
    # client claimed them, and could be anything).
    for hop in reversed(hops):
        if not proxies.trusts(hop):
            with contextlib.suppress(ValueError):
                environ["REMOTE_ADDR"] = str(ipaddress.ip_address(hop))
            break
    scheme = headers.get("HTTP_X_FORWARDED_PROTO", "").split(",")[0].strip().lower()
    if scheme in ("http", "https"):
        environ["wsgi.url_scheme"] = scheme
    host = headers.get("HTTP_X_FORWARDED_HOST", "").split(",")[0].strip()
    if host and _HOST.match(host):
        environ["HTTP_HOST"] = host
    request_id = headers.get("HTTP_X_REQUEST_ID", "")
    if _REQUEST_ID.match(request_id):
        environ["photoflow.request_id"] = request_id


def under_prefix(environ: dict[str, Any], prefix: str) -> None:
    """Serve under URL_PREFIX: the prefix becomes SCRIPT_NAME, whether the proxy passed the whole
    path (/photos/album/1) or only what follows it (/album/1)."""
    if not prefix:
        return
    path = environ.get("PATH_INFO", "")
    if path == prefix or path.startswith(prefix + "/"):
        environ["PATH_INFO"] = path[len(prefix) :] or "/"
    environ["SCRIPT_NAME"] = prefix


def request_id(environ: dict[str, Any]) -> str:
    """This request's id (the proxy's, or one made here), shown on error pages and in the logs."""
    value = environ.get("photoflow.request_id")
    if not value:
        value = environ["photoflow.request_id"] = secrets.token_hex(6)
    return value


def logged(
    environ: dict[str, Any], start_response: Callable[..., Any], app: Callable[..., Iterable[bytes]]
) -> Iterable[bytes]:
    """Run `app`, then write one access log line when the body has been sent (or the client left)."""
    began = time.monotonic()
    rid = request_id(environ)
    answer: dict[str, Any] = {"status": "-", "sent": 0}

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        answer["status"] = status.split(" ", 1)[0]
        headers = [*headers, ("X-Request-ID", rid)]
        return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

    body = app(environ, start)
    return _Body(body, answer, lambda: _write(environ, answer, time.monotonic() - began, rid))


class _Body:
    """The app's body, counted as it goes out; the log line is written on close (PEP 3333)."""

    def __init__(self, body: Iterable[bytes], answer: dict[str, Any], done: Callable[[], None]) -> None:
        self.body, self.answer, self.done = body, answer, done

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.answer["sent"] += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.done()


def _write(environ: dict[str, Any], answer: dict[str, Any], seconds: float, rid: str) -> None:
    # The Common Log Format, then the time taken and the request id; the query string is left out
    # (share tokens and Piwigo parameters travel there).
    path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    line = '{} - - [{}] "{} {} {}" {} {} {:.0f}ms {}'.format(
        environ.get("REMOTE_ADDR") or "-",
        time.strftime("%d/%b/%Y:%H:%M:%S %z"),
        environ.get("REQUEST_METHOD", "-"),
        quote(path.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=-._~%"),  # no quote, space or newline
        environ.get("SERVER_PROTOCOL", "-"),
        answer["status"],
        answer["sent"] or "-",
        seconds * 1000,
        rid,
    )
    access_log.info(line)
