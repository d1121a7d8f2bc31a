"""A bounded soak: one `photoflow serve` under browsing, uploads and logins at once for a few minutes;
no errors, latencies per kind against the same requests alone, and the server's memory at start and end.

- **library**: a fresh temporary datastore and SQLite database; `photoflow db upgrade`, an admin and
  MEMBERS member accounts made with `photoflow create-user`, and the camera and nature JPEGs of
  `../shared/samples/jpeg/` imported with `photoflow import-image --album Public --public`.
- **server**: `python -m photoflow serve` on 127.0.0.1 (THREADS 16, its default) with
  TRUSTED_PROXIES=127.0.0.1, so that each simulated client says its own address in X-Forwarded-For, as
  nginx would: the login rate limit counts per address and per account, and a single address for every
  client would lock everyone out after ten wrong passwords.
- **clients**, each a thread with its own keep-alive session and address: `--browsers` (4) browsing,
  half as visitors, half as members: the gallery page `/`, the grid JSON (`/api/timeline`, then
  `/api/days` for one day), a photo page and its 250, 500 and preview derivatives; one uploader (the
  admin) sending distinct 640x480 JPEGs one at a time as the upload tab does; one logging in: a member's
  right password (303), now and then preceded by a wrong one (401), then its page and a logout; and every
  fifth round a burst of 12 wrong passwords at an unknown account from a fresh address: the first
  ten are 401, the last two 429 (the rate limit at work). Those 401 and 429 are expected answers,
  counted apart; anything else (another status, a "locked" database, a connection error, a traceback
  or a 5xx in the server's log) is an error.
- **figures**: per kind, requests served and latency p50/p90/p99/max over the soak; the floor is the
  same kind's p50 alone (one client, sequential, measured in the same run before the load), and the
  ratio is p50 under load over p50 alone.
- **memory**: the server's resident memory (VmRSS of /proc/PID/status) at rest, that is with every
  client held between two of its steps and no request in flight, after a warm-up (`--warmup`, 20 s of
  the same load) and after the soak; readings under load every sixth of the soak and the peak (VmHWM)
  are printed too, but not judged: a login being checked holds argon2's 64 MB while it runs, so they
  swing by that much. The growth at rest is held against the bound: RSS_BOUND_MB (32, the allocator's
  retention measured at 8 MB over 3 minutes) plus 16 threads x the smaller of SQLite's 16 MB page
  cache and the database's size (each request thread caches the pages it reads).
- The last line is `soak: N requests in S s (R req/s), errors E, worst p99 X ms (kind), RSS A -> B MB
  (growth G MB, bound M MB)`; the exit status is 1 if E > 0 or G > M.

    .venv/bin/python bench/soak.py [--seconds 180] [--warmup 20] [--browsers 4]
"""

from __future__ import annotations

import argparse
import io
import ipaddress
import itertools
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from harness import REPO, photoflow, served_process
from PIL import Image, ImageDraw

SAMPLES = REPO.parent / "shared" / "samples" / "jpeg"
PASSWORD = "soak password"
MEMBERS = 4
BURST = 12  # wrong passwords in a row from one address at one account
MAX_FAILURES = 10  # photoflow.sessions.MAX_FAILURES: the attempts after these are 429
# The server's growth allowed from after the warm-up to the end, both read at rest: the clients held
# between two steps, no request in flight. Under load a reading says little: each login being checked
# holds argon2's 64 MB (RFC 9106's low-memory profile, passwords.py) for the third of a second it takes,
# so readings swing by 64 MB with the moment they are taken (measured: 121 to 190 MB within a minute),
# which once made a healthy server look like it grew by 90 MB or more.
# At rest, what the server holds grows to a bound by design: the allocator keeps some of what it freed
# (measured, with the template leak fixed: +8 MB over a 3-minute soak of 9,700 requests, malloc's heap
# +7 MB over 9 minutes and 60,000 requests, levelling off, Python objects and blocks flat, fds and
# threads flat), and each of the THREADS request threads keeps its own SQLite connection, whose page
# cache (db.py: cache_size, 16 MB) fills with the pages it reads while the uploads grow the database
# (an upper bound: all the connections together were measured at 6 MB). So the bound is RSS_BOUND_MB
# plus THREADS times the smaller of the page cache and the database's size at the end.
# What it catches: bottle compiling and keeping a template per page (12 kB a page, fixed) made +97 MB at
# rest in 3 minutes against a bound of 78; a leak of 4 kB a request over the soak's ~10,000 fails it.
# Smaller leaks of Python objects are tests/test_memory.py's to find (it counts objects, not bytes).
RSS_BOUND_MB = 32
THREADS = 16
PAGE_CACHE_MB = 16
SIZES = ("250", "500", "preview")
KINDS = ("page", "grid json", "photo page", "derivative", "upload", "login", "logout")


@dataclass
class Figures:
    """What the clients saw: latencies per kind, expected refusals, errors."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KINDS})
    refused: dict[int, int] = field(default_factory=lambda: {401: 0, 429: 0})
    errors: list[str] = field(default_factory=list)
    recording: bool = True

    def took(self, kind: str, seconds: float) -> None:
        if self.recording:
            with self.lock:
                self.latencies[kind].append(seconds)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)

    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(self.refused.values())


class Client:
    """One person's browser: a keep-alive session, the page's CSRF token, and an address of its own."""

    def __init__(self, base: str, address: str, figures: Figures) -> None:
        self.base = base
        self.http = requests.Session()
        self.address = address
        self.figures = figures
        self.csrf = ""

    def call(self, method: str, path: str, kind: str, expect: tuple[int, ...] = (200,), **kwargs):
        """One request, timed under `kind`; an answer not in `expect` is an error (None returned)."""
        headers = {"X-Forwarded-For": self.address, **kwargs.pop("headers", {})}
        start = time.perf_counter()
        try:
            answer = self.http.request(
                method, self.base + path, headers=headers, timeout=60, allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            self.figures.error(f"{method} {path}: {type(exc).__name__}: {exc}")
            return None
        took = time.perf_counter() - start
        if answer.status_code not in expect or "locked" in answer.text:
            self.figures.error(f"{method} {path} -> {answer.status_code}: {answer.text[:200]!r}")
            return None
        if answer.status_code in (401, 429):
            with self.figures.lock:
                self.figures.refused[answer.status_code] += 1
        else:
            self.figures.took(kind, took)
        found = re.search(r'<meta name="csrf-token" content="([^"]+)"', answer.text)
        if found and "text/html" in answer.headers.get("Content-Type", ""):
            self.csrf = found.group(1)
        return answer

    def post(self, path: str, data: dict[str, str], kind: str, expect: tuple[int, ...]):
        """A form, as the page sends it: its token and the Origin a browser adds."""
        data = {"csrf": self.csrf, **data}
        return self.call("POST", path, kind, expect, data=data, headers={"Origin": self.base})

    def login(self, name: str, password: str, expect: tuple[int, ...] = (303,)):
        if not self.csrf:
            self.call("GET", "/login", "page")
        answer = self.post("/login", {"name": name, "password": password}, "login", expect)
        if answer is not None and answer.status_code == 303:
            self.call("GET", "/", "page")  # the session's own token
        return answer

    def upload(self, name: str, data: bytes):
        headers = {"X-CSRF-Token": self.csrf, "Origin": self.base, "Accept": "application/json"}
        answer = self.call(
            "POST", "/upload", "upload", files=[("file", (name, data, "image/jpeg"))], headers=headers
        )
        if answer is not None and answer.json()["results"][0]["status"] != "imported":
            self.figures.error(f"upload {name}: {answer.json()['results']}")


def addresses(network: str) -> Callable[[], str]:
    """A new address of `network` at each call (a fresh client as far as the rate limit knows)."""
    hosts = ipaddress.ip_network(network).hosts()
    lock = threading.Lock()

    def following() -> str:
        with lock:
            return str(next(hosts))

    return following


def picture(number: int) -> bytes:
    """A distinct 640x480 JPEG (noise JPEG cannot squeeze away, about 100 kB)."""
    rng = random.Random(number)
    img = Image.new("RGB", (640, 480), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    noise = Image.frombytes("L", (640, 480), rng.randbytes(640 * 480)).convert("RGB")
    img = Image.blend(img, noise, 0.25)
    ImageDraw.Draw(img).text((10, 10), f"soak {number}", fill=(255, 255, 255))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


# -- what each client does, once -----------------------------------------------------------------------


def browse_once(client: Client) -> None:
    client.call("GET", "/", "page")
    timeline = client.call("GET", "/api/timeline", "grid json")
    if timeline is None or not timeline.json()["days"]:
        return
    day = random.choice(timeline.json()["days"])[0]
    listed = client.call("GET", f"/api/days?newest={day}&oldest={day}", "grid json")
    if listed is None or not listed.json()["photos"]:
        return
    photo_id, sha16 = random.choice(listed.json()["photos"])[:2]
    client.call("GET", f"/photo/{photo_id}", "photo page")
    for size in SIZES:
        client.call("GET", f"/d/{size}/{photo_id}-{sha16}.jpg", "derivative")


class Logins:
    """The login client's rounds: right passwords, now and then after a wrong one, and bursts of wrong
    ones from a fresh address at an unknown account (401 until the limit, then 429)."""

    def __init__(self, base: str, figures: Figures) -> None:
        self.base = base
        self.figures = figures
        self.rounds = itertools.count(1)
        self.members = addresses("198.18.0.0/15")  # benchmarking addresses (RFC 2544)
        self.attackers = addresses("203.0.113.0/24")

    def once(self) -> None:
        n = next(self.rounds)
        if n % 5 == 0:
            # A fresh address may make MAX_FAILURES wrong guesses at an account within the window;
            # the next ones are refused with 429 before the password is even checked.
            client = Client(self.base, self.attackers(), self.figures)
            for attempt in range(1, BURST + 1):
                client.login(f"nobody {n}", "wrong", expect=(401,) if attempt <= MAX_FAILURES else (429,))
            return
        client = Client(self.base, self.members(), self.figures)
        name = f"member{n % MEMBERS + 1}"
        if n % 3 == 0:
            client.login(name, "not the password", expect=(401,))
        if client.login(name, PASSWORD) is not None:
            client.post("/logout", {}, "logout", (303,))


# -- the run -----------------------------------------------------------------------------------------


@dataclass
class Report:
    seconds: float
    figures: Figures
    alone: dict[str, float]  # kind -> p50 seconds, one client alone
    rss_start: int  # bytes, at rest (no request in flight) after the warm-up
    rss_end: int  # at rest after the soak
    rss_peak: int  # VmHWM: the most the server held at any moment since it started
    rss_load: list[int]  # readings under load, every sixth of the soak
    database_mb: float  # the SQLite file and its WAL, at the end

    @property
    def bound_mb(self) -> float:
        return RSS_BOUND_MB + THREADS * min(PAGE_CACHE_MB, self.database_mb)

    @property
    def growth_mb(self) -> float:
        return (self.rss_end - self.rss_start) / 2**20

    @property
    def ok(self) -> bool:
        return not self.figures.errors and self.growth_mb <= self.bound_mb


def status_kb(pid: int, key: str) -> int:
    """A figure in kB of /proc/PID/status (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for {pid}")


def rss(pid: int) -> int:
    """The resident memory of process `pid`, in bytes."""
    return status_kb(pid, "VmRSS") * 1024


def quiet_rss(pid: int) -> int:
    """The resident memory of process `pid` once the clients are held: after a moment for the answers
    just sent to finish on the server's side, the least of a few readings."""
    readings = []
    for _ in range(5):
        time.sleep(0.2)
        readings.append(rss(pid))
    return min(readings)


class Pause:
    """Holds the client threads between two of their steps, so that the server's memory can be read with
    no request in flight (a login's argon2 hash alone holds 64 MB while it runs)."""

    def __init__(self) -> None:
        self.clients = 0
        self.condition = threading.Condition()
        self.paused = False
        self.waiting = 0

    def between_steps(self) -> None:
        with self.condition:
            if not self.paused:
                return
            self.waiting += 1
            self.condition.notify_all()
            self.condition.wait_for(lambda: not self.paused)
            self.waiting -= 1

    @contextmanager
    def held(self, timeout: float = 120) -> Iterator[None]:
        """Every client waiting (or `timeout` passed) inside the block; all go on after it."""
        with self.condition:
            self.paused = True
            self.condition.wait_for(lambda: self.waiting >= self.clients, timeout)
        try:
            yield
        finally:
            with self.condition:
                self.paused = False
                self.condition.notify_all()


def threads_of(pid: int) -> int:
    """How many threads process `pid` runs."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def stock(root: Path) -> dict[str, str]:
    """A fresh library in `root`: accounts and the sample JPEGs in a public album; its environment."""
    env = {
        **os.environ,
        "DATASTORE": str(root / "datastore"),
        "TRUSTED_PROXIES": "127.0.0.1",
        "PYTHONPATH": str(REPO),
    }
    env.pop("DATABASE", None)
    photoflow(env, "db", "upgrade")
    photoflow(env, "create-user", "admin", "--admin", "--password-stdin", stdin=PASSWORD + "\n")
    for n in range(1, MEMBERS + 1):
        photoflow(env, "create-user", f"member{n}", "--password-stdin", stdin=PASSWORD + "\n")
    folders = [str(SAMPLES / name) for name in ("cameras", "nature") if (SAMPLES / name).is_dir()]
    if not folders:
        sys.exit(f"soak: no sample pictures in {SAMPLES}")
    photoflow(env, "import-image", *folders, "--album", "Public", "--public")
    return env


def soak(
    seconds: float, warmup: float, browsers: int, root: Path, say: Callable[[str], None] = print
) -> Report:
    """Stock a library in `root`, serve it, measure each kind alone, then load it for `warmup` +
    `seconds`; the report (nothing is printed but progress through `say`)."""
    env = stock(root)
    figures = Figures()
    log = root / "serve.log"
    numbers = itertools.count(1)
    with served_process(env, log) as (port, child):
        base = f"http://127.0.0.1:{port}"
        # One client alone: each kind's p50, the floor the loaded figures are compared with.
        alone_figures = Figures()
        visitor = Client(base, "192.0.2.1", alone_figures)
        for _ in range(10):
            browse_once(visitor)
        uploader = Client(base, "192.0.2.2", alone_figures)
        uploader.login("admin", PASSWORD)
        for _ in range(5):
            uploader.upload(f"alone-{next(numbers)}.jpg", picture(next(numbers)))
        logins = Logins(base, alone_figures)
        for _ in range(4):
            logins.once()
        alone = {k: statistics.median(v) for k, v in alone_figures.latencies.items() if v}
        if alone_figures.errors:
            figures.errors.extend(f"alone: {e}" for e in alone_figures.errors)
        say(f"soak: alone, p50 ms: {', '.join(f'{k} {v * 1000:.1f}' for k, v in alone.items())}")

        stop = threading.Event()
        pause = Pause()

        def forever(step: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                while not stop.is_set():
                    pause.between_steps()
                    try:
                        step()
                    except Exception as exc:  # a bug in the client is an error too, not a silent stop
                        figures.error(f"client: {type(exc).__name__}: {exc}")

            return run

        clients: list[Callable[[], None]] = []
        for n in range(browsers):
            browser = Client(base, f"192.0.2.{10 + n}", figures)
            if n % 2:
                browser.login(f"member{n % MEMBERS + 1}", PASSWORD)
            clients.append(lambda b=browser: browse_once(b))
        loader = Client(base, "192.0.2.3", figures)
        loader.login("admin", PASSWORD)
        clients.append(lambda: loader.upload(f"soak-{(k := next(numbers))}.jpg", picture(k)))
        clients.append(Logins(base, figures).once)
        threads = [threading.Thread(target=forever(step), daemon=True) for step in clients]
        pause.clients = len(threads)
        figures.recording = False
        for thread in threads:
            thread.start()
        say(f"soak: warming up for {warmup:.0f} s")
        time.sleep(warmup)
        with pause.held():
            rss_start = quiet_rss(child.pid)
            with figures.lock:
                figures.recording = True
                figures.refused = {401: 0, 429: 0}
        say(
            f"soak: {seconds:.0f} s of load; server RSS {rss_start / 2**20:.0f} MB at rest, "
            f"threads {threads_of(child.pid)}"
        )
        began = time.monotonic()
        samples = []
        while (left := began + seconds - time.monotonic()) > 0:
            time.sleep(min(left, seconds / 6))
            samples.append(rss(child.pid))
        with figures.lock:
            figures.recording = False
        took = time.monotonic() - began
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
        rss_end = quiet_rss(child.pid)
        peak = status_kb(child.pid, "VmHWM") * 1024
        say(
            f"soak: server RSS under load every {seconds / 6:.0f} s, MB: "
            f"{' '.join(f'{b / 2**20:.0f}' for b in samples)}; at rest at the end {rss_end / 2**20:.0f}; "
            f"peak {peak / 2**20:.0f}"
        )
    # The server has stopped (SIGTERM): what it logged counts too.
    for line in log.read_text().splitlines():
        if "Traceback" in line or "locked" in line or re.search(r'HTTP/1\.[01]" 5\d\d ', line):
            figures.error(f"server log: {line}")
    database = root / "datastore" / "photoflow.db"
    sizes = [p.stat().st_size for p in (database, database.with_name(database.name + "-wal")) if p.exists()]
    return Report(took, figures, alone, rss_start, rss_end, peak, samples, sum(sizes) / 2**20)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def describe(report: Report, browsers: int) -> list[str]:
    """The report as the lines the benchmark prints."""
    figures = report.figures
    lines = [
        f"soak: {report.seconds:.0f} s, {browsers} browsing (half as members), 1 uploading, 1 logging in",
        f"{'kind':<12}{'requests':>10}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'alone p50':>11}{'ratio':>7}",
    ]
    worst = ("-", 0.0)
    for kind in KINDS:
        values = figures.latencies[kind]
        if not values:
            lines.append(f"{kind:<12}{0:>10}")
            continue
        p50, p90, p99 = (percentile(values, s) * 1000 for s in (0.5, 0.9, 0.99))
        alone = report.alone.get(kind)
        ratio = f"{p50 / (alone * 1000):>7.1f}" if alone else f"{'-':>7}"
        alone_ms = f"{alone * 1000:>11.1f}" if alone else f"{'-':>11}"
        lines.append(
            f"{kind:<12}{len(values):>10}{p50:>9.1f}{p90:>9.1f}{p99:>9.1f}{max(values) * 1000:>9.1f}"
            f"{alone_ms}{ratio}"
        )
        if p99 > worst[1]:
            worst = (kind, p99)
    total = figures.requests()
    lines.append(
        f"expected refusals: {figures.refused[401]} wrong passwords (401), "
        f"{figures.refused[429]} rate limited (429)"
    )
    lines.append(f"errors: {len(figures.errors)} (expected 0)")
    lines.extend(f"  {e}" for e in figures.errors[:20])
    lines.append(
        f"server RSS at rest: {report.rss_start / 2**20:.0f} MB after the warm-up, "
        f"{report.rss_end / 2**20:.0f} MB at the end (peak {report.rss_peak / 2**20:.0f} MB): "
        f"growth {report.growth_mb:.1f} MB (bound {report.bound_mb:.0f} MB = {RSS_BOUND_MB} MB + "
        f"{THREADS} threads x min({PAGE_CACHE_MB} MB page cache, database {report.database_mb:.1f} MB))"
    )
    lines.append(
        f"soak: {total} requests in {report.seconds:.0f} s ({total / report.seconds:.0f} req/s), "
        f"errors {len(figures.errors)}, worst p99 {worst[1]:.0f} ms ({worst[0]}), "
        f"RSS {report.rss_start / 2**20:.0f} -> {report.rss_end / 2**20:.0f} MB "
        f"(growth {report.growth_mb:.1f} MB, bound {report.bound_mb:.0f} MB)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180, help="length of the soak (180)")
    parser.add_argument("--warmup", type=float, default=20, help="load before the first RSS reading (20)")
    parser.add_argument("--browsers", type=int, default=4, help="browsing clients (4)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="photoflow-soak-") as tmp:
        report = soak(args.seconds, args.warmup, args.browsers, Path(tmp), say=print)
    for line in describe(report, args.browsers):
        print(line)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
