"""One table of formats, and everything that comes from it.

The browser's pair key (the real static/js/upload.js, on the real upload page, in Debian's Chromium)
against the server's `filetypes.pair_key` over a table of names and over every cased character; the
upload page's `accept` and JSON; ws.php's list; the table's own consistency; the derivative URL's one
shape and the grid pages' JSON; and no list of our own left in the scripts.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from bottle import Bottle
from playwright.sync_api import Browser, Page, sync_playwright

from photoflow import filetypes, imaging, urls
from photoflow.filetypes import FORMATS, extensions, hinted_kind, pair_key
from photoflow.models import User
from photoflow.web.upload import MAX_REQUEST_BYTES
from tests.conftest import web_as
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP, Console, create_first_admin, new_page

STATIC = Path(__file__).resolve().parents[1] / "static" / "js"
# The RAW extensions Photoflow has always listed somewhere (issue 11): each must be in the table.
RAWS = {
    ".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".sr2", ".srf", ".raf", ".orf", ".ori", ".rw2",
    ".rwl", ".pef", ".mrw", ".srw", ".x3f", ".iiq", ".3fr", ".fff", ".erf", ".kdc", ".dcr", ".mef", ".mos",
    ".gpr",
}  # fmt: skip
PIXEL = "PXL_20231001_123456789"


def names() -> list[str]:
    """Names as browsers and cameras give them, with every extension of the table in both cases."""
    table: list[str] = []
    for f in FORMATS:
        for ext in f.extensions:
            for e in (ext, ext.upper()):
                table += [f"IMG_1{e}", f"IMG_1{e}.xmp", f"IMG_1{e}.XMP", f"a.b.c{e}", f"{e}"]
    table += [
        "IMG_1.xmp",
        "IMG_1.XMP",
        "IMG_1.xmp.xmp",
        "IMG_1.txt.xmp",
        "IMG_1.CR2.xmp.jpg",
        "IMG_0001.JPG",
        "img_0001.jpeg",
        "IMG_0001.Jpe",
        "IMG_0001.JPEG.xmp",
        f"{PIXEL}.RAW-01.MP.COVER.jpg",
        f"{PIXEL}.RAW-02.ORIGINAL.dng",
        f"{PIXEL}.RAW-02.ORIGINAL.dng.xmp",
        f"{PIXEL.lower()}.raw-01.mp.cover.JPG",
        f"{PIXEL}.RAW-1.COVER.jpg",
        f"{PIXEL}.RAW-.COVER.jpg",  # no number: not Pixel's
        f"{PIXEL}.RAW-01.MP.COVER",  # no extension after it
        f"{PIXEL}.RAW-٠١.COVER.jpg",  # Arabic-Indic digits: not Pixel's either
        f"{PIXEL}.RAW-01.MP.COVER.jpg.COVER.jpg",
        "2023.10.01 trip.final.jpg",
        "IMG_1..jpg",
        "..jpg",
        ".hidden",
        "name.",
        "name..",
        "IMG_1.JPG.",
        "README",
        "IMG_0001",
        "IMG 0001 (1).JPG",
        "folder/IMG_1.jpg",
        "C:\\Users\\ann\\IMG_1.JPG",
        "Straße.JPG",
        "STRASSE.jpg",
        "ΟΔΟΣ ΣΑΣ.jpg",
        "ﬁle.CR2",
        "İstanbul.jpg",
        "ılık.NEF",
        "Ꭰ.jpg",
        "ꭰ.jpg",
        "日本の旅.HEIC",
        "Ünïcødé.nef",
        "café.jpg",
        "cafe\u0301.jpg",  # the same, decomposed: a different name on both sides
        "📷 1.jpg",
        "👨\u200d👩\u200d👧.jpg",  # the joiners are not printable to the server
        "a\u00a0b.jpg",  # nor is a no-break space
        "IMG_1.ＪＰＧ",  # full-width letters: no extension the table knows
        "ǅemal.jpg",
        "x" * 300 + ".jpg",
        "   .jpg",
    ]
    return table


def cased() -> list[str]:
    """Every character Python's case rules touch, each in a name (in a word and at its end)."""
    chars = [chr(c) for c in range(0x20000) if unicodedata.category(chr(c)) not in ("Cn", "Cs", "Co")]
    touched = [c for c in chars if c.lower() != c or c.upper() != c or c.casefold() != c]
    return [f"A{c}b{c}.CR2.xmp" for c in touched] + [f"{c}{c}.JPG" for c in touched]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def browser_answers(page: Page, table: list[str]) -> list[list[object]]:
    return page.evaluate(
        "(names) => names.map((n) => [Photoflow.upload.pairKey(n), Photoflow.upload.kindOf(n),"
        " Photoflow.upload.rank(n)])",
        table,
    )


def server_answers(table: list[str]) -> list[list[object]]:
    # upload.js sends a shot's pictures first, then RAWs and whatever the table does not know, then
    # sidecars: the order of filetypes.KINDS.
    def rank(name: str) -> int:
        return filetypes.KINDS.index(hinted_kind(name) or "raw")

    return [[pair_key(n), hinted_kind(n), rank(n)] for n in table]


def test_the_browser_pairs_as_the_server_does(chromium: Browser, server: str) -> None:
    """upload.js's pair key, kind and order, on the upload page, equal the server's for every name."""
    console = Console()
    context, page = new_page(chromium, console, DESKTOP)
    try:
        create_first_admin(page, server)  # lands on the upload tab
        page.wait_for_function("() => window.Photoflow && window.Photoflow.upload")
        table = names()
        got, expected = browser_answers(page, table), server_answers(table)
        differ = [(n, g, e) for n, g, e in zip(table, got, expected, strict=True) if g != e]
        assert not differ, differ[:20]
        every = cased()
        got, expected = browser_answers(page, every), server_answers(every)
        differ = [(n, g, e) for n, g, e in zip(every, got, expected, strict=True) if g != e]
        assert not differ, [(n.encode("unicode_escape"), g, e) for n, g, e in differ[:20]]
        console.check("the pair keys")
    finally:
        context.close()


@pytest.mark.parametrize(
    ("names_", "key"),
    [
        (["IMG_1.CRW", "IMG_1.CRW.xmp", "IMG_1.jpg", "img_1.xmp"], "img_1"),
        (["DSC_2.MEF", "DSC_2.MEF.xmp", "DSC_2.JPE"], "dsc_2"),
        ([f"{PIXEL}.RAW-01.MP.COVER.jpg", f"{PIXEL}.RAW-02.ORIGINAL.dng"], PIXEL.lower()),
        (["Straße.jpg", "STRASSE.NEF"], "strasse"),
    ],
)
def test_one_shot_one_key(names_: list[str], key: str) -> None:
    assert {pair_key(n) for n in names_} == {key}


def test_a_sidecar_of_a_name_the_table_does_not_know_keeps_it() -> None:
    assert pair_key("notes.txt.xmp") == "notes.txt"
    assert hinted_kind("notes.txt.xmp") == "sidecar" and hinted_kind("notes.txt") == ""


# -- the table --------------------------------------------------------------------------------------------


def test_each_type_and_each_extension_once() -> None:
    types = [name for f in FORMATS for name in (f.file_type, *f.aliases)]
    assert len(types) == len(set(types))
    exts = [ext for f in FORMATS for ext in f.extensions]
    assert len(exts) == len(set(exts))
    assert all(re.fullmatch(r"\.[a-z0-9]+", ext) for ext in exts), exts
    for f in FORMATS:
        assert f.kind in filetypes.KINDS
        assert f.stored in f.extensions or f.kind == "picture", f  # MPO is kept as the .jpg it is
        if f.kind == "raw":
            assert f.extensions[0] == f.stored == "." + f.file_type.lower() and f.shown == f.file_type


def test_every_raw_extension_is_in_the_table() -> None:
    assert not RAWS - extensions("raw")
    assert {".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".heic", ".heif", ".hif"} <= extensions("picture")
    assert extensions("sidecar") == {".xmp"}


def test_ws_php_is_told_every_extension() -> None:
    told = filetypes.upload_extensions()
    assert told == [ext.removeprefix(".") for f in FORMATS for ext in f.extensions]
    assert {"crw", "mef", "fff", "gpr", "ori", "xmp"} <= set(told)
    assert all(e == e.lower() and not e.startswith(".") for e in told)


# -- the pages --------------------------------------------------------------------------------------------


def script_json(html: str, element_id: str) -> object:
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    assert found, f"no #{element_id} in the page"
    return json.loads(found.group(1))


def test_the_upload_page_hands_over_the_table(server: str, admin: User) -> None:
    page = web_as(server, "admin", "correct horse").get("/upload").text
    accept = re.search(r'<input type="file" id="files"[^>]* accept="([^"]+)"', page)
    assert accept and accept.group(1) == filetypes.accept()
    assert accept.group(1).split(",") == ["image/*", *(e for f in FORMATS for e in f.extensions)]
    config = script_json(page, "upload-config")
    assert isinstance(config, dict)
    assert config["maxBytes"] == MAX_REQUEST_BYTES
    assert config["names"] == json.loads(json.dumps(filetypes.browser_rules()))
    assert re.compile(config["names"]["phonePair"], re.I | re.A).pattern == filetypes.PHONE_PAIR
    assert set(config["names"]["extensions"]["raw"]) == extensions("raw")


def test_the_grid_pages_hand_over_the_url_shape_and_heights(server: str, admin: User) -> None:
    browser = web_as(server, "admin", "correct horse")
    expected = {"derivative": urls.DERIVATIVE, "heights": [100, 250, 500], "placeholder": 20}
    assert script_json(browser.get("/").text, "grid-config") == expected
    album = browser.post("/albums", {"title": "Walk"})
    assert album.status_code == 303
    assert script_json(browser.get(urlsplit(album.headers["Location"]).path).text, "grid-config") == expected


def test_the_derivative_url_is_the_route() -> None:
    app = Bottle()
    app.route(urls.DERIVATIVE_ROUTE, "GET", lambda **kw: kw)
    sha = "0123456789abcdef" * 4
    for size in imaging.SIZES:
        path = urls.derivative(42, sha, size)
        assert path == f"/d/{size}/42-{sha[:16]}.jpg"
        _, args = app.router.match({"PATH_INFO": path, "REQUEST_METHOD": "GET"})
        assert args == {"size": size, "photo_id": 42, "sha": sha[:16]}
    shape = urls.DERIVATIVE.replace("{size}", "250").replace("{id}", "7").replace("{sha}", sha[:16])
    assert shape == urls.derivative(7, sha, 250)  # what grid.js does with the shape


def test_sizes_are_defined_once() -> None:
    from photoflow import storage

    assert storage.DERIVATIVE_SIZES is imaging.SIZES
    assert set(imaging.QUALITY) == set(imaging.SIZES)
    assert min(imaging.GRID_HEIGHTS) == imaging.PLACEHOLDER_HEIGHT


def test_the_scripts_keep_no_list_of_their_own() -> None:
    """Extensions, derivative URLs and grid heights reach the scripts through the pages' JSON."""
    for script in ("upload.js", "grid.js"):
        code = (STATIC / script).read_text()
        quoted = re.findall(r"""["'`](\.[a-z0-9]{2,5})["'`]""", code, re.I)
        assert not quoted, (script, quoted)
        assert "/d/" not in code, script
        assert "1024" not in code and "4e9" not in code, script
    grid = (STATIC / "grid.js").read_text()
    assert not re.search(r"\[\s*100\s*,\s*250\s*,\s*500\s*\]", grid)
    assert "thumbnailSize: 20" not in grid
