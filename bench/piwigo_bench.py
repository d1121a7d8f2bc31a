"""One `pwg.images.addSimple` of a 24 MP JPEG, end to end, against importing the same file otherwise.

The pictures are import_bench.py's camera-like 24 MP JPEGs (generated once, cached in bench/.cache/).
Each measurement uses files not seen before by that datastore, so nothing is a duplicate. Measured in
the same run, in fresh datastores and SQLite databases:

- **addSimple**: a real server (`python -m photoflow serve`, on 127.0.0.1) and a client logged in through
  `pwg.session.login`; the time from sending the multipart request (as darktable builds it: its text
  parts, the `image` path part, then the file) to the end of the JSON answer. The server is warmed with
  one upload first (its exiftool and Pillow are started once per process, as in production).
- **import, in process**: the same import service the API calls (`Pipeline.prepare` and `finalise`),
  called directly in this process with a warm exiftool: the floor the API adds its overhead to.
- **import-image**: `python -m photoflow import-image FILE` as a person runs it, a new process each time,
  start-up included.

Each is the median of --runs (default 5) files. The last line is
`addSimple: X ms, import (in process): Y ms, ratio: Z, import-image command: W ms` (Z = X / Y: the API's
overhead over the work itself).

    .venv/bin/python bench/piwigo_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from harness import REPO, photoflow, served
from import_bench import ensure_files

PASSWORD = "bench-password"


def timed_command(env: dict[str, str], path: Path) -> float:
    """Seconds that `photoflow import-image PATH` takes as a person runs it (a new process)."""
    start = time.perf_counter()
    photoflow(env, "import-image", str(path))
    return time.perf_counter() - start


def fresh(root: Path) -> dict[str, str]:
    """A new datastore and database with an admin account; the environment that points at them."""
    env = {**os.environ, "DATASTORE": str(root / "datastore"), "PYTHONPATH": str(REPO), "WORKERS": "1"}
    env.pop("DATABASE", None)
    photoflow(env, "db", "upgrade")
    photoflow(env, "create-user", "bench", "--admin", "--password-stdin", stdin=PASSWORD + "\n")
    return env


class Client:
    """A darktable-like client: one keep-alive connection, the pwg_id cookie, hand-built bodies."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.cookie = ""

    def post(self, body: bytes, content_type: str) -> bytes:
        headers = {"Content-Type": content_type, "Content-Length": str(len(body))}
        if self.cookie:
            headers["Cookie"] = self.cookie
        self.conn.request("POST", "/ws.php?format=json", body=body, headers=headers)
        answer = self.conn.getresponse()
        data = answer.read()
        for name, value in answer.getheaders():
            if name.lower() == "set-cookie" and value.startswith("pwg_id="):
                self.cookie = value.split(";", 1)[0]
        if b'"stat":"ok"' not in data:
            sys.exit(f"piwigo_bench: the server answered {answer.status}: {data[:300]!r}")
        return data

    def login(self) -> None:
        self.post(
            f"method=pwg.session.login&username=bench&password={PASSWORD}".encode(),
            "application/x-www-form-urlencoded",
        )

    def add_simple(self, path: Path) -> float:
        """Seconds from the first byte sent to the last byte of the answer."""
        boundary = "------------------------" + secrets.token_hex(11)
        fields = [
            ("method", "pwg.images.addSimple"),
            ("image", f"/tmp/darktable_export/{path.name}"),
            ("name", path.stem),
            ("level", "0"),
        ]
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{path.name}"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
        start = time.perf_counter()
        self.post(body, f"multipart/form-data; boundary={boundary}")
        return time.perf_counter() - start


def in_process(env: dict[str, str], files: Sequence[Path]) -> list[float]:
    """The import service itself, with a warm exiftool: prepare + finalise, per file."""
    from photoflow import services
    from photoflow.config import load_config
    from photoflow.importer import ImportOptions, finalise
    from photoflow.library import open_library

    library = open_library(load_config({k: v for k, v in env.items() if k in ("DATASTORE",)}))
    try:
        owner = services.default_owner()
        pipeline = library.pipeline()
        times = []
        for n, path in enumerate(files):
            start = time.perf_counter()
            item = pipeline.prepare_path(path)
            result = finalise([item], ImportOptions(owner_id=owner.id), library.store)[0]
            elapsed = time.perf_counter() - start
            if result.status != "imported":
                sys.exit(f"piwigo_bench: {path.name} was {result.status}: {result.reason}")
            if n:  # the first warms exiftool and Pillow
                times.append(elapsed)
        return times
    finally:
        library.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, run the three measurements, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="files measured for each (default 5)")
    args = parser.parse_args(argv)
    runs = max(1, args.runs)
    files, _, camera = ensure_files(24, regenerate=False, workers=os.cpu_count() or 1)
    if len(files) < 3 * runs + 2:
        sys.exit("piwigo_bench: not enough cached pictures for that many runs")
    size = statistics.mean(p.stat().st_size for p in files) / 1e6
    print(
        f"photoflow Piwigo benchmark: 24 MP JPEGs ({size:.1f} MB on average, EXIF of {camera}), {runs} runs"
    )
    with tempfile.TemporaryDirectory(prefix="photoflow-piwigo-bench-") as tmp:
        root = Path(tmp)
        env = fresh(root / "api")
        with served(env, root / "server.log") as port:
            client = Client(port)
            client.login()
            client.add_simple(files[0])  # warms the server's exiftool and Pillow
            api = [client.add_simple(path) for path in files[1 : 1 + runs]]
        local = in_process(fresh(root / "local"), files[1 + runs : 2 + 2 * runs])
        command_env = fresh(root / "command")
        command = [timed_command(command_env, path) for path in files[2 + 2 * runs : 2 + 3 * runs]]
    api_ms, local_ms = statistics.median(api) * 1000, statistics.median(local) * 1000
    command_ms = statistics.median(command) * 1000
    print(f"addSimple over HTTP (warm server): median {api_ms:.0f} ms ({_list(api)})")
    print(f"import in process (warm exiftool): median {local_ms:.0f} ms ({_list(local)})")
    print(f"import-image command (new process): median {command_ms:.0f} ms")
    ratio = api_ms / local_ms
    print(
        f"addSimple: {api_ms:.0f} ms, import (in process): {local_ms:.0f} ms, ratio: {ratio:.2f}, "
        f"import-image command: {command_ms:.0f} ms"
    )


def _list(seconds: list[float]) -> str:
    return ", ".join(f"{t * 1000:.0f}" for t in seconds)


if __name__ == "__main__":
    main()
