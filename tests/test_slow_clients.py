"""Slow clients (slowloris) against the real server process: connections that send their request head,
or their body, a byte at a time hold no request thread, so ordinary visitors are still served; and
each is cut off once it has had its time (photoflow/server.py says how long), uploads streamed through
the multipart reader (photoflow/web/multipart.py) too, leaving nothing in the datastore's tmp/."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from photoflow.config import Config
from photoflow.server import BODY_PRELOAD, HEAD_TIMEOUT
from photoflow.storage import TMP
from tests.conftest import Served, make_config, run_cli, web_as

pytestmark = [pytest.mark.serial, pytest.mark.slow]  # timeouts and rates: the machine alone

THREADS = 6  # one more than the slow bodies that do reach a thread (the draggers below)
SLOW_HEADS = THREADS + 4  # more than the server has threads: any one of them holding a thread starves it
SLOW_BODIES = THREADS + 4
TRICKLE = 1.0  # seconds between two bytes


@pytest.fixture
def ready(tmp_path: Path) -> Config:
    """A migrated database with a member, admin / correct horse."""
    config = make_config(tmp_path)
    assert run_cli(config, "db", "upgrade").returncode == 0
    made = run_cli(config, "create-user", "admin", "--admin", "--password-stdin", input="correct horse\n")
    assert made.returncode == 0, made.stderr
    return config


class Trickler:
    """Slow connections, each sending what it has to send one byte every TRICKLE seconds, in one thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conns: list[tuple[socket.socket, bytes]] = []  # a socket and what it has still to send
        self.closed: dict[int, float] = {}  # index -> when the server closed it (seconds after start)
        self.answers: dict[int, bytes] = {}
        self.stop = threading.Event()
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def open(self, first: bytes, rest: bytes) -> int:
        """A connection that sends `first` at once and `rest` a byte at a time; its index."""
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.sendall(first)
        sock.setblocking(False)
        self.conns.append((sock, rest))
        return len(self.conns) - 1

    def _run(self) -> None:
        while not self.stop.wait(TRICKLE):
            for i, (sock, rest) in enumerate(self.conns):
                if i in self.closed:
                    continue
                try:  # whatever the server said, or that it closed the connection
                    data = sock.recv(4096)
                    if data:
                        self.answers[i] = self.answers.get(i, b"") + data
                    else:
                        self.closed[i] = time.monotonic() - self.started
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed[i] = time.monotonic() - self.started
                    continue
                if rest:
                    try:
                        sock.send(rest[:1])
                        self.conns[i] = (sock, rest[1:])
                    except OSError:
                        self.closed[i] = time.monotonic() - self.started

    def open_count(self, indexes: range) -> int:
        return sum(1 for i in indexes if i not in self.closed)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        for sock, _ in self.conns:
            sock.close()


def visit(base: str) -> list[float]:
    """GET / and /healthz as a visitor would; how long each took (a failure raises)."""
    took = []
    for path in ("/", "/healthz"):
        start = time.monotonic()
        answer = requests.get(base + path, timeout=8, allow_redirects=False)
        took.append(time.monotonic() - start)
        # / redirects to the first-run setup page: an answer all the same.
        assert answer.status_code in (200, 303), (path, answer.status_code)
    return took


def test_slow_heads_and_bodies_do_not_starve_visitors(ready: Config) -> None:
    served = Served(ready, THREADS=str(THREADS))
    trickler = Trickler(served.port)
    try:
        host = f"Host: 127.0.0.1:{served.port}\r\n"
        browser = web_as(served.base, "admin", "correct horse")
        cookie = "; ".join(f"{c.name}={c.value}" for c in browser.http.cookies)
        member = f"Cookie: {cookie}\r\nX-CSRF-Token: {browser.csrf}\r\nOrigin: {served.base}\r\n"
        head = f"GET / HTTP/1.1\r\n{host}User-Agent: slowloris\r\nX-Padding: {'a' * 200}\r\n\r\n".encode()
        heads = range(0, SLOW_HEADS)
        for _ in heads:
            trickler.open(head[:5], head[5:])
        # A complete head declaring a body that then comes a byte a second (a form post, say).
        body_head = (
            f"POST /login HTTP/1.1\r\n{host}Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: 5000\r\n\r\n"
        ).encode()
        bodies = range(SLOW_HEADS, SLOW_HEADS + SLOW_BODIES)
        for _ in bodies:
            trickler.open(body_head + b"n", b"ame=x&password=" + b"y" * 4000)
        # Two with bodies larger than the server reads ahead, which slow down: these do reach a thread
        # (the app reads the form, under Bottle's 100 kB), and are cut off at the minimum body rate: 408.
        big_head = body_head.replace(b"Content-Length: 5000", f"Content-Length: {4 * BODY_PRELOAD}".encode())
        draggers = range(SLOW_HEADS + SLOW_BODIES, SLOW_HEADS + SLOW_BODIES + 5)
        for _ in range(2):
            trickler.open(big_head + b"name=" + b"x" * (2 * BODY_PRELOAD), b"x" * 1000)
        # And one at ws.php, which answers in Piwigo's JSON (and logs no traceback: asserted below).
        ws_head = big_head.replace(b"POST /login ", b"POST /ws.php?format=json ")
        trickler.open(ws_head + b"method=pwg.getVersion&x=" + b"x" * (2 * BODY_PRELOAD), b"x" * 1000)
        # Uploads, through the streaming multipart reader: a member's at /upload, and a visitor's at
        # ws.php, whose file part is skipped (a guest's is never written).
        trickler.open(*upload(f"POST /upload HTTP/1.1\r\n{host}{member}", "file"))
        trickler.open(*upload(f"POST /ws.php?format=json HTTP/1.1\r\n{host}", "image"))
        trickler.thread.start()
        time.sleep(3 * TRICKLE)  # every slow connection has sent something more

        # Ordinary visitors are served while the slow ones are still held, and again and again.
        times = visit(served.base)
        held = trickler.open_count(heads) + trickler.open_count(bodies)
        for _ in range(2):
            time.sleep(0.5)
            times += visit(served.base)
        print(f"\nvisitors answered in {max(times):.2f} s at most; slow connections still open: {held}")
        assert held == SLOW_HEADS + SLOW_BODIES, trickler.closed
        assert max(times) < 5, times

        # Each slow connection is closed once its time is up (HEAD_TIMEOUT from its first byte; the
        # draggers after their grace at the minimum rate), and the server serves on.
        deadline = time.monotonic() + HEAD_TIMEOUT + 15
        everyone = range(len(trickler.conns))
        while trickler.open_count(everyone) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert trickler.open_count(everyone) == 0, f"still open: {set(everyone) - set(trickler.closed)}"
        for i in draggers:
            assert trickler.answers.get(i, b"").startswith(b"HTTP/1.1 408 "), trickler.answers.get(i)
        for i in (draggers[2], draggers[4]):  # ws.php's
            assert b'"stat":"fail"' in trickler.answers[i].replace(b" ", b""), trickler.answers[i]
        assert list((ready.datastore / TMP).iterdir()) == []  # nothing of the member's upload is left
        print(f"closed after (s): {sorted(round(t, 1) for t in trickler.closed.values())}")
        visit(served.base)
    finally:
        trickler.close()
        log = served.stop()
    assert "Traceback" not in log, log
    assert "slow-client guard off" not in log, log


def upload(head: str, field: str) -> tuple[bytes, bytes]:
    """A multipart upload after `head` (request line, Host and more): what it sends at once (its head,
    a `method` field, and the start of a file larger than the server reads ahead), and the rest of the
    file, which never ends within its declared length."""
    boundary = "slowUploadBoundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="method"\r\n\r\npwg.images.addSimple\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="slow.CR3"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + b"\x00" * (2 * BODY_PRELOAD)
    head += (
        f"Accept: application/json\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body) + 64 * BODY_PRELOAD}\r\n\r\n"
    )
    return head.encode() + body, b"\x00" * 1000
