"""`pwg.categories.getImages` paged 500 at a time through a 100,000-photo library, on SQLite and PostgreSQL.

Darktable's export checks for a photo it exported before by paging through every image of the library,
500 at a time; the Piwigo apps page through albums the same way. Each page must cost a fixed number of
queries whatever its size, and about what the database takes to hand over the same 500 rows.

The libraries are gallery_bench.py's (the same generator and seed: 100,000 photos over ten years, eight
albums, 4% members only; `--photos N`), built once on SQLite (in a temporary datastore) and once on a
private PostgreSQL server (tests/pgserver.py's PostgresServer, on a private socket and port, removed at
the end; skipped with the reason when PostgreSQL is not installed), whose tables are then vacuumed and
analysed as autovacuum would soon after such a load. The client is an admin (who sees
every photo) and a visitor (who sees the public ones); each call is the whole method as ws.php runs
it: `photoflow.piwigo.dispatch` of a `Call` built as photoflow/web/ws.py builds one, then the JSON
envelope (`json_success`) — everything but the HTTP bytes.

Measured in the same run, per database and viewer:
- **page**: every page from 0 to the last (`--pages N` evenly spread pages for a shorter run), median
  and worst milliseconds, and the number of SQL statements each page ran (counted at the database's
  `execute_sql`): the same for every page and every page size (10, 100 and 500 are checked), or the
  benchmark stops with the counts it saw;
- **floor**: the statement that finds the same page's photos (`gallery.page_of_photos`: the ids from
  the index by the same condition, order, OFFSET and LIMIT, then their rows), run and fetched through
  the same connection: what the database takes to hand the page over, before any shape is drawn.

The last line per database is
`getImages <db>: X ms per page of 500 (worst W ms), Q queries per page, floor F ms, ratio R`
(X and F medians over the admin's pages, R = X / F).

    .venv/bin/python bench/piwigo_paging_bench.py [--photos N] [--pages N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gallery_bench import FULL, build_library, render_samples

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PER_PAGE = 500


def call(library: Any, viewer: Any, page: int, per_page: int) -> str:
    """One getImages as ws.php runs it, and its JSON envelope."""
    from photoflow import piwigo

    params = {"method": ["pwg.categories.getImages"], "per_page": [str(per_page)], "page": [str(page)]}
    answer = piwigo.dispatch(
        piwigo.Call(
            method="pwg.categories.getImages",
            params=params,
            http_method="GET",
            library=library,
            viewer=viewer,
            session=None,
            address="127.0.0.1",
            base_url="http://127.0.0.1:8080",
            secret=library.config.secret,
        )
    )
    return piwigo.json_success(answer.result)


def floor(viewer: Any, page: int) -> float:
    """Seconds to select and fetch the same page's photo rows with one statement."""
    from photoflow import access, gallery
    from photoflow.piwigo.shapes import IMAGE_COLUMNS

    query = gallery.page_of_photos(access.visible_photos(viewer), page * PER_PAGE, PER_PAGE, IMAGE_COLUMNS)
    query = query.tuples()
    start = time.perf_counter()
    rows = list(query)
    assert rows
    return time.perf_counter() - start


def measure(name: str, env: dict[str, str], pages: int | None) -> None:
    """Page through the library as an admin and a visitor; print the figures."""
    from photoflow import db as database
    from photoflow.access import ANONYMOUS, Viewer
    from photoflow.config import load_config
    from photoflow.library import open_library
    from photoflow.models import Photo, User

    config = load_config(env)
    library = open_library(config)
    try:
        admin = Viewer(User.get(User.is_admin == True))  # noqa: E712
        for viewer_name, viewer in (("admin", admin), ("visitor", ANONYMOUS)):
            from photoflow import access

            total = Photo.select().where(access.visible_photos(viewer)).count()
            last = (total - 1) // PER_PAGE
            wanted = list(range(last + 1))
            if pages is not None and pages < len(wanted):
                wanted = sorted({round(i * last / max(1, pages - 1)) for i in range(pages)})
            call(library, viewer, 0, PER_PAGE)  # warm
            sizes = {}
            for size in (10, 100, PER_PAGE):
                with database.statements() as seen:
                    call(library, viewer, 0, size)
                sizes[size] = len(seen)
            times, floors, counts = [], [], set()
            for page in wanted:
                with database.statements() as seen:
                    start = time.perf_counter()
                    body = call(library, viewer, page, PER_PAGE)
                    times.append(time.perf_counter() - start)
                counts.add(len(seen))
                floors.append(floor(viewer, page))
                assert '"stat":"ok"' in body[:20], body[:200]
            if len(set(sizes.values()) | counts) != 1:
                sys.exit(
                    f"piwigo_paging_bench: queries per page vary: by size {sizes}, by page {sorted(counts)}"
                )
            median, worst = statistics.median(times) * 1000, max(times) * 1000
            low = statistics.median(floors) * 1000
            queries = counts.pop()
            print(
                f"  {name}, {viewer_name}: {total:,} photos, {len(wanted)} pages of {PER_PAGE}: "
                f"median {median:.1f} ms, worst {worst:.1f} ms, {queries} queries per page "
                f"(pages of 10/100/500: {sizes[10]}/{sizes[100]}/{sizes[PER_PAGE]}); floor {low:.1f} ms"
            )
            if viewer_name == "admin":
                line = (
                    f"getImages {name}: {median:.1f} ms per page of {PER_PAGE} (worst {worst:.1f} ms), "
                    f"{queries} queries per page, floor {low:.1f} ms, ratio {median / low:.1f}"
                )
        print(line, flush=True)
    finally:
        library.close()
        database.close_database()


def settle(url: str) -> None:
    """VACUUM ANALYZE the new tables, as autovacuum does soon after a bulk load in a real library.

    Without it the planner has no statistics yet and no page is marked all-visible, so PostgreSQL
    cannot answer from an index alone: a state a library stays in for minutes after an import, not
    the one it is browsed in."""
    from photoflow import db as database

    database.open_database(url)
    try:
        for table in ("photo", "photo_album", "file"):
            database.db.execute_sql(f"VACUUM ANALYZE {table}")
    finally:
        database.close_database()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments, build the libraries, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=FULL, metavar="N", help="library size (100,000)")
    parser.add_argument("--pages", type=int, default=None, metavar="N", help="pages measured (default all)")
    args = parser.parse_args(argv)
    samples = render_samples()
    print(f"piwigo paging benchmark: {args.photos:,} photos, pages of {PER_PAGE}")
    with tempfile.TemporaryDirectory(prefix="photoflow-paging-bench-") as folder:
        root = Path(folder)
        env, shape = build_library(root / "sqlite", args.photos, samples)
        print(f"  SQLite library built in {shape.seconds:.0f} s")
        measure("SQLite", env, args.pages)

        from tests.pgserver import PostgresServer, why_unavailable

        reason = why_unavailable()
        if reason:
            print(f"getImages PostgreSQL: skipped ({reason})")
            return
        with PostgresServer() as pg:
            url = pg.create_database("paging_bench")
            env, shape = build_library(root / "postgres", args.photos, samples, database_url=url)
            settle(url)
            print(f"  PostgreSQL library built in {shape.seconds:.0f} s, then vacuumed and analysed")
            measure("PostgreSQL", env, args.pages)


if __name__ == "__main__":
    main()
