"""The access matrix over real HTTP: who sees which photo, through every kind of URL.

One world is built per module (real imports of real camera files, a JPEG + CR3 + XMP per photo, users,
albums, a share link, a real cheroot server) and every cell of URL kind × viewer × photo state is its
own test. What a viewer may not see must answer exactly like what does not exist: 404 with the same
body as the same kind of URL for a nonexistent id. Also proved here: cache headers (public derivatives
immutable, private ones and members' pages private), ETag/304 only after the access check, HEAD,
revocation at once (an album made private through its form, a photo moved into a private album, a
share link revoked), paths that try to escape static/ or the datastore, and sanitised file names in
Content-Disposition.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import secrets
import shutil
import struct
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from xml.etree import ElementTree as ET

import pytest
import requests

from photoflow import db as database
from photoflow import services
from photoflow.batch import import_files
from photoflow.importer import ImportOptions, add_keywords
from photoflow.library import Library, open_library
from photoflow.models import File, Photo
from photoflow.storage import DERIVATIVE_SIZES
from tests.conftest import Web, make_config, web_as

pytestmark = pytest.mark.xdist_group("access-world")  # one worker builds the module's world

CR3 = "raw/Canon-R6-pruned.CR3"
MISSING = 999999
# Browsers keep a public picture for good; shared caches revalidate it (s-maxage=0), through the access check.
IMMUTABLE = {"public", "max-age=31536000", "immutable", "s-maxage=0"}
REVALIDATE = {"public", "no-cache", "s-maxage=0"}
ATOM = "{http://www.w3.org/2005/Atom}"
MEMBER_PASSWORD = "member's long password"

# -- the world ---------------------------------------------------------------------------------------

# Album keys: "open" is public; "family" is private and shared by link; "secret" is private, not shared.
ALBUM_TITLES = {"open": "Open", "family": "Family", "secret": "Secret"}


@dataclass(frozen=True)
class State:
    """A photo state of the matrix: which album holds it, its level, and whether it was deleted."""

    album: str | None
    level: int = 0
    deleted: bool = False


STATES = {
    "public": State("open"),  # level 0 in a public album
    "private": State("family"),  # level 0 in the shared private album only
    "private_level4": State("family", level=4),  # in the shared private album, members only
    "other_private": State("secret"),  # in a private album nobody shared
    "level4": State("open", level=4),  # in a public album, but level 4
    "no_album": State(None),  # in no album at all
    "deleted": State("open", deleted=True),  # deleted through the app after its URLs were noted
}
# Photos outside the matrix, for the tests that change things (each has its own album, or none).
EXTRA = {"flip": "Flip", "move": "Moving", "form_share": "Shared by form", "symlinked": None}
# Every photo gets its own capture day, so a day in /api/timeline stands for exactly one photo.
SOURCES = {
    "public": "small-cameras/Canon_40D.jpg",
    "private": "small-cameras/Fujifilm_FinePix_E500.jpg",
    "private_level4": "small-cameras/Kodak_CX7530.jpg",
    "other_private": "small-cameras/Nikon_D70.jpg",
    "level4": "small-cameras/Olympus_C8080WZ.jpg",
    "no_album": "small-cameras/Panasonic_DMC-FZ30.jpg",
    "deleted": "small-cameras/Pentax_K10D.jpg",
    "flip": "nature/cyclamen_persicum.jpg",
    "move": "nature/el_torcal_rocks.jpg",
    "form_share": "nature/notocactus_minimus.jpg",
    "symlinked": "nature/orychophragmus_violaceus.jpg",
}


@dataclass
class Shot:
    """One imported photo as its URLs need it: id, hash, capture day and the files' hashes by role."""

    id: int
    sha: str
    day: str
    files: dict[str, str] = field(default_factory=dict)  # role -> sha256
    md5: dict[str, str] = field(default_factory=dict)  # role -> md5 (what pwg.images.exist asks by)


@dataclass
class World:
    """Everything the matrix reads: the server, the photos, the albums, the clients and the tokens."""

    base: str
    library: Library
    shots: dict[str, Shot]
    albums: dict[str, int]
    token: str  # the live share link of "family"
    revoked_token: str  # a link of "family" that was revoked
    clients: dict[str, Web]
    outside: Path  # a file outside the datastore
    ws: dict[str, Web]  # each viewer's Piwigo client (members logged in through pwg.session.login)
    noted: dict[int, dict[str, Any]]  # the admin's pwg.categories.getImages entries, before the delete


def _sidecar(path: Path, title: str) -> None:
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmp:Rating="3">'
        f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>'
        "</rdf:Description></rdf:RDF></x:xmpmeta>\n"
    )


def _raw_copy(samples: Path, path: Path, tag: str) -> None:
    """The sample CR3 with an ISO-BMFF `free` box appended: still a CR3, but its own bytes."""
    payload = f"photoflow-test {tag}".encode()
    path.write_bytes((samples / CR3).read_bytes() + struct.pack(">I", 8 + len(payload)) + b"free" + payload)


def _start_server(library: Library) -> tuple[str, Any, threading.Thread]:
    from cheroot import wsgi

    from photoflow.web import create_app

    httpd = wsgi.Server(("127.0.0.1", 0), create_app(library), numthreads=8, server_name="photoflow-test")
    httpd.prepare()
    thread = threading.Thread(target=httpd.serve, daemon=True)
    thread.start()
    host, port = httpd.bind_addr[:2]
    return f"http://{host}:{port}", httpd, thread


def tag_of(state: str) -> str:
    """The keyword only that matrix photo carries."""
    return f"tag-{state}"


def ws_call(client: Web, method: str, params: dict[str, str] | None = None) -> requests.Response:
    """One ws.php call as Piwigo clients make it: POST, `method` in the body, JSON asked in the query."""
    answer = client.http.post(
        client.base + "/ws.php?format=json",
        data={"method": method, **(params or {})},
        timeout=60,
        allow_redirects=False,
    )
    assert not 300 <= answer.status_code < 400, "ws.php never redirects"
    return answer


def ws_ok(client: Web, method: str, params: dict[str, str] | None = None) -> Any:
    """The result of a ws.php call that must succeed."""
    answer = ws_call(client, method, params)
    assert answer.status_code == 200, answer.text[:300]
    body = answer.json()
    assert body["stat"] == "ok", body
    return body["result"]


def ws_login(base: str, name: str, password: str) -> Web:
    """A Piwigo client logged in through pwg.session.login: it holds only the pwg_id cookie."""
    client = Web(base)
    assert ws_ok(client, "pwg.session.login", {"username": name, "password": password}) is True
    assert set(client.http.cookies.keys()) == {"pwg_id"}
    return client


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, samples: Path) -> Iterator[World]:
    """The module's own datastore, database, photos, users, albums, share links and server."""
    root = tmp_path_factory.mktemp("access")
    config = make_config(root)
    database.open_database(config.database)
    database.upgrade()
    library = open_library(config)
    admin = services.create_user("admin", "correct horse", admin=True)
    services.create_user("member", MEMBER_PASSWORD)

    # Files: every matrix photo is a JPEG + a CR3 + an XMP sidecar sharing a base name, in one import.
    src = root / "src"
    files: list[Path] = []
    dates: list[str] = []
    for n, (name, rel) in enumerate(SOURCES.items()):
        folder = src / name
        folder.mkdir(parents=True)
        jpeg = folder / f"{name}.jpg"
        shutil.copyfile(samples / "jpeg" / rel, jpeg)
        files.append(jpeg)
        dates += [f"-AllDates=2001:01:{n + 1:02d} 12:00:00", str(jpeg), "-execute"]
        if name in STATES:
            _raw_copy(samples, folder / f"{name}.CR3", name)
            _sidecar(folder / f"{name}.CR3.xmp", f"Photo {name}")
            files += [folder / f"{name}.CR3", folder / f"{name}.CR3.xmp"]
    subprocess.run(["exiftool", "-q", "-overwrite_original", *dates[:-1]], check=True)
    summary = import_files(library, files, ImportOptions(owner_id=admin.id), workers=1)
    assert not summary.failed, [(r.name, r.reason) for r in summary.failed]

    albums = {
        key: services.create_album(title, admin.id, public=key == "open").id
        for key, title in ALBUM_TITLES.items()
    }
    for title in {t for t in EXTRA.values() if t}:
        albums[title] = services.create_album(title, admin.id, public=title != "Shared by form").id
    shots: dict[str, Shot] = {}
    for name in SOURCES:
        photo = Photo.get(Photo.file_name == f"{name}.jpg")
        stored = list(File.select().where(File.photo == photo.id))
        roles = {f.role: f.sha256 for f in stored}
        md5 = {f.role: f.md5 for f in stored}
        shots[name] = Shot(photo.id, photo.sha256, str(photo.taken_at)[:10], roles, md5)
        state = STATES.get(name)
        album_key = state.album if state else EXTRA[name]
        if album_key:
            services.add_to_album(albums[album_key], [photo.id])
        if state and state.level:
            services.set_level(photo.id, state.level)
    assert {len(s.files) for n, s in shots.items() if n in STATES} == {3}
    # A keyword of its own per matrix photo (pwg.tags.getList), and the hidden photos as album covers
    # (pwg.categories.getList's representative_picture_id must not name them to those who may not see them).
    for name in STATES:
        add_keywords(shots[name].id, [tag_of(name)])
    for album_key, cover in (("open", "level4"), ("family", "private_level4"), ("secret", "other_private")):
        services.set_cover(albums[album_key], shots[cover].id)
    assert len({s.day for s in shots.values()}) == len(shots)

    base, httpd, thread = _start_server(library)
    # A link that worked a moment ago, then was revoked; then the live one.
    revoked = services.share_album(albums["family"])
    assert Web(base).get(f"/s/{revoked}/photo/{shots['private'].id}").status_code == 200
    services.unshare_album(albums["family"])
    token = services.share_album(albums["family"])
    admin_web = web_as(base, "admin", "correct horse")
    holder = Web(base)
    assert holder.get(f"/s/{token}").status_code == 200
    clients = {
        "anonymous": Web(base),
        "member": web_as(base, "member", MEMBER_PASSWORD),
        "admin": admin_web,
        "share": holder,
        "share_plain": holder,  # the same person, typing the plain URLs
        "revoked": Web(base),
    }
    for client in clients.values():
        client.get("/")  # a visitor's form-token cookie is set once, so pages compare byte for byte
    # ws.php has no share links: a holder (live or revoked) calls it with what their browser holds.
    ws = {
        "anonymous": Web(base),
        "member": ws_login(base, "member", MEMBER_PASSWORD),
        "admin": ws_login(base, "admin", "correct horse"),
        "share": holder,
        "share_plain": holder,
        "revoked": clients["revoked"],
    }
    everything = ws_ok(ws["admin"], "pwg.categories.getImages", {"per_page": "500"})
    noted = {entry["id"]: entry for entry in everything["images"]}
    assert {shot.id for shot in shots.values()} <= set(noted)

    # The photo to delete: its URLs are noted above (shots) and work, then it goes through the app.
    doomed = shots["deleted"].id
    assert clients["anonymous"].get(f"/photo/{doomed}").status_code == 200
    admin_web.get(f"/photo/{doomed}")
    answer = admin_web.post(f"/photo/{doomed}", {"action": "delete"})
    assert answer.status_code == 303, answer.text[:300]
    # The redirect a browser follows shows the "Photo deleted." flash, and so ends it: left pending, it
    # would show on whichever admin page a worker asks for first (under pytest-xdist, a 404 of the matrix).
    admin_web.get(answer.headers["Location"].removeprefix(base))
    assert not Photo.select().where(Photo.id == doomed).exists()

    outside = root / "outside.jpg"
    outside.write_bytes(b"outside the datastore")
    yield World(base, library, shots, albums, token, revoked, clients, outside, ws, noted)
    httpd.stop()  # type: ignore[attr-defined]
    thread.join(timeout=10)
    library.close()


# -- the rule, written down independently of the code ------------------------------------------------

VIEWERS = ("anonymous", "member", "admin", "share", "share_plain", "revoked")
SHARED = ("share", "revoked")  # the viewers whose URLs go under /s/<token>


def sees(viewer: str, state: str) -> bool:
    """May `viewer` see the photo in `state`? (Members everything; visitors level 0 in public albums;
    a share link adds the shared album's level-0 photos, through its own URLs only.)"""
    s = STATES[state]
    if s.deleted or viewer == "revoked":
        return False
    if viewer in ("member", "admin"):
        return True
    if s.level != 0:
        return False
    if viewer == "share":
        return s.album in ("open", "family")
    return s.album == "open"


def album_visible(viewer: str, album: str) -> bool:
    """May `viewer` see the album (its page, its zip)?"""
    if viewer == "revoked":
        return False
    if viewer in ("member", "admin"):
        return True
    return album == "open" or (viewer == "share" and album == "family")


def ws_sees(viewer: str, state: str) -> bool:
    """Does ws.php show `viewer` the photo in `state`? ws.php knows no share token: a link holder (live
    or revoked) is a visitor there, who sees level-0 photos of public albums; members see everything."""
    s = STATES[state]
    if s.deleted:
        return False
    if viewer in ("member", "admin"):
        return True
    return s.level == 0 and s.album == "open"


def ws_album_visible(viewer: str, album: str) -> bool:
    """Does ws.php (or a plain URL, without /s/<token>) show `viewer` the album?"""
    return viewer in ("member", "admin") or album == "open"


def in_share_home(state: str) -> bool:
    """Whether the shared album's page (/s/<token>) lists the photo."""
    s = STATES[state]
    return s.album == "family" and s.level == 0 and not s.deleted


# ws.php: what lists or reveals photos (pwg.categories.getImages over everything and over the photo's
# album, and every URL its entry carries; getInfo; getList's albums, counts and covers; images.exist by
# MD5 and by file name; tags.getList; images.rate, which answers for an image_id like the writes do).
WS_KINDS = (
    "ws/getImages",
    "ws/getImages_album",
    "ws/getImages_urls",
    "ws/getInfo",
    "ws/getList",
    "ws/exist",
    "ws/tags",
    "ws/rate",
)
KINDS = (
    "photo",
    *(f"d/{size}" for size in DERIVATIVE_SIZES),
    "file/original",
    "file/raw",
    "file/sidecar",
    "album",
    "album_zip",
    "selection_zip",
    "feed",
    "timeline",
    "days",
    "gallery",
    *WS_KINDS,
)
ALBUM_KINDS = ("album", "album_zip", "feed", "ws/getImages_album")


def _cells() -> list:
    cells = []
    for kind in KINDS:
        for viewer in VIEWERS:
            for state in STATES:
                if kind in ALBUM_KINDS and STATES[state].album is None:
                    continue  # a photo in no album has no album URL
                cells.append(pytest.param(kind, viewer, state, id=f"{kind}-{viewer}-{state}"))
    return cells


CELLS = _cells()


# -- helpers -----------------------------------------------------------------------------------------


def prefix(world: World, viewer: str, token: str | None = None) -> str:
    """The share prefix a viewer's URLs carry ("" for people using the plain URLs)."""
    if viewer == "share":
        return f"/s/{token or world.token}"
    if viewer == "revoked":
        return f"/s/{token or world.revoked_token}"
    return ""


def fetch(client: Web, path: str, method: str = "GET", **headers: str) -> requests.Response:
    """One request as that person's browser, without following redirects."""
    return client.http.request(method, client.base + path, headers=headers, allow_redirects=False, timeout=60)


def assert_like_missing(answer: requests.Response, missing: requests.Response, what: str) -> None:
    """What may not be seen answers exactly like what does not exist."""
    assert answer.status_code == 404, f"{what}: {answer.status_code} {answer.text[:200]}"
    assert missing.status_code == 404, f"reference for {what}: {missing.status_code}"
    assert answer.content == missing.content, f"{what}: the body differs from a nonexistent id's"
    for header in ("Content-Type", "Cache-Control"):
        assert answer.headers.get(header) == missing.headers.get(header), (what, header)


def not_shared_cacheable(answer: requests.Response) -> None:
    """A member's (or share holder's) page: no shared cache may keep it."""
    cache = answer.headers.get("Cache-Control", "")
    assert "private" in cache or "no-store" in cache, cache


def directives(answer: requests.Response) -> set[str]:
    """The Cache-Control directives of an answer."""
    return {d.strip().lower() for d in answer.headers.get("Cache-Control", "").split(",") if d.strip()}


def assert_cache(answer: requests.Response, public: bool, immutable: bool = True) -> None:
    """Public derivatives (their URL names their bytes): immutable for browsers, revalidated by shared
    caches; public downloads (their URL names a photo, whose picture may be replaced): kept but asked
    again each time; anything else: private."""
    found = directives(answer)
    if public:
        assert found >= (IMMUTABLE if immutable else REVALIDATE), found
    else:
        assert "private" in found and "public" not in found, found


def script_json(html: str, element_id: str) -> list:
    """The JSON a page carries in <script type="application/json" id=...>."""
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    assert found, f"no #{element_id} in the page"
    return json.loads(found.group(1))


def zip_names(answer: requests.Response) -> set[str]:
    """The member names of a zip answer."""
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        assert archive.testzip() is None
        return set(archive.namelist())


def feed_photo_ids(answer: requests.Response) -> set[int]:
    """The photo ids an Atom feed's entries point at."""
    root = ET.fromstring(answer.content)
    ids = set()
    for entry in root.iter(f"{ATOM}entry"):
        ids.add(int(entry.findtext(f"{ATOM}id", "").rsplit("/", 1)[-1]))
    return ids


def state_files(state: str) -> set[str]:
    """The names the matrix photo's files carry (its JPEG, its RAW and its sidecar)."""
    return {f"{state}.jpg", f"{state}.CR3", f"{state}.CR3.xmp"}


# -- the matrix --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "viewer", "state"), CELLS)
def test_access_matrix(world: World, kind: str, viewer: str, state: str) -> None:
    if kind.startswith("ws/"):
        ws_cell(world, kind, viewer, state)
        return
    client = world.clients[viewer]
    shot = world.shots[state]
    album_key = STATES[state].album
    album_id = world.albums[album_key] if album_key else 0
    visible = sees(viewer, state)
    pre = prefix(world, viewer)
    # The nonexistent reference: the same kind of URL for an id that never existed; for a revoked link,
    # the same URL under a token that was never issued.
    ref_pre = prefix(world, viewer, secrets.token_urlsafe(24)) if viewer == "revoked" else pre

    if kind == "photo":
        answer = fetch(client, f"{pre}/photo/{shot.id}")
        # Under a share link the photo page steps through the shared album, so only its photos have one.
        visible = visible and (viewer != "share" or in_share_home(state))
        if visible:
            assert answer.status_code == 200, answer.text[:300]
            assert f"/d/preview/{shot.id}-{shot.sha[:16]}.jpg" in answer.text
        else:
            assert_like_missing(answer, fetch(client, f"{ref_pre}/photo/{MISSING}"), kind)
        if viewer in ("member", "admin", "share"):
            not_shared_cacheable(answer)

    elif kind.startswith(("d/", "file/")):
        if kind.startswith("d/"):
            size = kind[2:]
            path = f"/d/{size}/{{}}-{shot.sha[:16]}.jpg"
            etag = f'"{shot.sha[:32]}-{size}"'
        else:
            role = kind[5:]
            path = f"/photo/{{}}/file/{role}"
            etag = f'"{shot.files[role][:32]}"'
        url, missing_url = pre + path.format(shot.id), ref_pre + path.format(MISSING)
        answer = fetch(client, url)
        head = fetch(client, url, "HEAD")
        conditional = fetch(client, url, **{"If-None-Match": etag})
        since = fetch(client, url, **{"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"})
        if visible:
            assert answer.status_code == 200, answer.text[:300]
            assert answer.headers["ETag"] == etag
            public = sees("anonymous", state)
            assert_cache(answer, public, immutable=kind.startswith("d/"))
            if kind.startswith("d/"):
                assert answer.headers["Content-Type"] == "image/jpeg"
                assert answer.content[:3] == b"\xff\xd8\xff"
            else:
                disposition = answer.headers["Content-Disposition"]
                name = {"original": f"{state}.jpg", "raw": f"{state}.CR3", "sidecar": f"{state}.CR3.xmp"}
                assert disposition.startswith("attachment;") and f'filename="{name[role]}"' in disposition
            assert head.status_code == 200 and head.content == b""
            assert head.headers["Content-Length"] == str(len(answer.content))
            assert head.headers["Content-Type"] == answer.headers["Content-Type"]
            assert conditional.status_code == 304 and conditional.content == b""
            assert since.status_code == 304
        else:
            missing = fetch(client, missing_url)
            assert_like_missing(answer, missing, kind)
            # The access check comes before any conditional answer: no 304 for what may not be seen.
            assert_like_missing(conditional, missing, kind + " If-None-Match")
            assert_like_missing(since, missing, kind + " If-Modified-Since")
            assert head.status_code == 404 and head.content == b""

    elif kind == "album":
        answer = fetch(client, f"{pre}/album/{album_id}")
        if album_visible(viewer, album_key):
            assert answer.status_code == 200, answer.text[:300]
            listed = {entry[0] for entry in script_json(answer.text, "album-photos")}
            assert (shot.id in listed) == visible
        else:
            assert_like_missing(answer, fetch(client, f"{ref_pre}/album/{MISSING}"), kind)
        if viewer in ("member", "admin", "share"):
            not_shared_cacheable(answer)

    elif kind == "album_zip":
        answer = fetch(client, f"{pre}/album/{album_id}/download?what=both")
        others = [s for s, st in STATES.items() if st.album == album_key and sees(viewer, s)]
        if album_visible(viewer, album_key) and others:
            assert answer.status_code == 200, answer.text[:300]
            assert answer.headers["Content-Type"] == "application/zip"
            not_shared_cacheable(answer)
            names = zip_names(answer)
            assert (state_files(state) <= names) == visible
            assert not (state_files(state) & names) or visible
        else:
            missing = fetch(client, f"{ref_pre}/album/{MISSING}/download?what=both")
            assert_like_missing(answer, missing, kind)

    elif kind == "selection_zip":
        answer = fetch(client, f"{pre}/download?ids={shot.id}&what=both")
        if visible:
            assert answer.status_code == 200, answer.text[:300]
            assert zip_names(answer) == state_files(state)
        else:
            missing = fetch(client, f"{ref_pre}/download?ids={MISSING}&what=both")
            assert_like_missing(answer, missing, kind)

    elif kind == "feed":
        # Feeds are for public albums, as a visitor sees them, whoever asks; a share link opens none.
        answer = fetch(client, f"{pre}/album/{album_id}/feed.atom")
        if album_key == "open" and viewer not in SHARED:
            assert answer.status_code == 200, answer.text[:300]
            assert (shot.id in feed_photo_ids(answer)) == sees("anonymous", state)
        else:
            assert_like_missing(answer, fetch(client, f"{ref_pre}/album/{MISSING}/feed.atom"), kind)

    elif kind in ("timeline", "days"):
        if kind == "timeline":
            url = f"{pre}/api/timeline"
        else:
            url = f"{pre}/api/days?newest={shot.day}&oldest={shot.day}"
        answer = fetch(client, url)
        if viewer == "revoked":
            assert_like_missing(answer, fetch(client, url.replace(pre, ref_pre)), kind)
            return
        assert answer.status_code == 200, answer.text[:300]
        assert "private" in answer.headers["Cache-Control"]
        if kind == "timeline":
            listed = {day for day, _count in answer.json()["days"]}
            assert (shot.day in listed) == visible
        else:
            listed = {entry[0] for entry in answer.json()["photos"]}
            assert (shot.id in listed) == visible

    elif kind == "gallery":
        if viewer in SHARED:
            # The share link's home is its album's page.
            answer = fetch(client, pre)
            if viewer == "revoked":
                assert_like_missing(answer, fetch(client, ref_pre), kind)
                return
            assert answer.status_code == 200, answer.text[:300]
            listed = {entry[0] for entry in script_json(answer.text, "album-photos")}
            assert (shot.id in listed) == in_share_home(state)
            not_shared_cacheable(answer)
            return
        answer = fetch(client, "/")
        assert answer.status_code == 200
        listed = {entry[0] for entry in script_json(answer.text, "first-screen")}
        assert (shot.id in listed) == visible
        if viewer in ("member", "admin"):
            not_shared_cacheable(answer)

    else:  # pragma: no cover
        raise AssertionError(kind)


def assert_ws_like_missing(answer: requests.Response, missing: requests.Response, what: str) -> None:
    """What ws.php may not show answers byte for byte like what does not exist."""
    assert answer.status_code == missing.status_code, (what, answer.status_code, missing.status_code)
    assert answer.content == missing.content, f"{what}: {answer.text[:200]} differs from {missing.text[:200]}"
    assert answer.headers.get("Content-Type") == missing.headers.get("Content-Type"), what
    assert answer.json()["stat"] == "fail", what


def _without(url: str, photo_id: int) -> str:
    """The same URL for a photo that does not exist."""
    return url.replace(f"/{photo_id}-", f"/{MISSING}-").replace(f"/photo/{photo_id}", f"/photo/{MISSING}")


def ws_cell(world: World, kind: str, viewer: str, state: str) -> None:
    """One ws.php cell: `viewer`'s Piwigo client asks about the photo in `state`."""
    client = world.ws[viewer]
    shot = world.shots[state]
    album_key = STATES[state].album
    visible = ws_sees(viewer, state)
    member = viewer in ("member", "admin")
    visible_albums = {world.albums[key] for key in ALBUM_TITLES if ws_album_visible(viewer, key)}

    if kind == "ws/getImages":
        result = ws_ok(client, "pwg.categories.getImages", {"per_page": "500"})
        entries = {entry["id"]: entry for entry in result["images"]}
        assert (shot.id in entries) == visible
        assert result["paging"]["total_count"] == len(entries) == result["paging"]["count"]
        hidden = {world.albums[key] for key in ALBUM_TITLES} - visible_albums
        for entry in entries.values():  # no entry names an album the viewer may not see
            assert not {c["id"] for c in entry["categories"]} & hidden, entry

    elif kind == "ws/getImages_album":
        album_id = world.albums[album_key]
        answer = ws_call(client, "pwg.categories.getImages", {"cat_id": str(album_id), "per_page": "500"})
        if ws_album_visible(viewer, album_key):
            assert answer.status_code == 200, answer.text[:300]
            listed = {entry["id"] for entry in answer.json()["result"]["images"]}
            assert (shot.id in listed) == visible
        else:
            missing = ws_call(client, "pwg.categories.getImages", {"cat_id": str(MISSING), "per_page": "500"})
            assert_ws_like_missing(answer, missing, kind)

    elif kind == "ws/getImages_urls":
        # Every URL of the photo's entry: the viewer's own entry when listed, else the one an admin was
        # given (before the delete, for the deleted photo). Photo URLs open iff the photo shows; album
        # URLs iff the album does. The viewer fetches them with the same cookies as its ws.php calls.
        result = ws_ok(client, "pwg.categories.getImages", {"per_page": "500"})
        own = {entry["id"]: entry for entry in result["images"]}
        entry = own.get(shot.id) or world.noted[shot.id]
        photo_urls = {entry["page_url"], entry["element_url"]}
        photo_urls |= {d["url"] for d in entry["derivatives"].values()}
        photo_urls |= {c["page_url"] for c in entry["categories"]}
        assert len({d["url"] for d in entry["derivatives"].values()}) == 4  # 100, 250, 500, preview
        for url in sorted(photo_urls):
            answer = client.http.get(url, allow_redirects=False, timeout=60)
            if visible:
                assert answer.status_code == 200, (url, answer.status_code)
            else:
                missing = client.http.get(_without(url, shot.id), allow_redirects=False, timeout=60)
                assert_like_missing(answer, missing, url)
        for category in entry["categories"]:
            key = next(k for k in ALBUM_TITLES if world.albums[k] == category["id"])
            answer = client.http.get(category["url"], allow_redirects=False, timeout=60)
            assert (answer.status_code == 200) == ws_album_visible(viewer, key), category["url"]

    elif kind == "ws/getInfo":
        answer = ws_call(client, "pwg.images.getInfo", {"image_id": str(shot.id)})
        if visible:
            assert answer.status_code == 200, answer.text[:300]
            info = answer.json()["result"]
            assert info["id"] == shot.id and info["md5sum"] == shot.md5["original"]
            assert info["level"] == (STATES[state].level if member else None)
        else:
            missing = ws_call(client, "pwg.images.getInfo", {"image_id": str(MISSING)})
            assert_ws_like_missing(answer, missing, kind)

    elif kind == "ws/getList":
        result = ws_ok(client, "pwg.categories.getList", {"cat_id": "0", "recursive": "true"})
        listed = {c["id"]: c for c in result["categories"]}
        assert visible_albums <= set(listed)
        assert not set(listed) & ({world.albums[key] for key in ALBUM_TITLES} - visible_albums)
        for category in listed.values():  # a cover shows only to who sees the photo
            if category["representative_picture_id"] == str(shot.id):
                assert visible, category
        for key in ("open", "family"):  # the counts are of what the viewer sees (nothing else moves there)
            if world.albums[key] in listed:
                expected = sum(1 for s, st in STATES.items() if st.album == key and ws_sees(viewer, s))
                assert listed[world.albums[key]]["nb_images"] == expected, key
        if album_key:
            album_id = world.albums[album_key]
            answer = ws_call(client, "pwg.categories.getList", {"cat_id": str(album_id)})
            if ws_album_visible(viewer, album_key):
                assert [c["id"] for c in answer.json()["result"]["categories"]] == [album_id]
            else:
                missing = ws_call(client, "pwg.categories.getList", {"cat_id": str(MISSING)})
                assert answer.status_code == 200 and answer.content == missing.content

    elif kind == "ws/exist":
        # Guests may not ask (401 whatever they ask); members get the id, or null as for unknown files.
        # Both the picture and its RAW are asked for: each names the photo.
        for param, keys, fakes in (
            ("md5sum_list", [shot.md5["original"], shot.md5["raw"]], ["0" * 32, "f" * 32]),
            ("filename_list", [f"{state}.jpg", f"{state}.CR3"], ["nothing.jpg", "nothing.CR3"]),
        ):
            answer = ws_call(client, "pwg.images.exist", {param: " ".join(keys)})
            if visible and member:
                assert answer.json()["result"] == {key: str(shot.id) for key in keys}
                continue
            missing = ws_call(client, "pwg.images.exist", {param: " ".join(fakes)})
            assert answer.status_code == missing.status_code, answer.text[:300]
            expected = missing.json()
            if member:
                expected["result"] = {
                    key: expected["result"][fake] for key, fake in zip(keys, fakes, strict=True)
                }
                assert expected["result"] == {key: None for key in keys}
            assert answer.json() == expected, param

    elif kind == "ws/tags":
        answer = ws_call(client, "pwg.tags.getList")
        if not member:
            assert answer.status_code == 401 and answer.json()["err"] == 401
            return
        tags = {t["name"]: t for t in answer.json()["result"]["tags"]}
        assert (tag_of(state) in tags) == visible
        if visible:
            assert tags[tag_of(state)]["counter"] == 1

    elif kind == "ws/rate":
        answer = ws_call(client, "pwg.images.rate", {"image_id": str(shot.id), "rate": "5"})
        if visible and member:  # guests may not call it: 401, whatever the id
            assert answer.status_code == 200 and answer.json()["stat"] == "ok", answer.text[:300]
        else:
            missing = ws_call(client, "pwg.images.rate", {"image_id": str(MISSING), "rate": "5"})
            assert_ws_like_missing(answer, missing, kind)

    else:  # pragma: no cover
        raise AssertionError(kind)


def test_the_matrix_covers_every_kind_viewer_and_state() -> None:
    # 16 web kinds + 8 ws.php kinds, × 6 viewers × 7 states, less the album URLs (3 web, 1 ws.php) of the
    # photo that is in no album.
    assert len(KINDS) == 16 + 8
    assert len(CELLS) == 24 * 6 * 7 - 4 * 6 == 984
    assert {c.values[0] for c in CELLS} == set(KINDS)
    assert {c.values[1] for c in CELLS} == set(VIEWERS)
    assert {c.values[2] for c in CELLS} == set(STATES)
    assert len({c.id for c in CELLS}) == len(CELLS)


def test_a_selection_zip_holds_only_what_the_viewer_may_see(world: World) -> None:
    ids = ",".join(str(world.shots[state].id) for state in STATES) + f",{MISSING}"
    for viewer in ("anonymous", "member", "share"):
        answer = fetch(world.clients[viewer], f"{prefix(world, viewer)}/download?ids={ids}&what=both")
        assert answer.status_code == 200, answer.text[:300]
        expected = set().union(*(state_files(s) for s in STATES if sees(viewer, s)))
        assert zip_names(answer) == expected, viewer


def test_members_pages_are_never_kept_by_shared_caches(world: World) -> None:
    for viewer in ("member", "admin"):
        for path in ("/", "/albums", "/upload", "/account", f"/album/{world.albums['family']}", "/nothing"):
            not_shared_cacheable(fetch(world.clients[viewer], path))
    for path in ("", f"/album/{world.albums['open']}", f"/photo/{world.shots['private'].id}"):
        not_shared_cacheable(fetch(world.clients["share"], prefix(world, "share") + path))


# -- changes take effect at once ---------------------------------------------------------------------


def _derivative(shot: Shot, size: str = "250") -> str:
    return f"/d/{size}/{shot.id}-{shot.sha[:16]}.jpg"


def _visitor_sees(world: World, visitor: Web, shot: Shot) -> bool:
    """Whether a visitor sees `shot` anywhere: page, derivative, timeline, day, gallery (all must agree)."""
    page = fetch(visitor, f"/photo/{shot.id}").status_code == 200
    picture = fetch(visitor, _derivative(shot)).status_code == 200
    timeline = shot.day in {d for d, _ in fetch(visitor, "/api/timeline").json()["days"]}
    day = fetch(visitor, f"/api/days?newest={shot.day}&oldest={shot.day}").json()["photos"]
    gallery = script_json(fetch(visitor, "/").text, "first-screen")
    seen = {page, picture, timeline, shot.id in {e[0] for e in day}, shot.id in {e[0] for e in gallery}}
    assert len(seen) == 1, f"the visitor's views disagree for photo {shot.id}"
    return seen.pop()


def test_flipping_an_album_to_private_through_its_form_hides_it_at_once(world: World) -> None:
    shot, album = world.shots["flip"], world.albums["Flip"]
    visitor = Web(world.base)
    visitor.get("/")
    assert _visitor_sees(world, visitor, shot)
    assert fetch(visitor, f"/album/{album}").status_code == 200
    assert shot.id in feed_photo_ids(fetch(visitor, f"/album/{album}/feed.atom"))
    seen = fetch(visitor, _derivative(shot))
    assert_cache(seen, public=True)
    etag = seen.headers["ETag"]
    assert fetch(visitor, _derivative(shot), **{"If-None-Match": etag}).status_code == 304

    member = web_as(world.base, "member", MEMBER_PASSWORD)
    page = member.get(f"/album/{album}")
    assert 'name="action" value="visibility"' in page.text
    answer = member.post(f"/album/{album}", {"action": "visibility", "public": "0", "csrf": member.csrf})
    assert answer.status_code == 303, answer.text[:300]

    assert not _visitor_sees(world, visitor, shot)
    missing = fetch(visitor, f"/d/250/{MISSING}-{shot.sha[:16]}.jpg")
    assert_like_missing(fetch(visitor, _derivative(shot), **{"If-None-Match": etag}), missing, "stale 304")
    assert_like_missing(fetch(visitor, f"/album/{album}"), fetch(visitor, f"/album/{MISSING}"), "album")
    assert_like_missing(
        fetch(visitor, f"/album/{album}/feed.atom"), fetch(visitor, f"/album/{MISSING}/feed.atom"), "feed"
    )
    # Members still see it, now as a private answer.
    answer = fetch(member, _derivative(shot))
    assert answer.status_code == 200
    assert_cache(answer, public=False)


def test_moving_a_photo_into_a_private_album_only_hides_it(world: World) -> None:
    shot = world.shots["move"]
    visitor = Web(world.base)
    visitor.get("/")
    assert _visitor_sees(world, visitor, shot)
    member = web_as(world.base, "member", MEMBER_PASSWORD)
    member.get(f"/photo/{shot.id}")
    answer = member.post(
        f"/photo/{shot.id}", {"albums_sent": "1", "album": str(world.albums["secret"]), "csrf": member.csrf}
    )
    assert answer.status_code == 303, answer.text[:300]
    assert not _visitor_sees(world, visitor, shot)
    assert fetch(member, f"/photo/{shot.id}").status_code == 200
    # And back into a public album with the service itself: visible again at once.
    services.set_photo_albums(shot.id, [world.albums["Moving"]])
    assert _visitor_sees(world, visitor, shot)
    services.set_photo_albums(shot.id, [world.albums["secret"]])
    assert not _visitor_sees(world, visitor, shot)


def test_a_share_link_made_and_revoked_through_the_form(world: World) -> None:
    shot, album = world.shots["form_share"], world.albums["Shared by form"]
    member = web_as(world.base, "member", MEMBER_PASSWORD)
    member.get(f"/album/{album}")
    assert member.post(f"/album/{album}", {"action": "share", "csrf": member.csrf}).status_code == 303
    page = member.get(f"/album/{album}").text
    link = re.search(r'value="(http://[^"]+/s/[^"]+)"', page)
    assert link, "the album page shows no share link"
    share = urlsplit(link.group(1)).path
    holder = Web(world.base)
    urls = [
        share,
        f"{share}/photo/{shot.id}",
        share + _derivative(shot),
        f"{share}/photo/{shot.id}/file/original",
        f"{share}/album/{album}/download",
        f"{share}/download?ids={shot.id}",
    ]
    for url in urls:
        assert fetch(holder, url).status_code == 200, url
    # The plain URLs stay closed to the holder.
    assert fetch(holder, f"/photo/{shot.id}").status_code == 404
    assert fetch(holder, _derivative(shot)).status_code == 404

    assert member.post(f"/album/{album}", {"action": "unshare", "csrf": member.csrf}).status_code == 303
    never = f"/s/{secrets.token_urlsafe(24)}"
    for url in urls:
        assert_like_missing(fetch(holder, url), fetch(holder, url.replace(share, never)), url)


# -- paths that try to escape ------------------------------------------------------------------------


def raw_request(base: str, target: str, method: str = "GET") -> tuple[int, list[tuple[str, str]], bytes]:
    """Send `target` exactly as written (requests and urllib3 would normalise dot segments)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, target)
        answer = conn.getresponse()
        return answer.status, answer.getheaders(), answer.read()
    finally:
        conn.close()


ESCAPES = [
    "/d/250/../../secret",
    "/d/250/%2e%2e/%2e%2e/secret",
    "/d/250/..%2f..%2fsecret",
    "/d/250/..\\..\\secret",
    "/d/..%2f..%2fphotoflow.db/1-0123456789abcdef.jpg",
    "/d/%2e%2e/1-0123456789abcdef.jpg",
    "/static/../photoflow/config.py",
    "/static/%2e%2e/photoflow/config.py",
    "/static/css/../../photoflow/config.py",
    "/static/vendor/../../photoflow/config.py",
    "/static/..%2fphotoflow%2fconfig.py",
    "/static/%2e%2e%2fphotoflow%2fconfig.py",
    "/static/..\\photoflow\\config.py",
    "/static/%5c..%5cphotoflow%5cconfig.py",
    "/static//etc/passwd",
    "/static/%2fetc%2fpasswd",
    "/photo/{id}/file/../../etc/passwd",
    "/photo/{id}/file/..%2f..%2fetc%2fpasswd",
    "/photo/{id}/file/%2e%2e",
    "/photo/{id}/file/..\\..\\etc\\passwd",
    "/s/{token}/photo/{id}/file/../../../etc/passwd",
    "/s/..%2f..%2f/photo/{id}",
    "/album/{album}/download/../../../photoflow.db",
]


@pytest.mark.parametrize("target", ESCAPES)
def test_paths_that_try_to_escape_are_404(world: World, target: str) -> None:
    target = target.format(id=world.shots["public"].id, token=world.token, album=world.albums["open"])
    status, _headers, body = raw_request(world.base, target)
    assert status == 404, (target, status, body[:200])
    for secret in (b"load_config", b"root:x:", b"SQLite format", b"def ", b"\xff\xd8\xff"):
        assert secret not in body, target


def test_a_symlink_inside_the_datastore_leading_out_is_404(world: World) -> None:
    shot = world.shots["symlinked"]
    member = world.clients["member"]
    store = world.library.store
    assert fetch(member, _derivative(shot)).status_code == 200
    assert fetch(member, f"/photo/{shot.id}/file/original").status_code == 200
    original = File.get((File.photo == shot.id) & (File.role == "original")).path
    for rel in (store.derivative_path(shot.sha, "250"), original):
        target = store.root / rel
        target.unlink()
        target.symlink_to(world.outside)
    answer = fetch(member, _derivative(shot))
    assert answer.status_code == 404 and b"outside the datastore" not in answer.content
    download = fetch(member, f"/photo/{shot.id}/file/original")
    assert download.status_code == 404 and b"outside the datastore" not in download.content


# -- file names in Content-Disposition ---------------------------------------------------------------


def _disposition(client: Web, photo_id: int) -> list[str]:
    """Every Content-Disposition header line of a download, as it came over the wire."""
    parts = urlsplit(client.base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    cookies = "; ".join(f"{c.name}={c.value}" for c in client.http.cookies)
    try:
        conn.request("HEAD", f"/photo/{photo_id}/file/original", headers={"Cookie": cookies})
        answer = conn.getresponse()
        answer.read()
        assert answer.status == 200
        assert not answer.msg.get_all("Set-Cookie")
        return answer.msg.get_all("Content-Disposition") or []
    finally:
        conn.close()


def _check_disposition(lines: list[str], expected_name: str) -> None:
    assert len(lines) == 1, lines
    line = lines[0]
    assert "\r" not in line and "\n" not in line and line.isprintable(), repr(line)
    assert line.startswith('attachment; filename="')
    fallback = re.fullmatch(
        r'attachment; filename="([^"\\]*)"; filename\*=UTF-8\'\'([A-Za-z0-9%._~-]*)', line
    )
    assert fallback, repr(line)
    assert all(32 <= ord(ch) < 127 for ch in fallback.group(1))
    assert unquote(fallback.group(2)) == expected_name


def test_client_file_names_are_sanitised_in_content_disposition(world: World, samples: Path) -> None:
    admin = world.clients["admin"]
    hostile = 'x";\r\nSet-Cookie: a=b.jpg'
    rtl = "holiday\u202egpj.exe\u200f.jpg"
    sources = [samples / "jpeg" / "nature" / name for name in ("polemonium_reptans.jpg", "silver_fir.jpg")]
    ids = []
    for source, name in zip(sources, (hostile, rtl), strict=True):
        answer = admin.upload(source, names=[name])
        assert answer.status_code == 200, answer.text[:300]
        (result,) = answer.json()["results"]
        assert result["status"] == "imported", result
        ids.append(result["photo"])
    # requests (like browsers) escapes " CR LF as %22 %0D %0A, and the multipart reader undoes that as
    # the HTML standard says: the name is the file's own, as display text (CR LF dropped).
    _check_disposition(_disposition(admin, ids[0]), 'x";Set-Cookie: a=b.jpg')
    # Bidirectional controls are not printable: they never reach a header.
    _check_disposition(_disposition(admin, ids[1]), "holidaygpj.exe.jpg")

    # A hand-made request delivers the raw CR LF and quote, through RFC 5987 filename*.
    boundary = "----photoflow" + secrets.token_hex(8)
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f"filename*=UTF-8''{quote(hostile, safe='')}\r\nContent-Type: image/jpeg\r\n\r\n"
        ).encode()
        + (samples / "jpeg" / "nature" / "tanners_ridge.jpg").read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = admin.http.post(
        world.base + "/upload",
        data=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-CSRF-Token": admin.csrf,
            "Origin": world.base,
            "Accept": "application/json",
        },
        timeout=60,
    )
    assert answer.status_code == 200, answer.text[:300]
    (result,) = answer.json()["results"]
    assert result["status"] == "imported" and result["name"] == 'x";Set-Cookie: a=b.jpg'
    _check_disposition(_disposition(admin, result["photo"]), 'x";Set-Cookie: a=b.jpg')
    # And in a zip, the same name is a member name without folders or control characters.
    names = zip_names(fetch(admin, f"/download?ids={result['photo']}"))
    assert names == {'x";Set-Cookie: a=b.jpg'}
