"""Running it for real: proxy headers believed only from trusted proxies, the access log and request ids,
signals (SIGTERM with an upload in flight, SIGHUP in place), systemd readiness, the systemd unit, and
contrib/nginx.conf in a real nginx in front of Photoflow."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cheroot
import pytest
import requests
from cheroot import server as cheroot_server
from cheroot import wsgi as cheroot_wsgi

from photoflow import db as database
from photoflow import server as photoflow_server
from photoflow import services
from photoflow.config import Config
from photoflow.library import Library, open_library
from photoflow.models import Photo
from photoflow.server import build_server
from photoflow.web import create_app
from tests.conftest import REPO, Served, Web, free_port, make_config, run_cli, serving, wait_up, web_as
from tests.test_web import imported

PROXY = "127.0.0.1"


def library_with(tmp_path: Path, **settings: str) -> Library:
    config = make_config(tmp_path, **settings)
    database.open_database(config.database)
    database.upgrade()
    return open_library(config)


@pytest.fixture
def behind_proxy(tmp_path: Path) -> Iterator[Library]:
    """A library whose server believes the proxy on 127.0.0.1 (where the tests' requests come from)."""
    lib = library_with(tmp_path, TRUSTED_PROXIES=PROXY)
    services.create_user("admin", "correct horse", admin=True)
    yield lib
    lib.close()


def logged(caplog, wanted) -> str:
    """The access log line that `wanted` picks (written when the answer's body closes: wait a little)."""
    deadline = time.monotonic() + 10
    while True:
        for record in caplog.records:
            if record.name == "photoflow.access" and wanted(record.getMessage()):
                return record.getMessage()
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.05)


# -- proxy headers -----------------------------------------------------------------------------------

SPOOFED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example", "X-Forwarded-For": "203.0.113.9"}


def test_forwarded_headers_from_anyone_else_are_dropped(server: str, admin) -> None:
    browser = Web(server)
    browser.get("/login")
    answer = browser.post("/login", {"name": "admin", "password": "correct horse"}, headers=SPOOFED)
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith(server + "/")  # not https://evil.example
    assert "Secure" not in answer.headers["Set-Cookie"]
    # A change whose Origin is the spoofed host is refused: the host is the one the socket reached.
    browser.get("/")
    spoof = browser.post("/albums", {"title": "x"}, headers={**SPOOFED, "Origin": "https://evil.example"})
    assert spoof.status_code == 403


def test_a_trusted_proxy_sets_scheme_host_and_client_address(behind_proxy: Library, caplog) -> None:
    from photoflow import sessions

    caplog.set_level(logging.INFO, logger="photoflow.access")
    with serving(create_app(behind_proxy)) as base:
        browser = Web(base)
        browser.get("/login")
        forwarded = {**SPOOFED, "X-Forwarded-Host": "photos.example.org", "X-Request-ID": "proxy-id-1"}
        ok = browser.post(
            "/login",
            {"name": "admin", "password": "correct horse"},
            headers={**forwarded, "Origin": "https://photos.example.org"},
        )
        assert ok.status_code == 303, ok.text[:300]
        assert ok.headers["Location"].startswith("https://photos.example.org/")
        assert "Secure" in ok.headers["Set-Cookie"]
        assert ok.headers["Strict-Transport-Security"]
        assert ok.headers["X-Request-ID"] == "proxy-id-1"
        # The client's own address, from the proxy's X-Forwarded-For, is the one in the log and the
        # one the login rate limit counts.
        logged(caplog, lambda line: line.startswith("203.0.113.9 - - [") and "proxy-id-1" in line)
        for _ in range(sessions.MAX_FAILURES):
            browser.post(
                "/login",
                {"name": "admin", "password": "guess"},
                headers={**forwarded, "Origin": "https://photos.example.org"},
            )
        other_client = {
            **forwarded,
            "X-Forwarded-For": "198.51.100.7",
            "Origin": "https://photos.example.org",
        }
        assert (
            Web(base).post("/login", {"name": "nobody", "password": "x"}, headers=other_client).status_code
            == 401
        )


# -- logs and errors ---------------------------------------------------------------------------------


def test_access_log_and_a_500_with_its_request_id_but_no_traceback(library: Library, caplog) -> None:
    caplog.set_level(logging.INFO)
    app = create_app(library)

    def broken() -> str:
        raise ZeroDivisionError("a bug")

    app.route("/broken", "GET", broken)
    with serving(app) as base:
        ok = requests.get(base + "/healthz?token=secret", timeout=10)
        answer = requests.get(base + "/broken", timeout=10)
    rid = answer.headers["X-Request-ID"]
    assert answer.status_code == 500
    assert f"request {rid}" in answer.text
    assert "Traceback" not in answer.text and "ZeroDivisionError" not in answer.text
    line = logged(caplog, lambda line: ok.headers["X-Request-ID"] in line)
    assert '"GET /healthz HTTP/1.1" 200 ' in line and "secret" not in line  # no query strings in logs
    errors = [r for r in caplog.records if r.name == "photoflow.web" and r.levelno == logging.ERROR]
    assert errors and rid in errors[0].getMessage() and errors[0].exc_info


# -- the slow-client guard and cheroot's internals ----------------------------------------------------


def _pinned(package: str) -> str:
    """The version requirements.txt pins `package` to."""
    for line in (REPO / "requirements.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return version.strip()
    raise AssertionError(f"{package} is not pinned in requirements.txt")


def test_with_the_pinned_cheroot_the_slow_client_guard_is_on(library: Library, caplog) -> None:
    caplog.set_level(logging.INFO, logger="photoflow.server")
    assert cheroot.__version__ == _pinned("cheroot")
    httpd = build_server(create_app(library), ("127.0.0.1", 0), threads=2)
    assert type(httpd) is photoflow_server.Server and httpd.ConnectionClass is photoflow_server._Connection
    assert photoflow_server.guard_missing(httpd) is None
    assert [r.getMessage() for r in caplog.records if r.name == "photoflow.server"] == []


def _communicate_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if cheroot had moved communicate()'s handling of timeouts into another method."""
    original = cheroot_server.HTTPConnection.communicate

    def communicate(self: cheroot_server.HTTPConnection) -> bool:
        """cheroot's own, called from here."""
        return original(self)

    monkeypatch.setattr(cheroot_server.HTTPConnection, "communicate", communicate)


# Internals the guard needs that plain cheroot serves without: taking them away leaves a cheroot that
# works, as a newer cheroot that moved them would.
WITHOUT = {
    "HTTPConnection.last_used": lambda mp: mp.delattr(cheroot_server.HTTPConnection, "last_used"),
    "HTTPConnection.communicate() answering 'timed out' with 408": _communicate_elsewhere,
}


@pytest.mark.parametrize("missing", list(WITHOUT))
def test_a_cheroot_without_an_internal_the_guard_needs_serves_plain_and_says_so_once(
    missing: str, library: Library, caplog, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="photoflow.server")
    WITHOUT[missing](monkeypatch)
    httpd = build_server(create_app(library), ("127.0.0.1", 0), threads=2)
    assert type(httpd) is cheroot_wsgi.Server
    assert (httpd.max_request_header_size, httpd.timeout) == (
        photoflow_server.MAX_REQUEST_HEADER,
        photoflow_server.HEAD_TIMEOUT,
    )
    httpd.prepare()
    thread = threading.Thread(target=httpd.serve, daemon=True)
    thread.start()
    try:
        host, port = httpd.bind_addr[:2]
        with requests.Session() as browser:  # two requests on one kept-alive connection
            assert browser.get(f"http://{host}:{port}/healthz", timeout=10).status_code == 200
            assert browser.get(f"http://{host}:{port}/login", timeout=10).status_code == 200
    finally:
        httpd.stop()
        thread.join(timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name == "photoflow.server"]
    assert lines == [
        f"slow-client guard off: cheroot {cheroot.__version__} has no {missing}; serving with plain cheroot"
    ]


# -- the process: signals and systemd ----------------------------------------------------------------


@pytest.fixture
def ready(tmp_path: Path) -> Config:
    config = make_config(tmp_path)
    assert run_cli(config, "db", "upgrade").returncode == 0
    made = run_cli(config, "create-user", "admin", "--admin", "--password-stdin", input="correct horse\n")
    assert made.returncode == 0, made.stderr
    return config


@pytest.mark.slow
def test_sigterm_lets_an_upload_in_flight_finish(ready: Config, samples: Path) -> None:
    served = Served(ready, SHUTDOWN_TIMEOUT="30")
    try:
        browser = web_as(served.base, "admin", "correct horse")
        picture = (samples / "jpeg/cameras/Nikon D90.jpg").read_bytes()
        boundary = "photoflowtestboundary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="late.jpg"\r\n'
                f"Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + picture
            + f"\r\n--{boundary}--\r\n".encode()
        )
        cookie = "; ".join(f"{c.name}={c.value}" for c in browser.http.cookies)
        head = (
            f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\nCookie: {cookie}\r\n"
            f"X-CSRF-Token: {browser.csrf}\r\nOrigin: {served.base}\r\nAccept: application/json\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", served.port), timeout=60) as conn:
            conn.sendall(head + body[: len(body) // 2])
            time.sleep(0.5)
            served.proc.send_signal(signal.SIGTERM)  # half the file is on its way
            time.sleep(1.0)
            conn.sendall(body[len(body) // 2 :])
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), (answer[:300], served.stop())
        assert b'"imported"' in answer
        assert served.proc.wait(timeout=30) == 0
    finally:
        err = served.stop()
    print(err)
    assert "received SIGTERM, stopping" in err
    assert run_cli(ready, "check").returncode == 0
    database.open_database(ready.database)
    try:
        assert Photo.select().where(Photo.file_name == "late.jpg").count() == 1
    finally:
        database.close_database()


@pytest.mark.slow
def test_sighup_restarts_in_place_and_keeps_sessions(ready: Config) -> None:
    served = Served(ready)
    try:
        browser = web_as(served.base, "admin", "correct horse")
        pid = served.proc.pid
        served.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        wait_up(served.base, served.proc)
        assert served.proc.pid == pid and served.proc.poll() is None
        assert browser.get("/account").status_code == 200  # still logged in
    finally:
        err = served.stop()
    assert "restarting" in err and err.count("Photoflow serving on") == 2


def test_systemd_is_told_when_it_is_ready_and_when_it_stops(ready: Config, tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(30)
        served = Served(ready, NOTIFY_SOCKET=address)
        try:
            assert sock.recv(256) == b"READY=1"
        finally:
            served.stop()
        assert sock.recv(256) == b"STOPPING=1"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_is_valid(tmp_path: Path) -> None:
    # The unit names /srv/photoflow; systemd-analyze checks that its commands exist, so here they are
    # this checkout's.
    unit = (REPO / "contrib/photoflow.service").read_text().replace("/srv/photoflow", str(REPO))
    (tmp_path / "photoflow.service").write_text(unit)
    checked = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "photoflow.service")], capture_output=True, text=True
    )
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr
    for hardening in ("ProtectSystem=strict", "ReadWritePaths=/var/lib/photoflow", "NoNewPrivileges=yes",
                      "PrivateTmp=yes", "Restart=on-failure", "Type=notify", "User=photoflow"):  # fmt: skip
        assert hardening in unit


# -- nginx in front ----------------------------------------------------------------------------------


@pytest.mark.skipif(not Path("/usr/sbin/nginx").exists(), reason="nginx is not installed (make test-deps)")
def test_contrib_nginx_conf_in_front_of_photoflow(tmp_path: Path, samples: Path) -> None:
    lib = library_with(tmp_path, TRUSTED_PROXIES=PROXY, ACCEL_REDIRECT="/_datastore/")
    try:
        admin = services.create_user("admin", "correct horse", admin=True)
        public = services.create_album("Public", admin.id, public=True)
        shown, hidden = (samples / "jpeg/cameras/Nikon D90.jpg", samples / "jpeg/cameras/Olympus E-20.jpg")
        imported(lib, admin, shown, album=public)
        imported(lib, admin, hidden)
        visible = Photo.get(Photo.file_name == shown.name)
        private = Photo.get(Photo.file_name == hidden.name)
        with (
            serving(create_app(lib)) as upstream,
            nginx_in_front(tmp_path, upstream, lib.store.root) as front,
        ):
            http = trusting(requests.Session(), tmp_path)
            url = f"/d/250/{visible.id}-{visible.sha256[:16]}.jpg"
            answer = http.get(front + url, timeout=10)
            stored = lib.store.resolve(lib.store.derivative_path(visible.sha256, "250")).read_bytes()
            assert answer.status_code == 200 and answer.content == stored
            assert answer.headers["Server"].startswith("nginx") and "X-Accel-Redirect" not in answer.headers
            assert answer.headers["Cache-Control"].startswith("public")
            # Photoflow itself only said where the file is; nginx sent the bytes, ranges included.
            direct = requests.get(upstream + url, timeout=10)
            assert direct.content == b"" and direct.headers["X-Accel-Redirect"].startswith("/_datastore/")
            part = http.get(front + url, headers={"Range": "bytes=0-99"}, timeout=10)
            assert part.status_code == 206 and part.content == stored[:100]
            # The private photo is refused by Photoflow before nginx could send anything.
            secret = http.get(front + f"/d/250/{private.id}-{private.sha256[:16]}.jpg", timeout=10)
            assert secret.status_code == 404 and secret.content != stored
            # The internal location cannot be asked for directly.
            inside = lib.store.derivative_path(private.sha256, "250")
            assert http.get(front + "/_datastore/" + str(inside), timeout=10).status_code == 404
            # Login through the proxy: https, as nginx says, so the session cookie is Secure.
            browser = Web(front)
            trusting(browser.http, tmp_path)
            login = browser.login("admin", "correct horse")
            assert login.status_code == 303 and "Secure" in login.headers["Set-Cookie"]
            assert login.headers["Location"].startswith(front + "/")
    finally:
        lib.close()


def trusting(http: requests.Session, tmp_path: Path) -> requests.Session:
    """A session that checks nginx's certificate against the test's own (and no CA bundle from the
    environment, which requests would otherwise prefer)."""
    http.trust_env = False
    http.verify = str(tmp_path / "nginx" / "cert.pem")
    return http


@contextlib.contextmanager
def nginx_in_front(tmp_path: Path, upstream: str, datastore: Path) -> Iterator[str]:
    """contrib/nginx.conf in a real nginx on 127.0.0.1, its ports, certificate and paths replaced;
    yields its https base URL."""
    work = tmp_path / "nginx"
    work.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(work / "key.pem"), "-out", str(work / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    plain_port, tls_port = free_port(), free_port()
    site = (REPO / "contrib/nginx.conf").read_text()
    for old, new in (
        ("server 127.0.0.1:8080;", f"server {upstream.removeprefix('http://')};"),
        ("listen 80;", f"listen 127.0.0.1:{plain_port};"),
        ("listen 443 ssl http2;", f"listen 127.0.0.1:{tls_port} ssl http2;"),
        ("/etc/letsencrypt/live/photos.example.org/fullchain.pem", str(work / "cert.pem")),
        ("/etc/letsencrypt/live/photos.example.org/privkey.pem", str(work / "key.pem")),
        ("alias /var/lib/photoflow/;", f"alias {datastore}/;"),
    ):
        assert old in site, old
        site = site.replace(old, new)
    site = "\n".join(line for line in site.splitlines() if "[::]" not in line)  # no IPv6 here
    (work / "site.conf").write_text(site)
    temps = " ".join(
        f"{kind}_temp_path {work}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (work / "nginx.conf").write_text(
        # The workers as root here only because pytest's folders are private to root; on a server,
        # nginx's user reads the datastore through its group (README).
        f"daemon off; pid {work}/nginx.pid; error_log {work}/error.log;\n"
        + ("user root;\n" if os.geteuid() == 0 else "")
        + f"events {{}}\n"
        f"http {{ include /etc/nginx/mime.types; access_log off; {temps} include {work}/site.conf; }}\n"
    )
    proc = subprocess.Popen(
        ["/usr/sbin/nginx", "-c", str(work / "nginx.conf"), "-p", str(work)], stderr=subprocess.PIPE
    )
    base = f"https://localhost:{tls_port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", tls_port), timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# -- under a URL prefix ------------------------------------------------------------------------------


def test_served_under_a_url_prefix(tmp_path: Path, samples: Path) -> None:
    lib = library_with(tmp_path, URL_PREFIX="/photos")
    try:
        admin = services.create_user("admin", "correct horse", admin=True)
        album = services.create_album("Walks", admin.id, public=True)
        imported(lib, admin, samples / "jpeg/cameras/Nikon D90.jpg", album=album)
        photo = Photo.get()
        with serving(create_app(lib)) as host:
            base = host + "/photos"
            visitor = Web(base)
            page = visitor.get(f"/album/{album.id}")
            assert page.status_code == 200
            local = re.findall(r'(?:href|src|action)="(/[^"]*)"', page.text)
            assert local and all(link.startswith("/photos/") for link in local), local
            assert visitor.get(f"/d/250/{photo.id}-{photo.sha256[:16]}.jpg").status_code == 200
            # A members' page sends a visitor to the login page under the prefix, and back after it.
            asked = visitor.get("/account")
            assert asked.status_code == 303 and asked.headers["Location"] == f"{base}/login?next=%2Faccount"
            member = Web(base)
            member.get("/login?next=%2Faccount")
            login = member.post("/login", {"name": "admin", "password": "correct horse", "next": "/account"})
            assert login.status_code == 303, login.text[:400]
            assert login.headers["Location"] == f"{base}/account"
            member.get("/upload")
            sent = member.upload(samples / "jpeg/cameras/Olympus E-20.jpg")
            assert sent.status_code == 200 and "imported" in sent.text
            # Links that leave the site carry the prefix too.
            feed = requests.get(f"{base}/album/{album.id}/feed.atom", timeout=10).text
            assert f'href="{base}/album/{album.id}"' in feed
            # A proxy that strips the prefix before passing the request on is served the same.
            stripped = requests.get(f"{host}/album/{album.id}", timeout=10)
            assert (
                stripped.status_code == 200 and f'href="/photos/album/{album.id}/feed.atom"' in stripped.text
            )
    finally:
        lib.close()


def test_url_prefix_must_be_a_path(tmp_path: Path) -> None:
    from photoflow.errors import ConfigError

    for bad in ("photos", "/pho tos", "/a//b", "http://x/photos"):
        with pytest.raises(ConfigError, match="URL_PREFIX"):
            make_config(tmp_path, URL_PREFIX=bad)
    assert make_config(tmp_path, URL_PREFIX="/photos/").url_prefix == "/photos"
