"""Snapshots of the console at 80x24 (pytest-textual-snapshot): the Overview, Albums and Photos sections as a
person over SSH sees them, against a real library. The SVGs live in tests/__snapshots__/; after a change
that is meant, look at the new pictures (`pytest --snapshot-update`, then open the report or the SVGs)
before committing them."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from admin_tui.app import AdminApp
from admin_tui.panes.overview import OverviewPane
from photoflow import services
from photoflow.config import Config
from photoflow.library import Library
from photoflow.models import Album, Photo
from tests.conftest import make_config

# The overview shows where the datastore is: a fixed place, so the picture is the same on every machine.
FIXED_HOME = Path("/tmp/photoflow-snapshot")
GiB = 1024**3

pytestmark = pytest.mark.xdist_group("snapshot-home")  # FIXED_HOME: one folder, one worker


@pytest.fixture
def config() -> Iterator[Config]:
    """The conftest's library and stocked fixtures, on a datastore at FIXED_HOME (wiped before and after)."""
    shutil.rmtree(FIXED_HOME, ignore_errors=True)
    yield make_config(FIXED_HOME)
    shutil.rmtree(FIXED_HOME, ignore_errors=True)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Times are shown in the server's zone: UTC here, as on most servers."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


async def settle(pilot: Pilot) -> None:
    """Until the console's own workers are done and their results drawn."""
    for _ in range(100):
        busy = [w for w in pilot.app.workers if w.group in {"load", "action"}]
        if not busy:
            break
        await pilot.app.workers.wait_for_complete(busy)
        await pilot.pause()
    await pilot.pause()


def section(key: str, then: tuple[str, ...] = ()):
    async def run_before(pilot: Pilot) -> None:
        await settle(pilot)
        await pilot.press(key)
        await settle(pilot)
        if then:
            await pilot.press(*then)
            await settle(pilot)

    return run_before


def test_overview_at_80x24(stocked: Library, snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await section("1")(pilot)
        # The free and total disk are the machine's own: the only figures set by the test.
        pane = pilot.app.query_one(OverviewPane)
        assert pane.figures is not None and pane.figures.free_bytes > 0
        pane.figures.free_bytes, pane.figures.total_bytes = 41 * GiB, 63 * GiB
        pane.redraw()
        await pilot.pause()

    assert snap_compare(AdminApp(stocked.config, stocked), terminal_size=(80, 24), run_before=run_before)


def test_albums_at_80x24(stocked: Library, admin, snap_compare) -> None:
    # A shared private album under the cursor (its link shows below the table) and one whose title is
    # Rich markup, shown as typed.
    family = Album.get(Album.title == "Family")
    services.share_album(family.id)
    # Tokens are random: a fixed one, so the link shown is the same in every run.
    Album.update(share_token="snapshot-token").where(Album.id == family.id).execute()
    services.create_album("[@click=app.quit]x[/]", admin.id)
    app = AdminApp(stocked.config, stocked)
    assert snap_compare(app, terminal_size=(80, 24), run_before=section("3", ("down", "down")))


def test_photos_at_80x24(stocked: Library, snap_compare) -> None:
    # One photo at level 4 (hidden from visitors), the cursor on the second row.
    services.set_level(Photo.get(Photo.file_name == "Canon EOS 5D.jpg").id, 4)
    app = AdminApp(stocked.config, stocked)
    assert snap_compare(app, terminal_size=(80, 24), run_before=section("4", ("down",)))
