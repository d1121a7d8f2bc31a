"""End to end in a real headless Chromium (Debian's, driven by Playwright): a fresh install from the
first-run page to a public album and back to private, as a person clicks through it.

The browser is /usr/bin/chromium, never one Playwright downloads. The server is the real app on cheroot
(the `server` fixture); the files are the real camera samples. Screenshots of the upload tab, an album,
the gallery and a photo page, at desktop and phone sizes, go to tests/output/browser/ (ignored by git)
for a person to look at. Any error in the browser console (a script error, a Content-Security-Policy
violation, a failed load the test did not ask for) fails the test.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Response, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # the tests may run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUTPUT = Path(__file__).resolve().parent / "output" / "browser"
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
NAME, PASSWORD = "alice", "a long enough password"
ALBUM = "Spring walk"
WAIT = 20_000  # ms, for a loaded machine; every wait ends as soon as its condition holds
FINISHED = ["imported", "attached", "duplicate", "failed"]  # a queue row's class once its file is done

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"),
    pytest.mark.slow,
    pytest.mark.xdist_group("chromium"),  # one Chromium for the module
]

# How many figures of the pig.js grids under `scope` show their grid picture, loaded (not only the
# blurred 20 px placeholder pig.js shows first).
LOADED_FIGURES = """(scope) => [...document.querySelectorAll(`${scope} figure.pf-figure`)].filter((figure) =>
  [...figure.querySelectorAll("img:not(.pf-thumbnail)")].some((img) => img.complete && img.naturalWidth > 0)
).length"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Console:
    """Every error the pages report: console errors (CSP violations and failed loads among them) and
    uncaught exceptions; except the 404 of a URL the test asks for knowing it is gone (`allow_404`)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: set[str] = set()
        self.refused: set[str] = set()

    def watch(self, page: Page) -> Page:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        return page

    def allow_404(self, url: str) -> None:
        self.allowed.add(url)

    def allow_422(self, url: str) -> None:
        """An upload whose every file is refused answers 422; Chromium logs that load as an error."""
        self.refused.add(url)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        where = message.location.get("url", "")
        if where in self.allowed and "status of 404" in message.text:
            return
        if any(where.startswith(url) for url in self.refused) and "status of 422" in message.text:
            return
        self.errors.append(f"{message.text} (at {where})")

    def check(self, step: str) -> None:
        assert not self.errors, f"browser console errors during {step}:\n" + "\n".join(self.errors)


def new_page(browser: Browser, console: Console, device: dict[str, Any]) -> tuple[BrowserContext, Page]:
    """A fresh browser profile (no cookies, empty cache) at `device`'s size, its console watched."""
    context = browser.new_context(accept_downloads=True, **device)
    context.set_default_timeout(WAIT)
    return context, console.watch(context.new_page())


def shot(page: Page, name: str) -> None:
    """A full-page PNG for a person to look at, with CSS transitions (pig.js's fade-in) finished."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=True, animations="disabled")


def path_of(page: Page) -> str:
    """The page's path and query."""
    parts = urlsplit(page.url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def flash(page: Page) -> str:
    """The one-line message the last change left."""
    return page.locator("p.flash").inner_text()


# -- steps ---------------------------------------------------------------------------------------------


def create_first_admin(page: Page, base: str) -> None:
    """A fresh install sends the first visitor to /setup, which makes the first admin and logs in."""
    page.goto(base + "/")
    assert path_of(page) == "/setup"
    assert page.locator("h1").inner_text() == "Welcome to Photoflow"
    page.fill('input[name="name"]', NAME)
    page.fill('input[name="password"]', PASSWORD)
    page.fill('input[name="password2"]', PASSWORD)
    with page.expect_navigation():
        page.click('button[type="submit"]')
    assert path_of(page) == "/upload"
    assert flash(page).startswith(f"Welcome, {NAME}.")
    assert page.locator("header .avatar").inner_text() == NAME[0].upper()


def upload(
    page: Page, files: list[Path], album: str | None, public: bool = False
) -> dict[str, dict[str, Any]]:
    """On the upload tab: choose `files` (for a new album titled `album`, or no album), upload them, and
    wait for every file's result in the queue. Returns the server's answer for each file name."""
    answers: list[Response] = []

    def keep(response: Response) -> None:
        if response.request.method == "POST" and urlsplit(response.url).path == "/upload":
            answers.append(response)

    page.on("response", keep)
    if album is not None:
        page.check('input[name="target"][value="new"]')
        page.fill("#new-title", album)
        if public:
            page.check("#new-public")
    page.set_input_files("#files", [str(path) for path in files])
    page.wait_for_function("(n) => document.querySelectorAll('#queue li').length === n", arg=len(files))
    chosen = f"{len(files)} {'file' if len(files) == 1 else 'files'} chosen"
    assert page.locator("#summary").inner_text() == chosen
    page.click("#start")
    # Each row's class becomes its file's result; the summary's link comes once every group is back.
    page.wait_for_function(
        """([n, finished]) => {
          const rows = [...document.querySelectorAll("#queue li")];
          return rows.length === n && rows.every((row) => finished.includes(row.className))
            && document.querySelector("#summary a.after-upload") !== null;
        }""",
        arg=[len(files), FINISHED],
    )
    page.remove_listener("response", keep)
    results = {}
    for answer in answers:
        assert answer.status == 200, answer.text()
        for result in answer.json()["results"]:
            results[result["name"]] = result
    assert sorted(results) == sorted(path.name for path in files)
    return results


def queue_rows(page: Page) -> dict[str, tuple[str, str, float]]:
    """The upload queue as the page shows it: name -> (row class, status text, progress 0..1)."""
    rows = page.eval_on_selector_all(
        "#queue li",
        """(rows) => rows.map((row) => {
          const bar = row.querySelector("progress");
          return [row.querySelector(".name").textContent, row.className,
                  row.querySelector(".status").textContent, bar.value / bar.max];
        })""",
    )
    return {name: (cls, status, done) for name, cls, status, done in rows}


def wait_for_grid(page: Page, scope: str, at_least: int) -> list[str]:
    """Wait until `at_least` figures of the pig.js grids under `scope` show their loaded picture;
    return the paths of the grid pictures."""
    page.wait_for_selector(f"{scope} figure.pf-figure", state="attached")
    page.wait_for_function(f"([scope, n]) => ({LOADED_FIGURES})(scope) >= n", arg=[scope, at_least])
    sources = page.eval_on_selector_all(
        f"{scope} figure.pf-figure img:not(.pf-thumbnail)", "(imgs) => imgs.map((img) => img.src)"
    )
    return [urlsplit(src).path for src in sources]


def grid_fits(page: Page, grids: str) -> None:
    """Every figure of the pig.js `grids` lies inside its grid's width: none cut off, none tiny."""
    boxes = page.eval_on_selector_all(
        grids,
        """(grids) => grids.flatMap((grid) => {
          const outer = grid.getBoundingClientRect();
          return [...grid.querySelectorAll("figure.pf-figure")].map((figure) => {
            const box = figure.getBoundingClientRect();
            return [outer.left, outer.right, box.left, box.right, box.width, box.height];
          });
        })""",
    )
    assert boxes
    for left, right, box_left, box_right, width, height in boxes:
        assert width > 20 and height > 20, boxes
        assert box_left >= left - 1 and box_right <= right + 1, boxes


def wait_for_large(page: Page) -> None:
    """The photo page's large preview has loaded."""
    page.wait_for_function(
        "() => { const large = document.querySelector('img.large');"
        " return large.complete && large.naturalWidth > 0; }"
    )


def facts(page: Page) -> dict[str, str]:
    """The metadata panel: label -> value."""
    pairs = page.eval_on_selector_all(
        "dl.facts dt",
        "(dts) => dts.map((dt) => [dt.textContent.trim(), dt.nextElementSibling.textContent.trim()])",
    )
    return dict(pairs)


def press(page: Page, key: str, expected_path: str) -> None:
    """Press an arrow key (or Escape) on the photo page and land on `expected_path`."""
    with page.expect_navigation():
        page.keyboard.press(key)
    assert path_of(page) == expected_path


def set_album_public(page: Page, base: str, album_id: int, public: bool) -> None:
    """The album page's Edit panel, then its visibility button."""
    page.goto(f"{base}/album/{album_id}")
    page.locator("details.panel > summary", has_text="Edit").click()
    button = page.get_by_test_id("visibility")
    assert button.inner_text() == ("Make public" if public else "Make private")
    with page.expect_navigation():
        button.click()
    assert path_of(page) == f"/album/{album_id}"
    assert flash(page) == ("The album is public: anyone can see it." if public else "The album is private.")
    assert page.locator(".album-head .badge").inner_text() == ("Public" if public else "Private")


def log_out(page: Page) -> None:
    """The account menu in the header, then Log out."""
    page.click("header .who details.menu > summary")
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    assert flash(page) == "You are logged out."
    assert page.locator("header .who a", has_text="Log in").is_visible()


def log_in(page: Page) -> None:
    """The header's Log in link, then the form; back on the gallery."""
    with page.expect_navigation():
        page.click("header .who a:text('Log in')")
    assert path_of(page).startswith("/login")
    page.fill('input[name="name"]', NAME)
    page.fill('input[name="password"]', PASSWORD)
    with page.expect_navigation():
        page.click('button[type="submit"]')
    assert path_of(page) == "/"
    assert page.locator("header .avatar").is_visible()


def photo_id(path: str) -> int:
    """The photo number in a grid picture's path (/d/<size>/<id>-<hash>.jpg)."""
    found = re.fullmatch(r"/d/\w+/(\d+)-[0-9a-f]{16}\.jpg", path)
    assert found, path
    return int(found.group(1))


def figure_of(scope: str, photo: int) -> str:
    """The selector of photo `photo`'s figure in the grids under `scope`."""
    return f"{scope} figure.pf-figure:has(img[src*='/{photo}-'])"


# -- the scenario --------------------------------------------------------------------------------------


def test_first_run_upload_browse_publish_and_hide(
    browser: Browser, server: str, samples: Path, tmp_path: Path
) -> None:
    """From an empty install to a public album and back, in the browser, without a console error."""
    base = server
    console = Console()
    jpeg = tmp_path / "IMG_0001.jpg"
    raw = tmp_path / "IMG_0001.CR3"
    shutil.copyfile(samples / "jpeg" / "small-cameras" / "Canon_40D.jpg", jpeg)  # taken 2008-05-30
    shutil.copyfile(samples / "raw" / "Canon-R6-pruned.CR3", raw)
    ridge = samples / "jpeg" / "nature" / "tanners_ridge.jpg"  # taken 2023-09-25, the newest
    nikon = samples / "jpeg" / "gps" / "DSCN0010.jpg"  # 2008-10-22, with GPS
    context, page = new_page(browser, console, DESKTOP)

    # 1. The first visit of a fresh install makes the first admin, who is then logged in.
    create_first_admin(page, base)
    console.check("the first-run page")

    # 2. The upload tab: a new album, a JPEG+RAW pair and two JPEGs in one go.
    assert page.locator("nav.tabs a.on").inner_text() == "Upload"
    results = upload(page, [jpeg, raw, ridge, nikon], album=ALBUM)
    rows = queue_rows(page)
    assert {name: cls for name, (cls, _, _) in rows.items()} == {
        "IMG_0001.jpg": "imported",
        "IMG_0001.CR3": "attached",
        "tanners_ridge.jpg": "imported",
        "DSCN0010.jpg": "imported",
    }
    assert rows["IMG_0001.CR3"][1] == "attached: RAW of IMG_0001.jpg"
    assert all(done == 1 for _, _, done in rows.values()), rows
    assert page.eval_on_selector("#overall", "(bar) => !bar.hidden && bar.value === bar.max")
    summary = page.locator("#summary").inner_text()
    assert summary == "3 imported, 0 already here, 1 attached, 0 failed · Open the album", summary
    ids = {name: result["photo"] for name, result in results.items()}
    assert ids["IMG_0001.CR3"] == ids["IMG_0001.jpg"]
    pair, ridge_id, nikon_id = ids["IMG_0001.jpg"], ids["tanners_ridge.jpg"], ids["DSCN0010.jpg"]
    shot(page, "desktop-upload")
    console.check("the upload")

    # 3. The album, then the gallery: pig.js draws and the grid pictures load; the CSP is on.
    with page.expect_navigation() as navigation:
        page.click("#summary a.after-upload")
    assert navigation.value.headers["content-security-policy"].startswith("default-src 'self'")
    album_id = int(path_of(page).removeprefix("/album/"))
    assert page.locator("h1").inner_text() == ALBUM
    album_pictures = wait_for_grid(page, "#album-grid", 3)
    assert sorted(photo_id(src) for src in album_pictures) == sorted([pair, ridge_id, nikon_id])
    grid_fits(page, "#album-grid")
    shot(page, "desktop-album")
    # In an album, a photo steps through the album and Escape goes back to it.
    with page.expect_navigation():
        page.click(figure_of("#album-grid", ridge_id))
    assert path_of(page) == f"/photo/{ridge_id}?album={album_id}"
    press(page, "ArrowRight", f"/photo/{nikon_id}?album={album_id}")
    press(page, "Escape", f"/album/{album_id}")
    with page.expect_navigation():
        page.click("nav.tabs a:text('Photos')")
    assert path_of(page) == "/"
    gallery_pictures = wait_for_grid(page, "#timeline", 3)
    assert sorted(photo_id(src) for src in gallery_pictures) == sorted([pair, ridge_id, nikon_id])
    grid_fits(page, "#timeline .pig-grid")
    days = page.eval_on_selector_all("#timeline section.day", "(days) => days.map((d) => d.dataset.day)")
    assert days == ["2023-09-25", "2008-10-22", "2008-05-30"]
    shot(page, "desktop-gallery")
    console.check("the grids")

    # 4. A click on a photo opens it; the arrows step to the older and newer photos; the panel shows
    # the camera and a map link.
    with page.expect_navigation():
        page.click(figure_of("#timeline", nikon_id))
    assert path_of(page) == f"/photo/{nikon_id}"
    wait_for_large(page)
    assert page.locator("h1.photo-title").inner_text() == "DSCN0010.jpg"
    shown = facts(page)
    assert shown["Camera"] == "NIKON COOLPIX P6000", shown
    assert shown["Taken"] == "Wed 22 Oct 2008, 16:28:39", shown
    assert shown["Location"] == "43.4674° N, 11.8851° E", shown
    location = page.locator("dl.facts dd a", has_text="43.4674° N").get_attribute("href")
    assert location.startswith("https://www.openstreetmap.org/?mlat=43.467"), location
    shot(page, "desktop-photo")
    press(page, "ArrowRight", f"/photo/{pair}")  # older: the pair, taken in May 2008
    wait_for_large(page)
    assert page.locator("h1.photo-title").inner_text() == "IMG_0001.jpg"

    # 5. The RAW of the pair downloads under its own name, byte for byte.
    with page.expect_download() as info:
        page.click('a[download][data-role="raw"]')
    download = info.value
    assert download.suggested_filename == "IMG_0001.CR3"
    assert Path(download.path()).read_bytes() == raw.read_bytes()

    press(page, "ArrowLeft", f"/photo/{nikon_id}")
    press(page, "ArrowLeft", f"/photo/{ridge_id}")
    wait_for_large(page)
    press(page, "Escape", "/")
    wait_for_grid(page, "#timeline", 3)
    console.check("the photo pages")

    # 6. Public: a visitor sees the album on /albums, its page and the gallery, pictures loaded.
    set_album_public(page, base, album_id, public=True)
    log_out(page)
    wait_for_grid(page, "#timeline", 3)
    page.goto(base + "/albums")
    card = page.locator(".card", has_text=ALBUM)
    assert card.locator(".card-meta").inner_text().strip() == "3 photos"
    page.wait_for_function(
        "() => [...document.querySelectorAll('.card img')].some((i) => i.naturalWidth > 0)"
    )
    with page.expect_navigation():
        card.locator("a").click()
    assert path_of(page) == f"/album/{album_id}"
    visitor_pictures = wait_for_grid(page, "#album-grid", 3)
    assert sorted(photo_id(src) for src in visitor_pictures) == sorted([pair, ridge_id, nikon_id])
    assert page.locator(".album-head details.panel").count() == 0  # no Edit for visitors
    console.check("the public album")

    # 7. Private again: for a visitor the album, its page and its pictures are gone.
    log_in(page)
    set_album_public(page, base, album_id, public=False)
    log_out(page)
    page.wait_for_selector("#empty h1:text('Nothing to see yet')")
    assert page.locator("#timeline figure").count() == 0
    page.goto(base + "/albums")
    assert page.locator(".card").count() == 0
    assert ALBUM not in page.locator("main").inner_text()
    gone = f"{base}/album/{album_id}"
    console.allow_404(gone)
    answer = page.goto(gone)
    assert answer is not None and answer.status == 404
    assert page.locator("main h1").inner_text() == "404"
    # The server's own answer, past the browser's cache (see test_private_again_is_gone_from_the_cache).
    assert page.request.get(base + visitor_pictures[0]).status == 404
    console.check("the private album")
    context.close()

    # The same pages at phone size: log in, the gallery, a photo, the upload tab (files already here).
    context, page = new_page(browser, console, PHONE)
    page.goto(base + "/")
    log_in(page)
    wait_for_grid(page, "#timeline", 3)
    grid_fits(page, "#timeline .pig-grid")
    shot(page, "phone-gallery")
    with page.expect_navigation():
        page.tap(figure_of("#timeline", nikon_id))
    assert path_of(page) == f"/photo/{nikon_id}"
    wait_for_large(page)
    shot(page, "phone-photo")
    with page.expect_navigation():
        page.click("nav.tabs a:text('Upload')")
    results = upload(page, [jpeg, raw, nikon], album=None)
    assert {name: result["status"] for name, result in results.items()} == dict.fromkeys(
        ["IMG_0001.jpg", "IMG_0001.CR3", "DSCN0010.jpg"], "duplicate"
    )
    assert {cls for cls, _, _ in queue_rows(page).values()} == {"duplicate"}
    shot(page, "phone-upload")
    console.check("the phone pages")
    context.close()


# -- regressions -------------------------------------------------------------------------------------


def test_upload_as_chromium_sends_it(browser: Browser, server: str, samples: Path) -> None:
    """Chromium's multipart boundaries are mixed case; the server must not fold them (it once did)."""
    console = Console()
    context, page = new_page(browser, console, DESKTOP)
    try:
        create_first_admin(page, server)
        page.set_input_files("#files", str(samples / "jpeg" / "gps" / "DSCN0010.jpg"))
        page.click("#start")
        page.wait_for_selector("#summary a.after-upload")
        assert queue_rows(page)["DSCN0010.jpg"][:2] == ("imported", "imported")
        console.check("an upload")
    finally:
        context.close()


def test_a_refused_file_shows_its_reason_in_its_row(browser: Browser, server: str, tmp_path: Path) -> None:
    """A file every door refuses (HTML named .jpg) fails alone, in its row, with the server's reason."""
    page_named_jpeg = tmp_path / "holiday.jpg"
    page_named_jpeg.write_text("<!doctype html><script>alert(1)</script>")
    console = Console()
    context, page = new_page(browser, console, DESKTOP)
    try:
        create_first_admin(page, server)
        console.allow_422(server + "/upload")
        page.set_input_files("#files", str(page_named_jpeg))
        page.click("#start")
        page.wait_for_selector("#queue li.failed")
        cls, status, _ = queue_rows(page)["holiday.jpg"]
        assert cls == "failed" and status.startswith("failed: ") and len(status) > len("failed: "), status
        assert "connection" not in status and "answered" not in status, status
        page.wait_for_selector("#summary:has-text('1 failed')")
        assert page.locator("#summary a.after-upload").count() == 0  # nothing arrived: nowhere to go
        console.check("a refused upload")
    finally:
        context.close()


def test_under_a_url_prefix(browser: Browser, tmp_path: Path, samples: Path) -> None:
    """URL_PREFIX=/photos: the grid, the photo page, its keys and the upload tab all stay under it."""
    from photoflow import db as database
    from photoflow import services
    from photoflow.library import open_library
    from photoflow.web import create_app
    from tests.conftest import make_config, serving
    from tests.test_web import imported

    config = make_config(tmp_path, URL_PREFIX="/photos")
    database.open_database(config.database)
    database.upgrade()
    lib = open_library(config)
    try:
        admin = services.create_user(NAME, PASSWORD, admin=True)
        walk = services.create_album(ALBUM, admin.id, public=True)
        imported(lib, admin, *sorted((samples / "jpeg" / "cameras").glob("*.jpg"))[:4], album=walk)
        console = Console()
        with serving(create_app(lib)) as base:
            context, page = new_page(browser, console, DESKTOP)
            page.goto(base + "/photos/")
            pictures = wait_for_grid(page, "#timeline", 4)
            assert pictures and all(p.startswith("/photos/d/") for p in pictures), pictures
            page.click("#timeline figure.pf-figure")
            page.wait_for_url("**/photos/photo/*")
            wait_for_large(page)
            first = path_of(page)
            with page.expect_navigation():
                page.keyboard.press("ArrowRight")
            assert path_of(page).startswith("/photos/photo/") and path_of(page) != first
            page.keyboard.press("Escape")
            page.wait_for_url(f"{base}/photos/")
            # Logging in and the upload tab: forms post under the prefix, redirects stay under it.
            page.goto(base + "/photos/upload")
            page.wait_for_url("**/photos/login?next=*")
            page.fill("input[name=name]", NAME)
            page.fill("input[name=password]", PASSWORD)
            page.click("form button[type=submit]")
            page.wait_for_url(f"{base}/photos/upload")
            shot(page, "prefix-upload")
            hrefs = page.eval_on_selector_all(
                "a[href], link[href]", "(els) => els.map((e) => e.getAttribute('href'))"
            )
            local = [h for h in hrefs if h.startswith("/")]
            assert local and all(h.startswith("/photos/") for h in local), local
            context.close()
        console.check("under a URL prefix")
    finally:
        lib.close()
