"""Fixtures: each builds a real world on disk for a test — a datastore in tmp_path, a migrated
database (SQLite, or PostgreSQL where a test asks), users, and paths to the real camera files in
../shared/samples (read in place, never copied into the repository)."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image, ImageDraw

from photoflow import db as database
from photoflow import services
from photoflow.batch import collect_files, import_files
from photoflow.config import SECRET_FILE, Config, load_config
from photoflow.importer import ImportOptions
from photoflow.library import Library, open_library
from photoflow.models import Photo, User

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples"


def pytest_report_header() -> list[str]:
    return [f"samples: {SAMPLES} ({'found' if SAMPLES.is_dir() else 'MISSING'})"]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules that have `slow` tests run first, each module's tests still together and in their order:
    under pytest-xdist the long tests start while there is other work left to keep every worker busy,
    instead of finishing the run alone."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of real camera files; the suite cannot run without it."""
    if not SAMPLES.is_dir():
        pytest.fail(f"sample files not found at {SAMPLES}: put ../shared beside the repository")
    return SAMPLES


def make_jpegs(folder: Path, count: int, size: tuple[int, int] = (64, 48), start: int = 0) -> list[Path]:
    """`count` different small JPEGs (each draws its own number, so none is a duplicate)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + count):
        img = Image.new("RGB", size, ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256))
        ImageDraw.Draw(img).text((2, 2), str(i), fill=(255, 255, 255))
        if size[0] > 100:
            # Texture that JPEG cannot squeeze away, the same for the same number in every call.
            noise = Image.frombytes("L", size, random.Random(i).randbytes(size[0] * size[1]))
            img = Image.blend(img, noise.convert("RGB"), 0.3)
        path = folder / f"img_{i:04d}.jpg"
        img.save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


def make_config(tmp_path: Path, database_url: str | None = None, **extra: str) -> Config:
    """A configuration whose datastore (and SQLite database) live in `tmp_path`."""
    env = {"DATASTORE": str(tmp_path / "datastore"), "WORKERS": "2", **extra}
    if database_url:
        env["DATABASE"] = database_url
    return load_config(env)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A fresh datastore and SQLite database path in tmp_path (not yet migrated)."""
    return make_config(tmp_path)


class Worlds:
    """Libraries that many tests start from, each built once per test run by the same calls a test would
    make, then copied for each test that asks: a test gets its own datastore and SQLite file, opened
    afresh, exactly as if it had built them itself.

    "admin": migrated, with the `admin` account (an argon2 hash: 0.2 s); "stocked": that, plus the
    `stocked` albums and eleven imported camera JPEGs (several seconds). Under pytest-xdist the workers
    of one run share them: the first that needs one builds it, under a lock, in the run's own folder."""

    def __init__(self, root: Path, samples: Path) -> None:
        self.root = root
        self.samples = samples

    def copy_into(self, kind: str, config: Config) -> None:
        """Lay world `kind` into `config`'s datastore and database (the datastore's own secret is kept)."""
        datastore, template = self._ready(kind)

        def not_copied(folder: str, names: list[str]) -> list[str]:
            if Path(folder) != datastore:
                return []
            return [n for n in names if n == SECRET_FILE or n.startswith((".secret-", "photoflow.db"))]

        # copy, not copy2: the files are as new as a test's own would be.
        shutil.copytree(
            datastore, config.datastore, dirs_exist_ok=True, copy_function=shutil.copy, ignore=not_copied
        )
        shutil.copy(template, config.database)

    def _ready(self, kind: str) -> tuple[Path, Path]:
        """The datastore and the database file of world `kind`, built first if no worker has yet."""
        template = self.root / f"{kind}.db"
        with (self.root / f"{kind}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not template.exists():
                self._build(kind, template)
        return self.root / kind / "datastore", template

    def _build(self, kind: str, template: Path) -> None:
        shutil.rmtree(self.root / kind, ignore_errors=True)  # what a failed build left
        config = make_config(self.root / kind)
        database.open_database(config.database)
        database.upgrade()
        lib = open_library(config)
        try:
            _make_admin()
            if kind == "stocked":
                _stock(lib, self.samples)
        finally:
            lib.close()
        # One file holding the whole database (no -wal beside it), read through SQLite's backup API (a
        # thread of the import may still hold a connection to the original); it gets its name when whole.
        database.backup_sqlite(config.database, template)


@pytest.fixture(scope="session")
def worlds(tmp_path_factory: pytest.TempPathFactory, samples: Path) -> Worlds:
    """This test run's prebuilt libraries (shared by its xdist workers: their base folders are siblings)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent / "worlds"
        root.mkdir(exist_ok=True)
    else:
        root = tmp_path_factory.mktemp("worlds")
    return Worlds(root, samples)


def _world_for(request: pytest.FixtureRequest) -> str | None:
    """The prebuilt library a test's fixtures start from, if any."""
    for kind in ("stocked", "admin"):
        if kind in request.fixturenames:
            return kind
    return None


_COPIED = pytest.StashKey[str]()


@pytest.fixture
def library(request: pytest.FixtureRequest, config: Config) -> Iterator[Library]:
    """A migrated SQLite database and a prepared datastore in tmp_path."""
    kind = _world_for(request)
    if kind and not config.is_postgres:
        request.getfixturevalue("worlds").copy_into(kind, config)
        request.node.stash[_COPIED] = kind
    database.open_database(config.database)
    database.upgrade()
    lib = open_library(config)
    yield lib
    lib.close()


def _make_admin() -> User:
    return services.create_user("admin", "correct horse", admin=True)


@pytest.fixture
def admin(request: pytest.FixtureRequest, library: Library) -> User:
    """An admin account named `admin` with the password `correct horse`."""
    if request.node.stash.get(_COPIED, None):
        return User.get(User.name == "admin")
    return _make_admin()


def _stock(library: Library, samples: Path) -> None:
    admin = User.get(User.name == "admin")
    cameras = services.create_album("Cameras", admin.id, public=True)
    services.create_album("Family", admin.id)
    files = collect_files([samples / "jpeg" / "cameras"])
    summary = import_files(library, files, ImportOptions(owner_id=admin.id, album_id=cameras.id), workers=1)
    assert summary.count("imported") == 11, summary.results
    Photo.update(created_at=dt.datetime(2026, 5, 1, 9, 30)).execute()


@pytest.fixture
def stocked(request: pytest.FixtureRequest, library: Library, admin: User, samples: Path) -> Library:
    """The eleven camera JPEGs of the samples, imported one by one, in a public album "Cameras"; an empty
    private album "Family"; import times fixed (the overview shows them). Built once per session and
    copied (see Worlds)."""
    if request.node.stash.get(_COPIED, None) != "stocked":
        _stock(library, samples)
    return library


# -- PostgreSQL --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server():
    """One real PostgreSQL server for the session, on a private port and socket folder."""
    from tests.pgserver import PostgresServer, why_unavailable

    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def any_library(request, tmp_path: Path) -> Iterator[Library]:
    """A migrated library on SQLite and, as a second run, on a fresh PostgreSQL database."""
    if request.param == "postgres":
        server = request.getfixturevalue("pg_server")
        name = "t_" + os.urandom(6).hex()
        config = make_config(tmp_path, server.create_database(name))
    else:
        config = make_config(tmp_path)
    database.open_database(config.database)
    database.upgrade()
    lib = open_library(config)
    yield lib
    lib.close()
    if request.param == "postgres":
        server.drop_database(name)


# -- the command line as a person runs it ------------------------------------------------------------


def run_cli(
    config: Config,
    *args: str,
    input: str | None = None,
    timeout: float = 300,
    env_override: dict[str, str] | None = None,
):
    """Run `python -m photoflow ARGS` in a subprocess with `config`'s environment (or `env_override`)."""
    env = {
        **os.environ,
        **(env_override if env_override is not None else config.env()),
        "PYTHONPATH": str(REPO),
    }
    return subprocess.run(
        [sys.executable, "-m", "photoflow", *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


# -- the web app over real HTTP ------------------------------------------------------------------------


class Web:
    """A person's browser, reduced to HTTP: a cookie jar, the page's CSRF token, and form posts.

    `base` is the server's http://127.0.0.1:PORT; paths are relative to it.
    """

    def __init__(self, base: str) -> None:
        import requests

        self.base = base
        # What a browser sends as Origin: scheme and host, never a path (Photoflow may sit under one).
        parts = urlsplit(base)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self.http = requests.Session()
        self.csrf = ""

    def get(self, path: str, **kwargs):
        """GET a page, remembering the CSRF token it carries."""
        kwargs.setdefault("allow_redirects", False)
        answer = self.http.get(self.base + path, timeout=60, **kwargs)
        found = re.search(r'<meta name="csrf-token" content="([^"]+)"', answer.text or "")
        if found and "text/html" in answer.headers.get("Content-Type", ""):
            self.csrf = found.group(1)
        return answer

    def post(self, path: str, data=None, *, csrf: bool = True, origin: bool = True, **kwargs):
        """POST a form as the page would: its token, and the Origin a browser sends."""
        if csrf and not self.csrf:
            self.get("/login")
        data = dict(data or {})
        if csrf:
            data.setdefault("csrf", self.csrf)
        headers = kwargs.pop("headers", {})
        if origin:
            headers.setdefault("Origin", self.origin)
        kwargs.setdefault("allow_redirects", False)
        return self.http.post(self.base + path, data=data, headers=headers, timeout=300, **kwargs)

    def login(self, name: str, password: str):
        """Log in through the form; the answer is the redirect."""
        self.get("/login")
        answer = self.post("/login", {"name": name, "password": password})
        self.get("/")  # the session's own CSRF token
        return answer

    def upload(self, *paths: Path, album: int | None = None, names: list[str] | None = None):
        """Upload files as one shot, the way the upload tab does (one multipart request)."""
        files = [
            ("file", ((names[i] if names else path.name), path.open("rb"), "application/octet-stream"))
            for i, path in enumerate(paths)
        ]
        try:
            query = f"?album={album}" if album is not None else ""
            return self.http.post(
                self.base + "/upload" + query,
                files=files,
                headers={"X-CSRF-Token": self.csrf, "Origin": self.origin, "Accept": "application/json"},
                timeout=300,
            )
        finally:
            for _, (_, fh, _) in files:
                fh.close()


@contextlib.contextmanager
def serving(app) -> Iterator[str]:
    """A WSGI app on the cheroot server `photoflow serve` uses (its limits, its slow-client guard), on
    127.0.0.1 in this process; yields its base URL."""
    import threading

    from photoflow.server import build_server

    httpd = build_server(app, ("127.0.0.1", 0), threads=8)
    httpd.prepare()
    thread = threading.Thread(target=httpd.serve, daemon=True)
    thread.start()
    host, port = httpd.bind_addr[:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        httpd.stop()
        thread.join(timeout=10)


@pytest.fixture
def server(library: Library) -> Iterator[str]:
    """The real WSGI app (create_app) served by `serving`; yields its base URL."""
    from photoflow.web import create_app

    with serving(create_app(library)) as base:
        yield base


@pytest.fixture
def web(server: str) -> Web:
    """A visitor's browser on the test server."""
    return Web(server)


def web_as(server: str, name: str, password: str) -> Web:
    """A browser logged in as `name`."""
    browser = Web(server)
    answer = browser.login(name, password)
    assert answer.status_code == 303, answer.text[:500]
    return browser


# -- `photoflow serve` as a child process --------------------------------------------------------------


def _port_block() -> range:
    """This process's ports for servers it starts: below the kernel's ephemeral range (which port-0
    binds and every outgoing connection draw from, so a port probed free there can be taken before the
    child binds it), in a block of its own for each pytest-xdist worker (gw0, gw1, ...)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    index = int(worker) + 1 if worker.isdigit() else 0  # the controller (or a plain run) has block 0
    size = 1000
    start = 10_000 + index * size
    return range(start, start + size) if start + size <= low else range(0)


_BLOCK = _port_block()
_next_port = [random.randrange(len(_BLOCK)) if _BLOCK else 0]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, and no other port this process was given recently: the next
    free one of this worker's block (from a random start, so that two runs at once rarely meet), or
    one the kernel picks if there is no such block."""
    for _ in range(len(_BLOCK)):
        port = _BLOCK[_next_port[0] % len(_BLOCK)]
        _next_port[0] += 1
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(base: str, proc: subprocess.Popen) -> None:
    """Wait until the server at `base` answers /healthz (30 s at most, and only while `proc` runs)."""
    import urllib.request

    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2):
                return
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)


class Served:
    """`photoflow serve` in a child process on a free port of 127.0.0.1, with `config` and `env`."""

    def __init__(self, config: Config, **env: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full = {**os.environ, **config.env(), "PORT": str(self.port), "PYTHONPATH": str(REPO), **env}
        # Its log goes to a file: a pipe nobody reads until the end could fill and stall it.
        self.log = config.datastore.parent / f"serve-{self.port}.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "photoflow", "serve"], cwd=REPO, env=full, stderr=log, text=True
            )
        wait_up(self.base, self.proc)

    def stop(self) -> str:
        """Stop it (SIGTERM) if it still runs; its log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        return self.log.read_text()


# -- small things many tests need -------------------------------------------------------------------------


def png_bomb(width: int, height: int) -> bytes:
    """A valid PNG declaring width x height 1-bit pixels, all zero, in a few KB."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def eventually(condition: Callable[[], bool], seconds: float = 10) -> bool:
    """Whether `condition` holds within `seconds` (polled every 50 ms)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
