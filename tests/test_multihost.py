"""More than one machine: two real `photoflow serve` processes on one PostgreSQL database and one
datastore, as identical instances behind a proxy would run. Sessions, the login rate limit and uploads
must behave as with one instance, and a command-line import running beside them must not disturb them."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from photoflow import db as database
from photoflow import importer, sessions
from photoflow.config import Config
from photoflow.importer import ImportOptions
from photoflow.library import open_library
from photoflow.models import File, LoginFailure, Photo, User
from tests.conftest import REPO, Web, free_port, make_config, make_jpegs, run_cli, wait_up, web_as
from tests.test_importer import CR3, SMALL_JPEG, copy, exiftool_write

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.xdist_group("multihost-cluster")]

PASSWORD = "correct horse"


@dataclass
class Cluster:
    """Two instances (a, b: their base URLs) on one database and one datastore."""

    config: Config
    a: str
    b: str
    logs: list[Path]

    def assert_no_traceback(self) -> None:
        for log in self.logs:
            text = log.read_text(errors="replace")
            assert "Traceback" not in text, f"{log.name}:\n{text[-4000:]}"


@pytest.fixture(scope="module")
def cluster(pg_server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A migrated PostgreSQL database with an admin, and two servers sharing it and a datastore."""
    tmp = tmp_path_factory.mktemp("multihost")
    name = "multihost_" + os.urandom(6).hex()
    config = make_config(tmp, pg_server.create_database(name))
    assert run_cli(config, "db", "upgrade").returncode == 0
    made = run_cli(config, "create-user", "admin", "--admin", "--password-stdin", input=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    procs: list[subprocess.Popen] = []
    logs: list[Path] = []
    bases: list[str] = []
    try:
        for label in ("a", "b"):
            port = free_port()
            log = tmp / f"server-{label}.log"
            with log.open("w") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "photoflow", "serve"],
                        cwd=REPO,
                        env={**os.environ, **config.env(), "PORT": str(port), "PYTHONPATH": str(REPO)},
                        stderr=out,
                    )
                )
            logs.append(log)
            bases.append(f"http://127.0.0.1:{port}")
        for base, proc in zip(bases, procs, strict=True):
            wait_up(base, proc)
        # This process reads the rows the servers wrote, to check them.
        database.open_database(config.database)
        yield Cluster(config, bases[0], bases[1], logs)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        database.close_database()
        pg_server.drop_database(name)


def test_a_session_started_on_one_instance_works_and_ends_on_the_other(cluster: Cluster) -> None:
    on_a = web_as(cluster.a, "admin", PASSWORD)
    assert on_a.get("/account").status_code == 200
    on_b = Web(cluster.b)
    on_b.http.cookies.update(on_a.http.cookies)  # the proxy sends the next request elsewhere
    assert on_b.get("/account").status_code == 200
    assert on_b.get("/").status_code == 200 and on_b.csrf == on_a.csrf  # the same session, its token
    assert on_b.post("/logout").status_code == 303
    assert on_a.get("/account").status_code == 303  # logged out on A too: to the login page
    assert on_b.get("/account").status_code == 303
    cluster.assert_no_traceback()


def test_the_same_file_uploaded_to_both_at_the_same_moment(cluster: Cluster, samples: Path) -> None:
    browsers = [web_as(cluster.a, "admin", PASSWORD), web_as(cluster.b, "admin", PASSWORD)]
    photos_before, files_before = Photo.select().count(), File.select().count()
    # Several rounds, each a different camera JPEG sent to both instances at once: each round is a
    # chance for the two to meet in the datastore (the same content address) and in the database.
    pictures = sorted((samples / "jpeg" / "cameras").glob("*.jpg"))[:4]
    for picture in pictures:
        answers = _at_once(browsers, picture)
        for answer in answers:
            assert answer is not None and answer.status_code == 200, answer and answer.text[:2000]
        results = [answer.json()["results"][0] for answer in answers]
        # One commits first and imports; the other, whether it found the row before its own work or
        # only at its insert (the unique constraint, then finalise's retry), answers duplicate.
        assert sorted(r["status"] for r in results) == ["duplicate", "imported"], results
        assert results[0]["photo"] == results[1]["photo"], results
        sha = hashlib.sha256(picture.read_bytes()).hexdigest()
        assert File.select().where(File.sha256 == sha).count() == 1
        assert Photo.select().where(Photo.id == results[0]["photo"]).count() == 1
    assert Photo.select().count() == photos_before + len(pictures)
    assert File.select().count() == files_before + len(pictures)
    cluster.assert_no_traceback()


def _at_once(browsers: list[Web], picture: Path) -> list:
    """Each browser uploads `picture`, all released at the same moment; their answers."""
    start = threading.Barrier(len(browsers))
    answers: list = [None] * len(browsers)

    def send(n: int) -> None:
        start.wait()
        answers[n] = browsers[n].upload(picture)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(browsers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def test_a_command_line_import_beside_uploads_to_both(cluster: Cluster, tmp_path: Path) -> None:
    imported = make_jpegs(tmp_path / "import", 12, size=(800, 600), start=1000)
    uploaded = {
        cluster.a: make_jpegs(tmp_path / "up-a", 6, size=(800, 600), start=2000),
        cluster.b: make_jpegs(tmp_path / "up-b", 6, size=(800, 600), start=3000),
    }
    photos_before = Photo.select().count()
    answers: dict[str, list] = {base: [] for base in uploaded}

    def upload_all(base: str) -> None:
        browser = web_as(base, "admin", PASSWORD)
        for path in uploaded[base]:
            answers[base].append(browser.upload(path))

    threads = [threading.Thread(target=upload_all, args=(base,)) for base in uploaded]
    command = subprocess.Popen(
        [sys.executable, "-m", "photoflow", "import-image", str(tmp_path / "import")],
        cwd=REPO,
        env={**os.environ, **cluster.config.env(), "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for thread in threads:
        thread.start()
    output, _ = command.communicate(timeout=120)
    for thread in threads:
        thread.join(timeout=120)
    assert command.returncode == 0, output
    for base, got in answers.items():
        assert len(got) == len(uploaded[base]), base
        for answer in got:
            assert answer.status_code == 200, answer.text[:2000]
            assert answer.json()["results"][0]["status"] == "imported", answer.text
    everything = [*imported, *uploaded[cluster.a], *uploaded[cluster.b]]
    shas = {hashlib.sha256(path.read_bytes()).hexdigest() for path in everything}
    assert File.select().where(File.sha256.in_(list(shas))).count() == len(shas)
    assert Photo.select().where(Photo.sha256.in_(list(shas))).count() == len(shas)
    assert Photo.select().count() == photos_before + len(shas)
    checked = run_cli(cluster.config, "check")
    assert checked.returncode == 0 and "datastore is consistent" in checked.stdout, checked.stdout
    cluster.assert_no_traceback()


def test_a_picture_and_its_raw_finalised_at_once_become_one_photo(
    cluster: Cluster, samples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The JPEG reaches one instance and its RAW another (a client that sends them apart) and their
    transactions overlap. SQLite would run them one after the other (IMMEDIATE); PostgreSQL runs them
    side by side, and the RAW's must still see the JPEG's photo to join it."""
    jpeg = copy(samples, SMALL_JPEG, tmp_path, "IMG_0100.jpg")
    exiftool_write(jpeg, "-AllDates=2021:05:12 12:21:21")  # the CR3's time: the same shot
    raw = copy(samples, CR3, tmp_path, "IMG_0100.CR3")
    library = open_library(cluster.config)
    try:
        pipeline = library.pipeline()
        prepared = {path.suffix: pipeline.prepare_path(path) for path in (jpeg, raw)}
    finally:
        library.close()
    owner = User.get(User.name == "admin").id
    written = threading.Event()
    real = importer._pair_group

    def slow_pair_group(group, options, plan) -> None:
        real(group, options, plan)
        if group[0].role == "original":
            # The JPEG's rows are written, not committed: the other instance's finalise starts now.
            written.set()
            time.sleep(1)

    monkeypatch.setattr(importer, "_pair_group", slow_pair_group)
    results: dict[str, list] = {}

    def jpeg_side() -> None:
        results["jpg"] = importer.finalise([prepared[".jpg"]], ImportOptions(owner_id=owner), library.store)
        database.close_database()

    def raw_side() -> None:
        written.wait(30)
        results["raw"] = importer.finalise([prepared[".CR3"]], ImportOptions(owner_id=owner), library.store)
        database.close_database()

    threads = [threading.Thread(target=jpeg_side), threading.Thread(target=raw_side)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [r.status for r in results["jpg"]] == ["imported"], results
    assert [r.status for r in results["raw"]] == ["attached"], results
    photo = Photo.get(Photo.file_name == "IMG_0100.jpg")
    assert File.select().where(File.photo == photo).count() == 2
    assert Photo.select().where(Photo.pair_key == "img_0100").count() == 1


def test_failed_logins_on_one_instance_count_on_the_other(cluster: Cluster) -> None:
    on_a, on_b = Web(cluster.a), Web(cluster.b)
    on_a.get("/login")
    on_b.get("/login")
    try:
        for _ in range(sessions.MAX_FAILURES - 1):
            assert on_a.post("/login", {"name": "admin", "password": "guess"}).status_code == 401
        # The last failure allowed, on B: B counts A's nine.
        assert on_b.post("/login", {"name": "admin", "password": "guess"}).status_code == 401
        for browser in (on_b, on_a):
            limited = browser.post("/login", {"name": "admin", "password": PASSWORD})
            assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    finally:
        # Both keys (this address, this account) would refuse every later login for a quarter hour.
        LoginFailure.delete().execute()
    assert on_b.post("/login", {"name": "admin", "password": PASSWORD}).status_code == 303
    cluster.assert_no_traceback()
