"""Bad input at every door (issue 7, "Hardening"): the web forms, uploads, ws.php and the command line.

Hypothesis generates file names, form values and ws.php parameters (text with NUL, newlines and
right-to-left marks, huge strings, bytes that are not UTF-8, numbers out of range, ids of others and
ids that do not exist, duplicated keys). Whatever it sends: never a 5xx, never a write outside the
datastore, and a refused request leaves every table as it was. Then the hostile files of
../shared/docs/security.md go through the web upload, ws.php and `photoflow import-image`: the PNG
bombs, polyglots, HTML and SVG named .jpg, a truncated JPEG, a DjVu file shaped like CVE-2021-22204,
and names built to smuggle arguments into exiftool. Every hostile file is generated here.

One world for the module (a real server over HTTP on a fresh library), so examples are cheap; the
examples are derandomised (the same inputs every run, which still fail when the code is wrong) and
known nasty values are always tried as explicit examples.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from xml.etree import ElementTree

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from photoflow import db as database
from photoflow import piwigo, services
from photoflow.batch import import_files
from photoflow.config import Config
from photoflow.importer import ImportOptions
from photoflow.library import Library, open_library
from photoflow.models import Album, File, LoginFailure, Photo, User
from photoflow.web import create_app
from tests.conftest import REPO, Web, make_config, make_jpegs, png_bomb, run_cli, serving, web_as

# Photoflow silences Pillow's warning once per process (it refuses above its own limit); pytest restores
# the warning filters after each test, so the server's threads would show it here.
pytestmark = [
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    pytest.mark.xdist_group("bad-input-world"),  # one worker builds the module's world
]
FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
ADMIN_PW = "correct horse"
MEMBER_PW = "battery staple"
WS_PW = "ws member password"
MISSING = 987_654
# Names and values that have broken photo hosts, tried in every run besides what Hypothesis makes up.
NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "a\nb",
    "\r\n",
    "\u202egpj.exe",  # right-to-left override: "exe.jpg" on screen
    "\u200f\u200e",
    "../../x",
    "..\\..\\x",
    "/etc/passwd",
    "C:\\Windows\\x.jpg",
    "<script>alert(1)</script>",
    "[bold]x[/bold][@click=quit]",
    "'; DROP TABLE photo; --",
    "%00%0a",
    "\ud7ff\ue000\U0010ffff",
    "é" * 300,
    "x" * 6000,
]
NUMBERS = [
    "",
    "0",
    "-1",
    "+1",
    " 1",
    "1_0",
    "1e309",
    "NaN",
    "0x10",
    "²",  # isdigit() says yes, int() says no
    "¹²³",
    "١٢",  # Arabic-Indic digits: int() reads them
    "9" * 19,
    "9" * 30,
    "9" * 5000,  # more digits than int() converts
    str(2**63),
    str(-(2**63) - 1),
    str(MISSING),
]


# -- the world ---------------------------------------------------------------------------------------


@dataclass(repr=False)
class World:
    """A library on disk, served over HTTP, with an admin, two members, albums and photos."""

    root: Path
    inputs: Path
    config: Config
    library: Library
    base: str
    marker: Path  # what an exploit would create; it must never exist
    admin: User
    member: User
    albums: dict[str, int] = field(default_factory=dict)
    photos: dict[str, int] = field(default_factory=dict)
    counter: int = 0

    def __repr__(self) -> str:
        return f"World({self.base})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # Hypothesis prints examples with this

    @property
    def datastore(self) -> Path:
        return self.library.store.root

    def fresh_jpeg(self, edge: int = 24) -> bytes:
        """A small JPEG whose bytes no other call returns (so it is never a duplicate)."""
        self.counter += 1
        n = self.counter
        img = Image.new("RGB", (edge + n % 7, edge), (n * 37 % 256, n * 91 % 256, n * 13 % 256))
        img.putpixel((0, 0), (n % 256, n // 256 % 256, 255))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90, comment=f"pf-bad-input {n} {secrets.token_hex(4)}".encode())
        return buf.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("world")
    inputs = tmp_path_factory.mktemp("inputs")
    config = make_config(root)
    database.open_database(config.database)
    database.upgrade()
    library = open_library(config)
    admin = services.create_user("admin", ADMIN_PW, admin=True)
    member = services.create_user("bob", MEMBER_PW)
    services.create_user("wsuser", WS_PW)
    albums = {
        "public": services.create_album("Public", admin.id, public=True).id,
        "private": services.create_album("Private", admin.id).id,
        "bobs": services.create_album("Bob's", member.id).id,
    }
    seeds = make_jpegs(inputs / "seed", 4)
    first = import_files(library, seeds[:3], ImportOptions(owner_id=admin.id, album_id=albums["public"]), 1)
    second = import_files(library, seeds[3:], ImportOptions(owner_id=member.id, album_id=albums["bobs"]), 1)
    ids = [r.photo_id for r in first.results + second.results]
    assert all(ids), first.results + second.results
    photos = {"admin1": ids[0], "admin2": ids[1], "admin3": ids[2], "bobs": ids[3]}
    with serving(create_app(library)) as base:
        yield World(
            root=root,
            inputs=inputs,
            config=config,
            library=library,
            base=base,
            marker=root / "PWNED",
            admin=admin,
            member=member,
            albums=albums,
            photos=photos,
        )
    library.close()
    database.close_database()


# -- snapshots: what a refusal must leave alone, and where nothing may be written ---------------------

# The login rate limit records refused logins by design; a session's last visit is touched as it is used.
VOLATILE = {"login_failure": None, "session": "token_hash, user_id, csrf_token"}


def db_digest() -> dict[str, str]:
    """A digest of every table's rows (volatile bookkeeping left out)."""
    digests = {}
    for table in sorted(database.db.get_tables()):
        if table in VOLATILE and VOLATILE[table] is None:
            continue
        columns = VOLATILE.get(table) or "*"
        rows = database.db.execute_sql(f'SELECT {columns} FROM "{table}"').fetchall()
        digests[table] = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
    return digests


def stored(world: World) -> set[str]:
    """The datastore's files, but for the database (files being written count: a refusal leaves none)."""
    skip = ("photoflow.db",)
    return {
        p.relative_to(world.datastore).as_posix()
        for p in world.datastore.rglob("*")
        if p.is_file() and not p.relative_to(world.datastore).as_posix().startswith(skip)
    }


def outside(world: World) -> set[str]:
    """Every file and folder under the world's folder that is not in the datastore (none are expected),
    and anything named like an exploit's marker anywhere near."""
    found = {str(p) for p in world.root.rglob("*") if world.datastore not in (p, *p.parents)}
    for folder in (world.root.parent, REPO, Path.cwd(), world.inputs):
        found |= {str(p) for p in folder.glob("PWNED")}
    return found


def repo_changes() -> set[str]:
    """Untracked files in the repository (other helpers edit tracked ones; a new stray file is ours)."""
    out = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {line[3:] for line in out.splitlines() if line.startswith("??")}


@dataclass
class Before:
    digest: dict[str, str]
    stored: set[str]
    outside: set[str]


def before(world: World) -> Before:
    return Before(db_digest(), stored(world), outside(world))


def check(
    world: World, was: Before, status: int, refused: bool, what: str, allowed: tuple[int, ...] = ()
) -> None:
    """No 5xx, nothing outside the datastore, and nothing changed when the request was refused.

    `allowed`: 5xx statuses a protocol asks for (ws.php answers an unknown method with 501, as Piwigo)."""
    assert status < 500 or status in allowed, f"{what}: answered {status}"
    assert outside(world) == was.outside, f"{what}: wrote outside the datastore"
    assert not world.marker.exists(), f"{what}: the exploit ran"
    if refused:
        assert db_digest() == was.digest, f"{what}: refused ({status}) but the database changed"
        assert stored(world) == was.stored, f"{what}: refused ({status}) but the datastore changed"


@pytest.fixture(scope="module", autouse=True)
def repository_untouched() -> Iterator[None]:
    """Nothing this module does leaves a file in the repository."""
    was = repo_changes()
    yield
    new = {
        path
        for path in repo_changes() - was
        # Other helpers work in the same tree: new sources, docs and snapshots are theirs. What an
        # escaped upload or exploit would leave (x, x.jpg, passwd, PWNED) is none of those.
        if not re.fullmatch(
            r".*\.(py|md|txt|toml|cfg|json|ya?ml|ambr|svg|tcss|js|css|tpl|conf|service)", path
        )
        and not path.startswith(("tests/__snapshots__/", "tests/output/"))
    }
    assert not new, f"files appeared in the repository: {sorted(new)}"


# -- strategies --------------------------------------------------------------------------------------

text_values = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=30),
    st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp", "Zs", "Mn", "So"]), max_size=20),
    st.builds(
        lambda ch, n: ch * n,
        st.sampled_from(["x", "é", "\u202e", "\x00", "\n", "€"]),
        st.integers(0, 120_000),
    ),
)
number_values = st.one_of(st.sampled_from(NUMBERS), st.integers(-(2**70), 2**70).map(str))
raw_values = st.binary(max_size=24)  # not UTF-8 as often as not: sent percent-encoded, as bytes


def value_strategy(ids: list[str]) -> st.SearchStrategy[str | bytes]:
    return st.one_of(text_values, number_values, st.sampled_from(ids), raw_values)


def form_body(pairs: list[tuple[str, str | bytes]]) -> str:
    """An urlencoded body; bytes values go as their own bytes, whatever their encoding."""
    return urlencode(pairs)


def post_raw(browser: Web, path: str, pairs: list[tuple[str, Any]], csrf: bool = True) -> requests.Response:
    """POST a form built by hand (duplicated keys, bytes that are not UTF-8), with the page's token."""
    body = form_body(([("csrf", browser.csrf)] if csrf else []) + pairs)
    return browser.http.post(
        browser.base + path,
        data=body.encode("ascii"),
        headers={"Origin": browser.origin, "Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
        timeout=120,
    )


def refused(answer: requests.Response) -> bool:
    return 400 <= answer.status_code < 500


def local_redirect(world: World, answer: requests.Response) -> None:
    if answer.status_code in (301, 302, 303, 307, 308):
        location = answer.headers["Location"]
        assert location.startswith(world.base + "/") and not location.startswith(world.base + "//"), location


@pytest.fixture(scope="module")
def browsers(world: World) -> dict[str, Web]:
    """A visitor, the member bob and the admin, each in their own browser."""
    visitor = Web(world.base)
    visitor.get("/login")
    return {
        "visitor": visitor,
        "bob": web_as(world.base, "bob", MEMBER_PW),
        "admin": web_as(world.base, "admin", ADMIN_PW),
    }


def album_id_for(world: World, target: str, actor: str) -> str:
    """An album id in the path: the actor's own (made for this example), someone else's, or none."""
    if target == "own":
        owner = world.admin.id if actor == "admin" else world.member.id
        return str(services.create_album(f"Victim {secrets.token_hex(3)}", owner).id)
    if target == "other":
        return str(world.albums["bobs"] if actor == "admin" else world.albums["private"])
    return {"missing": str(MISSING), "zero": "0", "huge": "9" * 25, "negative": "-1"}[target]


# -- web: the forms that change something ---------------------------------------------------------------


@settings(FUZZ, max_examples=20)  # each example checks a password (argon2)
@given(
    name=st.one_of(st.sampled_from(["admin", "bob", "ADMIN", " bob "]), text_values, raw_values),
    password=st.one_of(st.sampled_from([MEMBER_PW + " ", ""]), text_values, raw_values),
    next_=st.one_of(
        st.sampled_from(
            ["/album/1", "//evil.example", "https://evil.example/", "/\r\nSet-Cookie: x=1", "/€"]
        ),
        text_values,
        raw_values,
    ),
    extra=st.lists(st.tuples(st.sampled_from(["name", "password", "next", "csrf"]), text_values), max_size=2),
)
@example(name="bob", password=MEMBER_PW, next_="/\nx", extra=[])
@example(name="bob", password=MEMBER_PW, next_="/caf\u20ac/\u202e", extra=[])
@pytest.mark.slow
def test_web_login_form(world: World, name: Any, password: Any, next_: Any, extra: list) -> None:
    browser = Web(world.base)
    browser.get("/login")
    was = before(world)
    answer = post_raw(browser, "/login", [("name", name), ("password", password), ("next", next_), *extra])
    check(world, was, answer.status_code, refused(answer), f"login {name!r}/{next_!r}")
    local_redirect(world, answer)
    LoginFailure.delete().execute()  # keep the rate limit out of the other examples' way


ALBUM_ACTIONS = ["edit", "visibility", "cover", "remove", "share", "unshare", "delete", "", "EDIT", "\x00"]


@settings(FUZZ, max_examples=120)
@given(
    actor=st.sampled_from(["visitor", "bob", "admin"]),
    target=st.sampled_from(["own", "other", "missing", "zero", "huge", "negative"]),
    action=st.one_of(st.sampled_from(ALBUM_ACTIONS), text_values),
    fields=st.lists(
        st.tuples(
            st.sampled_from(["title", "description", "public", "photo", "next", "action"]),
            value_strategy(["1", "0", "/albums", "//x"]),
        ),
        max_size=5,
    ),
)
@example(actor="bob", target="own", action="cover", fields=[("photo", b"\xb2")])  # "²" once decoded
@example(actor="bob", target="own", action="cover", fields=[("photo", "9" * 30)])
@example(actor="bob", target="own", action="remove", fields=[("photo", b"\xb3"), ("photo", "9" * 30)])
@example(actor="bob", target="own", action="edit", fields=[("title", "ok"), ("next", "/a\nb")])
@example(actor="bob", target="huge", action="edit", fields=[("title", "ok")])
@example(actor="bob", target="other", action="delete", fields=[])
@pytest.mark.slow
def test_web_album_forms(
    world: World, browsers: dict[str, Web], actor: str, target: str, action: Any, fields: list
) -> None:
    browser = browsers[actor]
    album = album_id_for(world, target, actor)
    if target == "other" and action == "delete" and actor == "admin":
        action = "edit"  # the admin may delete anything: keep the world's albums
    was = before(world)
    answer = post_raw(browser, f"/album/{album}", [("action", action), *fields])
    check(world, was, answer.status_code, refused(answer), f"{actor} album {album} {action!r} {fields!r}")
    local_redirect(world, answer)
    if actor == "bob" and target == "other" and action == "delete":
        assert answer.status_code == 403


@FUZZ
@given(
    actor=st.sampled_from(["visitor", "bob", "admin"]),
    path=st.sampled_from(["/albums", "/api/albums"]),
    fields=st.lists(
        st.tuples(st.sampled_from(["title", "public", "description"]), value_strategy(["1", "0"])),
        min_size=1,
        max_size=4,
    ),
)
@example(actor="bob", path="/albums", fields=[("title", "x" * 201)])
@example(actor="bob", path="/albums", fields=[("title", b"\xff\xfe")])
@pytest.mark.slow
def test_web_album_create(
    world: World, browsers: dict[str, Web], actor: str, path: str, fields: list
) -> None:
    was = before(world)
    answer = post_raw(browsers[actor], path, fields)
    check(world, was, answer.status_code, refused(answer), f"{actor} {path} {fields!r}")
    local_redirect(world, answer)
    if answer.status_code in (201, 303):
        title = Album.select().order_by(Album.id.desc()).first().title
        assert title and title == " ".join(title.split()) and len(title) <= 200


@settings(FUZZ, max_examples=120)
@given(
    actor=st.sampled_from(["visitor", "bob", "admin"]),
    target=st.sampled_from(["admin1", "bobs", "missing", "huge", "zero"]),
    delete=st.booleans(),
    fields=st.lists(
        st.tuples(
            st.sampled_from(["title", "description", "albums_sent", "album", "next", "after", "action"]),
            value_strategy(["1", "0", "/", "//evil.example"]),
        ),
        max_size=6,
    ),
)
@example(actor="bob", target="bobs", delete=False, fields=[("albums_sent", "1"), ("album", b"\xb9\xb2")])
@example(actor="bob", target="bobs", delete=False, fields=[("albums_sent", "1"), ("album", "9" * 30)])
@example(actor="bob", target="admin1", delete=True, fields=[])
@example(actor="bob", target="bobs", delete=False, fields=[("title", "x\x00y"), ("next", "/\r\n")])
@pytest.mark.slow
def test_web_photo_forms(
    world: World, browsers: dict[str, Web], actor: str, target: str, delete: bool, fields: list
) -> None:
    photo = {"missing": str(MISSING), "huge": "9" * 25, "zero": "0"}.get(target) or str(world.photos[target])
    pairs = [("action", "delete")] if delete else []
    if delete and actor == "admin" and target in world.photos:
        pairs = []  # the admin may delete anything: keep the world's photos
    if actor == "bob" and target == "bobs":
        fields = [(k, v) for k, v in fields if k != "action"]  # bob could delete his own
    was = before(world)
    answer = post_raw(browsers[actor], f"/photo/{photo}", [*pairs, *fields])
    check(world, was, answer.status_code, refused(answer), f"{actor} photo {photo} {pairs + fields!r}")
    local_redirect(world, answer)
    if actor == "bob" and target == "admin1" and pairs:
        assert answer.status_code == 403 and Photo.get_or_none(Photo.id == world.photos["admin1"])


@pytest.fixture(scope="module")
def carol(world: World) -> dict[str, Any]:
    """A member whose password the password form may really change: her browser and password now."""
    services.create_user("carol", "carol's password")
    return {"password": "carol's password", "browser": web_as(world.base, "carol", "carol's password")}


@settings(FUZZ, max_examples=12)  # each example hashes passwords (argon2): slow on purpose
@given(
    old=st.one_of(st.just("RIGHT"), text_values, raw_values),
    new=st.one_of(st.just("a new password 1"), text_values, raw_values),
    same=st.booleans(),
)
@example(old="RIGHT", new="a\x00b\nc\u202e long enough", same=True)
@example(old="RIGHT", new="x" * 200_000, same=True)
@example(old="RIGHT", new=b"\xff\xfe not UTF-8 at all", same=True)
@pytest.mark.slow
def test_web_password_change(world: World, carol: dict[str, Any], old: Any, new: Any, same: bool) -> None:
    browser = carol["browser"]
    pairs = [
        ("old", carol["password"] if old == "RIGHT" else old),
        ("new", new),
        ("new2", new if same else "x"),
    ]
    was = before(world)
    answer = post_raw(browser, "/account/password", pairs)
    check(world, was, answer.status_code, refused(answer), f"password {pairs!r}")
    # A wrong current password counts toward the login's limit (sessions.recheck): keep it out of the
    # other examples' way.
    LoginFailure.delete().execute()
    if answer.status_code == 303:
        carol["password"] = new
        assert browser.get("/account").status_code == 200  # this browser has its new session
        assert services.authenticate("carol", new) is not None


@FUZZ
@given(
    actor=st.sampled_from(["bob", "admin"]),
    form=st.sampled_from(["create", "password", "admin", "delete"]),
    user=st.sampled_from(["self", "missing", "huge"]),
    fields=st.lists(
        st.tuples(st.sampled_from(["name", "password", "admin"]), value_strategy(["1", "0"])), max_size=3
    ),
)
@example(actor="admin", form="create", user="self", fields=[("name", "a\nb"), ("password", "long enough!")])
@example(
    actor="admin", form="create", user="self", fields=[("name", "\u202eevil"), ("password", "long enough!")]
)
@example(actor="admin", form="admin", user="self", fields=[("admin", "0")])
@example(actor="admin", form="delete", user="self", fields=[])
def test_web_user_forms(
    world: World, browsers: dict[str, Web], actor: str, form: str, user: str, fields: list
) -> None:
    me = world.admin.id if actor == "admin" else world.member.id
    uid = {"self": str(me), "missing": str(MISSING), "huge": "9" * 25}[user]
    path = {"create": "/users", "password": f"/users/{uid}/password"}.get(form, f"/users/{uid}/{form}")
    if actor == "admin" and form == "password" and user == "self":
        uid, path = str(MISSING), f"/users/{MISSING}/password"  # keep the admin's browser logged in
    was = before(world)
    answer = post_raw(browsers[actor], path, fields)
    check(world, was, answer.status_code, refused(answer), f"{actor} {path} {fields!r}")
    if actor == "bob":
        assert answer.status_code in (403, 413, 404 if user == "huge" and form != "create" else 403)
    if answer.status_code == 303 and form == "create":
        newest = User.select().order_by(User.id.desc()).first()
        assert newest.name.isprintable() and newest.name == newest.name.strip()
        services.delete_user(newest.id, heir_id=world.admin.id)


@settings(FUZZ, max_examples=120)
@given(
    path=st.sampled_from(
        [
            "/photo/{photo}?album={v}",
            "/upload?album={v}",
            "/api/days?newest={v}&oldest={v}",
            "/s/{v}",
            "/album/{v}",
            "/download?ids={v}",
            "/d/500/{v}-0123456789abcdef.jpg",
            "/photo/{v}/file/original",
        ]
    ),
    value=st.one_of(number_values, text_values.map(lambda t: quote(t[:300], safe=""))),
    actor=st.sampled_from(["visitor", "bob"]),
)
@example(path="/photo/{photo}?album={v}", value="%B2", actor="bob")
@example(path="/upload?album={v}", value="%B2", actor="bob")
@example(path="/photo/{photo}?album={v}", value="9" * 30, actor="bob")
@example(path="/download?ids={v}", value="9" * 30, actor="bob")
@example(path="/download?ids={v}", value="%B2", actor="bob")
def test_web_viewing_routes_with_bad_query_values(
    world: World, browsers: dict[str, Web], path: str, value: str, actor: str
) -> None:
    url = path.format(photo=world.photos["admin1"], v=value)
    answer = browsers[actor].get(url)
    assert answer.status_code < 500, f"GET {url}: {answer.status_code}"


# -- web: uploads ----------------------------------------------------------------------------------------

FILE_NAMES = [
    "../../x.jpg",
    "..\\..\\x.jpg",
    "/etc/passwd",
    "/tmp/pf-escape.jpg",
    "C:\\Windows\\System32\\x.jpg",
    "a\x00b.jpg",
    "a\nb.jpg",
    "a\rb.jpg",
    "\u202egpj.exe",
    "\u200f.jpg",
    "x" * 300,
    "é" * 150 + ".jpg",  # 300 bytes
    "",
    ".",
    "..",
    "-if",
    "a.jpg\n-if\nsystem('touch PWNED')||1",
    "<img src=x onerror=alert(1)>.jpg",
    '"; filename="evil.jpg',
]
file_names = st.one_of(
    st.sampled_from(FILE_NAMES),
    st.text(max_size=40),
    st.text(max_size=20).map(lambda t: t + ".jpg"),
    st.lists(st.sampled_from(["..", ".", "x", "", "\\", "\n", "\u202e"]), max_size=6).map("/".join),
)


def multipart(parts: list[tuple[str, str | None, bytes]], star: bool = True) -> tuple[bytes, str]:
    """A multipart body built by hand, so that any file name arrives as it is (requests would rewrite
    newlines and quotes). `star`: names as RFC 5987 filename*, which carries every character."""
    boundary = "pfbad" + secrets.token_hex(12)
    out = b""
    for field_name, file_name, data in parts:
        disposition = f'form-data; name="{field_name}"'.encode()
        if file_name is not None:
            if star:
                disposition += f"; filename*=UTF-8''{quote(file_name, safe='')}".encode()
            else:
                escaped = (
                    file_name.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "")
                )
                disposition += b'; filename="' + escaped.encode("utf-8", "surrogatepass") + b'"'
        out += b"--" + boundary.encode() + b"\r\nContent-Disposition: " + disposition + b"\r\n"
        out += b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return out, f"multipart/form-data; boundary={boundary}"


def web_upload(
    browser: Web, parts: list[tuple[str, bytes]], album: str | None = None, star: bool = True
) -> requests.Response:
    body, content_type = multipart([("file", name, data) for name, data in parts], star=star)
    query = "" if album is None else "?album=" + quote(album, safe="")
    return browser.http.post(
        browser.base + "/upload" + query,
        data=body,
        headers={
            "X-CSRF-Token": browser.csrf,
            "Origin": browser.origin,
            "Accept": "application/json",
            "Content-Type": content_type,
        },
        timeout=300,
    )


def assert_display_text(name: str) -> None:
    """What a client's file name may become: one printable line, no folders, bounded."""
    assert name and name.isprintable() and "/" not in name and "\\" not in name and len(name) <= 255, name


def assert_stored_inside(world: World, photo_id: int) -> None:
    """Every file of the photo is under a generated name inside the datastore."""
    for f in File.select().where(File.photo == photo_id):
        assert re.fullmatch(r"[a-z]+/[0-9a-f]{2}/[0-9a-f]{64}\.[a-z0-9]+", f.path), f.path
        real = (world.datastore / f.path).resolve()
        assert real.is_file() and real.is_relative_to(world.datastore.resolve())
        assert_display_text(f.original_name)


@settings(FUZZ, max_examples=50)  # each example imports a picture
@given(
    name=file_names,
    star=st.booleans(),
    album=st.one_of(
        st.none(), st.sampled_from(["PUBLIC", "BOBS"]), st.sampled_from(NUMBERS), st.text(max_size=8)
    ),
)
@example(name="../../pf-escape.jpg", star=False, album=None)
@example(name="..\\..\\pf-escape.jpg", star=False, album=None)
@example(name="a\x00b\n/c.jpg", star=True, album="9" * 30)
@example(name="x.jpg", star=True, album="²")
@pytest.mark.slow
def test_web_upload_names_are_only_display_text(
    world: World, browsers: dict[str, Web], name: str, star: bool, album: str | None
) -> None:
    album = {"PUBLIC": str(world.albums["public"]), "BOBS": str(world.albums["bobs"])}.get(album or "", album)
    was = before(world)
    answer = web_upload(browsers["bob"], [(name, world.fresh_jpeg())], album=album, star=star)
    check(world, was, answer.status_code, refused(answer), f"upload {name!r} album={album!r}")
    if answer.status_code != 200:
        assert album not in (None, str(world.albums["public"]), str(world.albums["bobs"])), answer.text
        assert "error" in answer.json()
        return
    (result,) = answer.json()["results"]
    assert result["status"] == "imported", result
    assert_display_text(result["name"])
    photo = Photo.get_by_id(result["photo"])
    assert photo.file_name == result["name"]
    assert_stored_inside(world, photo.id)


# -- hostile files -------------------------------------------------------------------------------------


def djvu_exploit(marker: Path) -> bytes:
    """The shape of CVE-2021-22204: an AT&T DjVu file whose ANTa annotation chunk holds a Perl string
    that exiftool below 12.24 evaluated (`\\c${...}` runs code)."""
    payload = b"(metadata \"\\c${system('touch " + str(marker).encode() + b"')};\")"
    info = struct.pack(">HHBB", 64, 64, 24, 0) + struct.pack("<H", 300) + bytes([22, 1])
    chunks = b"INFO" + struct.pack(">I", len(info)) + info
    chunks += b"ANTa" + struct.pack(">I", len(payload)) + payload + b"\x00" * (len(payload) % 2)
    form = b"DJVU" + chunks
    return b"AT&TFORM" + struct.pack(">I", len(form)) + form


def noisy_jpeg(size: tuple[int, int] = (640, 480)) -> bytes:
    img = Image.effect_noise(size, 60).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


SCRIPT = b"<html><body><script>alert(document.cookie)</script></body></html>\n"


@dataclass
class Hostile:
    name: str  # the client's name for it
    data: bytes
    outcome: str  # "refused", "too large" or "imported"
    mime: str = ""  # for what is imported: the type it must be served as


@pytest.fixture(scope="module")
def hostile(world: World) -> dict[str, Hostile]:
    """The files of security.md's list, made here. `world.fresh_jpeg` keeps their bytes unique."""
    gif = io.BytesIO()
    Image.new("P", (8, 8)).save(gif, "GIF")
    png = io.BytesIO()
    Image.new("RGB", (40, 30), (9, 99, 199)).save(png, "PNG")
    whole = noisy_jpeg()
    return {
        "bomb100": Hostile("bomb100.png", png_bomb(10_000, 10_000), "too large"),
        "bomb400": Hostile("bomb400.png", png_bomb(20_000, 20_000), "too large"),
        "jpeg+html": Hostile("polyglot.jpg", world.fresh_jpeg() + SCRIPT, "imported", "image/jpeg"),
        "png+html": Hostile("polyglot.png", png.getvalue() + SCRIPT, "imported", "image/png"),
        "gifar": Hostile("gifar.jpg", gif.getvalue() + SCRIPT, "refused"),
        "html": Hostile("page.jpg", b"<!doctype html>\n" + SCRIPT, "refused"),
        "svg": Hostile(
            "drawing.jpg",
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
            b"<script>alert(2)</script></svg>\n",
            "refused",
        ),
        "truncated": Hostile("truncated.jpg", whole[: len(whole) * 6 // 10], "refused"),
        "no-eoi": Hostile("cut-at-the-end.jpg", whole[:-2], "refused"),
        "djvu": Hostile("exploit.jpg", djvu_exploit(world.marker), "refused"),
        "newline": Hostile("new\nline.jpg", world.fresh_jpeg(), "imported", "image/jpeg"),
    }


def served_safely(world: World, browser: Web, photo_id: int, mime: str) -> None:
    """A polyglot is served as the picture it is: its type, nosniff, as an attachment; never as HTML."""
    photo = Photo.get_by_id(photo_id)
    original = browser.get(f"/photo/{photo_id}/file/original")
    assert original.status_code == 200
    assert original.headers["Content-Type"] == mime
    assert original.headers["X-Content-Type-Options"] == "nosniff"
    assert original.headers["Content-Disposition"].startswith("attachment;")
    grid = browser.get(f"/d/250/{photo_id}-{photo.sha256[:16]}.jpg")
    assert grid.status_code == 200 and grid.headers["Content-Type"] == "image/jpeg"
    assert grid.headers["X-Content-Type-Options"] == "nosniff" and b"<script" not in grid.content
    Image.open(io.BytesIO(grid.content)).load()  # a whole picture


def no_derivatives_for(world: World, data: bytes) -> None:
    sha = hashlib.sha256(data).hexdigest()
    assert not list(world.datastore.rglob(f"*{sha}*")), "a refused file left something in the datastore"


def check_outcome(world: World, item: Hostile, status: str, reason: str, photo_id: int | None) -> None:
    if item.outcome == "imported":
        assert status == "imported", (item.name, reason)
        assert photo_id is not None
        assert_stored_inside(world, photo_id)
        return
    assert status == "failed" and reason and "\n" not in reason, (item.name, status, reason)
    if item.outcome == "too large":
        assert "million pixels" in reason, reason
    no_derivatives_for(world, item.data)


# The hostile files each door is tried with (made by the `hostile` fixture).
HOSTILE_KINDS = (
    "bomb100", "bomb400", "jpeg+html", "png+html", "gifar", "html", "svg", "truncated", "no-eoi", "djvu",
    "newline",
)  # fmt: skip


@pytest.mark.parametrize("key", HOSTILE_KINDS)
def test_hostile_files_through_the_web_upload(
    world: World, browsers: dict[str, Web], hostile: dict[str, Hostile], key: str
) -> None:
    item = hostile[key]
    was = before(world)
    answer = web_upload(browsers["bob"], [(item.name, item.data)], album=str(world.albums["bobs"]))
    (result,) = answer.json()["results"]
    failed = result["status"] == "failed"
    # A request whose every file is refused says so in its status too (each file keeps its reason).
    assert answer.status_code == (422 if failed else 200), (key, answer.status_code, result)
    check(world, was, answer.status_code, failed, f"upload of {key}")
    check_outcome(world, item, result["status"], result["reason"], result["photo"])
    if item.outcome == "imported":
        served_safely(world, browsers["bob"], result["photo"], item.mime)


# -- ws.php ----------------------------------------------------------------------------------------------


class Ws:
    """A Piwigo client reduced to HTTP: its pwg_id cookie, and calls in any format."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = requests.Session()

    def call(
        self,
        method: str | None,
        pairs: list[tuple[str, Any]] = (),  # type: ignore[assignment]
        http: str = "POST",
        fmt: str | None = "json",
        files: list[tuple[str, str, bytes]] | None = None,
    ) -> requests.Response:
        query = {} if fmt is None else {"format": fmt}
        params = ([("method", method)] if method is not None else []) + list(pairs)
        url = self.base + "/ws.php"
        if http == "GET":
            return self.http.get(url + "?" + urlencode([*query.items(), *params]), timeout=120)
        if files:
            text = [
                (k, None, v if isinstance(v, bytes) else str(v).encode("utf-8", "surrogatepass"))
                for k, v in params
            ]
            body, content_type = multipart(text + files)
            headers = {"Content-Type": content_type}
            return self.http.post(url + "?" + urlencode(query), data=body, headers=headers, timeout=300)
        body = urlencode(params).encode("ascii")
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.http.post(url + "?" + urlencode(query), data=body, headers=headers, timeout=120)

    def login(self, name: str, password: str) -> Ws:
        answer = self.call("pwg.session.login", [("username", name), ("password", password)])
        assert answer.json()["stat"] == "ok", answer.text
        return self

    def token(self) -> str:
        return self.call("pwg.session.getStatus").json()["result"]["pwg_token"]


WS_ALLOWED = (piwigo.INVALID_METHOD,)  # Piwigo's "unknown method" is also the HTTP status


def envelope(answer: requests.Response, fmt: str | None) -> str:
    """The answer's stat ("ok" or "fail"), after checking it is well-formed JSON or XML, and never
    Photoflow's own "Internal error"."""
    assert b"Internal error" not in answer.content, answer.text[:300]
    if fmt == "json":
        assert answer.headers["Content-Type"].startswith("application/json"), answer.headers
        parsed = json.loads(answer.content)
        assert isinstance(parsed, dict) and parsed["stat"] in ("ok", "fail"), parsed
        if parsed["stat"] == "fail":
            assert isinstance(parsed["err"], int) and parsed["message"], parsed
        return parsed["stat"]
    assert answer.headers["Content-Type"].startswith("text/xml"), answer.headers
    root = ElementTree.fromstring(answer.content)
    assert root.tag == "rsp" and root.get("stat") in ("ok", "fail"), answer.text[:300]
    return root.get("stat") or ""


@pytest.fixture(scope="module")
def ws_world(world: World) -> dict[str, Any]:
    """wsuser's own album and photo (which the calls may change or delete), and a logged-in client."""
    user = User.get(User.name == "wsuser")
    album = services.create_album("wsuser's", user.id)
    seed = world.inputs / "ws-seed.jpg"
    seed.write_bytes(world.fresh_jpeg())
    (result,) = import_files(
        world.library, [seed], ImportOptions(owner_id=user.id, album_id=album.id), 1
    ).results
    client = Ws(world.base).login("wsuser", WS_PW)
    return {"client": client, "token": client.token(), "album": album.id, "photo": result.photo_id}


def ws_ids(world: World, ws: dict[str, Any]) -> list[str]:
    return [
        str(world.albums["public"]),
        str(world.albums["private"]),
        str(world.photos["admin1"]),
        str(ws["album"]),
        str(ws["photo"]),
        str(MISSING),
        "0",
        "TOKEN",
    ]


METHOD_NAMES = [
    *sorted(piwigo.METHODS),
    "",
    "pwg.nope",
    "PWG.GETVERSION",
    "pwg.getVersion\x00",
    " pwg.getVersion",
]


@settings(FUZZ, max_examples=200)
@given(data=st.data())
@pytest.mark.slow
def test_ws_methods_and_parameters(world: World, ws_world: dict[str, Any], data: st.DataObject) -> None:
    member = data.draw(st.booleans(), label="member")
    method = data.draw(st.sampled_from(METHOD_NAMES), label="method")
    entry = piwigo.METHODS.get(method)
    declared = [p.name for p in entry.params] + ["pwg_token"] if entry else ["name", "image_id"]
    keys = st.sampled_from([*declared, *(n + "[]" for n in declared), "method", "format", "", "x\x00"])
    values = value_strategy(ws_ids(world, ws_world))
    pairs = data.draw(st.lists(st.tuples(keys, values), max_size=6), label="params")
    http = data.draw(st.sampled_from(["POST", "POST", "GET"]), label="http")
    fmt = data.draw(st.sampled_from(["json", "json", None, "xml", "php"]), label="format")
    pairs = [(k, ws_world["token"] if v == "TOKEN" else v) for k, v in pairs]
    if method == "pwg.session.login":
        member = False  # a login would end nothing, but a guest's client is thrown away after
    client = ws_world["client"] if member else Ws(world.base)
    was = before(world)
    answer = client.call(method, pairs, http=http, fmt=fmt)
    stat = envelope(answer, "json" if fmt == "json" else "xml")
    check(
        world,
        was,
        answer.status_code,
        stat == "fail",
        f"{method} {pairs!r} as {'member' if member else 'guest'}",
        WS_ALLOWED,
    )
    assert answer.status_code < 300 or stat == "fail"
    if stat == "ok" and not member:
        assert entry is not None and entry.guests, f"a guest called {method}"
    if method == "pwg.session.logout" and member:
        ws_world["client"] = Ws(world.base).login("wsuser", WS_PW)
        ws_world["token"] = ws_world["client"].token()
    LoginFailure.delete().execute()


# ws.php calls that fixed examples always try, beside Hypothesis's.
WS_NASTY = [
    ("pwg.images.setInfo", [("image_id", "PHOTO"), ("categories", "²")]),
    ("pwg.images.setInfo", [("image_id", "PHOTO"), ("categories", "9" * 30)]),
    ("pwg.images.setInfo", [("image_id", "PHOTO"), ("tag_ids", "²,9999999999999999999999")]),
    ("pwg.images.setInfo", [("image_id", "PHOTO"), ("single_value_mode", "replace"), ("name", "a\x00b")]),
    ("pwg.images.add", [("original_sum", "0" * 32), ("categories", "³")]),
    ("pwg.categories.getImages", [("cat_id", "9" * 19)]),
    ("pwg.categories.getImages", [("cat_id", "१२")]),
    ("pwg.categories.getList", [("cat_id", "-0")]),
    ("pwg.images.getInfo", [("image_id", str(2**63))]),
    ("pwg.images.rate", [("image_id", "PHOTO"), ("rate", "1e400")]),
    ("pwg.images.delete", [("image_id", "ADMINPHOTO"), ("pwg_token", "TOKEN")]),
    ("pwg.categories.delete", [("category_id", "PRIVATE"), ("pwg_token", "TOKEN")]),
    ("pwg.images.addChunk", [("data", "!!!"), ("original_sum", "g" * 32), ("position", "1")]),
    ("pwg.images.exist", [("md5sum_list", "\x00," * 1000)]),
    ("pwg.images.exist", [("filename_list", "a<b>c,d&e,-x,.y,\x01,\u202e,é")]),
    ("pwg.categories.add", [("name", "x\x01\x0b\ufffe")]),
    ("pwg.tags.add", [("name", "\u202e" * 5)]),
    ("pwg.categories.add", [("name", "x"), ("parent", str(MISSING))]),
    ("pwg.categories.add", [("name", "x"), ("status", "secret")]),
    ("reflection.getMethodDetails", [("methodName", "\x00")]),
]


@pytest.mark.parametrize("method,pairs", WS_NASTY, ids=[f"{m}-{i}" for i, (m, _) in enumerate(WS_NASTY)])
def test_ws_known_nasty_calls(world: World, ws_world: dict[str, Any], method: str, pairs: list) -> None:
    fill = {
        "PHOTO": str(ws_world["photo"]),
        "ADMINPHOTO": str(world.photos["admin1"]),
        "PRIVATE": str(world.albums["private"]),
        "TOKEN": ws_world["token"],
    }
    pairs = [(k, fill.get(v, v)) for k, v in pairs]
    for fmt in ("json", None):
        was = before(world)
        answer = ws_world["client"].call(method, pairs, fmt=fmt)
        stat = envelope(answer, "json" if fmt == "json" else "xml")
        check(world, was, answer.status_code, stat == "fail", f"{method} {pairs!r}", WS_ALLOWED)
    if method in ("pwg.images.delete", "pwg.categories.delete"):
        assert stat == "fail"  # someone else's


@settings(FUZZ, max_examples=50)  # each example may import a picture
@given(
    method=st.sampled_from(["pwg.images.addSimple", "pwg.images.upload"]),
    name=file_names,
    field_name=st.sampled_from(["name", None]),
    category=st.one_of(st.none(), st.sampled_from(["OWN", "PUBLIC"]), st.sampled_from(NUMBERS)),
    member=st.booleans(),
)
@example(
    method="pwg.images.addSimple", name="../../pf-escape.jpg", field_name=None, category=None, member=True
)
@example(
    method="pwg.images.upload", name="../../pf-escape.jpg", field_name="name", category="OWN", member=True
)
@example(method="pwg.images.upload", name="a\nb/../c.jpg", field_name="name", category="²", member=True)
@example(method="pwg.images.upload", name="x.jpg", field_name=None, category=str(MISSING), member=True)
@pytest.mark.slow
def test_ws_uploads_with_hostile_names(
    world: World,
    ws_world: dict[str, Any],
    method: str,
    name: str,
    field_name: str | None,
    category: str | None,
    member: bool,
) -> None:
    part = "image" if method == "pwg.images.addSimple" else "file"
    pairs: list[tuple[str, Any]] = [("pwg_token", ws_world["token"])]
    if category is not None:
        cat = {"OWN": str(ws_world["album"]), "PUBLIC": str(world.albums["public"])}.get(category, category)
        pairs.append(("category", cat))
    if field_name:
        pairs.append((field_name, name))
    client = ws_world["client"] if member else Ws(world.base)
    was = before(world)
    answer = client.call(method, pairs, files=[(part, name, world.fresh_jpeg())])
    stat = envelope(answer, "json")
    check(world, was, answer.status_code, stat == "fail", f"{method} {name!r} {pairs!r}", WS_ALLOWED)
    if stat == "ok":
        assert member
        photo = Photo.get_by_id(answer.json()["result"]["image_id"])
        assert_display_text(photo.file_name)
        assert_stored_inside(world, photo.id)


@pytest.mark.parametrize("key", HOSTILE_KINDS)
@pytest.mark.parametrize("method", ["pwg.images.addSimple", "pwg.images.upload"])
def test_hostile_files_through_ws(
    world: World, ws_world: dict[str, Any], hostile: dict[str, Hostile], key: str, method: str
) -> None:
    item = hostile[key]
    if item.outcome == "imported" and method == "pwg.images.upload":
        pytest.skip("imported once already, through addSimple: a second time is a duplicate")
    part = "image" if method == "pwg.images.addSimple" else "file"
    pairs = [("category", str(ws_world["album"])), ("pwg_token", ws_world["token"])]
    was = before(world)
    answer = ws_world["client"].call(method, pairs, files=[(part, item.name, item.data)])
    parsed = answer.json()
    stat = envelope(answer, "json")
    check(world, was, answer.status_code, stat == "fail", f"{method} of {key}", WS_ALLOWED)
    if item.outcome == "imported":
        assert stat == "ok", parsed
        photo_id = parsed["result"]["image_id"]
        check_outcome(world, item, "imported", "", photo_id)
        served_safely(world, web_as(world.base, "wsuser", WS_PW), photo_id, item.mime)
    else:
        assert stat == "fail" and parsed["err"] == piwigo.INVALID_PARAM, parsed
        check_outcome(world, item, "failed", parsed["message"], None)


# -- the command line ------------------------------------------------------------------------------------

# Names that would be options or exiftool arguments if they reached a command line or exiftool's
# argument stream (PyExifTool joins arguments with newlines: security.md).
CLI_NAMES = [
    "a.jpg\n-if\nsystem('touch PWNED')||1",
    "b.jpg\n-execute\n-if\nsystem('touch PWNED')||1\n",
    "-if",
    "-ver.jpg",
    "--album=stolen.jpg",
    "-@",
    "\u202egpj.exe",
    "c\r.jpg",
    "[red]d[@click=quit].jpg",
    "x" * 240 + ".jpg",
]


def run_import(world: World, *args: str) -> subprocess.CompletedProcess:
    answer = run_cli(world.config, "import-image", "--workers", "1", *args, timeout=180)
    assert "Traceback" not in answer.stderr, answer.stderr
    return answer


def imported_names(out: str) -> tuple[int, int]:
    found = re.search(r"imported (\d+), duplicates \d+, attached RAWs/sidecars \d+, failed (\d+)", out)
    assert found, out
    return int(found.group(1)), int(found.group(2))


def test_cli_import_names_that_look_like_options_or_exiftool_arguments(world: World) -> None:
    folder = world.inputs / "cli-names"
    folder.mkdir()
    for name in CLI_NAMES:
        (folder / name).write_bytes(world.fresh_jpeg())
    was = before(world)
    photos_before = Photo.select().count()
    # The folder, and the files named one by one after "--" (so a name starting with a dash is a name).
    answer = run_import(world, str(folder))
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert imported_names(answer.stdout) == (len(CLI_NAMES), 0)
    again = run_import(world, "--", *(str(folder / name) for name in CLI_NAMES))
    assert again.returncode == 0 and "duplicates 10" in again.stdout, again.stdout + again.stderr
    check(world, was, 200, False, "import-image of hostile names")
    new = list(Photo.select().order_by(Photo.id.desc()).limit(len(CLI_NAMES)))
    assert Photo.select().count() == photos_before + len(CLI_NAMES)
    for photo in new:
        assert_display_text(photo.file_name)
        assert_stored_inside(world, photo.id)
    assert "[red]d[@click=quit].jpg" in {p.file_name for p in new}  # shown as it is, not as markup
    assert not (REPO / "PWNED").exists() and not (folder / "PWNED").exists()


@settings(FUZZ, max_examples=3)  # each example is a command run (a second or so)
@given(
    names=st.lists(
        st.text(st.characters(blacklist_characters="/\x00", codec="utf-8"), min_size=1, max_size=60).filter(
            lambda n: n not in (".", "..") and len(n.encode()) <= 250
        ),
        min_size=4,
        max_size=8,
        unique_by=lambda n: n,
    )
)
@pytest.mark.slow
def test_cli_import_generated_names(world: World, names: list[str]) -> None:
    folder = world.inputs / f"cli-gen-{secrets.token_hex(4)}"
    folder.mkdir()
    for name in names:
        (folder / name).write_bytes(world.fresh_jpeg())
    visible = [n for n in names if not n.startswith(".")]  # a folder's hidden files are skipped
    was = before(world)
    answer = run_import(world, "--", *(str(folder / n) for n in names))
    assert answer.returncode == 0, answer.stdout + answer.stderr
    assert imported_names(answer.stdout) == (len(names), 0)
    check(world, was, 200, False, f"import-image {names!r}")
    assert visible is not None
    for photo in Photo.select().order_by(Photo.id.desc()).limit(len(names)):
        assert_display_text(photo.file_name)
        assert_stored_inside(world, photo.id)


USER_NAMES = [
    ("-rf", "created"),
    ("--admin", "created"),
    ("a\nb", "refused"),
    ("\u202eevil", "refused"),
    ("x" * 65, "refused"),
    ("[bold]boss[/bold]", "created"),
    ("'; DROP TABLE user; --", "created"),
    ("   ", "refused"),
]


@pytest.mark.slow
def test_cli_create_user_with_hostile_names(world: World) -> None:
    for name, outcome in USER_NAMES:
        was = before(world)
        answer = run_cli(
            world.config, "create-user", "--password-stdin", "--", name, input="long enough pw\n"
        )
        assert "Traceback" not in answer.stderr, answer.stderr
        created = User.get_or_none(User.name == name)
        check(
            world,
            was,
            200 if answer.returncode == 0 else 400,
            answer.returncode != 0,
            f"create-user {name!r}",
        )
        if outcome == "created":
            assert answer.returncode == 0 and created is not None, (name, answer.stderr)
            assert answer.stdout.strip() == f"created user {name}", answer.stdout  # markup shown as text
            assert not created.is_admin
            services.delete_user(created.id, heir_id=world.admin.id)
        else:
            assert answer.returncode == 1 and created is None, (name, answer.stdout, answer.stderr)
            assert answer.stderr.startswith("photoflow: ") and answer.stderr.count("\n") == 1, answer.stderr
    # Without "--", a name that starts with a dash is an option: refused by the parser, nothing made.
    was = before(world)
    answer = run_cli(world.config, "create-user", "--password-stdin", "-rf", input="long enough pw\n")
    assert answer.returncode == 2 and "Traceback" not in answer.stderr
    check(world, was, 400, True, "create-user -rf")


def test_hostile_files_through_the_command_line(world: World, hostile: dict[str, Hostile]) -> None:
    folder = world.inputs / "cli-hostile"
    folder.mkdir()
    for key, item in hostile.items():
        if item.outcome != "imported":  # those went in through the web already: here they are duplicates
            (folder / f"{key}-{item.name}").write_bytes(item.data)
    was = before(world)
    answer = run_import(world, str(folder))
    assert answer.returncode == 1, answer.stdout + answer.stderr
    failed = dict(re.findall(r"^failed: (.+?): (.+)$", answer.stdout, re.MULTILINE))
    refused_keys = [key for key, item in hostile.items() if item.outcome != "imported"]
    assert imported_names(answer.stdout) == (0, len(refused_keys)), answer.stdout
    assert len(failed) == len(refused_keys), answer.stdout
    for key in refused_keys:
        reason = failed[f"{key}-{hostile[key].name}"]
        check_outcome(world, hostile[key], "failed", reason, None)
    check(world, was, 422, True, "import-image of hostile files")
