"""Derivative serving: requests per second for a cached 250 px derivative over HTTP keep-alive, against a
plain static file server serving the same file in the same run.

Set-up: a fresh temporary datastore and SQLite database (`python -m photoflow db upgrade`, `create-user`),
and one real photo (default ../shared/samples/jpeg/nature/prairie_falcon.jpg, `--sample PATH`) imported
with `python -m photoflow import-image --album Public --public`, so an anonymous visitor may see it.

Servers, all on 127.0.0.1, each started and stopped by this script:
- Photoflow: `python -m photoflow serve` (photoflow.server.make_server: the real application on cheroot,
  THREADS=--threads, default 16, Photoflow's own default), serving GET /d/250/<id>-<sha16>.jpg.
- nginx (Debian's, when installed): a configuration file in the temporary folder, `daemon off`, pid, logs
  and temporary paths there, no access log, sendfile on, `worker_processes auto` (Debian's default),
  serving the same derivative file (the datastore's own file, through `alias`) at the same URL with its
  own ETag. It is the floor: the rate of a plain static file server on this machine.
- cheroot-static: cheroot's WSGI server (same thread count) with a minimal static WSGI application that
  stats and opens the same file per request, with ETag and 304: what cheroot itself costs, without
  Photoflow's routing, session, visibility check and database. Reported, not used as the floor.

Load: wrk (Debian's `wrk`, C, epoll) when installed: --wrk-threads (default 2) threads over --connections
(default 8) keep-alive connections for --seconds (default 10) after a 2 s warm-up run, per target. Fewer
than 10 connections, because cheroot keeps at most keep_alive_conn_limit (10 by default; photoflow.server
raises it, the cheroot-static server does not) connections open and answers `Connection: close` past that,
so that clients must connect again. wrk shares the 2 cores with the server, but uses far less CPU per
request than any Python client would. When wrk is missing (or with `--client python`) a Python client is
used instead: one process per core, each with threads holding raw keep-alive sockets (a pre-built request,
responses read by Content-Length, a new connection after `Connection: close`, counted); it competes with the
server for the same cores much more, so its rates are lower, the floor's most of all.
All servers run at once (idle when not loaded); each round loads every target in turn, --rounds rounds
(default 2), and the best round counts for each target, so that a burst of other work on the machine
does not fall on one server only. Each target is checked once before the runs (status, body length,
ETag), and every run must end without errors and with about the bytes per response a correct answer has.

Measured, in requests per second: Photoflow as an anonymous visitor (GET, 200 with the 30 kB body), the
same with If-None-Match carrying the current ETag (304, no body), Photoflow as a logged-in member (a
session cookie made with photoflow.sessions.start), cheroot-static and nginx (200 and 304).

Where the time goes: the WSGI application is also called in this process, without any server, --calls
times (default 3000, on one thread, in 5 batches: the fastest batch counts) for the visitor's 200: its
rate is the ceiling of the application code alone on one core. The parts of a call are timed alone the
same way (building the SQL of access.photo_file_for, running it, peewee's handling of the row; the rest
is the difference; the thread keeps its database connection, as the server's threads do), and the same
calls under cProfile give the modules and functions that take the time, and the SQL statements and
SQLite connections per request.

The last line is `derivative: X req/s, floor (nginx): Y req/s, ratio: Z` (Z = X / Y; the cheroot-static
server stands in as the floor, and says so, when nginx is not installed).

    .venv/bin/python bench/derivative_bench.py [--seconds S] [--rounds N] [--connections N] [--threads N]
        [--client wrk|python] [--calls N]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import grp
import http.client
import io
import math
import os
import pstats
import pwd
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import REPO, photoflow

SAMPLE = REPO.parent / "shared" / "samples" / "jpeg" / "nature" / "prairie_falcon.jpg"
PASSWORD = "bench-password"
SIZE = "250"
WARMUP_SECONDS = 2
NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")
WRK_RATE = re.compile(r"Requests/sec:\s+([0-9.]+)")
WRK_DONE = re.compile(r"(\d+) requests in ([0-9.]+)(ms|s|m), ([0-9.]+)([KMGT]?B) read")
WRK_LATENCY = re.compile(r"Latency\s+([0-9.]+)(us|ms|s)")
WRK_ERRORS = re.compile(r"(Non-2xx or 3xx responses: \d+|Socket errors: [^\n]+)")
UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


# -- set-up -------------------------------------------------------------------------------------------


@dataclass
class Photo:
    """The imported photo and its 250 px derivative."""

    id: int
    sha256: str
    path: Path  # the derivative file in the datastore
    url: str


def import_photo(env: dict[str, str], sample: Path) -> Photo:
    """A fresh datastore and database, an admin, and `sample` imported into a public album."""
    photoflow(env, "db", "upgrade")
    photoflow(env, "create-user", "bench", "--admin", "--password-stdin", stdin=PASSWORD + "\n")
    photoflow(env, "import-image", str(sample), "--album", "Public", "--public")
    datastore = Path(env["DATASTORE"])
    with contextlib.closing(sqlite3.connect(datastore / "photoflow.db")) as conn:
        rows = conn.execute("SELECT id, sha256 FROM photo").fetchall()
    if len(rows) != 1:
        sys.exit(f"derivative_bench: expected one photo after the import, found {len(rows)}")
    photo_id, sha = rows[0]
    path = datastore / "derivatives" / sha[:2] / f"{sha}-{SIZE}.jpg"
    if not path.is_file():
        sys.exit(f"derivative_bench: the import made no {SIZE} px derivative ({path})")
    return Photo(photo_id, sha, path, f"/d/{SIZE}/{photo_id}-{sha[:16]}.jpg")


def member_cookie(env: dict[str, str]) -> str:
    """A logged-in member's session cookie, made the way a login makes it (photoflow.sessions.start)."""
    from photoflow import db as database
    from photoflow import sessions
    from photoflow.config import load_config
    from photoflow.models import User

    database.open_database(load_config(env).database)
    try:
        started = sessions.start(User.get(User.name == "bench"))
    finally:
        database.close_database()
    return f"pf_session={started.token}"


def free_port() -> int:
    """A port nobody listens on now (the servers that take a port number rather than port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, path: str, child: subprocess.Popen[Any], log: Path) -> None:
    """Wait until the server on `port` answers `path` with 200; stop if the child died."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.poll() is not None:
            sys.exit(f"derivative_bench: the server exited with {child.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", path)
                if conn.getresponse().status == 200:
                    return
            finally:
                conn.close()
        time.sleep(0.1)
    sys.exit(f"derivative_bench: the server on port {port} did not answer in 60 s:\n{log.read_text()}")


@contextlib.contextmanager
def running(
    command: list[str], env: dict[str, str] | None, port: int, ready_path: str, log: Path
) -> Iterator[subprocess.Popen[Any]]:  # fmt: skip
    """Start a server, wait until it answers, yield it; then SIGTERM (SIGKILL after 20 s) and wait."""
    with open(log, "w") as out:
        child = subprocess.Popen(command, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(port, ready_path, child, log)
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def nginx_binary() -> str | None:
    """Debian's nginx, when installed."""
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def nginx_config(folder: Path, port: int, photo: Photo) -> Path:
    """An nginx configuration that keeps everything in `folder` and serves the derivative at its URL."""
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(parents=True, exist_ok=True)
    config = folder / "nginx.conf"
    # Workers run as the invoking user (nginx's default, nobody, could not read the 0700 temporary folder).
    user = pwd.getpwuid(os.geteuid()).pw_name
    group = grp.getgrgid(os.getegid()).gr_name
    config.write_text(f"""daemon off;
master_process on;
{f"user {user} {group};" if os.geteuid() == 0 else ""}
worker_processes auto;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 65;
    client_body_temp_path {temp["body"]};
    proxy_temp_path {temp["proxy"]};
    fastcgi_temp_path {temp["fastcgi"]};
    uwsgi_temp_path {temp["uwsgi"]};
    scgi_temp_path {temp["scgi"]};
    types {{ image/jpeg jpg; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        location = {photo.url} {{
            alias {photo.path};
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
    }}
}}
""")
    return config


# -- cheroot-static, in a child process ---------------------------------------------------------------


def static_app(path: Path, url: str) -> Callable[..., Iterable[bytes]]:
    """The least a WSGI application serving one file with an ETag does."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ["PATH_INFO"] != url:
            start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "9")])
            return [b"not found"]
        stat = os.stat(path)
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        headers = [("ETag", etag), ("Cache-Control", "public, max-age=31536000, immutable")]
        if environ.get("HTTP_IF_NONE_MATCH") == etag:
            start_response("304 Not Modified", headers)
            return []
        headers += [("Content-Type", "image/jpeg"), ("Content-Length", str(stat.st_size))]
        start_response("200 OK", headers)
        handle = open(path, "rb")  # noqa: SIM115 (the server closes it)
        wrapper = environ.get("wsgi.file_wrapper")
        return wrapper(handle, 65536) if wrapper else iter(lambda: handle.read(65536), b"")

    return app


def static_child(path: str, url: str, threads: int) -> None:
    """The child: cheroot serving `path` at `url` on a free port (printed) until stdin closes."""
    from cheroot import wsgi

    server = wsgi.Server(("127.0.0.1", 0), static_app(Path(path), url), numthreads=threads)
    server.prepare()
    serving = threading.Thread(target=server.serve, daemon=True)
    serving.start()
    print(server.bind_addr[1], flush=True)
    sys.stdin.read()
    server.stop()
    serving.join(timeout=10)


@contextlib.contextmanager
def cheroot_static(photo: Photo, threads: int, log: Path) -> Iterator[int]:
    """Start the cheroot-static child; yield its port; stop it."""
    with open(log, "w") as err:
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--static-child", str(photo.path), photo.url,
             str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, cwd=REPO,
        )  # fmt: skip
    try:
        assert child.stdout is not None
        line = child.stdout.readline().strip()
        if not line.isdigit():
            child.wait(timeout=30)
            sys.exit(f"derivative_bench: cheroot-static did not start:\n{log.read_text()}")
        yield int(line)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# -- load ---------------------------------------------------------------------------------------------


@dataclass
class Target:
    """One thing to load: a server, a path, the headers a client sends, what it must answer."""

    name: str
    port: int
    path: str
    headers: dict[str, str]
    status: int = 200
    response_bytes: int = 0  # status line, headers and body of one correct answer (set by check())

    def check(self, body_length: int) -> str:
        """One request by hand: the status and body length must be right. The response's ETag."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", self.path, headers=self.headers)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        expected = body_length if self.status == 200 else 0
        if response.status != self.status or len(body) != expected:
            sys.exit(
                f"derivative_bench: {self.name}: GET {self.path} gave {response.status} with "
                f"{len(body)} bytes, expected {self.status} with {expected}"
            )
        head = len(f"HTTP/1.1 {response.status} {response.reason}\r\n") + 2
        head += sum(len(f"{k}: {v}\r\n") for k, v in response.getheaders())
        self.response_bytes = head + len(body)
        return response.headers.get("ETag", "")


@dataclass
class Rate:
    """One load run's result."""

    rate: float
    requests: int
    bytes_per_response: float
    latency_ms: float | None
    client: str
    closed: int | None = None  # connections the server closed (Connection: close); wrk does not say


def wrk_run(target: Target, seconds: int, connections: int, threads: int) -> Rate:
    """Load `target` with wrk; any error or a wrong response size stops the benchmark."""
    command = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"]
    for name, value in target.headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(f"http://127.0.0.1:{target.port}{target.path}")
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    rate, finished = WRK_RATE.search(output), WRK_DONE.search(output)
    if done.returncode != 0 or not rate or not finished:
        sys.exit(f"derivative_bench: wrk failed on {target.name}:\n{output}")
    errors = WRK_ERRORS.findall(output)
    if errors:
        sys.exit(f"derivative_bench: {target.name}: {'; '.join(errors)}\n{output}")
    requests = int(finished.group(1))
    read = float(finished.group(4)) * UNITS[finished.group(5)]
    latency = WRK_LATENCY.search(output)
    latency_ms = None
    if latency:
        latency_ms = float(latency.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[latency.group(2)]
    return Rate(float(rate.group(1)), requests, read / max(1, requests), latency_ms, "wrk")


def _python_worker(job: tuple[int, bytes, int, float]) -> tuple[int, int, int, float, str]:
    """One client process: `connections` threads, each a keep-alive socket sending `request` in a loop.

    A `Connection: close` answer (cheroot's beyond keep_alive_conn_limit) is followed by a new connection,
    counted. Returns (responses, bytes, connections closed by the server, seconds, errors).
    """
    port, request, connections, seconds = job
    counts = [0] * connections
    received = [0] * connections
    closed = [0] * connections
    errors: list[str] = []

    def loop(n: int) -> None:
        deadline = time.perf_counter() + seconds
        try:
            while time.perf_counter() < deadline:
                with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                    reader = sock.makefile("rb", buffering=65536)
                    keep = True
                    while keep and time.perf_counter() < deadline:
                        sock.sendall(request)
                        status = reader.readline()
                        length, size = 0, len(status)
                        while (line := reader.readline()) not in (b"\r\n", b""):
                            size += len(line)
                            name = line[:16].lower()
                            if name.startswith(b"content-length:"):
                                length = int(line[15:])
                            elif name.startswith(b"connection:") and b"close" in line.lower():
                                keep = False
                        body = reader.read(length) if length else b""
                        if not status.startswith((b"HTTP/1.1 200", b"HTTP/1.1 304")) or len(body) != length:
                            raise RuntimeError(f"bad answer: {status!r}")
                        counts[n] += 1
                        received[n] += size + 2 + length
                    closed[n] += not keep
        except (OSError, RuntimeError) as exc:
            errors.append(str(exc))

    start = time.perf_counter()
    workers = [threading.Thread(target=loop, args=(n,)) for n in range(connections)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    return sum(counts), sum(received), sum(closed), elapsed, "; ".join(errors[:3])


def python_run(target: Target, seconds: int, connections: int, processes: int) -> Rate:
    """Load `target` with the Python client: `processes` processes sharing `connections` sockets."""
    lines = [
        f"GET {target.path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in target.headers.items()),
    ]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    shares = [connections // processes + (1 if n < connections % processes else 0) for n in range(processes)]
    jobs = [(target.port, request, share, seconds) for share in shares if share]
    with ProcessPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(_python_worker, jobs))
    errors = [error for *_, error in results if error]
    if errors:
        sys.exit(f"derivative_bench: {target.name}: {errors[0]}")
    requests = sum(count for count, *_ in results)
    rate = sum(count / elapsed for count, _, _, elapsed, _ in results)
    received = sum(size for _, size, *_ in results)
    closed = sum(closes for _, _, closes, _, _ in results)
    return Rate(rate, requests, received / max(1, requests), None, "python", closed)


def load(target: Target, args: argparse.Namespace) -> Rate:
    """A warm-up run, then the measured run, with the chosen client; the response size is checked."""
    if args.client == "wrk":
        run = lambda seconds: wrk_run(target, seconds, args.connections, args.wrk_threads)  # noqa: E731
    else:
        run = lambda seconds: python_run(target, seconds, args.connections, os.cpu_count() or 1)  # noqa: E731
    run(WARMUP_SECONDS)
    result = run(args.seconds)
    # wrk rounds what it read to two decimals of its unit: allow for that, and catch any wrong answer.
    if abs(result.bytes_per_response - target.response_bytes) > 0.05 * target.response_bytes + 16:
        sys.exit(
            f"derivative_bench: {target.name}: {result.bytes_per_response:.0f} bytes per response, "
            f"expected {target.response_bytes}"
        )
    return result


def describe(target: Target, results: list[Rate]) -> str:
    """One target's line: the best round's rate, every round's, and the best round's details."""
    best = max(results, key=lambda r: r.rate)
    rounds = ", ".join(f"{r.rate:,.0f}" for r in results)
    latency = f", mean latency {best.latency_ms:.2f} ms" if best.latency_ms is not None else ""
    if best.closed:
        latency += f", {best.closed:,} connections closed by the server"
    return (
        f"  {target.name:<40} {best.rate:>8,.0f} req/s  (rounds: {rounds}; {best.requests:,} requests, "
        f"{target.response_bytes:,} B per response{latency})"
    )


# -- where the time goes ------------------------------------------------------------------------------


def app_calls(env: dict[str, str], photo: Photo, calls: int) -> tuple[float, str, str]:
    """Call the WSGI application in this process: its rate on one thread, a breakdown, a cProfile summary.

    The calls run on a second thread while this one keeps the connection open_library made, as in the
    server (whose main thread keeps it): so closing a request's connection is never the last close of the
    database, which would checkpoint the WAL and delete it.
    """
    from photoflow import db as database
    from photoflow.access import ANONYMOUS, visible_photos
    from photoflow.config import load_config
    from photoflow.library import open_library
    from photoflow.models import Photo as PhotoModel
    from photoflow.web import create_app

    app = create_app(open_library(load_config(env)))
    statuses: list[str] = []

    def start_response(status: str, _headers: list[tuple[str, str]], _exc: Any = None) -> Callable[..., None]:
        statuses.append(status)
        return lambda _data: None

    def call_once() -> None:
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": photo.url, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8080", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "127.0.0.1:8080",
            "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(),
            "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": True,
            "wsgi.multiprocess": False, "wsgi.run_once": False,
        }  # fmt: skip
        body = app(environ, start_response)
        try:
            for _chunk in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    def per_call(action: Callable[[], object]) -> float:
        """Microseconds per call of `action`: `calls` calls in 5 batches, the fastest batch (the least
        disturbed by other work on the machine, so that the parts, timed apart, add up)."""
        batch = max(1, calls // 5)
        best = math.inf
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(batch):
                action()
            best = min(best, (time.perf_counter() - start) / batch)
        return best * 1e6

    def lookup():  # what the route asks: access.photo_file_for, a new query each time as there
        return PhotoModel.select(PhotoModel.sha256, PhotoModel.public).where(
            (PhotoModel.id == photo.id) & visible_photos(ANONYMOUS)
        )

    results: dict[str, Any] = {}

    def measure() -> None:
        for _ in range(100):
            call_once()
        results["call"] = per_call(call_once)
        results["build"] = per_call(lambda: lookup().sql())
        sql, params = lookup().sql()
        cursor = database.db.connection().cursor()
        results["execute"] = per_call(lambda: cursor.execute(sql, params).fetchall())
        whole = per_call(lambda: lookup().tuples().first())
        results["rows"] = whole - results["build"] - results["execute"]
        cursor.close()
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(calls):
            call_once()
        profile.disable()
        results["profile"] = profile

    worker = threading.Thread(target=measure)
    worker.start()
    worker.join()
    database.close_database()
    if set(statuses) != {"200 OK"} or "profile" not in results:
        sys.exit(f"derivative_bench: the application answered {sorted(set(statuses))} in-process")
    call = results["call"]
    parts = [
        ("building the SQL of access.photo_file_for(visitor) (peewee: 2 columns, the public flag)",
         results["build"]),
        ("running that statement in SQLite and fetching the row", results["execute"]),
        ("peewee's handling of the cursor and the row", results["rows"]),
    ]  # fmt: skip
    rest = call - sum(us for _, us in parts)
    lines = [f"      {us:6.0f} us {us / call:6.1%}  {what}" for what, us in parts]
    lines.append(
        f"      {rest:6.0f} us {rest / call:6.1%}  the rest: bottle's routing and hooks, the session "
        "cookie, headers, resolving, stat and open of the file"
    )
    return 1e6 / call, "\n".join(lines), summarise(results["profile"], calls)


def summarise(profile: cProfile.Profile, calls: int) -> str:
    """Self time by module and the costliest functions, per request; SQL statements and connections."""
    stats = pstats.Stats(profile)
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in entries.values())
    by_module: dict[str, float] = {}
    for (filename, _line, _name), (_cc, _nc, tt, _ct, _callers) in entries.items():
        by_module[_module(filename)] = by_module.get(_module(filename), 0.0) + tt
    lines = [f"    profiled: {total / calls * 1e6:.0f} us per request (cProfile's overhead included)"]
    lines.append("    self time by module:")
    for name, tt in sorted(by_module.items(), key=lambda kv: -kv[1])[:10]:
        lines.append(f"      {tt / total:6.1%}  {name}")
    lines.append(
        "    costliest calls, cumulative, per request (a call chain shown once, by its outermost call):"
    )
    ranked = sorted(entries.items(), key=lambda kv: -kv[1][3])
    shown, last = 0, math.inf
    for (filename, line, name), (_cc, nc, _tt, ct, _callers) in ranked:
        module = _module(filename)
        if module in ("profiling", "bench") or name in ("<lambda>", "wrapper") or ct / total > 0.97:
            continue
        if ct > 0.95 * last:
            continue  # the same time as the call just shown: one of its callees, one level down
        last = ct
        lines.append(f"      {ct / calls * 1e6:7.0f} us  {nc / calls:5.1f} calls  {module}:{name}:{line}")
        shown += 1
        if shown == 10:
            break
    lines.append("    largest self times, per request:")
    by_self = sorted(entries.items(), key=lambda kv: -kv[1][2])
    for (filename, line, name), (_cc, nc, tt, _ct, _callers) in by_self[:10]:
        where = name if filename == "~" else f"{_module(filename)}:{name}:{line}"
        lines.append(f"      {tt / calls * 1e6:7.0f} us  {nc / calls:5.1f} calls  {where}")
    executes = sum(nc for (f, _l, n), (_cc, nc, *_rest) in entries.items() if f == "~" and "execute" in n)
    connects = sum(nc for (f, _l, n), (_cc, nc, *_rest) in entries.items() if f == "~" and "connect" in n)
    lines.append(
        f"    per request: {executes / calls:.1f} SQL statements (pragmas included), "
        f"{connects / calls:.1f} SQLite connections opened"
    )
    return "\n".join(lines)


def _module(filename: str) -> str:
    if filename == "~":
        return "built-in (C: sqlite3, os, ...)"
    path = Path(filename)
    if "site-packages" in path.parts:
        return path.parts[path.parts.index("site-packages") + 1].removesuffix(".py")
    if REPO in path.parents:
        relative = path.relative_to(REPO)
        return "bench" if relative.parts[0] == "bench" else str(relative.with_suffix(""))
    if filename.startswith("<") or "cProfile" in filename or "profile" in path.stem:
        return "profiling"
    return f"stdlib {path.stem}"


def start_servers(
    servers: contextlib.ExitStack, env: dict[str, str], port: int, photo: Photo, cookie: str,
    args: argparse.Namespace, nginx: str | None, tmp: Path,
) -> dict[str, Target]:  # fmt: skip
    """Start Photoflow, cheroot-static and nginx (when installed); check each; the targets to load."""
    size = photo.path.stat().st_size
    targets: dict[str, Target] = {}
    servers.enter_context(
        running([sys.executable, "-m", "photoflow", "serve"], env, port, "/healthz", tmp / "photoflow.log")
    )
    name = f"Photoflow (THREADS={args.threads}): "
    visitor = Target(name + "visitor, 200", port, photo.url, {})
    etag = visitor.check(size)
    targets["photoflow"] = visitor
    targets["photoflow 304"] = Target(name + "visitor, 304", port, photo.url, {"If-None-Match": etag}, 304)
    targets["photoflow member"] = Target(name + "member, 200", port, photo.url, {"Cookie": cookie})

    static_port = servers.enter_context(cheroot_static(photo, args.threads, tmp / "static.log"))
    static = Target(f"cheroot-static ({args.threads} threads): 200", static_port, photo.url, {})
    static_etag = static.check(size)
    targets["cheroot"] = static
    targets["cheroot 304"] = Target(
        f"cheroot-static ({args.threads} threads): 304",
        static_port,
        photo.url,
        {"If-None-Match": static_etag},
        304,
    )

    if nginx is not None:
        nginx_port = free_port()
        folder = tmp / "nginx"
        config = nginx_config(folder, nginx_port, photo)
        command = [nginx, "-p", str(folder), "-c", str(config), "-e", str(folder / "error.log")]
        servers.enter_context(running(command, None, nginx_port, photo.url, tmp / "nginx.log"))
        plain = Target("nginx: 200", nginx_port, photo.url, {})
        nginx_etag = plain.check(size)
        targets["nginx"] = plain
        targets["nginx 304"] = Target("nginx: 304", nginx_port, photo.url, {"If-None-Match": nginx_etag}, 304)
    for target in targets.values():
        target.check(size)
    return targets


# -- main ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, run the benchmark, print its figures."""
    parser = argparse.ArgumentParser(
        description="Requests per second for a cached 250 px derivative from Photoflow over HTTP "
        "keep-alive, against nginx (the floor) and cheroot serving the same file, in the same run."
    )
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="the picture to import (a JPEG)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each measured run (default 10)")
    parser.add_argument(
        "--connections", type=int, default=8, help="concurrent keep-alive connections (default 8)"
    )
    parser.add_argument("--threads", type=int, default=16, help="cheroot threads: THREADS (default 16)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds over every target; the best counts (2)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk's threads (default 2)")
    parser.add_argument(
        "--client", choices=("wrk", "python"), default=None, help="load generator (default: wrk if installed)"
    )
    parser.add_argument(
        "--calls", type=int, default=3000, help="in-process application calls to time and profile (3000)"
    )
    parser.add_argument("--static-child", nargs=3, metavar=("FILE", "URL", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.static_child:
        path, url, threads = args.static_child
        static_child(path, url, int(threads))
        return
    if (
        args.seconds <= 0
        or args.connections < 1
        or args.threads < 1
        or args.calls < 1
        or args.wrk_threads < 1
        or args.rounds < 1
    ):
        parser.error(
            "--seconds, --connections, --threads, --wrk-threads, --rounds and --calls must be positive"
        )
    if args.client is None:
        args.client = "wrk" if shutil.which("wrk") else "python"
    elif args.client == "wrk" and not shutil.which("wrk"):
        parser.error("wrk is not installed (apt-get install wrk), use --client python")
    if not args.sample.is_file():
        sys.exit(f"derivative_bench: {args.sample} is missing: put ../shared beside the repository")
    nginx = nginx_binary()

    cores = os.cpu_count() or 1
    why = "--client python" if shutil.which("wrk") else "wrk is not installed: apt-get install wrk"
    client = (
        f"wrk, {args.wrk_threads} threads"
        if args.client == "wrk"
        else f"Python client, {cores} processes ({why})"
    )
    print(
        f"photoflow derivative benchmark: {cores} cores; {client}, {args.connections} keep-alive "
        f"connections, {args.seconds} s per run after a {WARMUP_SECONDS} s warm-up"
    )
    with tempfile.TemporaryDirectory(prefix="photoflow-derivative-bench-") as folder:
        tmp = Path(folder)
        port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE", "SECRET")}
        env.update(
            DATASTORE=str(tmp / "datastore"), HOST="127.0.0.1", PORT=str(port), THREADS=str(args.threads),
            PYTHONPATH=str(REPO), WORKERS="1",
        )  # fmt: skip
        photo = import_photo(env, args.sample)
        size = photo.path.stat().st_size
        print(
            f"photo: {args.sample.name} imported into a public album; GET {photo.url}: {size:,} B "
            f"({photo.path.relative_to(tmp)})"
        )
        cookie = member_cookie(env)
        with contextlib.ExitStack() as servers:
            targets = start_servers(servers, env, port, photo, cookie, args, nginx, tmp)
            results: dict[str, list[Rate]] = {key: [] for key in targets}
            seconds = len(targets) * args.rounds * (args.seconds + WARMUP_SECONDS)
            print(f"loading {len(targets)} targets, {args.rounds} rounds: about {seconds} s", flush=True)
            for _round in range(args.rounds):
                for key, target in targets.items():
                    results[key].append(load(target, args))
        rates = {key: max(r.rate for r in rounds) for key, rounds in results.items()}
        print(
            f"requests per second, best of {args.rounds} rounds (each round loads every target in turn, so "
            "that a burst of other load on the machine does not fall on one server only):"
        )
        for key, target in targets.items():
            print(describe(target, results[key]))
        if nginx is None:
            print("nginx: not installed (apt-get install nginx-light): cheroot-static stands in as the floor")

        print(f"where the time goes: the WSGI application called in this process, {args.calls:,} times:")
        app_rate, breakdown, profile = app_calls(env, photo, args.calls)
        http_us, app_us = 1e6 / rates["photoflow"], 1e6 / app_rate
        print(
            f"    the application alone (fastest of 5 batches): {app_rate:,.0f} calls/s on one thread, "
            f"{app_us:.0f} us a call (over HTTP: {http_us:.0f} us a request; cheroot-static: "
            f"{1e6 / rates['cheroot']:.0f} us)"
        )
        print("    of which, each part timed alone the same way:")
        print(breakdown)
        print(profile)

    floor_name = "nginx" if "nginx" in rates else "cheroot-static"
    floor = rates["nginx" if "nginx" in rates else "cheroot"]
    floor_304 = rates["nginx 304" if "nginx" in rates else "cheroot 304"]
    print(
        f"ratios to the floor ({floor_name}): 200 {rates['photoflow'] / floor:.3f}, "
        f"304 {rates['photoflow 304'] / floor_304:.3f}, member 200 {rates['photoflow member'] / floor:.3f}; "
        f"to cheroot-static: 200 {rates['photoflow'] / rates['cheroot']:.2f}, "
        f"304 {rates['photoflow 304'] / rates['cheroot 304']:.2f}"
    )
    print(
        f"derivative: {rates['photoflow']:.0f} req/s, floor ({floor_name}): {floor:.0f} req/s, "
        f"ratio: {rates['photoflow'] / floor:.3f}"
    )


if __name__ == "__main__":
    main()
