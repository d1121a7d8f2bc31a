"""Overview: how big the library is, how full the disk, what came in lately, what the last check found."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from admin_tui.widgets import Pane, plain
from photoflow import services
from photoflow.stats import Overview, derivative_bytes, human_bytes, overview

DERIVATIVES_KEPT = 60.0  # seconds


class OverviewPane(Pane):
    """The library at a glance."""

    FOCUS = "#overview-body"

    def compose(self) -> ComposeResult:
        yield Static("Reading the library…", id="overview-body")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.figures: Overview | None = None
        self.derivatives: tuple[float, int] | None = None  # when measured, bytes

    def reload(self) -> None:
        store = self.library.store
        self.load(lambda: overview(store), self.show)
        # Walking the derivatives takes seconds at 100,000 photos: done beside, and kept a minute.
        if self.derivatives is None or time.monotonic() - self.derivatives[0] > DERIVATIVES_KEPT:
            self.load(lambda: (time.monotonic(), derivative_bytes(store)), self.show_derivatives, key="walk")

    def show(self, figures: Overview) -> None:
        self.figures = figures
        self.redraw()

    def show_derivatives(self, measured: tuple[float, int]) -> None:
        self.derivatives = measured
        self.redraw()

    def redraw(self) -> None:
        if self.figures is None:
            return
        config = self.library.config
        size = self.derivatives[1] if self.derivatives else None
        body = render(self.figures, size, str(config.datastore), config.base_url)
        self.query_one("#overview-body", Static).update(body)


def render(o: Overview, derivatives: int | None, datastore: str, url: str) -> Group:
    """Where the library is, then a two-column grid: figures on the left, recent imports and check right."""
    where = Text("Datastore ", style="bold")
    where.append_text(plain(datastore))
    where.append("   Web ", style="bold")
    where.append_text(plain(url))
    counts = Table.grid(padding=(0, 2))
    counts.add_column(style="bold", no_wrap=True)
    counts.add_column(justify="right", no_wrap=True)
    counts.add_row("Photos", f"{o.photos:,}")
    counts.add_row("Albums", f"{o.albums:,} ({o.public_albums:,} public)")
    counts.add_row("Users", f"{o.users:,}")
    counts.add_row("", "")
    counts.add_row("Originals", human_bytes(o.bytes_by_role.get("original", 0)))
    counts.add_row("RAW files", human_bytes(o.bytes_by_role.get("raw", 0)))
    counts.add_row("Sidecars", human_bytes(o.bytes_by_role.get("sidecar", 0)))
    counts.add_row("Derivatives", "counting…" if derivatives is None else human_bytes(derivatives))
    counts.add_row("Free disk", human_bytes(o.free_bytes))
    counts.add_row("Disk size", human_bytes(o.total_bytes))

    recent = Table.grid(padding=(0, 1))
    recent.add_column(no_wrap=True, overflow="ellipsis")
    recent.add_row(Text("Recent imports", style="bold"))
    for item in o.recent:
        # Stored in UTC; shown in the server's local time, like the last check's time.
        local = item.created_at.replace(tzinfo=dt.UTC).astimezone()
        line = Text(f"{local:%Y-%m-%d %H:%M}  ", style="dim")
        line.append_text(plain(item.file_name))
        recent.add_row(line)
    if not o.recent:
        recent.add_row(Text("none yet", style="dim"))
    recent.add_row("")
    recent.add_row(Text("Last check", style="bold"))
    if o.last_check is None:
        recent.add_row(Text("never run (Maintenance: c)", style="dim"))
    else:
        at, problems, problems_found = o.last_check
        when = dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M")
        if problems_found == 0:
            recent.add_row(Text(f"{when}: datastore is consistent", style="green"))
        else:
            recent.add_row(Text(f"{when}: {services.plural(problems_found, 'problem')}", style="yellow"))
            for problem in problems[:4]:
                recent.add_row(plain(problem))
    grid = Table.grid(padding=(0, 3), expand=True)
    grid.add_column(width=28, no_wrap=True)
    grid.add_column(ratio=1)
    grid.add_row(counts, recent)
    return Group(where, Text(""), grid)
