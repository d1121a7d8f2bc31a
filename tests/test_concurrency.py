"""Concurrency: the web server, the console's services and CLI imports writing to one SQLite database at
once for a minute. Zero "database is locked" (nor any 500 or traceback) anywhere, and every write that
was answered as done is in the database afterwards; the database and the datastore check clean."""

from __future__ import annotations

import hashlib
import random
import re
import sqlite3
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from peewee import fn

from photoflow import db as database
from photoflow import services
from photoflow.config import Config
from photoflow.library import open_library
from photoflow.models import Album, File, Photo, PhotoAlbum, User
from tests.conftest import Served, Web, make_config, make_jpegs, run_cli, web_as

pytestmark = [pytest.mark.serial, pytest.mark.slow]  # a minute of writes at once: timing-sensitive

DURATION = 60  # seconds of everyone writing at once
UPLOADERS = 2  # web clients uploading through the upload tab
EDITORS = 1  # web clients creating and renaming albums, editing photo titles
CLI_FILES = 3  # pictures per `photoflow import-image`
PASSWORD = "correct horse"


@dataclass
class Record:
    """Every write that was answered as done, by whom, and everything that went wrong."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    errors: list[str] = field(default_factory=list)
    uploads: dict[str, int] = field(default_factory=dict)  # file sha256 -> photo id (web uploads)
    imports: set[str] = field(default_factory=set)  # file sha256 (CLI imports)
    album_titles: dict[int, str] = field(default_factory=dict)  # album id -> its last title
    album_public: dict[int, bool] = field(default_factory=dict)
    photo_titles: dict[int, str] = field(default_factory=dict)
    levels: dict[int, int] = field(default_factory=dict)
    memberships: set[tuple[int, int]] = field(default_factory=set)  # (album id, photo id)
    passwords: dict[str, str] = field(default_factory=dict)  # user name -> its last password
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, what: str, n: int = 1) -> None:
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def error(self, who: str, what: str) -> None:
        with self.lock:
            self.errors.append(f"{who}: {what}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def expect(record: Record, who: str, answer, status: int) -> bool:
    """Whether the answer is the one wanted; anything else is recorded as an error."""
    if answer.status_code == status and "locked" not in answer.text:
        return True
    record.error(
        who, f"{answer.request.method} {answer.request.url} -> {answer.status_code} {answer.text[:300]}"
    )
    return False


def uploader(base: str, number: int, folder: Path, record: Record, until: float) -> None:
    """Uploads one or two new small JPEGs at a time through the upload tab, as the admin."""
    who = f"uploader {number}"
    browser = web_as(base, "admin", PASSWORD)
    made = 0
    while time.monotonic() < until:
        count = 1 + made % 2
        paths = make_jpegs(folder / f"u{number}-{made}", count, size=(96, 64), start=number * 100_000 + made)
        made += count
        answer = browser.upload(*paths)
        if not expect(record, who, answer, 200):
            continue
        results = answer.json()["results"]
        for path, result in zip(paths, results, strict=True):
            if result["status"] != "imported":
                record.error(who, f"{path.name}: {result}")
                continue
            with record.lock:
                record.uploads[sha256(path)] = result["photo"]
        record.count("web uploads (requests)")
        record.count("web uploads (photos)", count)


def editor(base: str, number: int, record: Record, until: float) -> None:
    """Creates and renames albums and retitles photos through the forms, as the admin."""
    who = f"editor {number}"
    browser = web_as(base, "admin", PASSWORD)
    albums: list[int] = []
    step = 0
    while time.monotonic() < until:
        step += 1
        title = f"web {number}-{step} ünïcode"
        if step % 3 == 1 or not albums:
            answer = browser.post("/albums", {"title": title})
            if expect(record, who, answer, 303):
                found = re.search(r"/album/(\d+)", answer.headers["Location"])
                assert found, answer.headers
                albums.append(int(found.group(1)))
                with record.lock:
                    record.album_titles[albums[-1]] = title
                record.count("web album creations")
        elif step % 3 == 2:
            album_id = random.choice(albums)
            answer = browser.post(f"/album/{album_id}", {"action": "edit", "title": title + " renamed"})
            if expect(record, who, answer, 303):
                with record.lock:
                    record.album_titles[album_id] = title + " renamed"
                record.count("web album renames")
        else:
            with record.lock:
                ours = list(record.uploads.values())
            if not ours:
                continue
            photo_id = random.choice(ours)
            answer = browser.post(f"/photo/{photo_id}", {"title": f"title {number}-{step}"})
            if expect(record, who, answer, 303):
                with record.lock:
                    record.photo_titles[photo_id] = f"title {number}-{step}"
                record.count("web photo title edits")


def console(config: Config, record: Record, until: float) -> None:
    """The console's use cases, called as its panes call them, on this thread's own connection."""
    who = "console services"
    admin = services.user_by_name("admin")
    albums: list[int] = []
    users: list[User] = []
    step = 0
    try:
        while time.monotonic() < until:
            step += 1
            try:
                kind = step % 6
                if kind == 0 or not albums:
                    album = services.create_album(f"console {step}", admin.id)
                    albums.append(album.id)
                    with record.lock:
                        record.album_titles[album.id] = album.title
                        record.album_public[album.id] = False
                    record.count("console album creations")
                elif kind == 1:
                    album_id = random.choice(albums)
                    services.edit_album(album_id, title=f"console {step} renamed")
                    with record.lock:
                        record.album_titles[album_id] = f"console {step} renamed"
                    record.count("console album renames")
                elif kind == 2:
                    album_id = random.choice(albums)
                    public = not record.album_public[album_id]
                    services.set_album_visibility(album_id, public)
                    with record.lock:
                        record.album_public[album_id] = public
                    record.count("console visibility toggles")
                elif kind in (3, 4):
                    photo = Photo.select(Photo.id).order_by(fn.Random()).first()
                    if photo is None:
                        continue
                    if kind == 3:
                        level = random.choice(services.LEVELS)
                        services.set_level(photo.id, level)
                        with record.lock:
                            record.levels[photo.id] = level
                        record.count("console level changes")
                    else:
                        album_id = random.choice(albums)
                        services.add_to_album(album_id, [photo.id])
                        with record.lock:
                            record.memberships.add((album_id, photo.id))
                        record.count("console additions to albums")
                elif step % 30 == 5 or not users:
                    users.append(services.create_user(f"person {step}", PASSWORD))
                    with record.lock:
                        record.passwords[users[-1].name] = PASSWORD
                    record.count("console user creations")
                else:
                    user = random.choice(users)
                    services.set_password(user.id, f"new password {step}")
                    with record.lock:
                        record.passwords[user.name] = f"new password {step}"
                    record.count("console password resets")
            except Exception:
                record.error(who, traceback.format_exc())
    finally:
        database.close_database()


def importer(config: Config, folder: Path, record: Record, until: float) -> None:
    """`photoflow import-image` of a new small folder, again and again."""
    run = 0
    while time.monotonic() < until:
        run += 1
        paths = make_jpegs(folder / f"cli-{run}", CLI_FILES, size=(96, 64), start=900_000 + run * 10)
        done = run_cli(config, "import-image", str(folder / f"cli-{run}"), "--album", f"cli {run}")
        said = done.stdout + done.stderr
        if done.returncode != 0 or f"imported {CLI_FILES}, " not in said or "locked" in said:
            record.error("import-image", f"exit {done.returncode}: {said[-1000:]}")
            continue
        with record.lock:
            record.imports.update(sha256(p) for p in paths)
        record.count("CLI imports (runs)")
        record.count("CLI imports (photos)", CLI_FILES)


def test_web_console_and_cli_write_at_once(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert run_cli(config, "db", "upgrade").returncode == 0
    made = run_cli(config, "create-user", "admin", "--admin", "--password-stdin", input=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    served = Served(config)
    library = open_library(config)  # the console's way in: its own connection to the same file
    record = Record()
    until = time.monotonic() + DURATION

    def guarded(target):
        def run(*args) -> None:
            try:
                target(*args)
            except Exception:
                record.error(target.__name__, traceback.format_exc())

        return run

    threads = [
        *(
            threading.Thread(target=guarded(uploader), args=(served.base, n, tmp_path / "web", record, until))
            for n in range(UPLOADERS)
        ),
        *(
            threading.Thread(target=guarded(editor), args=(served.base, n, record, until))
            for n in range(EDITORS)
        ),
        threading.Thread(target=guarded(console), args=(config, record, until)),
        threading.Thread(target=guarded(importer), args=(config, tmp_path / "cli", record, until)),
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join(timeout=DURATION + 240)
            assert not thread.is_alive(), f"{thread.name} is stuck"
        # Reads still work, and a last check of the web's own view.
        assert Web(served.base).get("/healthz").status_code == 200
    finally:
        log = served.stop()
        library.close()

    print("\n" + "\n".join(f"  {what}: {n}" for what, n in sorted(record.counts.items())))
    print(f"  errors: {len(record.errors)}")
    assert not record.errors, "\n".join(record.errors[:20])
    assert "locked" not in log and "Traceback" not in log, log[-5000:]
    assert not re.search(r'HTTP/1\.[01]" 5\d\d ', log), [ln for ln in log.splitlines() if '" 5' in ln][:10]
    # Everyone did some of everything (a writer that never ran proves nothing).
    for what in (
        "web uploads (photos)",
        "web album renames",
        "web photo title edits",
        "console album renames",
        "console level changes",
        "console additions to albums",
        "console password resets",
        "CLI imports (photos)",
    ):
        assert record.counts.get(what, 0) > 0, (what, record.counts)

    # Every write answered as done is there.
    database.open_database(config.database)
    try:
        stored = {f.sha256: f.photo_id for f in File.select(File.sha256, File.photo)}
        for sha, photo_id in record.uploads.items():
            assert stored.get(sha) == photo_id, f"web upload {sha} (photo {photo_id}) is missing"
        for sha in record.imports:
            assert sha in stored, f"CLI import {sha} is missing"
        titles = {a.id: a for a in Album.select()}
        for album_id, title in record.album_titles.items():
            assert titles[album_id].title == title
        for album_id, public in record.album_public.items():
            assert titles[album_id].is_public == public
        photos = {p.id: p for p in Photo.select()}
        for photo_id, title in record.photo_titles.items():
            assert photos[photo_id].title == title
        for photo_id, level in record.levels.items():
            assert photos[photo_id].level == level
        links = set(PhotoAlbum.select(PhotoAlbum.album, PhotoAlbum.photo).tuples())
        assert record.memberships <= links
        for name, password in record.passwords.items():
            assert services.authenticate(name, password) is not None, name
        assert len(photos) == len(record.uploads) + len(record.imports)
    finally:
        database.close_database()
    with sqlite3.connect(config.database) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    check = run_cli(config, "check")
    assert check.returncode == 0 and "datastore is consistent" in check.stdout, check.stdout + check.stderr
