"""The admin console's Photos section at 100,000 photos, against a library of 100 in the same run.

The libraries are built as bench/gallery_bench.py builds them (`build_library`: a fresh datastore and
SQLite database, eight albums, N photos spread over ten years, inserted with peewee's insert_many).

What is measured, each over --repeats runs (median and worst reported):
- `gallery.photo_rows`, the query behind the section, for the first page, the last page, a search that
  matches one photo in a thousand ("IMG_0001", in file names) and one that matches every photo ("nikon"):
  the page of 50 rows, the total count, and the page's album titles;
- `stats.overview`, the Overview section's figures (counts, bytes by role, recent imports);
- the console itself: `AdminApp(config)` in Textual's headless pilot at 80x24, the time from pressing 4
  until the Photos table shows its first page, from `]` until the next page shows, and from Enter on a
  search until its rows show (the worker, the message back and the drawing included).

The floor: the same first page read with the sqlite3 module alone (`SELECT id, file_name, taken_at, ...
ORDER BY taken_at DESC, id DESC LIMIT 50` and `SELECT COUNT(*)`), in the same process and run.

The last line is `console: photos page X ms, next page Y ms, search Z ms at 100k photos (100 photos: X2
ms), floor F ms, ratio R` where the page figures are the pilot's (what an administrator waits for) and R
is the floor over the first page's query.

    .venv/bin/python bench/console_bench.py [--photos N] [--small N] [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from gallery_bench import FULL, build_library, render_samples  # noqa: E402

from photoflow import db as database  # noqa: E402
from photoflow import gallery, stats  # noqa: E402
from photoflow.config import load_config  # noqa: E402
from photoflow.library import open_library  # noqa: E402

SEARCH = "IMG_0001"  # IMG_000100 to IMG_000199: one photo in a thousand


def timed(action: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median and worst milliseconds of `repeats` runs, after one warm-up."""
    action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def floor(database_path: Path, repeats: int) -> float:
    """The first page and the count with sqlite3 alone."""
    conn = sqlite3.connect(database_path)

    def page() -> None:
        conn.execute(
            "SELECT id, file_name, taken_at, camera_make, camera_model, level FROM photo "
            "ORDER BY taken_at DESC, id DESC LIMIT 50"
        ).fetchall()
        conn.execute("SELECT COUNT(*) FROM photo").fetchone()

    try:
        return timed(page, repeats)[0]
    finally:
        conn.close()


async def pilot_times(env: dict[str, str], repeats: int) -> dict[str, float]:
    """Milliseconds from a key to the Photos table filled with what it asked for (medians): the time
    is taken when the section's `fill` returns, since the pilot's own `press` also waits for the tab
    animation to end."""
    from textual.widgets import DataTable, Input, TabbedContent

    from admin_tui.app import AdminApp
    from admin_tui.panes.photos import PAGE, PhotosPane

    app = AdminApp(load_config(env))
    results: dict[str, list[float]] = {"open": [], "next": [], "search": []}

    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(PhotosPane)
        filled: list[float] = []
        fill = pane.fill

        def timed_fill(rows: list) -> None:
            fill(rows)
            filled.append(time.perf_counter())

        pane.fill = timed_fill  # type: ignore[method-assign]

        async def shown_after(key: str) -> float:
            filled.clear()
            start = time.perf_counter()
            await pilot.press(key)
            deadline = time.monotonic() + 60
            while not filled:
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"console_bench: the Photos section never showed its rows after {key} "
                        f"({app.focused}, {app.query_one(TabbedContent).active})"
                    )
                await pilot.pause(0.001)
            return (filled[0] - start) * 1000

        await pilot.pause(0.5)
        for _ in range(repeats):
            await pilot.press("1")
            await pilot.pause(0.05)
            results["open"].append(await shown_after("4"))
            if pane.found > PAGE:
                results["next"].append(await shown_after("]"))
                await shown_after("[")
            await pilot.press("/")
            search = app.query_one("#photo-search", Input)
            search.value = SEARCH
            results["search"].append(await shown_after("enter"))
            await pilot.press("/")  # (Enter moved the keys to the table)
            search.value = ""
            await shown_after("enter")
            assert app.query_one("#photos-table", DataTable).row_count
        await pilot.press("q")
    return {name: statistics.median(values) if values else float("nan") for name, values in results.items()}


def measure(root: Path, count: int, samples, repeats: int) -> dict[str, float]:
    env, shape = build_library(root / f"lib-{count}", count, samples)
    print(f"library: {count:,} photos built in {shape.seconds:.1f} s")
    config = load_config(env)
    library = open_library(config)
    figures: dict[str, float] = {}
    try:
        total = gallery.photo_rows("", 0, 50)[1]
        last = max(0, (total - 1) // 50 * 50)
        for name, action in (
            ("first page", lambda: gallery.photo_rows("", 0, 50)),
            ("last page", lambda: gallery.photo_rows("", last, 50)),
            (f"search {SEARCH}", lambda: gallery.photo_rows(SEARCH, 0, 50)),
            ("search nikon", lambda: gallery.photo_rows("nikon", 0, 50)),
            ("overview", lambda: stats.overview(library.store)),
        ):
            median, worst = timed(action, repeats)
            figures[name] = median
            print(f"  {name:<16} {median:8.2f} ms median, {worst:8.2f} ms worst")
    finally:
        library.close()
        database.close_database()
    figures["floor"] = floor(Path(config.database), repeats)
    print(f"  {'floor (sqlite3)':<16} {figures['floor']:8.2f} ms median")
    shown = asyncio.run(pilot_times(env, max(3, repeats // 4)))
    for name, value in shown.items():
        figures[f"pilot {name}"] = value
        print(f"  pilot: {name:<9} {value:8.1f} ms until shown")
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The console's Photos section at 100,000 photos.")
    parser.add_argument("--photos", type=int, default=FULL, metavar="N", help="large library (100,000)")
    parser.add_argument("--small", type=int, default=100, metavar="N", help="small library (100)")
    parser.add_argument("--repeats", type=int, default=20, metavar="N", help="timed runs of each (20)")
    args = parser.parse_args(argv)
    print(
        f"photoflow console benchmark: {args.photos:,} and {args.small:,} photos, SQLite, "
        f"{os.cpu_count()} cores"
    )
    samples = render_samples()
    with tempfile.TemporaryDirectory(prefix="photoflow-console-bench-") as folder:
        large = measure(Path(folder), args.photos, samples, args.repeats)
        small = measure(Path(folder), args.small, samples, args.repeats)
    ratio = large["floor"] / large["first page"]
    print(
        f"console: photos page {large['pilot open']:.0f} ms, next page {large['pilot next']:.0f} ms, "
        f"search {large['pilot search']:.0f} ms at {args.photos:,} photos "
        f"({args.small:,} photos: {small['pilot open']:.0f} ms), floor {large['floor']:.2f} ms, "
        f"ratio {ratio:.2f}"
    )


if __name__ == "__main__":
    main()
