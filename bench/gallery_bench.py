"""Gallery with 100,000 photos: server time for the gallery page and the first screen's data, and the bytes
sent before the first thumbnails can show; the same for a library of 100 photos in the same run.

The libraries. Each is a fresh datastore and SQLite database in a temporary folder (`photoflow.db.upgrade()`
on DATASTORE=<tmp>/<name>/datastore), one admin made by `photoflow.services.create_user`, eight albums
(four public, four private) made by `photoflow.services.create_album`, and N photos (default 100,000,
`--photos N`) inserted directly with peewee's insert_many (statements of 1,000 rows, transactions of
5,000), as are their album links. The photos are spread over ten years (for N below 100,000 over
proportionally fewer days, at least 30): about 60% of the days have photos, their counts drawn from a
long-tailed distribution with a few event days (for 100,000: a median of about 30 on a day with photos,
one such day in ten above 90, the busiest near a thousand);
0.3% have no date, 4% a level above 0 (members only); each day's photos go to one album, or to none
for one day in five, and 5% are also in a public "Best of" album. Photo dimensions are those of the
sample pictures in ../shared/samples/jpeg/nature/, scaled to a 6000 px long edge, so that each photo
has a real derivative set of the same shape (below). The 100-photo library is built the same way.

The server. The real application, `photoflow.server.make_server(config)` (create_app(open_library(config))
on cheroot with THREADS threads, default 16), rebound to 127.0.0.1 on a free port, in a child process
(this script with a hidden option) so that the measuring client does not share its interpreter lock.
The child wraps the WSGI application in a middleware that runs it to the end (its body included), then
adds a `Server-Timing: app;dur=MS` header: the time spent inside the application. Wall times are taken
by this process over one HTTP/1.1 keep-alive connection per viewer (http.client), from sending the
request to having read the whole body: loopback transfer and cheroot's work included.

What is measured, for a logged-in member (logged in through the real /login form) and for an anonymous
visitor (who keeps the cookie the site sets, as a browser would), after 5 warm-up requests:
- GET /: the gallery page, whose inline JSON carries the first screen (gallery.first_screen);
- GET /api/timeline, warm (the process's timeline cache valid) and cold: before each cold request the
  gallery generation is moved by `UPDATE photo SET level = level` on one photo (a trigger bumps it, as any
  change does), so the timeline is computed again from the whole library;
- GET /api/days for the days after the first screen, exactly as static/js/grid.js asks for them: from the
  first day the page did not bring whole, consecutive days up to 400 photos and 380 days (the largest
  batch it asks for when those days are near the viewport).
Each is timed over --requests requests (default 50; --cold requests for the cold timeline, default 20)
and reported as median and 95th percentile of the wall time, and median time inside the application.

"First-screen data" in the last line is the slower of the cold /api/timeline and the /api/days batch
(medians, the worse of the two viewers): what the page asks for next, the timeline as the first visitor
after a change gets it. "Page" is the slower median of GET / over the two viewers.

Bytes before the first thumbnails show: what a browser with an empty cache must receive before pig.js can
draw the blurred 20 px placeholders of the first screen: the HTML page (its inline JSON counted apart
too), the CSS and the scripts it loads (static/css/photoflow.css, static/js/common.js, static/js/grid.js
and /static/vendor/pig.js), and the 20 px placeholder of every photo of the first screen (an upper bound:
pig.js loads those within 1,200 px of the viewport). Sizes are bytes on the wire as served (status line
and headers included, the benchmark's Server-Timing header left out) for a client that accepts gzip; the
Content-Encoding the server used is printed, with the gzip sizes of the HTML, CSS and scripts alongside
for what compression would save. The placeholders are real files: each sample picture is rendered once
with photoflow.imaging.render, and its outputs are written into the datastore as the derivatives of the
first-screen photos of its shape, which are then fetched through /d/20/<id>-<sha16>.jpg; the 250 px and
500 px thumbnails that replace them (the size grid.js picks depends on the window) are fetched and
reported too. The icon is not counted.

The last line is `gallery: page X ms, first-screen data Y ms (100k photos; 100 photos: page X2 ms, data
Y2 ms), bytes before first thumbnails: B` (B for the large library, the worse of the two viewers).

    .venv/bin/python bench/gallery_bench.py [--photos N] [--small N] [--requests N] [--cold N]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import hashlib
import http.client
import json
import math
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples" / "jpeg" / "nature"
SEED = 20240601
LAST_DAY = dt.date(2025, 6, 14)  # the newest day of the generated libraries (fixed: runs compare)
YEARS_DAYS = 3653  # ten years
FULL = 100_000  # the library size that spans the whole ten years
PASSWORD = "bench-password"
ADMIN = "bench"
LONG_EDGE = 6000
ALBUMS = (  # (title, public)
    ("Family", False),
    ("Travels", True),
    ("Garden", True),
    ("Work", False),
    ("Friends", False),
    ("Street", True),
    ("Drafts", False),
    ("Best of", True),  # 5% of the photos, besides their day's album
)
BEST_OF = len(ALBUMS) - 1
STATEMENT_ROWS = 1000  # rows per INSERT (SQLite's limit of bound variables)
TRANSACTION_ROWS = 5000
GRID_BATCH, GRID_SPAN = 400, 380  # static/js/grid.js: BATCH, and the days one batch may span
STATIC = ("/static/css/photoflow.css", "/static/js/common.js", "/static/js/grid.js", "/static/vendor/pig.js")
WARMUP = 5
FIRST_SCREEN_JSON = re.compile(r'<script type="application/json" id="first-screen">(.*?)</script>', re.S)
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')
SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


# -- the libraries ------------------------------------------------------------------------------------


@dataclass
class Sample:
    """A real picture and its rendered derivatives (bytes by size name)."""

    name: str
    width: int
    height: int
    outputs: dict[str, bytes]


def render_samples() -> list[Sample]:
    """Render every sample picture once with photoflow.imaging.render."""
    from photoflow import imaging

    paths = sorted(SAMPLES.glob("*.jpg"))
    if not paths:
        sys.exit(f"gallery_bench: no sample pictures in {SAMPLES}: put ../shared beside the repository")
    samples = []
    for path in paths:
        rendered = imaging.render(path)
        samples.append(Sample(path.name, rendered.width, rendered.height, rendered.outputs))
    return samples


def sha_of(index: int) -> str:
    """The (made-up) SHA-256 of photo number `index`."""
    return hashlib.sha256(f"photoflow-bench-{SEED}-{index}".encode()).hexdigest()


def sample_of(sha: str, samples: Sequence[Sample]) -> Sample:
    """The sample whose shape (and derivatives) the photo with this hash has."""
    return samples[int(sha[:8], 16) % len(samples)]


@dataclass
class Shape:
    """What a generated library holds."""

    photos: int
    span_days: int
    active_days: int
    busiest_day: int
    undated: int
    hidden: int
    in_albums: int
    visible_to_visitors: int
    seconds: float = 0.0


@dataclass
class Planned:
    """One photo to insert."""

    index: int
    taken: dt.datetime | None
    album: int | None  # index into ALBUMS
    best_of: bool
    level: int


def plan(count: int, rng: random.Random) -> list[Planned]:
    """The photos of a library of `count`, in the order they are inserted (not the order they were taken)."""
    span = max(30, min(YEARS_DAYS, round(count * YEARS_DAYS / FULL)))
    undated = max(1, round(count * 0.003))
    days = [LAST_DAY - dt.timedelta(days=n) for n in range(span)]
    active = [d for d in days[1:] if rng.random() < 0.6]
    active.insert(0, LAST_DAY)  # the newest day has photos: the gallery opens on it
    weights = [rng.lognormvariate(1.0, 0.8) * (4 if rng.random() < 0.03 else 1) for _ in active]
    chosen = Counter(rng.choices(range(len(active)), weights, k=count - undated))
    albums = [None if rng.random() < 0.2 else rng.randrange(BEST_OF) for _ in active]
    planned: list[Planned] = []
    for n, taken_count in chosen.items():
        day = active[n]
        for _ in range(taken_count):
            second = rng.randrange(7 * 3600, 22 * 3600)
            taken = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=second)
            planned.append(Planned(0, taken, albums[n], rng.random() < 0.05, _level(rng)))
    for _ in range(undated):
        planned.append(Planned(0, None, rng.randrange(BEST_OF), False, _level(rng)))
    rng.shuffle(planned)  # imports do not arrive in capture order
    for index, photo in enumerate(planned, 1):
        photo.index = index
    return planned


def _level(rng: random.Random) -> int:
    return rng.choice((1, 2, 4, 8)) if rng.random() < 0.04 else 0


def build_library(
    root: Path, count: int, samples: Sequence[Sample], database_url: str | None = None
) -> tuple[dict[str, str], Shape]:
    """A fresh datastore and database under `root` holding `count` photos; its environment and shape.

    The database is SQLite in the datastore unless `database_url` names another (PostgreSQL)."""
    from photoflow import db as database
    from photoflow import services
    from photoflow.config import load_config
    from photoflow.models import Photo, PhotoAlbum

    start = time.perf_counter()
    env = {"DATASTORE": str(root / "datastore"), "HOST": "127.0.0.1"}
    if database_url:
        env["DATABASE"] = database_url
    config = load_config(env)
    database.open_database(config.database)
    try:
        database.upgrade()
        admin = services.create_user(ADMIN, PASSWORD, admin=True)
        album_ids = [services.create_album(title, admin.id, public=public).id for title, public in ALBUMS]
        planned = plan(count, random.Random(f"{SEED}-{count}"))
        fields = [
            Photo.owner, Photo.sha256, Photo.file_name, Photo.pair_key, Photo.kind, Photo.format,
            Photo.width, Photo.height, Photo.taken_at, Photo.date_source, Photo.camera_make,
            Photo.camera_model, Photo.level, Photo.title, Photo.description, Photo.metadata_json,
            Photo.color_labels, Photo.created_at, Photo.updated_at,
        ]  # fmt: skip
        imported = dt.datetime(2025, 6, 20, 12, 0)
        rows = []
        for photo in planned:
            sha = sha_of(photo.index)
            sample = sample_of(sha, samples)
            scale = LONG_EDGE / max(sample.width, sample.height)
            rows.append((
                admin.id, sha, f"IMG_{photo.index:06d}.JPG", f"IMG_{photo.index:06d}", "picture", "JPEG",
                round(sample.width * scale), round(sample.height * scale), photo.taken,
                "DateTimeOriginal" if photo.taken else None, "NIKON CORPORATION", "NIKON D90", photo.level,
                "", "", "{}", "", imported, imported,
            ))  # fmt: skip
        links = []
        for photo in planned:
            if photo.album is not None:
                links.append((photo.index, album_ids[photo.album], imported))
            if photo.best_of:
                links.append((photo.index, album_ids[BEST_OF], imported))
        _insert(database.db, Photo, fields, rows)
        _insert(database.db, PhotoAlbum, [PhotoAlbum.photo, PhotoAlbum.album, PhotoAlbum.added_at], links)
        # The photos got ids 1..N in insertion order (a fresh table): check, since the links rely on it.
        if Photo.select().count() != count or Photo.get(Photo.sha256 == sha_of(count)).id != count:
            sys.exit("gallery_bench: the photos did not get the ids 1..N the album links assume")
    finally:
        database.close_database()
    per_day = Counter(p.taken.date() for p in planned if p.taken is not None)
    public = {i for i, (_title, is_public) in enumerate(ALBUMS) if is_public}
    visible = sum(
        1 for p in planned if p.level == 0 and (p.best_of or (p.album is not None and p.album in public))
    )
    shape = Shape(
        photos=count,
        span_days=max(30, min(YEARS_DAYS, round(count * YEARS_DAYS / FULL))),
        active_days=len(per_day),
        busiest_day=max(per_day.values()),
        undated=sum(1 for p in planned if p.taken is None),
        hidden=sum(1 for p in planned if p.level > 0),
        in_albums=sum(1 for p in planned if p.album is not None or p.best_of),
        visible_to_visitors=visible,
        seconds=time.perf_counter() - start,
    )
    return env, shape


def _insert(db: Any, model: Any, fields: list[Any], rows: list[tuple[Any, ...]]) -> None:
    for first in range(0, len(rows), TRANSACTION_ROWS):
        with db.atomic():
            chunk = rows[first : first + TRANSACTION_ROWS]
            for at in range(0, len(chunk), STATEMENT_ROWS):
                model.insert_many(chunk[at : at + STATEMENT_ROWS], fields=fields).execute()


def write_derivatives(datastore: Path, entries: Iterable[list[Any]], samples: Sequence[Sample]) -> int:
    """Give the photos of these grid entries real derivative files (their sample's); how many photos."""
    database = sqlite3.connect(datastore / "photoflow.db")
    written = 0
    try:
        for entry in entries:
            row = database.execute("SELECT sha256 FROM photo WHERE id = ?", (entry[0],)).fetchone()
            sha = row[0]
            folder = datastore / "derivatives" / sha[:2]
            folder.mkdir(parents=True, exist_ok=True)
            for size, data in sample_of(sha, samples).outputs.items():
                (folder / f"{sha}-{size}.jpg").write_bytes(data)
            written += 1
    finally:
        database.close()
    return written


def bump_generation(database: Path) -> int:
    """Move the gallery generation the way any change does (a trigger on photo.level); the new value."""
    with contextlib.closing(sqlite3.connect(database, timeout=30, isolation_level=None)) as conn:
        conn.execute("UPDATE photo SET level = level WHERE id = (SELECT min(id) FROM photo)")
        return int(conn.execute("SELECT value FROM library_state WHERE name = 'generation'").fetchone()[0])


# -- the server, in a child process -------------------------------------------------------------------


class TimedApp:
    """WSGI middleware: runs the application to the end of its body and adds `Server-Timing: app;dur=MS`."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        captured: list[Any] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., None]:
            captured[:] = [status, list(headers)]
            return lambda _data: None

        begin = time.perf_counter()
        result = self.app(environ, start)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        elapsed = (time.perf_counter() - begin) * 1000
        status, headers = captured
        start_response(status, [*headers, ("Server-Timing", f"app;dur={elapsed:.3f}")])
        return [body]


def serve_child(datastore: str) -> None:
    """The child: serve the library with photoflow.server.make_server on a free port until stdin closes."""
    from photoflow.config import load_config
    from photoflow.server import make_server

    server = make_server(load_config({"DATASTORE": datastore, "HOST": "127.0.0.1"}))
    server.bind_addr = ("127.0.0.1", 0)
    server.wsgi_app = TimedApp(server.wsgi_app)
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    print(server.bind_addr[1], server.numthreads, flush=True)
    sys.stdin.read()  # the parent closes our stdin to stop us (or dies, which closes it too)
    server.stop()
    thread.join(timeout=10)


@contextlib.contextmanager
def child_server(env: dict[str, str], log: Path) -> Iterator[tuple[int, int]]:
    """Start the child server for the library in `env`; yield (port, threads); stop it."""
    with open(log, "w") as err:
        child = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-child", env["DATASTORE"]],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
    try:
        assert child.stdout is not None
        line = child.stdout.readline().split()
        if len(line) != 2:
            child.wait(timeout=30)
            sys.exit(f"gallery_bench: the server did not start:\n{log.read_text()}")
        yield int(line[0]), int(line[1])
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


# -- the client ---------------------------------------------------------------------------------------


@dataclass
class Answer:
    """One response as this client saw it."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    wall_ms: float
    app_ms: float
    wire: int  # status line, headers (without Server-Timing) and body, as sent
    encoding: str  # Content-Encoding, if any


class Browser:
    """One keep-alive connection with a cookie jar: a browser tab, reduced to what is measured."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, body: str | None = None, **headers: str) -> Answer:
        """Send one request on the kept connection and read the whole answer."""
        sent = {"Accept-Encoding": "gzip, deflate", **{k.replace("_", "-"): v for k, v in headers.items()}}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        start = time.perf_counter()
        self.conn.request(method, path, body=body, headers=sent)
        response = self.conn.getresponse()
        data = response.read()
        wall = (time.perf_counter() - start) * 1000
        for value in response.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(value)
            for name, morsel in jar.items():
                if morsel["max-age"].startswith(("0", "-")):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value
        timing = SERVER_TIMING.search(response.headers.get("Server-Timing", ""))
        header_bytes = len(f"HTTP/1.1 {response.status} {response.reason}\r\n") + 2
        header_bytes += sum(
            len(f"{k}: {v}\r\n") for k, v in response.getheaders() if k.lower() != "server-timing"
        )
        # The wire size is what was sent; the body is decoded, should the server ever compress.
        encoding = response.headers.get("Content-Encoding", "")
        content = gzip.decompress(data) if encoding == "gzip" else data
        return Answer(
            response.status,
            response.headers,
            content,
            wall,
            float(timing.group(1)) if timing else math.nan,
            header_bytes + len(data),
            encoding,
        )

    def get(self, path: str, **headers: str) -> Answer:
        """GET `path`; anything but 200 stops the benchmark."""
        answer = self.request("GET", path, **headers)
        if answer.status != 200:
            sys.exit(f"gallery_bench: GET {path} answered {answer.status}: {answer.body[:300]!r}")
        return answer

    def log_in(self, name: str, password: str) -> None:
        """Log in through the real form, as a person does."""
        form = self.get("/login").body.decode()
        found = CSRF_META.search(form)
        if not found:
            sys.exit("gallery_bench: no CSRF token on the login page")
        body = urllib.parse.urlencode({"name": name, "password": password, "csrf": found.group(1)})
        answer = self.request(
            "POST", "/login", body, Content_Type="application/x-www-form-urlencoded",
            Origin=f"http://127.0.0.1:{self.port}",
        )  # fmt: skip
        if answer.status != 303 or "pf_session" not in self.cookies:
            sys.exit(f"gallery_bench: logging in answered {answer.status}: {answer.body[:300]!r}")

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


# -- measuring ----------------------------------------------------------------------------------------


@dataclass
class Timing:
    """Times of one kind of request."""

    wall: list[float] = field(default_factory=list)
    app: list[float] = field(default_factory=list)

    def add(self, answer: Answer) -> None:
        """Count one answer."""
        self.wall.append(answer.wall_ms)
        self.app.append(answer.app_ms)

    @property
    def median(self) -> float:
        """Median wall time, ms."""
        return statistics.median(self.wall)

    def describe(self) -> str:
        """Median and p95 of the wall time, median inside the application."""
        return (
            f"median {self.median:6.1f} ms, p95 {percentile(self.wall, 95):6.1f} ms "
            f"(in app {statistics.median(self.app):6.1f} ms)"
        )


def percentile(values: Sequence[float], pct: float) -> float:
    """The `pct` percentile, by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def timed(browser: Browser, path: str, count: int, before: Callable[[], object] | None = None) -> Timing:
    """`count` GETs of `path` after the warm-up, each after `before()` when given."""
    timing = Timing()
    for n in range(WARMUP + count):
        if before is not None:
            before()
        answer = browser.get(path, Accept="application/json" if path.startswith("/api/") else "text/html")
        if n >= WARMUP:
            timing.add(answer)
    return timing


def next_batch(first: list[list[Any]], timeline: list[list[Any]]) -> tuple[str, str, int, int] | None:
    """The /api/days request grid.js makes first after the page: (newest, oldest, days, photos) or None."""
    loaded = Counter(entry[3] for entry in first)
    placeholder = [loaded[day] < count for day, count in timeline]
    if True not in placeholder:
        return None
    start = placeholder.index(True)
    batch: list[tuple[str, int]] = []
    photos = 0
    for (day, count), waiting in zip(timeline[start:], placeholder[start:], strict=True):
        if not waiting or (day == "undated") != (timeline[start][0] == "undated"):
            break
        if batch and (photos + count > GRID_BATCH or _days_between(batch[0][0], day) > GRID_SPAN):
            break
        batch.append((day, count))
        photos += count
    return batch[0][0], batch[-1][0], len(batch), photos


def _days_between(newer: str, older: str) -> int:
    if "undated" in (newer, older):
        return 0
    return (dt.date.fromisoformat(newer) - dt.date.fromisoformat(older)).days


@dataclass
class ViewerResult:
    """Everything measured for one viewer of one library."""

    who: str
    page: Timing
    cold: Timing
    warm: Timing
    days: Timing | None
    batch: tuple[str, str, int, int] | None
    first: list[list[Any]]
    html: int
    inline_json: int
    timeline_days: int
    timeline_bytes: int
    days_bytes: int
    static: dict[str, tuple[int, int]]  # path: (wire bytes, gzip size of the body)
    html_gzip: int
    encodings: list[str]  # Content-Encoding of the page and the CSS/JS ("none")
    placeholders: int = 0
    thumbs: dict[str, int] = field(default_factory=dict)
    placeholder_times: list[float] = field(default_factory=list)

    @property
    def data_ms(self) -> float:
        """The slower of the cold timeline and the days batch (medians)."""
        return max(self.cold.median, self.days.median if self.days else 0.0)

    @property
    def before_thumbnails(self) -> int:
        """HTML + CSS + JS + the first screen's 20 px placeholders, on the wire."""
        return self.html + sum(wire for wire, _ in self.static.values()) + self.placeholders


def measure_viewer(
    browser: Browser, who: str, database: Path, requests: int, cold: int
) -> ViewerResult:  # fmt: skip
    """Every timing and byte count for one viewer."""
    page_answer = browser.get("/", Accept="text/html")
    html = page_answer.body.decode()
    found = FIRST_SCREEN_JSON.search(html)
    if not found:
        sys.exit("gallery_bench: the gallery page carries no first-screen JSON")
    first = json.loads(found.group(1))
    page = timed(browser, "/", requests)
    warm = timed(browser, "/api/timeline", requests)
    cold_timing = timed(browser, "/api/timeline", cold, before=lambda: bump_generation(database))
    timeline_answer = browser.get("/api/timeline", Accept="application/json")
    timeline = json.loads(timeline_answer.body)["days"]
    batch = next_batch(first, timeline)
    days_timing, days_bytes = None, 0
    if batch is not None:
        path = f"/api/days?newest={batch[0]}&oldest={batch[1]}"
        days_timing = timed(browser, path, requests)
        days_answer = browser.get(path, Accept="application/json")
        got = len(json.loads(days_answer.body)["photos"])
        if got != batch[3]:
            sys.exit(f"gallery_bench: {path} gave {got} photos, the timeline said {batch[3]}")
        days_bytes = days_answer.wire
    static = {}
    static_encodings: set[str] = set()
    for path in STATIC:
        answer = browser.get(path)
        static[path] = (answer.wire, len(gzip.compress(answer.body, 6)))
        static_encodings.add(answer.encoding or "none")
    return ViewerResult(
        who=who, page=page, cold=cold_timing, warm=warm, days=days_timing, batch=batch, first=first,
        html=page_answer.wire, inline_json=len(found.group(1).encode()), timeline_days=len(timeline),
        timeline_bytes=timeline_answer.wire, days_bytes=days_bytes, static=static,
        html_gzip=len(gzip.compress(page_answer.body, 6)),
        encodings=sorted(static_encodings | {page_answer.encoding or "none"}),
    )  # fmt: skip


def fetch_thumbnails(browser: Browser, result: ViewerResult) -> None:
    """The first screen's 20 px placeholders (counted) and 250/500 px thumbnails (reported), over HTTP."""
    sizes = {"20": 0, "250": 0, "500": 0}
    for entry in result.first:
        for size in sizes:
            answer = browser.get(f"/d/{size}/{entry[0]}-{entry[1]}.jpg", Accept="image/*")
            sizes[size] += answer.wire
            if size == "20":
                result.placeholder_times.append(answer.wall_ms)
    result.placeholders = sizes["20"]
    result.thumbs = sizes


@dataclass
class LibraryResult:
    """One library's shape and its two viewers' results."""

    shape: Shape
    threads: int
    viewers: list[ViewerResult]

    @property
    def page_ms(self) -> float:
        """The slower median of the gallery page over the viewers."""
        return max(v.page.median for v in self.viewers)

    @property
    def data_ms(self) -> float:
        """The slower first-screen data over the viewers."""
        return max(v.data_ms for v in self.viewers)

    @property
    def bytes_before(self) -> int:
        """The larger byte count before the first thumbnails over the viewers."""
        return max(v.before_thumbnails for v in self.viewers)


def run_library(
    tmp: Path, count: int, samples: Sequence[Sample], requests: int, cold: int
) -> LibraryResult:  # fmt: skip
    """Build a library of `count` photos, serve it, measure it as a member and as a visitor."""
    root = tmp / f"library-{count}"
    env, shape = build_library(root, count, samples)
    datastore = Path(env["DATASTORE"])
    print(
        f"library of {count:,} photos: built in {shape.seconds:.1f} s; {shape.span_days:,} days, "
        f"{shape.active_days:,} with photos (at most {shape.busiest_day:,} on one day), "
        f"{shape.undated:,} undated, {shape.hidden:,} at level > 0, {shape.in_albums:,} in albums, "
        f"{shape.visible_to_visitors:,} visible to visitors; database "
        f"{(datastore / 'photoflow.db').stat().st_size / 1e6:.1f} MB"
    )
    viewers = []
    with child_server(env, tmp / f"server-{count}.log") as (port, threads):
        for who in ("member", "visitor"):
            browser = Browser(port)
            try:
                if who == "member":
                    browser.log_in(ADMIN, PASSWORD)
                result = measure_viewer(browser, who, datastore / "photoflow.db", requests, cold)
                write_derivatives(datastore, result.first, samples)
                fetch_thumbnails(browser, result)
            finally:
                browser.close()
            viewers.append(result)
            report_viewer(result)
    return LibraryResult(shape, threads, viewers)


# -- reporting ----------------------------------------------------------------------------------------


def kb(n: int) -> str:
    """Bytes as kB (1000)."""
    return f"{n / 1000:.1f} kB"


def report_viewer(r: ViewerResult) -> None:
    """Print one viewer's figures."""
    days_in_first = len({entry[3] for entry in r.first})
    print(f"  {r.who}:")
    print(f"    GET /                  {r.page.describe()}")
    print(
        f"      page {kb(r.html)} on the wire, of which inline first-screen JSON {kb(r.inline_json)} "
        f"({len(r.first)} photos over {days_in_first} days)"
    )
    print(f"    /api/timeline cold     {r.cold.describe()}")
    print(f"    /api/timeline warm     {r.warm.describe()}")
    print(f"      timeline {kb(r.timeline_bytes)} on the wire ({r.timeline_days:,} days)")
    if r.days is None or r.batch is None:
        print("    /api/days              none needed: the page brought every photo")
    else:
        newest, oldest, ndays, photos = r.batch
        print(f"    /api/days              {r.days.describe()}")
        print(
            f"      next batch {newest}..{oldest} ({ndays} days, {photos} photos): {kb(r.days_bytes)} "
            f"on the wire"
        )
    static = sum(wire for wire, _ in r.static.values())
    static_gzip = sum(gz for _, gz in r.static.values())
    parts = ", ".join(f"{Path(p).name} {kb(wire)}" for p, (wire, _) in r.static.items())
    print(f"    CSS + JS: {kb(static)} ({parts})")
    print(
        f"    placeholders: {len(r.first)} x 20 px, {kb(r.placeholders)} (median request "
        f"{statistics.median(r.placeholder_times):.1f} ms); then 250 px: {kb(r.thumbs['250'])}, "
        f"or 500 px: {kb(r.thumbs['500'])}"
    )
    print(
        f"    before the first thumbnails: {kb(r.before_thumbnails)} = HTML {kb(r.html)} + CSS/JS "
        f"{kb(static)} + placeholders {kb(r.placeholders)}; Content-Encoding: {', '.join(r.encodings)} "
        f"(gzip would make HTML {kb(r.html_gzip)}, CSS/JS {kb(static_gzip)})"
    )


# -- main ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, run the benchmark, print its figures."""
    parser = argparse.ArgumentParser(
        description="Gallery with many photos: server time of the gallery page, /api/timeline and "
        "/api/days as a member and as a visitor, and the bytes before the first thumbnails, for a large "
        "library and a small one in the same run."
    )
    parser.add_argument("--photos", type=int, default=FULL, metavar="N", help="large library (100,000)")
    parser.add_argument("--small", type=int, default=100, metavar="N", help="small library (default 100)")
    parser.add_argument(
        "--requests", type=int, default=50, metavar="N", help="timed requests of each kind (default 50)"
    )
    parser.add_argument(
        "--cold", type=int, default=20, metavar="N", help="timed cold /api/timeline requests (default 20)"
    )
    parser.add_argument("--serve-child", metavar="DATASTORE", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_child:
        serve_child(args.serve_child)
        return
    for name in ("photos", "small", "requests", "cold"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")

    samples = render_samples()
    print(
        f"photoflow gallery benchmark: {args.photos:,} and {args.small:,} photos, SQLite, "
        f"{os.cpu_count()} cores; {args.requests} timed requests of each kind after {WARMUP} warm-up ones, "
        f"{args.cold} cold timelines"
    )
    print(
        f"derivatives: {len(samples)} samples from {SAMPLES.relative_to(REPO.parent)} rendered with "
        f"photoflow.imaging.render (20 px: {min(len(s.outputs['20']) for s in samples)}-"
        f"{max(len(s.outputs['20']) for s in samples)} B, 250 px: "
        f"{min(len(s.outputs['250']) for s in samples) / 1000:.1f}-"
        f"{max(len(s.outputs['250']) for s in samples) / 1000:.1f} kB)"
    )
    with tempfile.TemporaryDirectory(prefix="photoflow-gallery-bench-") as folder:
        tmp = Path(folder)
        large = run_library(tmp, args.photos, samples, args.requests, args.cold)
        small = run_library(tmp, args.small, samples, args.requests, args.cold)
    print(
        f"server: photoflow.server.make_server, cheroot with {large.threads} threads, on 127.0.0.1, "
        "in a child process; one keep-alive connection per viewer"
    )
    print(
        f"gallery: page {large.page_ms:.1f} ms, first-screen data {large.data_ms:.1f} ms "
        f"({_short(args.photos)} photos; {_short(args.small)} photos: page {small.page_ms:.1f} ms, "
        f"data {small.data_ms:.1f} ms), bytes before first thumbnails: {large.bytes_before:,}"
    )


def _short(count: int) -> str:
    return f"{count // 1000}k" if count >= 1000 and count % 1000 == 0 else f"{count:,}"


if __name__ == "__main__":
    main()
