"""The admin console as a door: what reaches it from outside (file names on the server, metadata inside
files) is data, never markup, a command or a reason to hang. Driven by Textual's pilot against a real
library; markup in titles and user names typed into the console is in test_admin_tui.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from textual.widgets import Input

from photoflow import check
from photoflow.models import File, Photo
from tests.conftest import make_jpegs
from tests.test_admin_tui import (
    SIZE,
    console,
    errors,
    go,
    import_log,
    said_error,
    settle,
    start_import,
    type_text,
    until,
    words,
)

pytestmark = pytest.mark.slow

MARKER = "PWNED_BY_A_NAME"
# PyExifTool joins its arguments with newlines: this name would be `-if` and a Perl expression.
INJECTION = f"a.jpg\n-if\nsystem('touch {MARKER}')||1\n"
HOSTILE_NAMES = (
    INJECTION + ".jpg",
    "new\nline.jpg",
    "-if.jpg",
    "--help.jpg",
    "\u202egpj.exe",  # right-to-left override: reads as "exe.jpg"
    "[bold]b [@click=app.quit]q.jpg",
    "x" * 200 + ".jpg",
)


def no_marker_anywhere(*roots: Path) -> None:
    for root in roots:
        assert not list(root.rglob(MARKER)), f"{MARKER} appeared under {root}"


async def test_hostile_file_names_import_as_display_text_and_run_nothing(stocked, tmp_path: Path) -> None:
    folder = tmp_path / "hostile"
    sources = make_jpegs(folder, len(HOSTILE_NAMES), start=500)
    for source, name in zip(sources, HOSTILE_NAMES, strict=True):
        source.rename(folder / name)
    cwd = Path.cwd()
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await start_import(pilot, folder, "Hostile")
        await until(pilot, lambda: not app.query_one("#import-pane").running)
        await settle(pilot)
        log = import_log(app)
        assert f"imported {len(HOSTILE_NAMES)}," in " ".join(log.split()), log
        assert "[@click=app.quit]q" in log  # shown, not run
        assert app.is_running and not errors(app)
    no_marker_anywhere(tmp_path, cwd, stocked.config.datastore)
    # Every stored file has a name Photoflow made; the client's name is display text in the row only.
    datastore = stocked.config.datastore.resolve()
    for row in File.select():
        stored = stocked.store.resolve(row.path).resolve()
        assert stored.is_relative_to(datastore)
        assert "\n" not in row.path and "\u202e" not in row.path and not row.path.startswith("-")
    # Display names keep what prints: a newline or a right-to-left override is dropped, not shown.
    names = {p.file_name for p in Photo.select()}
    assert {
        "newline.jpg",
        "gpj.exe",
        "-if.jpg",
        "--help.jpg",
        f"a.jpg-ifsystem('touch {MARKER}')||1.jpg",
    } <= names
    assert check.check_datastore(stocked.store).ok


async def test_markup_and_html_in_metadata_show_as_text_in_the_details(stocked, tmp_path: Path) -> None:
    jpeg = make_jpegs(tmp_path / "meta", 1, start=700)[0]
    title = "[@click=app.quit]title[/]"
    description = "[/x] <img src=x onerror=alert(1)> [link=file:///etc/passwd]l[/link]"
    subprocess.run(
        [
            "exiftool", "-q", "-overwrite_original", f"-XMP-dc:Title={title}",
            f"-XMP-dc:Description={description}", "-Model=[red]Cam[/red]", "-XMP-dc:Subject=[bold]kw",
            str(jpeg),
        ],
        check=True,
    )  # fmt: skip
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await start_import(pilot, jpeg)
        await until(pilot, lambda: not app.query_one("#import-pane").running)
        await settle(pilot)
        await go(pilot, "4")
        await pilot.press("/")
        await type_text(pilot, jpeg.stem)
        await go(pilot, "enter")
        await go(pilot, "i")
        shown = words(app)
        assert "[@click=app.quit]title[/]" in shown, shown
        assert "[red]Cam[/red]" in shown, shown
        await go(pilot, "escape")
        assert app.is_running and not errors(app)


async def test_a_typed_path_to_a_pipe_or_a_device_is_refused_without_hanging(stocked, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        before = Photo.select().count()
        for path in (fifo, Path("/dev/zero")):
            await start_import(pilot, path)
            await until(pilot, lambda: not app.query_one("#import-pane").running, timeout=60)
            await settle(pilot)
            log = " ".join(import_log(app).split())
            assert "failed 1" in log or errors(app), log
        assert Photo.select().count() == before and app.is_running
        app.query_one("#import-path", Input).value = ""
        await start_import(pilot, tmp_path / "nowhere" / ".." / ".." / "etc")
        await said_error(pilot, f"{tmp_path / 'nowhere' / '..' / '..' / 'etc'} does not exist.")
