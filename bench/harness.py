"""What the benchmarks share: running the `photoflow` command and a `photoflow serve` child process.

Imported by the scripts beside it (`python bench/x.py` puts bench/ first on sys.path)."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _me() -> str:
    return Path(sys.argv[0]).stem or "bench"


def photoflow(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m photoflow ARGS` from the repository; any failure stops the benchmark."""
    done = subprocess.run(
        [sys.executable, "-m", "photoflow", *args],
        env=env, cwd=REPO, input=stdin, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(
            f"{_me()}: `photoflow {' '.join(args)}` exited with {done.returncode}\n"
            f"--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
        )
    return done


@contextmanager
def served(env: dict[str, str], log: Path) -> Iterator[int]:
    """`python -m photoflow serve` on a free port of 127.0.0.1, its log in `log`; yields the port once
    /healthz answers, and stops it (SIGTERM, then kill) at the end."""
    with served_process(env, log) as (port, _child):
        yield port


@contextmanager
def served_process(env: dict[str, str], log: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """As `served`, yielding the port and the child process (for its memory in /proc/PID/status)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "photoflow", "serve"], env={**env, "PORT": str(port)}, cwd=REPO, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if child.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{_me()}: the server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield port, child
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
