"""The `photoflow` command as a person runs it: a subprocess, real files, worker processes, signals."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from photoflow.config import Config
from tests.conftest import REPO, free_port, make_config, make_jpegs, run_cli


@pytest.fixture
def ready(tmp_path: Path) -> Config:
    """A migrated database with an admin named `ann`, driven through the command line only."""
    config = make_config(tmp_path)
    assert run_cli(config, "db", "upgrade").returncode == 0
    made = run_cli(config, "create-user", "ann", "--admin", "--password-stdin", input="ann's password\n")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "created admin user ann"
    return config


def count(config: Config, table: str) -> int:
    with sqlite3.connect(config.database) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def start_import(config: Config, folder: Path, **popen: object) -> subprocess.Popen:
    """`photoflow import-image FOLDER` running in the background (output captured unless told)."""
    options: dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True} | popen
    env = {**os.environ, **config.env(), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "photoflow", "import-image", str(folder)], env=env, **options
    )


def wait_for_photos(config: Config, proc: subprocess.Popen, photos: int) -> None:
    """Until the running import has written `photos` photos (or ended, or two minutes passed)."""
    deadline = time.monotonic() + 120
    while count(config, "photo") < photos and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)


def test_help_texts(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    top = run_cli(config, "--help")
    for command in ("db", "create-user", "import-image", "regenerate-thumbnails", "check", "serve"):
        assert command in top.stdout
    imp = run_cli(config, "import-image", "--help").stdout
    for option in ("--album", "--public", "--user", "--recursive"):
        assert option in imp


@pytest.mark.slow
def test_create_user_refusals_are_one_line(ready: Config) -> None:
    again = run_cli(ready, "create-user", "Ann", "--password-stdin", input="another password\n")
    assert again.returncode == 1 and again.stderr.strip() == "photoflow: a user named 'Ann' already exists"
    empty = run_cli(ready, "create-user", "bob", "--password-stdin", input="\n")
    assert empty.returncode == 1 and "password is empty" in empty.stderr


@pytest.mark.slow
def test_a_broken_file_among_500_fails_alone(ready: Config, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    make_jpegs(folder, 499)
    (folder / "img_0250_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 100)
    result = run_cli(ready, "import-image", str(folder), "--album", "Batch", "--public")
    assert result.returncode == 1, result.stderr
    assert "imported 499, duplicates 0, attached RAWs/sidecars 0, failed 1" in result.stdout
    assert "failed: img_0250_broken.jpg: " in result.stdout
    assert count(ready, "photo") == 499 and count(ready, "photo_album") == 499
    with sqlite3.connect(ready.database) as conn:
        assert conn.execute("SELECT is_public FROM album WHERE title='Batch'").fetchone() == (1,)
    again = run_cli(ready, "import-image", str(folder / "img_0001.jpg"), str(folder / "img_0002.jpg"))
    assert again.returncode == 0 and "duplicates 2" in again.stdout
    checked = run_cli(ready, "check")
    assert checked.returncode == 0 and "datastore is consistent" in checked.stdout


@pytest.mark.slow
def test_import_refusals(ready: Config, tmp_path: Path) -> None:
    # A path that is not there is refused before anything is imported (the console's sentence too).
    make_jpegs(tmp_path / "some", 2)
    missing = run_cli(ready, "import-image", str(tmp_path / "some"), str(tmp_path / "nope.jpg"))
    assert (
        missing.returncode == 1
        and missing.stderr.strip() == f"photoflow: {tmp_path / 'nope.jpg'} does not exist"
    )
    assert count(ready, "photo") == 0
    (tmp_path / "empty").mkdir()
    empty = run_cli(ready, "import-image", str(tmp_path / "empty"))
    assert empty.returncode == 1
    assert empty.stderr.strip() == f"photoflow: there are no files to import in {tmp_path / 'empty'}"
    nobody = run_cli(ready, "import-image", str(tmp_path / "some"), "--user", "zed")
    assert nobody.returncode == 1 and nobody.stderr.strip() == "photoflow: no user named 'zed'"
    public = run_cli(ready, "import-image", str(tmp_path / "some"), "--public")
    assert public.returncode == 1 and "--album" in public.stderr


@pytest.mark.slow
def test_recursive_and_regenerate(ready: Config, tmp_path: Path) -> None:
    make_jpegs(tmp_path / "tree", 3)
    make_jpegs(tmp_path / "tree" / "sub", 3, start=10)
    make_jpegs(tmp_path / "tree" / ".hidden", 2, start=20)
    flat = run_cli(ready, "import-image", str(tmp_path / "tree"))
    assert "imported 3," in flat.stdout
    deep = run_cli(ready, "import-image", "--recursive", str(tmp_path / "tree"))
    assert "imported 3, duplicates 3," in deep.stdout
    derivatives = sorted((ready.datastore / "derivatives").rglob("*.jpg"))
    assert len(derivatives) == 6 * 5
    for path in derivatives[:7]:
        path.unlink()
    assert run_cli(ready, "check").returncode == 1
    regen = run_cli(ready, "regenerate-thumbnails", "--missing-only")
    assert regen.returncode == 0 and regen.stdout.strip().startswith("rendered ")
    assert "of 6 photos" not in regen.stdout  # only the photos that missed something
    assert run_cli(ready, "check").returncode == 0
    everything = run_cli(ready, "regenerate-thumbnails")
    assert everything.stdout.strip() == "rendered 6 of 6 photos"


@pytest.mark.slow
def test_kill_9_during_an_import_then_rerun_and_check(ready: Config, tmp_path: Path) -> None:
    folder = tmp_path / "many"
    make_jpegs(folder, 60, size=(1600, 1200))
    proc = start_import(
        ready, folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    wait_for_photos(ready, proc, 8)
    assert proc.poll() is None, "the import finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the main process and its workers, mid-import
    proc.wait()
    done_before = count(ready, "photo")
    assert 8 <= done_before < 60
    with sqlite3.connect(ready.database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        orphan_rows = conn.execute("SELECT COUNT(*) FROM photo WHERE id NOT IN (SELECT photo_id FROM file)")
        assert orphan_rows.fetchone() == (0,)
    report = run_cli(ready, "check")
    assert "row without its file" not in report.stdout
    rerun = run_cli(ready, "import-image", str(folder))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"imported {60 - done_before}, duplicates {done_before}," in rerun.stdout
    swept = run_cli(ready, "check", "--sweep")
    assert swept.returncode == 0, swept.stdout
    assert "datastore is consistent" in swept.stdout
    assert count(ready, "photo") == 60


def worker_pids(pid: int) -> list[int]:
    """The import's worker processes: its children started by multiprocessing's spawn."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    found = []
    for child in map(int, children):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except FileNotFoundError:
            continue
        if b"multiprocessing" in cmdline and b"resource_tracker" not in cmdline:
            found.append(child)
    return found


@pytest.mark.slow
def test_a_worker_killed_mid_import_loses_no_file(ready: Config, tmp_path: Path) -> None:
    """The OOM killer (or a crash in a decoder) takes a worker: its files are retried, none is lost."""
    folder = tmp_path / "many"
    make_jpegs(folder, 40, size=(1600, 1200))
    proc = start_import(ready, folder)
    wait_for_photos(ready, proc, 5)
    victims = worker_pids(proc.pid)
    assert victims and proc.poll() is None, "no worker to kill"
    os.kill(victims[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    assert "imported 40, duplicates 0, attached RAWs/sidecars 0, failed 0" in out
    assert count(ready, "photo") == 40
    swept = run_cli(ready, "check", "--sweep")
    assert "datastore is consistent" in swept.stdout, swept.stdout


@pytest.mark.slow
def test_two_imports_at_once_into_one_sqlite_database(ready: Config, tmp_path: Path) -> None:
    folder_a, folder_b = tmp_path / "a", tmp_path / "b"
    make_jpegs(folder_a, 40, size=(400, 300))
    make_jpegs(folder_b, 40, size=(400, 300), start=20)  # 20 files of the same bytes in both
    procs = [start_import(ready, folder) for folder in (folder_a, folder_b)]
    outputs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, out + err
        assert "locked" not in out + err
    assert count(ready, "photo") == 60 and count(ready, "file") == 60
    imported = sum(int(out.split("imported ")[1].split(",")[0]) for out, _ in outputs)
    duplicates = sum(int(out.split("duplicates ")[1].split(",")[0]) for out, _ in outputs)
    assert (imported, duplicates) == (60, 20)
    assert run_cli(ready, "check").returncode == 0


@pytest.mark.slow
def test_import_with_workers_into_postgresql(pg_server, tmp_path: Path) -> None:
    """Worker processes each open their own connection to the server; the rows land once."""
    name = "cli_" + os.urandom(6).hex()
    config = make_config(tmp_path, pg_server.create_database(name))
    try:
        assert run_cli(config, "db", "upgrade").returncode == 0
        made = run_cli(config, "create-user", "ann", "--admin", "--password-stdin", input="ann's password\n")
        assert made.returncode == 0, made.stderr
        make_jpegs(tmp_path / "pg", 12, size=(400, 300))
        result = run_cli(config, "import-image", str(tmp_path / "pg"), "--album", "On PostgreSQL", "--public")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "imported 12, duplicates 0, attached RAWs/sidecars 0, failed 0" in result.stdout
        assert run_cli(config, "check").returncode == 0
        again = run_cli(config, "import-image", str(tmp_path / "pg"))
        assert "imported 0, duplicates 12," in again.stdout
    finally:
        pg_server.drop_database(name)


@pytest.mark.slow
def test_serve_health_page_and_graceful_stop(ready: Config) -> None:
    port = free_port()
    env = {**os.environ, **ready.env(), "PORT": str(port), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "serve.py", "run"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as resp:
                    assert resp.status == 200 and b'"ok"' in resp.read()
                    assert resp.headers["X-Content-Type-Options"] == "nosniff"
                    break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
                time.sleep(0.1)
        with urllib.request.urlopen(base + "/", timeout=2) as resp:
            page = resp.read().decode()
        assert "Photoflow" in page and "ann" not in page
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(base + "/originals/", timeout=2)
        assert info.value.code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    assert proc.returncode == 0, proc.stderr.read()


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    result = subprocess.run(
        [sys.executable, "serve.py", "run"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **config.env(), "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "photoflow: the database needs upgrading: run `photoflow db upgrade`"


def test_the_core_never_imports_a_front_end() -> None:
    code = (
        "import sys, photoflow.services, photoflow.batch, photoflow.importer, photoflow.check;"
        "import photoflow.library, photoflow.metadata, photoflow.imaging, photoflow.filetypes;"
        "print(sorted(m for m in ('bottle', 'textual', 'typer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_missing_exiftool_is_one_line_saying_how_to_install_it(ready: Config, samples: Path) -> None:
    env = ready.env() | {"EXIFTOOL": "/nonexistent/exiftool"}
    result = run_cli(ready, "import-image", str(samples / "jpeg/nature"), env_override=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "photoflow: exiftool was not found (/nonexistent/exiftool): "
        "install it with `sudo apt-get install libimage-exiftool-perl`"
    )
    assert count(ready, "photo") == 0


@pytest.mark.slow
def test_a_backup_taken_during_an_import_is_consistent(ready: Config, tmp_path: Path) -> None:
    folder = tmp_path / "batch"
    make_jpegs(folder, 40, size=(1200, 900))
    proc = start_import(ready, folder)
    wait_for_photos(ready, proc, 5)
    copy = tmp_path / "copy.db"
    made = run_cli(ready, "db", "backup", str(copy))
    assert made.returncode == 0, made.stderr
    assert proc.wait(timeout=300) == 0
    with sqlite3.connect(copy) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        photos = conn.execute("SELECT COUNT(*) FROM photo").fetchone()[0]
        orphans = conn.execute(
            "SELECT COUNT(*) FROM photo WHERE id NOT IN (SELECT photo_id FROM file)"
        ).fetchone()[0]
    # A snapshot between two commits: some photos, each with its file row, none half-written.
    assert 5 <= photos <= 40 and orphans == 0
    again = run_cli(ready, "db", "backup", str(copy))
    assert again.returncode == 1 and "already exists" in again.stderr
    assert not copy.with_name("copy.db.part").exists()
