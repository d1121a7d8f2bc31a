"""Faults: a process killed at each step of an import, a full disk (the datastore's, the temporary
directory's) under every door, and a Piwigo client that goes away mid-upload.

Each case ends the same way (security.md, "Durability"): `PRAGMA integrity_check` is ok, no row points
at a missing or partial file, no partial file sits under a final name, the photos imported before are
whole, leftovers are swept, and the same import run again completes.

The full disks are real: a small tmpfs mounted by the test (as root; the tests skip, saying why, where
mounting is not allowed). The crashes are real: `PHOTOFLOW_CRASH_AT` (photoflow/faults.py) makes the
process SIGKILL itself at a named point.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from photoflow import db as database
from photoflow import services
from photoflow.batch import import_files
from photoflow.check import check_datastore
from photoflow.config import Config
from photoflow.faults import CRASH_POINTS, ENV
from photoflow.importer import ImportOptions
from photoflow.library import Library, open_library
from photoflow.models import File, Photo, User
from photoflow.storage import DERIVATIVES, Datastore
from tests.conftest import REPO, Web, eventually, make_config, make_jpegs, run_cli, serving, web_as
from tests.test_piwigo import Client, failure, ok_result

PASSWORD = "correct horse"


# -- what must hold after any fault --------------------------------------------------------------------


def integrity(config: Config) -> str:
    """SQLite's own verdict on the database file, from a fresh connection."""
    with contextlib.closing(sqlite3.connect(config.database)) as conn:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_no_partial_file_under_a_final_name(store: Datastore) -> None:
    """Every original, RAW and sidecar hashes to its name; every derivative is a whole JPEG."""
    for rel in store.stored_files():
        path = store.root / rel
        if rel.startswith(DERIVATIVES + "/"):
            with Image.open(path) as image:
                image.load()  # a truncated JPEG raises here ("image file is truncated")
        else:
            assert sha256_of(path) == Path(rel).name.split(".")[0], f"partial file under a final name: {rel}"


def assert_every_row_has_its_file(store: Datastore) -> None:
    for row in File.select():
        path = store.root / row.path
        assert path.is_file(), f"row without its file: {row.path}"
        assert sha256_of(path) == row.sha256, f"row with a different file: {row.path}"
    for photo in Photo.select():
        assert store.has_derivatives(photo.sha256), f"photo {photo.id} without its derivatives"


def nothing_in_tmp(store: Datastore) -> bool:
    return not any(store.tmp.iterdir())


def snapshot(store: Datastore) -> dict[int, list[tuple[str, str]]]:
    """The photos there are, each with its files' paths and the hashes of their bytes on disk."""
    return {
        photo.id: sorted(
            (row.path, sha256_of(store.root / row.path)) for row in File.select().where(File.photo == photo)
        )
        for photo in Photo.select()
    }


def assert_earlier_intact(store: Datastore, earlier: dict[int, list[tuple[str, str]]]) -> None:
    now = snapshot(store)
    for photo_id, files in earlier.items():
        assert now.get(photo_id) == files, f"photo {photo_id} changed: {now.get(photo_id)} != {files}"
        assert store.has_derivatives(Photo.get_by_id(photo_id).sha256)


def import_earlier(library: Library, owner: User, folder: Path, count: int = 2) -> dict:
    """Photos imported before the fault, in this process; returns their snapshot."""
    files = make_jpegs(folder, count, start=900)
    summary = import_files(library, files, ImportOptions(owner_id=owner.id), workers=1)
    assert summary.count("imported") == count, summary.results
    return snapshot(library.store)


def assert_whole(config: Config, store: Datastore, earlier: dict) -> None:
    """What must hold after a fault, before anything is repaired."""
    assert integrity(config) == "ok"
    assert_every_row_has_its_file(store)
    assert_no_partial_file_under_a_final_name(store)
    assert_earlier_intact(store, earlier)


# -- kill -9 at each step of an import -----------------------------------------------------------------


def crash_env(config: Config, point: str) -> dict[str, str]:
    return {**config.env(), ENV: point}


def sweep_after_crash(config: Config, store: Datastore) -> None:
    """`photoflow check --sweep`: what it finds may only be leftovers and files not yet given their rows
    (which the re-run adopts), never a row without its file; after it, tmp/ is empty."""
    swept = run_cli(config, "check", "--sweep")
    assert "Traceback" not in swept.stderr, swept.stderr
    allowed = (
        "file without a row: ",
        "leftover of an interrupted write: ",
        "swept ",
        "datastore is consistent",
    )
    for line in swept.stdout.splitlines():
        assert line.startswith(allowed) or re.fullmatch(r"\d+ problems", line), line
    assert "leftover" not in swept.stdout.split("swept ")[-1]  # none left after the sweep
    assert nothing_in_tmp(store), list(store.tmp.iterdir())


def rerun_completes(config: Config, store: Datastore, folder: Path, count: int, *args: str) -> None:
    again = run_cli(config, "import-image", str(folder), *args)
    assert again.returncode == 0, again.stdout + again.stderr
    found = re.search(r"imported (\d+), duplicates (\d+), attached RAWs/sidecars 0, failed 0", again.stdout)
    assert found and int(found[1]) + int(found[2]) == count, again.stdout
    assert check_datastore(store).ok, check_datastore(store).lines()  # what `photoflow check` runs
    shas = {sha256_of(path) for path in folder.iterdir()}
    assert {row.sha256 for row in File.select().where(File.sha256.in_(list(shas)))} == shas


# What each crash leaves, which shows it struck where its name says: (a leftover in tmp/, the first new
# file's original under its final name without a row, rows of new photos).
LEFT_BY = {
    "staged": (True, False, 0),
    "fsynced": (True, False, 0),
    "derivatives": (True, False, 0),  # the derivatives are final, the original is still in tmp/
    "renamed": (False, True, 0),
    "in-transaction": (False, True, 0),  # the rows were written, and rolled back with the process
    "committed": (False, False, 1),  # the first group's rows are in; the others never started
}


def test_every_crash_point_is_placed_in_the_code() -> None:
    source = "\n".join(
        path.read_text() for path in (REPO / "photoflow").rglob("*.py") if path.name != "faults.py"
    )
    placed = set(re.findall(r"""crash_point\(["']([a-z-]+)["']\)""", source))
    assert placed == set(CRASH_POINTS) == set(LEFT_BY)


@pytest.mark.parametrize("point", CRASH_POINTS)
@pytest.mark.slow
def test_a_kill_at_each_step_of_an_import_loses_nothing_and_the_rerun_completes(
    point: str, config: Config, library: Library, admin: User, tmp_path: Path
) -> None:
    earlier = import_earlier(library, admin, tmp_path / "earlier")
    folder = tmp_path / "new"
    make_jpegs(folder, 3)
    # Three files run in this process (no workers): the point kills the importing process itself.
    crashed = run_cli(
        config, "import-image", str(folder), "--workers", "1", env_override=crash_env(config, point)
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    assert_whole(config, library.store, earlier)
    report = check_datastore(library.store)
    assert not report.missing and not report.missing_derivatives
    new_originals = [rel for rel in report.orphans if rel.startswith("originals/")]
    assert (bool(report.leftovers), bool(new_originals), Photo.select().count() - len(earlier)) == LEFT_BY[
        point
    ]
    sweep_after_crash(config, library.store)
    rerun_completes(config, library.store, folder, 3, "--workers", "1")
    assert_whole(config, library.store, earlier)
    assert Photo.select().count() == len(earlier) + 3


@pytest.mark.parametrize("point", ["renamed"])
@pytest.mark.slow
def test_a_worker_killed_mid_import_fails_its_files_alone_and_the_rerun_completes(
    point: str, config: Config, library: Library, admin: User, tmp_path: Path
) -> None:
    earlier = import_earlier(library, admin, tmp_path / "earlier")
    folder = tmp_path / "new"
    make_jpegs(folder, 4)  # enough for worker processes; the points in `prepare` kill the workers
    crashed = run_cli(
        config, "import-image", str(folder), "--workers", "2", env_override=crash_env(config, point)
    )
    assert crashed.returncode == 1, crashed.stdout + crashed.stderr
    assert crashed.stdout.count("the import worker died") == 4, crashed.stdout
    assert "Traceback" not in crashed.stderr, crashed.stderr
    assert_whole(config, library.store, earlier)
    assert Photo.select().count() == len(earlier)
    sweep_after_crash(config, library.store)
    rerun_completes(config, library.store, folder, 4, "--workers", "2")
    assert_whole(config, library.store, earlier)


# -- full disks -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (made if missing), unmounted afterwards; skips if not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for a full disk (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def free_bytes(path: Path) -> int:
    info = os.statvfs(path)
    return info.f_bavail * info.f_frsize


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the disk of `folder` until only `leave` bytes (whole pages) are free; returns the filler."""
    filler = folder / f"filler-{uuid.uuid4().hex}"
    want = free_bytes(folder) - leave
    with open(filler, "wb") as out:
        try:
            while want > 0:
                want -= out.write(b"\0" * min(want, 1 << 20))
                out.flush()
        except OSError:
            pass  # full already
    assert free_bytes(folder) <= max(leave, 0) + 4096, (free_bytes(folder), leave)
    return filler


@contextlib.contextmanager
def full_datastore(tmp_path: Path, size: str = "24m") -> Iterator[tuple[Config, Library, User]]:
    """A library whose datastore, and the SQLite database in it (the default layout), sit on a small
    tmpfs; an admin."""
    with tmpfs(tmp_path / "datastore", size):
        config = make_config(tmp_path)
        database.open_database(config.database)
        database.upgrade()
        library = open_library(config)
        try:
            admin = services.create_user("admin", PASSWORD, admin=True)
            yield config, library, admin
        finally:
            library.close()


def noisy_jpeg(folder: Path, name: str, number: int = 700) -> Path:
    """A JPEG of about a megabyte (noise does not compress), with derivatives of some size."""
    (path,) = make_jpegs(folder, 1, size=(1600, 1200), start=number)
    return path.rename(folder / name)


def derivatives_size(path: Path) -> int:
    from photoflow import imaging

    return sum(len(data) for data in imaging.render(path).outputs.values())


def nothing_new(library: Library, earlier: dict) -> None:
    assert nothing_in_tmp(library.store), list(library.store.tmp.iterdir())
    assert snapshot(library.store) == earlier
    assert check_datastore(library.store).ok, check_datastore(library.store).lines()


@pytest.mark.parametrize("where", ["staging", "derivatives"])
def test_a_full_datastore_during_a_web_upload_is_a_507_leaves_nothing_and_reads_go_on(
    where: str, tmp_path: Path
) -> None:
    from photoflow.web import create_app

    with full_datastore(tmp_path) as (config, library, admin), serving(create_app(library)) as base:
        earlier = import_earlier(library, admin, tmp_path / "earlier")
        (earlier_id, _files), *_ = earlier.items()
        member = web_as(base, "admin", PASSWORD)
        picture = noisy_jpeg(tmp_path / "up", "IMG_1.jpg")
        # Staging: not a byte fits. Derivatives: the picture fits, its derivatives do not.
        rendered = derivatives_size(picture)
        assert rendered // 3 > 2 * 4096  # so that the picture's pages fit, and its derivatives do not
        leave = 0 if where == "staging" else picture.stat().st_size + rendered // 3
        filler = fill(config.datastore, leave)

        answer = member.upload(picture)
        assert answer.status_code == 507, answer.text[:300]
        assert answer.json() == {"error": "the datastore's disk is full"}
        nothing_new(library, earlier)
        # Reads go on: the gallery, an earlier photo's page and its pictures.
        assert member.get("/").status_code == 200
        assert member.get(f"/photo/{earlier_id}").status_code == 200
        sha = Photo.get_by_id(earlier_id).sha256[:16]
        for size in ("500", "preview"):
            shown = member.get(f"/d/{size}/{earlier_id}-{sha}.jpg")
            assert shown.status_code == 200 and shown.content[:2] == b"\xff\xd8", shown.status_code

        filler.unlink()
        again = member.upload(picture)
        assert again.status_code == 200, again.text[:300]
        assert [r["status"] for r in again.json()["results"]] == ["imported"]
        assert check_datastore(library.store).ok
        assert_whole(config, library.store, earlier)


@pytest.mark.slow
def test_a_full_datastore_during_a_cli_import_fails_each_file_in_one_line_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    with full_datastore(tmp_path) as (config, library, admin):
        earlier = import_earlier(library, admin, tmp_path / "earlier")
        folder = tmp_path / "new"
        make_jpegs(folder, 2, size=(400, 300))
        filler = fill(config.datastore)
        full = run_cli(config, "import-image", str(folder), "--workers", "1")
        assert full.returncode == 1, full.stdout + full.stderr
        assert "Traceback" not in full.stderr, full.stderr
        failed = [line for line in full.stdout.splitlines() if line.startswith("failed: ")]
        assert failed == [
            f"failed: {path.name}: the datastore's disk is full" for path in sorted(folder.iterdir())
        ], full.stdout
        nothing_new(library, earlier)
        # The check still runs on the full disk (its report is printed, only the console's copy is not kept).
        check = run_cli(config, "check")
        assert check.returncode == 0 and "datastore is consistent" in check.stdout, (
            check.stdout + check.stderr
        )
        assert integrity(config) == "ok"

        filler.unlink()
        rerun_completes(config, library.store, folder, 2, "--workers", "1")
        assert_whole(config, library.store, earlier)


def test_a_full_datastore_during_ws_php_uploads_is_a_piwigo_failure_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    from photoflow.web import create_app

    with full_datastore(tmp_path) as (config, library, admin), serving(create_app(library)) as base:
        earlier = import_earlier(library, admin, tmp_path / "earlier")
        client = Client(base)
        client.login("admin", PASSWORD)
        picture = noisy_jpeg(tmp_path / "up", "darktable_export.jpg")
        data = picture.read_bytes()
        filler = fill(config.datastore)

        def add_simple() -> requests.Response:
            return client.send("pwg.images.addSimple", {"name": "x"}, files={"image": (picture.name, data)})

        assert failure(add_simple()) == (507, "The datastore's disk is full")
        nothing_new(library, earlier)
        # digiKam's way: base64 chunks, then pwg.images.add; the chunk is refused the same way.
        md5 = hashlib.md5(data).hexdigest()
        chunk = {"data": "QUJD", "original_sum": md5, "position": "0", "type": "file"}
        assert failure(client.send("pwg.images.addChunk", chunk)) == (507, "The datastore's disk is full")
        assert nothing_in_tmp(library.store)
        assert not any(library.store.chunks.root.iterdir())
        # Listings still answer.
        assert len(ok_result(client.send("pwg.categories.getImages"))["images"]) == len(earlier)

        filler.unlink()
        image_id = ok_result(add_simple())["image_id"]
        assert Photo.get_by_id(image_id).sha256 == hashlib.sha256(data).hexdigest()
        assert check_datastore(library.store).ok
        assert_whole(config, library.store, earlier)


@pytest.mark.slow
def test_a_full_temporary_directory_changes_nothing_for_imports_and_uploads(
    tmp_path: Path, config: Config, library: Library, admin: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Photoflow writes everything in the datastore's own tmp/: not Python's temporary directory, not
    Bottle's spool (uploads are streamed by photoflow/web/multipart.py), not the worker processes."""
    import tempfile

    from photoflow.web import create_app

    with tmpfs(tmp_path / "systmp", "64k") as systmp:
        filler = fill(systmp)
        earlier = import_earlier(library, admin, tmp_path / "earlier")
        folder = tmp_path / "new"
        make_jpegs(folder, 4)
        # The command line, with worker processes (spawned: they inherit TMPDIR).
        env = {**config.env(), "TMPDIR": str(systmp)}
        done = run_cli(config, "import-image", str(folder), "--workers", "2", env_override=env)
        assert done.returncode == 0 and "imported 4," in done.stdout, done.stdout + done.stderr
        # The web upload and ws.php in this process, with Python's temporary directory the full one.
        monkeypatch.setattr(tempfile, "tempdir", str(systmp))
        with serving(create_app(library)) as base:
            member = web_as(base, "admin", PASSWORD)
            (picture,) = make_jpegs(tmp_path / "up", 1, size=(1600, 1200), start=50)
            answer = member.upload(picture)
            assert answer.status_code == 200 and answer.json()["results"][0]["status"] == "imported"
            client = Client(base)
            client.login("admin", PASSWORD)
            (other,) = make_jpegs(tmp_path / "up", 1, size=(1600, 1200), start=51)
            ok_result(client.send("pwg.images.addSimple", files={"image": (other.name, other.read_bytes())}))
        assert sorted(p.name for p in systmp.iterdir()) == [filler.name]
        assert Photo.select().count() == len(earlier) + 6
        assert check_datastore(library.store).ok
        assert_whole(config, library.store, earlier)


# -- a Piwigo client that goes away mid-upload -------------------------------------------------------------


def test_a_piwigo_client_that_goes_away_mid_add_simple_leaves_no_file_and_no_row(
    server: str, library: Library, admin: User, tmp_path: Path
) -> None:
    earlier = import_earlier(library, admin, tmp_path / "earlier")
    client = Client(server)
    client.login("admin", PASSWORD)
    boundary = "pfFaultBoundary7MA4YWxkTrZu0gW"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="method"\r\n\r\npwg.images.addSimple\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="IMG_9.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    data = os.urandom(4 * 1024 * 1024)
    declared = len(head) + 64 * 1024 * 1024  # it sends a sixteenth of what it says
    parts = urlsplit(server)
    request_head = (
        f"POST /ws.php?format=json HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {declared}\r\n"
        f"Cookie: pwg_id={client.pwg_id}\r\nUser-Agent: darktable\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(request_head + head + data)
        assert eventually(lambda: any(library.store.tmp.iterdir())), "the upload never reached tmp/"
    assert eventually(lambda: nothing_in_tmp(library.store)), list(library.store.tmp.iterdir())
    assert snapshot(library.store) == earlier
    assert check_datastore(library.store).ok, check_datastore(library.store).lines()
    assert integrity(library.config) == "ok"
    # The server still serves, ws.php too.
    assert ok_result(client.send("pwg.session.getStatus"))["username"] == "admin"
    assert Web(server).get("/healthz").status_code == 200


# -- a datastore on another filesystem than the files imported -------------------------------------------


def test_a_file_staged_from_another_filesystem_is_stored_and_hashed_whole(tmp_path: Path) -> None:
    """Found with the tmpfs above: across filesystems the kernel copy gives way to a buffered one, whose
    last piece (a whole XMP sidecar) was still in memory when the staged file was hashed."""
    sources = tmp_path / "sources"
    sources.mkdir()
    sizes = (1, 906, 8191, (1 << 20) + 5, 3 * (1 << 20))
    for size in sizes:
        (sources / f"f{size}").write_bytes(os.urandom(size))
    with tmpfs(tmp_path / "other", "16m") as other:
        store = Datastore(other / "datastore")
        store.prepare()
        for size in sizes:
            data = (sources / f"f{size}").read_bytes()
            staged = store.stage_file(sources / f"f{size}")
            assert (staged.size, staged.sha256) == (size, hashlib.sha256(data).hexdigest())
            assert staged.md5 == hashlib.md5(data).hexdigest()
            assert staged.path.read_bytes() == data
