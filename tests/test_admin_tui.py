"""The admin console through Textual's pilot: every section's main path and its refusals, against a
real library (real camera files imported by the real pipeline, a real SQLite file)."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Checkbox, DataTable, Input, ProgressBar, RichLog, TabbedContent

from admin_tui.app import AdminApp
from admin_tui.panes import photos as photos_pane
from photoflow import check, services
from photoflow.batch import collect_files, import_files
from photoflow.importer import ImportOptions
from photoflow.library import Library
from photoflow.models import Album, File, Photo, PhotoAlbum, User
from tests.conftest import make_jpegs

SIZE = (80, 24)
CONSOLE_WORKERS = {"load", "action", "import", "maintenance"}


# -- the world ---------------------------------------------------------------------------------------


def console(library: Library) -> AdminApp:
    return AdminApp(library.config, library)


async def settle(pilot: Pilot) -> None:
    """Wait until every worker has finished and what it reported is on the screen (reloads included)."""
    app = pilot.app
    for _ in range(200):
        # The console's own workers; the directory tree keeps a loader worker alive for good.
        ours = [worker for worker in app.workers if worker.group in CONSOLE_WORKERS]
        if ours:  # (an empty list would mean "every worker", the tree's loader included)
            await app.workers.wait_for_complete(ours)
        await pilot.pause()
        if not any(worker.is_running for worker in app.workers if worker.group in CONSOLE_WORKERS):
            await pilot.pause()
            return
    raise AssertionError("the console never settled")


async def until(pilot: Pilot, condition: Callable[[], bool], timeout: float = 60) -> None:
    """Let the console run until `condition` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the console")
        await pilot.pause(0.05)


def screen_text(app: AdminApp, background: bool = True) -> str:
    """The screen as plain text, as a terminal shows it (the way App.export_screenshot draws it);
    without `background`, a dialog alone, not interleaved with the section it covers."""
    width, height = app.size
    out = Console(width=width, height=height, file=io.StringIO(), record=True, legacy_windows=False)
    stack = app._background_screens if background else []
    out.print(app.screen._compositor.render_update(full=True, screen_stack=stack))
    return out.export_text()


def words(app: AdminApp) -> str:
    """The screen's words in one line, borders dropped, so that text wrapped in a dialog reads on; with
    a dialog open, only what is inside it (the section behind shows through its sides)."""
    lines = screen_text(app).splitlines()
    dialogs = app.screen.query(".dialog")
    if dialogs:
        box = dialogs.first().region
        lines = [line[box.x : box.right] for line in lines[box.y : box.bottom]]
    return " ".join(" ".join(lines).translate(BORDERS).split())


BORDERS = str.maketrans(dict.fromkeys("█▀▄▔▁│─┃━╸╺", " "))


def said(app: AdminApp) -> list[tuple[str, str]]:
    """The notifications on screen: (severity, message). Textual keeps them in App._notifications."""
    return [(n.severity, n.message) for n in app._notifications]


def errors(app: AdminApp) -> list[str]:
    return [message for severity, message in said(app) if severity == "error"]


def rows(app: AdminApp, table_id: str) -> list[list[str]]:
    table = app.query_one(f"#{table_id}", DataTable)
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


async def go(pilot: Pilot, key: str) -> None:
    await pilot.press(key)
    await settle(pilot)


async def type_text(pilot: Pilot, text: str) -> None:
    await pilot.press(*[{" ": "space"}.get(ch, ch) for ch in text])


async def cursor_to(pilot: Pilot, table_id: str, first_cell: str) -> None:
    """Move the cursor of a table to the row whose first cell is `first_cell`, with the arrow keys."""
    table = pilot.app.screen.query_one(f"#{table_id}", DataTable)  # a dialog's too
    names = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
    target = names.index(first_cell)
    await pilot.press(*(["up"] * table.row_count), *(["down"] * target))
    assert str(table.get_row_at(table.cursor_row)[0]) == first_cell


# -- the frame ---------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_every_section_has_its_key_and_every_binding_fits_the_footer_at_80_columns(stocked):
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        expected = {
            "1": ("overview", []),
            "2": ("users", ["n New", "p Password", "a Admin", "d Delete"]),
            "3": ("albums", ["n New", "e Rename", "c Describe", "v Public", "s Share", "d Delete"]),
            "4": ("photos", ["/ Find", "[ ] Page", "i Info", "a Add", "x Remove", "l Level", "d Delete"]),
            "5": ("import", ["^s Start import", "esc Cancel import"]),
            "6": ("maintenance", ["a Regenerate", "m Missing", "c Check", "s Sweep", "esc Cancel"]),
        }
        for key, (section, bindings) in expected.items():
            await go(pilot, key)
            assert app.query_one(TabbedContent).active == section
            footer = screen_text(app).splitlines()[SIZE[1] - 1]
            for shown in bindings:
                assert shown in footer, (section, footer)
            if section != "import":  # the import form's inputs take printable keys, so those hide
                for shown in ("1-6 Tabs", "r Reload", "q Quit"):
                    assert shown in footer, (section, footer)
        # Back to the Overview from a section whose table has the keyboard (it used to pull its tab back).
        await go(pilot, "4")
        await go(pilot, "1")
        assert app.query_one(TabbedContent).active == "overview"
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_a_database_that_needs_upgrading_is_refused_before_the_screen_starts(config):
    from photoflow import db as database
    from photoflow.errors import Unavailable

    database.open_database(config.database)  # an empty database: no migrations applied
    with pytest.raises(Unavailable, match="photoflow db upgrade"):
        AdminApp(config)


# -- overview ----------------------------------------------------------------------------------------


async def test_overview_counts_the_library_and_shows_the_last_check(stocked):
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = screen_text(app)
        assert "Photos                 11" in text
        assert "Albums       2 (1 public)" in text
        assert "Users                   1" in text
        assert "Nikon D90.jpg" in text and "Recent imports" in text
        assert "never run" in text
        originals = sum(f.size for f in File.select() if f.role == "original")
        assert services_bytes(originals) in text
        assert "counting…" not in text  # the derivatives' walk came back
        await go(pilot, "6")
        await go(pilot, "c")
        await go(pilot, "1")
        assert "datastore is consistent" in words(app)


def services_bytes(size: int) -> str:
    from photoflow.stats import human_bytes

    return human_bytes(size)


# -- users -------------------------------------------------------------------------------------------


async def fill_user_form(pilot: Pilot, name: str, password: str, again: str) -> None:
    await type_text(pilot, name)
    await pilot.press("tab")
    await type_text(pilot, password)
    await pilot.press("tab")
    await type_text(pilot, again)


@pytest.mark.slow
async def test_users_create_reset_promote_and_delete(stocked):
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await go(pilot, "2")
        await pilot.press("n")
        await fill_user_form(pilot, "bob", "bob's password", "bob's password")
        await pilot.press("tab", "space")  # the Administrator box: no, leave it; then back off it
        await pilot.press("space")
        await go(pilot, "enter")
        assert ["bob", "member", "0"] in [[c.strip() for c in row] for row in rows(app, "users-table")]
        assert ("information", "Created bob.") in said(app)
        assert services.authenticate("bob", "bob's password") is not None

        # Reset the password: the old one stops working, the new one works.
        await cursor_to(pilot, "users-table", "bob")
        await pilot.press("p")
        await type_text(pilot, "a new secret")
        await pilot.press("tab")
        await type_text(pilot, "a new secret")
        await go(pilot, "enter")
        assert services.authenticate("bob", "bob's password") is None
        assert services.authenticate("bob", "a new secret") is not None

        # Promote, then delete: his photos pass to the other administrator, as the question says.
        await go(pilot, "a")
        assert User.get(User.name == "bob").is_admin
        photo = Photo.select().first()
        Photo.update(owner=User.get(User.name == "bob")).where(Photo.id == photo.id).execute()
        await go(pilot, "r")
        await cursor_to(pilot, "users-table", "admin")
        await pilot.press("d")
        await pilot.pause()
        question = words(app)
        assert "Delete the account admin?" in question and "pass to bob" in question
        await go(pilot, "n")  # not this one
        assert User.select().count() == 2
        await cursor_to(pilot, "users-table", "bob")
        await pilot.press("d")
        await pilot.pause()
        assert "Its 1 photo and its albums pass to admin" in words(app)
        await go(pilot, "y")
        assert [r[0] for r in rows(app, "users-table")] == ["admin"]
        assert Photo.get_by_id(photo.id).owner.name == "admin"


@pytest.mark.slow
async def test_users_refusals_are_sentences_not_tracebacks(stocked):
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await go(pilot, "2")

        # Two different passwords, then an empty one: the form says so and stays open.
        await pilot.press("n")
        await fill_user_form(pilot, "carol", "one password", "another password")
        await pilot.press("enter")
        await pilot.pause()
        assert "The two passwords differ." in words(app)
        assert User.select().count() == 1
        await pilot.press("escape")
        await pilot.press("n")
        await fill_user_form(pilot, "carol", "", "")
        await pilot.press("enter")
        await pilot.pause()
        assert "password" in screen_text(app).lower() and User.select().count() == 1
        await pilot.press("escape")

        # A name that is taken, whatever its case.
        await pilot.press("n")
        await fill_user_form(pilot, "ADMIN", "long enough password", "long enough password")
        await go(pilot, "enter")
        assert errors(app) == ["A user named 'ADMIN' already exists."]

        # The last administrator can be neither deleted nor demoted.
        await cursor_to(pilot, "users-table", "admin")
        await go(pilot, "d")
        assert "This is the last administrator: make another one first." in errors(app)
        await go(pilot, "a")
        assert any("admin" in message.lower() for message in errors(app)[2:])
        assert User.get(User.name == "admin").is_admin
        assert app.is_running


# -- albums ------------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_albums_create_rename_describe_publish_share_and_delete(stocked):
    app = console(stocked)
    base = stocked.config.base_url
    async with app.run_test(size=SIZE) as pilot:
        await go(pilot, "3")
        table = [[c.strip() for c in row] for row in rows(app, "albums-table")]
        assert ["Cameras", "11", "public", ""] in table and ["Family", "0", "private", ""] in table

        await pilot.press("n")
        await type_text(pilot, "Road trip")
        await go(pilot, "enter")
        album = Album.get(Album.title == "Road trip")
        assert not album.is_public

        await cursor_to(pilot, "albums-table", "Road trip")
        await pilot.press("e", "ctrl+u")
        await type_text(pilot, "Road trip 2026")
        await go(pilot, "enter")
        assert Album.get_by_id(album.id).title == "Road trip 2026"

        await pilot.press("c")
        await type_text(pilot, "Lisbon to Porto")
        await go(pilot, "enter")
        assert Album.get_by_id(album.id).description == "Lisbon to Porto"
        assert "Lisbon to Porto" in words(app)

        await go(pilot, "v")
        assert Album.get_by_id(album.id).is_public
        assert ("information", "Road trip 2026 is now public: anyone can see it.") in said(app)
        await go(pilot, "v")
        assert not Album.get_by_id(album.id).is_public

        await go(pilot, "s")
        token = Album.get_by_id(album.id).share_token
        assert token and ("information", f"Share link: {base}/s/{token}") in said(app)
        assert f"{base}/s/{token}" in words(app)  # and under the table while the row is chosen
        await pilot.press("s")
        await pilot.pause()
        assert "Revoke the share link of Road trip 2026?" in words(app)
        await go(pilot, "y")
        assert Album.get_by_id(album.id).share_token is None

        services.add_to_album(album.id, [p.id for p in Photo.select()])
        await pilot.press("d")
        await pilot.pause()
        assert "Its photos stay in the library." in words(app)
        await go(pilot, "y")
        assert Album.get_or_none(Album.id == album.id) is None
        assert Photo.select().count() == 11
        assert "Road trip 2026" not in [r[0] for r in rows(app, "albums-table")]


async def test_albums_refuse_an_empty_title(stocked):
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await go(pilot, "3")
        await cursor_to(pilot, "albums-table", "Family")
        await pilot.press("e", "ctrl+u")
        await go(pilot, "enter")
        assert len(errors(app)) == 1 and "title" in errors(app)[0]
        assert Album.get(Album.title == "Family")


# -- markup in user strings ----------------------------------------------------------------------------


INJECTED = "[@click=app.quit]x[/]"


@pytest.mark.slow
async def test_markup_in_titles_names_and_file_names_is_shown_never_run(stocked, admin, tmp_path, samples):
    weird = tmp_path / "weird"
    weird.mkdir()
    # New bytes (a copy of a stocked photo would be a duplicate, keeping its first name).
    make_jpegs(weird, 1)[0].rename(weird / "[bold]b [link=x]y.jpg")
    services.create_user("[red]eve[/red]", "eve's password")
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        # An album titled with a click action, made through the console's own form.
        await go(pilot, "3")
        await pilot.press("n")
        await type_text(pilot, INJECTED)
        await go(pilot, "enter")
        assert Album.get(Album.title == INJECTED)
        assert ("information", f"Created the album {INJECTED}.") in said(app)
        assert INJECTED in words(app)
        # Clicking the title (where a [@click] would fire) leaves the console running.
        await cursor_to(pilot, "albums-table", INJECTED)
        table = app.query_one("#albums-table", DataTable)
        await pilot.click(table, offset=(4, table.cursor_row + 1))
        await settle(pilot)
        assert app.is_running

        await go(pilot, "2")
        assert "[red]eve[/red]" in words(app)

        # A file whose name is markup, imported into that album from the import screen.
        await go(pilot, "5")
        app.query_one("#import-path", Input).value = str(weird)
        app.query_one("#import-album", Input).value = INJECTED
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not app.query_one("#import-pane").running)
        await settle(pilot)
        log = "\n".join(line.text for line in app.query_one("#import-log", RichLog).lines)
        assert "[bold]b [link=x]y.jpg" in log

        await go(pilot, "4")
        await pilot.press("/")
        await type_text(pilot, "bold")
        await go(pilot, "enter")
        assert rows(app, "photos-table")[0][0] == "[bold]b [link=x]y.jpg"
        assert INJECTED in rows(app, "photos-table")[0][3]
        await go(pilot, "i")
        assert "[bold]b [link=x]y.jpg" in words(app)
        await go(pilot, "escape")
        assert app.is_running and not errors(app)


# -- photos ------------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_photos_table_searches_and_pages(stocked, monkeypatch):
    monkeypatch.setattr(photos_pane, "PAGE", 5)
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await go(pilot, "4")
        shown = rows(app, "photos-table")
        assert len(shown) == 5
        assert shown[0][:3] == ["Samsung SM-G935L (Galaxy S7 Edge).jpg", "2017-02-09", "samsung SM-G935L"]
        assert "1–5 of 11 photos" in words(app)
        await go(pilot, "]")
        assert "6–10 of 11 photos" in words(app)
        await go(pilot, "]")
        assert "11–11 of 11 photos" in words(app)
        assert rows(app, "photos-table")[0][0] == "Olympus E-20.jpg"  # the oldest, 2001
        await go(pilot, "]")  # no page after the last
        assert "11–11 of 11 photos" in words(app)
        await go(pilot, "[")
        assert "6–10 of 11 photos" in words(app)

        await pilot.press("/")
        await type_text(pilot, "nikon")
        await go(pilot, "enter")
        assert [r[0] for r in rows(app, "photos-table")] == ["Nikon D90.jpg"]
        assert '1–1 of 1 photos matching "nikon"' in words(app)
        assert app.focused is app.query_one("#photos-table")  # back on the table: its keys work

        await pilot.press("/", "ctrl+u")
        await type_text(pilot, "no such camera")
        await go(pilot, "enter")
        assert rows(app, "photos-table") == []
        assert 'No photos matching "no such camera"' in words(app)
        await go(pilot, "d")  # nothing under the cursor: nothing happens
        assert Photo.select().count() == 11 and not errors(app)


@pytest.mark.slow
async def test_photo_details_albums_level_and_delete(stocked):
    app = console(stocked)
    store = stocked.store
    async with app.run_test(size=SIZE) as pilot:
        await go(pilot, "4")
        await cursor_to(pilot, "photos-table", "Nikon D90.jpg")
        photo = Photo.get(Photo.file_name == "Nikon D90.jpg")

        await go(pilot, "i")
        details = screen_text(app)
        assert "NIKON D90" in details or "Nikon D90" in details
        assert "25 Apr 2011" in details and "Cameras" in details
        assert "Nikon D90.jpg (original" in details
        await go(pilot, "escape")

        await go(pilot, "a")
        assert "Add to which album?" in words(app)
        await cursor_to(pilot, "pick", "Family")
        await go(pilot, "enter")
        family = Album.get(Album.title == "Family")
        assert PhotoAlbum.get_or_none(photo=photo.id, album=family.id)
        assert rows(app, "photos-table")[[r[0] for r in rows(app, "photos-table")].index("Nikon D90.jpg")][
            3
        ] in (
            "Cameras, …",
            "Cameras, Family",
            "Cameras, Fa…",
        )
        await go(pilot, "a")
        await cursor_to(pilot, "pick", "Family")
        await go(pilot, "enter")
        assert ("information", "It was already in that album.") in said(app)

        await go(pilot, "x")
        await cursor_to(pilot, "pick", "Cameras")
        await go(pilot, "enter")
        assert not PhotoAlbum.get_or_none(photo=photo.id, album=Album.get(Album.title == "Cameras").id)

        await go(pilot, "l")
        await cursor_to(pilot, "pick", "4  members only")
        await go(pilot, "enter")
        assert Photo.get_by_id(photo.id).level == 4

        paths = [f.path for f in File.select().where(File.photo == photo.id)]
        await pilot.press("d")
        await pilot.pause()
        assert "Delete Nikon D90.jpg and all its files for good?" in words(app)
        await go(pilot, "escape")  # changed my mind
        assert Photo.get_or_none(Photo.id == photo.id)
        await pilot.press("d")
        await go(pilot, "y")
        assert Photo.get_or_none(Photo.id == photo.id) is None
        assert not any(store.exists(path) for path in paths)
        assert "Nikon D90.jpg" not in [r[0] for r in rows(app, "photos-table")]
        assert check.check_datastore(store).ok


# -- import ------------------------------------------------------------------------------------------


async def start_import(pilot: Pilot, path: Path | str, album: str = "", public: bool = False) -> None:
    app = pilot.app
    await go(pilot, "5")
    app.query_one("#import-path", Input).value = str(path)
    app.query_one("#import-album", Input).value = album
    if app.query_one("#import-public", Checkbox).value != public:  # it keeps its state between runs
        await pilot.click("#import-public")
    await pilot.press("ctrl+s")


async def said_error(pilot: Pilot, text: str) -> None:
    """Wait for this refusal to be the latest error on screen (its message may trail the worker)."""
    await until(pilot, lambda: errors(pilot.app)[-1:] == [text])


def import_log(app: AdminApp) -> str:
    return "\n".join(line.text for line in app.query_one("#import-log", RichLog).lines)


@pytest.mark.slow
async def test_import_a_folder_into_a_new_public_album_with_a_broken_file_failing_alone(
    stocked, samples, tmp_path
):
    batch = tmp_path / "batch"
    batch.mkdir()
    for path in sorted((samples / "jpeg" / "gps").iterdir()):
        (batch / path.name).symlink_to(path)
    whole = (samples / "jpeg" / "cameras" / "Nikon D90.jpg").read_bytes()
    (batch / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await start_import(pilot, batch, "Walks", public=True)
        await until(pilot, lambda: not app.query_one("#import-pane").running)
        await settle(pilot)
        log = import_log(app)
        assert "Done: imported 6, duplicates 0, attached RAWs/sidecars 0, failed 1." in " ".join(log.split())
        # (the log wraps lines, even inside words: compare without the spaces)
        assert "failedtruncated.jpg:thepictureistruncatedorcorrupt" in "".join(log.split())
        bar = app.query_one("#import-progress", ProgressBar)
        assert (bar.progress, bar.total) == (7, 7)
        walks = Album.get(Album.title == "Walks")
        assert walks.is_public
        assert PhotoAlbum.select().where(PhotoAlbum.album == walks.id).count() == 6
        assert Photo.select().count() == 17

        # The same again: everything is a duplicate (already in the album), nothing is added.
        await start_import(pilot, batch, "Walks")
        await until(pilot, lambda: not app.query_one("#import-pane").running)
        assert "imported 0, duplicates 6" in import_log(app)
        assert Photo.select().count() == 17


async def test_import_refusals(stocked, tmp_path):
    (tmp_path / "empty").mkdir()
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await start_import(pilot, tmp_path / "nowhere")
        await said_error(pilot, f"{tmp_path / 'nowhere'} does not exist.")
        await start_import(pilot, tmp_path / "empty")
        await said_error(pilot, f"There are no files to import in {tmp_path / 'empty'}.")
        await start_import(pilot, tmp_path / "empty", public=True)
        await said_error(pilot, "Public applies to an album: name the album.")
        app.query_one("#import-owner", Input).value = "nobody"
        await start_import(pilot, Path(__file__))
        await said_error(pilot, "No user named 'nobody'.")
        assert Photo.select().count() == 11 and app.is_running


@pytest.mark.slow
async def test_a_cancelled_import_leaves_nothing_half_done_and_a_second_run_finishes(stocked, tmp_path):
    folder = tmp_path / "big"
    make_jpegs(folder, 24, size=(3000, 2000))
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await start_import(pilot, folder, "Big")
        await until(pilot, lambda: "imported  img_" in import_log(app))
        await pilot.press("escape")
        await until(pilot, lambda: not app.query_one("#import-pane").running)
        await settle(pilot)
        log = " ".join(import_log(app).split())
        assert "Cancelling: the files under way finish" in log
        assert "Cancelled after" in log, log
        done = int(log.split("Cancelled after ")[1].split(" ")[0])
        assert 0 < done < 24
        assert Photo.select().count() == 11 + done
        report = check.check_datastore(stocked.store)
        assert report.ok, report.lines()  # no file without its row, no row without its file, no leftover

        await start_import(pilot, folder, "Big")
        await until(pilot, lambda: not app.query_one("#import-pane").running)
        assert f"imported {24 - done}, duplicates {done}" in " ".join(import_log(app).split())
        assert Photo.select().count() == 11 + 24
        assert check.check_datastore(stocked.store).ok


@pytest.mark.slow
async def test_quitting_during_an_import_asks_then_stops_cleanly(stocked, tmp_path):
    # Enough files that the import is still running when q is pressed, however fast the machine.
    folder = tmp_path / "big"
    make_jpegs(folder, 48, size=(3000, 2000))
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await start_import(pilot, folder)
        await until(pilot, lambda: "imported  img_" in import_log(app))
        await pilot.press("q")
        await pilot.pause()
        assert "A job is running. Cancel it and quit?" in words(app)
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running)
    assert Photo.select().count() < 11 + 48
    assert check.check_datastore(stocked.store).ok


# -- maintenance -------------------------------------------------------------------------------------


def maintenance_log(app: AdminApp) -> str:
    return " ".join("\n".join(line.text for line in app.query_one("#maintenance-log", RichLog).lines).split())


@pytest.mark.slow
async def test_maintenance_regenerates_checks_and_sweeps_after_asking(stocked):
    store = stocked.store
    photo = Photo.get(Photo.file_name == "Canon EOS 5D.jpg")
    thumbnails = sorted((store.root / "derivatives").rglob(f"{photo.sha256}-*"))
    assert thumbnails
    thumbnails[0].unlink()
    stray = store.root / "originals" / "stray.jpg"
    stray.write_bytes(b"not from an import")
    hour_ago = time.time() - 7200
    os.utime(stray, (hour_ago, hour_ago))
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await go(pilot, "6")
        await go(pilot, "s")
        assert ("warning", "Run the check first (c).") in said(app)

        await go(pilot, "c")
        log = maintenance_log(app)
        assert f"photo {photo.id} has missing derivatives" in log
        assert "file without a row: originals/stray.jpg" in log
        assert "2 problems; s sweeps 1 stray file." in log

        await go(pilot, "m")
        assert "Rendered 1 of 1 photos." in maintenance_log(app)
        assert thumbnails[0].exists()
        await go(pilot, "a")
        assert "Rendered 11 of 11 photos." in maintenance_log(app)

        await go(pilot, "c")
        await pilot.press("s")
        await pilot.pause()
        assert "Remove 0 leftovers of interrupted writes and 1 file no row refers to" in words(app)
        await go(pilot, "n")
        assert stray.exists()
        await pilot.press("s")
        await go(pilot, "y")
        assert not stray.exists()
        assert "Swept 1 file; the datastore is consistent." in maintenance_log(app)
        await go(pilot, "1")
        assert "datastore is consistent" in words(app)


@pytest.mark.slow
async def test_regenerating_can_be_cancelled(stocked, tmp_path, admin):
    make_jpegs(tmp_path / "big", 16, size=(4000, 3000))
    import_files(stocked, collect_files([tmp_path / "big"]), ImportOptions(owner_id=admin.id), workers=2)
    app = console(stocked)
    async with app.run_test(size=SIZE) as pilot:
        await go(pilot, "6")
        await pilot.press("a")
        await until(pilot, lambda: (app.query_one("#maintenance-progress", ProgressBar).progress or 0) >= 1)
        await pilot.press("escape")
        await until(pilot, lambda: "Cancelled" in maintenance_log(app))
        bar = app.query_one("#maintenance-progress", ProgressBar)
        assert bar.progress < 27
        await settle(pilot)
        assert check.check_datastore(stocked.store).ok
