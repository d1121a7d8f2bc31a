"""Uploads from several clients against one `photoflow serve` process, then against two sharing one
PostgreSQL database and one datastore (instances behind a proxy, as on several hosts).

- **database**: a private PostgreSQL server (tests/pgserver.py's PostgresServer, on 127.0.0.1, removed at
  the end), a fresh database and a fresh temporary datastore for each measurement, with an admin made by
  `photoflow db upgrade` and `photoflow create-user` as a person runs them.
- **servers**: `python -m photoflow serve` on free ports of 127.0.0.1, each warmed with one upload (its
  exiftool and Pillow start once per process, as in production), stopped with SIGTERM at the end.
- **clients**: --clients threads (4), each with its own keep-alive requests session logged in through
  `/login`, each uploading --uploads (20) distinct pictures one after another the way the upload tab does
  (one multipart request per shot, `Accept: application/json`). With two servers, client n talks to
  server n % 2. The pictures are --width x --height (2000x1500) JPEGs with noise that JPEG cannot squeeze
  away (about 1.5 MB each), generated once and cached in bench/.cache/.
- **figures**: uploads per second (uploads over the wall time from the first request to the last answer),
  errors (an answer other than 200 with every file "imported"), median and p95 latency per upload.

The last line is `multihost: one instance X uploads/s, two instances Y uploads/s, errors E` (E over both).

    .venv/bin/python bench/multihost_bench.py [--clients N] [--uploads N]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import requests
from harness import REPO, photoflow, served

sys.path.insert(0, str(REPO))

from tests.pgserver import PostgresServer, why_unavailable

CACHE = REPO / "bench" / ".cache"
VERSION = 1  # part of the cache key: change it whenever the generated pictures would change
COMPLETE = ".complete"
PASSWORD = "bench-password"


# -- pictures ----------------------------------------------------------------------------------------


def _make_one(args: tuple[Path, int, int, int]) -> None:
    from PIL import Image, ImageDraw

    folder, i, width, height = args
    img = Image.new("RGB", (width, height), ((i * 37) % 256, (i * 91) % 256, (i * 13) % 256))
    ImageDraw.Draw(img).text((10, 10), str(i), fill=(255, 255, 255))
    noise = Image.frombytes("L", (width, height), random.Random(i).randbytes(width * height))
    Image.blend(img, noise.convert("RGB"), 0.3).save(folder / f"up_{i:04d}.jpg", "JPEG", quality=90)


def ensure_pictures(count: int, width: int, height: int) -> list[Path]:
    """`count` distinct JPEGs, generated on all cores the first time, then read from the cache."""
    folder = CACHE / f"multihost-v{VERSION}-{width}x{height}-{count}"
    if not (folder / COMPLETE).is_file():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"generating {count} pictures of {width}x{height} in {folder} (once)", flush=True)
        with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(_make_one, [(folder, i, width, height) for i in range(count)]))
        (folder / COMPLETE).write_text("")
    return sorted(folder.glob("up_*.jpg"))


# -- the product, as a person runs it ----------------------------------------------------------------


def fresh(pg: PostgresServer, root: Path) -> dict[str, str]:
    """A new database and datastore with an admin account; the environment that points at them."""
    url = pg.create_database("bench_" + secrets.token_hex(6))
    env = {
        **os.environ,
        "DATASTORE": str(root / "datastore"),
        "DATABASE": url,
        "PYTHONPATH": str(REPO),
    }
    photoflow(env, "db", "upgrade")
    photoflow(env, "create-user", "bench", "--admin", "--password-stdin", stdin=PASSWORD + "\n")
    return env


class Client:
    """A browser reduced to what the upload tab does: a session cookie, its CSRF token, uploads."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()
        self.csrf = ""

    def _page(self, path: str) -> None:
        answer = self.http.get(self.base + path, timeout=60, allow_redirects=False)
        found = re.search(r'<meta name="csrf-token" content="([^"]+)"', answer.text)
        if found:
            self.csrf = found.group(1)

    def login(self) -> None:
        self._page("/login")
        answer = self.http.post(
            self.base + "/login",
            data={"name": "bench", "password": PASSWORD, "csrf": self.csrf},
            headers={"Origin": self.base},
            timeout=60,
            allow_redirects=False,
        )
        if answer.status_code != 303:
            sys.exit(f"multihost_bench: login answered {answer.status_code}: {answer.text[:300]}")
        self._page("/")  # the session's own token

    def upload(self, path: Path) -> tuple[float, str]:
        """Seconds for one upload, and "" or what went wrong."""
        start = time.perf_counter()
        try:
            with path.open("rb") as fh:
                answer = self.http.post(
                    self.base + "/upload",
                    files=[("file", (path.name, fh, "image/jpeg"))],
                    headers={"X-CSRF-Token": self.csrf, "Origin": self.base, "Accept": "application/json"},
                    timeout=300,
                )
        except requests.RequestException as exc:
            return time.perf_counter() - start, f"{path.name}: {exc}"
        elapsed = time.perf_counter() - start
        if answer.status_code != 200:
            return elapsed, f"{path.name}: HTTP {answer.status_code}: {answer.text[:200]}"
        statuses = [r["status"] for r in answer.json()["results"]]
        if statuses != ["imported"]:
            return elapsed, f"{path.name}: {answer.text[:200]}"
        return elapsed, ""


# -- the measurement ---------------------------------------------------------------------------------


@dataclass
class Run:
    """One measurement: every upload's latency, what failed, the wall time."""

    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return (len(self.latencies)) / self.seconds

    def line(self, label: str) -> str:
        ordered = sorted(self.latencies)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        return (
            f"{label}: {len(ordered)} uploads in {self.seconds:.1f} s, {self.rate:.2f} uploads/s, "
            f"errors {len(self.errors)}, latency median {statistics.median(ordered) * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms"
        )


def measure(bases: list[str], batches: list[list[Path]], warm: list[Path]) -> Run:
    """Warm each server, log every client in, then let them all upload at once."""
    for base, path in zip(bases, warm, strict=False):
        warmer = Client(base)
        warmer.login()
        _elapsed, error = warmer.upload(path)
        if error:
            sys.exit(f"multihost_bench: the warm-up upload failed: {error}")
    clients = [Client(bases[n % len(bases)]) for n in range(len(batches))]
    for client in clients:
        client.login()
    run = Run()
    lock = threading.Lock()
    start = threading.Barrier(len(clients) + 1)

    def work(client: Client, files: list[Path]) -> None:
        start.wait()
        for path in files:
            elapsed, error = client.upload(path)
            with lock:
                run.latencies.append(elapsed)
                if error:
                    run.errors.append(error)

    threads = [threading.Thread(target=work, args=pair) for pair in zip(clients, batches, strict=True)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    run.seconds = time.perf_counter() - began
    return run


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, measure one instance and two, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--uploads", type=int, default=20, help="uploads per client (default 20)")
    parser.add_argument("--width", type=int, default=2000)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args(argv)
    clients, uploads = max(1, args.clients), max(1, args.uploads)
    reason = why_unavailable()
    if reason:
        sys.exit(f"multihost_bench: PostgreSQL is needed: {reason}")
    per_run = clients * uploads + 2  # + a warm-up upload per server
    pictures = ensure_pictures(2 * per_run, args.width, args.height)
    size = statistics.mean(p.stat().st_size for p in pictures) / 1e6
    print(
        f"photoflow multihost benchmark: {clients} clients x {uploads} uploads of {args.width}x{args.height} "
        f"JPEGs ({size:.1f} MB on average), PostgreSQL, {os.cpu_count()} cores",
        flush=True,
    )
    runs: dict[int, Run] = {}
    with (
        tempfile.TemporaryDirectory(prefix="photoflow-multihost-bench-") as tmp,
        PostgresServer() as pg,
    ):
        for n, instances in enumerate((1, 2)):
            files = pictures[n * per_run : (n + 1) * per_run]
            warm, rest = files[:2], files[2:]
            batches = [rest[c * uploads : (c + 1) * uploads] for c in range(clients)]
            root = Path(tmp) / f"instances-{instances}"
            env = fresh(pg, root)
            with ExitStack() as stack:
                ports = [stack.enter_context(served(env, root / f"server-{i}.log")) for i in range(instances)]
                bases = [f"http://127.0.0.1:{port}" for port in ports]
                runs[instances] = measure(bases, batches, warm)
            for log in root.glob("server-*.log"):
                if "Traceback" in log.read_text(errors="replace"):
                    runs[instances].errors.append(f"{log.name} has a traceback")
            print(runs[instances].line(f"{instances} instance{'s' if instances > 1 else ''}"), flush=True)
            for error in runs[instances].errors[:5]:
                print(f"  error: {error}")
    errors = sum(len(run.errors) for run in runs.values())
    print(
        f"multihost: one instance {runs[1].rate:.2f} uploads/s, two instances {runs[2].rate:.2f} uploads/s, "
        f"errors {errors}"
    )


if __name__ == "__main__":
    main()
