"""/ws.php, the Piwigo web service, over real HTTP as its clients speak it (../shared/docs/piwigo.md).

The PyPI client `piwigo2` runs for real; darktable, digiKam, Shotwell, Piwigo Remote Sync and the mobile
apps are replayed from their sources: the same methods, bodies, headers and parsing. Then the shapes of
every answer in JSON and XML, who may call what, and bad input, which always fails cleanly (`stat: fail`
with Piwigo's code, never a 500) and changes nothing in the database or the datastore.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit
from xml.etree import ElementTree as ET

import pytest
import requests

from photoflow import services, sessions
from photoflow.batch import collect_files, import_files
from photoflow.importer import ImportOptions
from photoflow.library import Library
from photoflow.models import Album, File, LoginFailure, Photo, PhotoAlbum, PhotoTag, Tag, User
from photoflow.web.upload import MAX_REQUEST_BYTES
from tests.conftest import Web, web_as

SMALL = "jpeg/small-cameras/Canon_40D.jpg"  # 8 KB
OTHER = "jpeg/small-cameras/Kodak_CX7530.jpg"
TAGGED = "jpeg/xmp/XMP.jpg"  # title "Test IPTC picture", keywords ExifTool, Test, XMP
BIG = "jpeg/cameras/Sony_DSLR-A200.jpg"  # 632 KB: two of digiKam's chunks
NATURE = (
    "jpeg/nature/notocactus_minimus.jpg",
    "jpeg/nature/polemonium_reptans.jpg",
    "jpeg/nature/orychophragmus_violaceus.jpg",
    "jpeg/nature/cyclamen_persicum.jpg",
    "jpeg/nature/el_torcal_rocks.jpg",
)
PASSWORD = "correct horse"
Params = Mapping[str, Any] | Sequence[tuple[str, Any]]


# -- a Piwigo client reduced to HTTP ---------------------------------------------------------------


class Client:
    """One Piwigo client: a cookie jar (where `pwg_id` lands), a User-Agent, and /ws.php calls.

    JSON is asked for in the query (`?format=json`), as darktable and piwigo2 do; `fmt=None` leaves the
    format out, so the answer is XML. POSTs carry `method` and the parameters in the body.
    """

    def __init__(self, base: str, agent: str = "photoflow-tests") -> None:
        self.base = base
        self.url = base + "/ws.php"
        self.http = requests.Session()
        self.http.headers["User-Agent"] = agent

    def send(
        self,
        method: str | None,
        params: Params | None = None,
        *,
        http: str = "POST",
        fmt: str | None = "json",
        files: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """One call; `method=None` leaves the method out."""
        query: list[tuple[str, Any]] = [("format", fmt)] if fmt is not None else []
        fields = list(params.items()) if isinstance(params, Mapping) else list(params or [])
        if method is not None:
            fields.insert(0, ("method", method))
        if http == "GET":
            query += fields
            fields = []
        answer = self.http.request(
            http, self.url, params=query, data=fields or None, files=files, headers=dict(headers or {}),
            timeout=120, allow_redirects=False,
        )  # fmt: skip
        assert not 300 <= answer.status_code < 400, (
            "/ws.php must never redirect (libcurl turns POST into GET)"
        )
        return answer

    def raw(self, body: bytes, *, query: str = "format=json", headers: Mapping[str, str] | None = None):
        """A urlencoded body built by hand, the way darktable and digiKam build theirs."""
        head = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        answer = self.http.post(
            self.url + ("?" + query if query else ""),
            data=body,
            headers=head,
            timeout=120,
            allow_redirects=False,
        )
        assert not 300 <= answer.status_code < 400
        return answer

    def ok(self, method: str, params: Params | None = None, **kwargs: Any) -> Any:
        """The result of a call that must succeed."""
        return ok_result(self.send(method, params, **kwargs))

    def fail(self, method: str | None, params: Params | None = None, **kwargs: Any) -> tuple[int, str]:
        """The error code and message of a call that must fail."""
        return failure(self.send(method, params, **kwargs))

    def xml(self, method: str, params: Params | None = None, **kwargs: Any) -> ET.Element:
        """The <rsp> of a call answered in XML (no format in the query), which must succeed."""
        answer = self.send(method, params, fmt=None, **kwargs)
        root = parse_xml(answer)
        assert root.get("stat") == "ok", answer.text[:500]
        return root

    def login(self, name: str = "admin", password: str = PASSWORD) -> None:
        assert self.ok("pwg.session.login", {"username": name, "password": password}) is True
        assert self.pwg_id, "no pwg_id cookie after login"

    @property
    def pwg_id(self) -> str | None:
        return self.http.cookies.get("pwg_id")

    def token(self) -> str:
        """The session's pwg_token, as every client reads it from getStatus."""
        token = self.ok("pwg.session.getStatus")["pwg_token"]
        assert isinstance(token, str)
        return token


def ok_result(answer: requests.Response) -> Any:
    assert answer.status_code == 200, f"HTTP {answer.status_code}: {answer.text[:500]}"
    body = answer.json()
    assert body.get("stat") == "ok", body
    return body["result"]


def failure(answer: requests.Response) -> tuple[int, str]:
    """A JSON failure as Piwigo sends it; codes 400-599 are also the HTTP status, every other one is 200."""
    assert answer.status_code != 500, answer.text[:500]
    body = answer.json()
    assert body.get("stat") == "fail", body
    code, message = body["err"], body["message"]
    assert isinstance(code, int) and isinstance(message, str) and message, body
    expected_status = code if 400 <= code < 600 else 200
    assert answer.status_code == expected_status, (answer.status_code, body)
    return code, message


def parse_xml(answer: requests.Response) -> ET.Element:
    """The answer parsed as Shotwell, digiKam and Remote Sync do: one XML document, <rsp> at its root."""
    assert answer.status_code == 200, f"HTTP {answer.status_code}: {answer.text[:500]}"
    assert answer.content.lstrip().startswith(b"<?xml"), answer.text[:200]
    root = ET.fromstring(answer.content)
    assert root.tag == "rsp", answer.text[:200]
    return root


def member(
    server: str, name: str = "admin", password: str = PASSWORD, agent: str = "photoflow-tests"
) -> Client:
    client = Client(server, agent)
    client.login(name, password)
    return client


# -- the world the tests need -------------------------------------------------------------------------


def import_photos(library: Library, owner: User, *paths: Path, album: Album | None = None) -> list[Photo]:
    """Import files as the command line does; returns the photos made, in order."""
    options = ImportOptions(owner_id=owner.id, album_id=album.id if album else None)
    summary = import_files(library, collect_files(list(paths)), options, workers=1)
    assert not summary.failed, summary.failed
    return [Photo.get_by_id(r.photo_id) for r in summary.results]


@dataclass
class World:
    """A public album with a public photo and a members-only (level 4) one; a private album with one."""

    public: Album
    private: Album
    shown: Photo
    hidden: Photo
    secret: Photo


@pytest.fixture
def world(library: Library, admin: User, samples: Path) -> World:
    public = services.create_album("Public", admin.id, public=True)
    private = services.create_album("Private", admin.id)
    shown, hidden = import_photos(library, admin, samples / NATURE[0], samples / NATURE[1], album=public)
    (secret,) = import_photos(library, admin, samples / NATURE[2], album=private)
    services.set_level(hidden.id, 4)
    return World(public, private, Photo.get_by_id(shown.id), Photo.get_by_id(hidden.id), secret)


@pytest.fixture
def small(library: Library, admin: User, samples: Path) -> tuple[Album, Photo]:
    """One private album holding one small photo: enough to see any change."""
    album = services.create_album("Holidays", admin.id)
    (photo,) = import_photos(library, admin, samples / SMALL, album=album)
    return album, photo


def snapshot(library: Library) -> dict[str, Any]:
    """Everything a refused call must leave as it was: rows, their visible values, and stored files."""
    return {
        "photos": sorted((p.id, p.title, p.description, p.level, p.owner_id) for p in Photo.select()),
        "albums": sorted((a.id, a.title, a.is_public, a.description) for a in Album.select()),
        "files": sorted((f.id, f.path) for f in File.select()),
        "tags": sorted(t.name for t in Tag.select()),
        "links": sorted((link.photo_id, link.album_id) for link in PhotoAlbum.select()),
        "photo_tags": PhotoTag.select().count(),
        "users": User.select().count(),
        "stored": sorted(library.store.stored_files()),
    }


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def copy_as(samples: Path, sample: str, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(samples / sample, target)
    return target


def album_ids(photo_id: int) -> set[int]:
    return {link.album_id for link in PhotoAlbum.select().where(PhotoAlbum.photo == photo_id)}


# -- the real PyPI client -------------------------------------------------------------------------------


def test_the_piwigo2_client_logs_in_lists_uploads_and_logs_out(
    server: str, library: Library, admin: User, samples: Path, tmp_path: Path
) -> None:
    from piwigo import Piwigo

    album = services.create_album("From piwigo2", admin.id)
    site = Piwigo(server)
    # piwigo2 asks reflection.getMethodDetails before every call and POSTs only where post_only says so.
    assert site.pwg.session.login(username="admin", password=PASSWORD) is True
    cookie = site._cookies.get("pwg_id")
    assert cookie and sessions.lookup(cookie).user.name == "admin"
    categories = site.pwg.categories.getList(cat_id=0, recursive=True)["categories"]
    assert album.id in [c["id"] for c in categories]
    jpeg = copy_as(samples, SMALL, tmp_path / "IMG_2001.jpg")
    result = site.pwg.images.addSimple(image=str(jpeg), category=album.id, name="Sent by piwigo2")
    photo = Photo.get_by_id(int(result["image_id"]))
    assert photo.title == "Sent by piwigo2" and photo.file_name == "IMG_2001.jpg"
    assert album_ids(photo.id) == {album.id}
    stored = File.get(File.photo == photo.id)
    assert library.store.resolve(stored.path).read_bytes() == jpeg.read_bytes()
    assert library.store.has_derivatives(photo.sha256)
    assert site.pwg.session.logout() is True
    assert site._cookies is None and sessions.lookup(cookie) is None


# -- envelope, version and status --------------------------------------------------------------------


def test_get_version_in_json_and_in_xml_for_remote_sync(server: str) -> None:
    guest = Client(server)
    version = guest.ok("pwg.getVersion")
    assert isinstance(version, str) and re.fullmatch(r"\d+\.\d+\.\d+", version)
    # XML is the default when the query names no format, even if the body asks for JSON.
    root = parse_xml(guest.raw(b"method=pwg.getVersion&format=json", query=""))
    assert root.get("stat") == "ok" and len(root) == 0
    # Piwigo Remote Sync's VersionParser (after removeFormatting): three dot-separated parts.
    major, minor, build = (root.text or "").strip().split(".")
    assert (int(major), int(minor)) >= (2, 9) and re.search(r"\d", build)
    assert (root.text or "").strip() == version
    # GET works as well as POST for read methods, and `method` may sit in the query of a POST.
    assert guest.ok("pwg.getVersion", http="GET") == version
    assert ok_result(guest.http.post(guest.url + "?format=json&method=pwg.getVersion", timeout=30)) == version


def digikam_version(text: str) -> int:
    """digiKam's parseResponseGetVersion: QRegExp(".?(\\d)\\.(\\d).*").exactMatch(readElementText()),
    major * 10 + minor; QRegExp's "." matches a newline too. -1 when it does not match."""
    found = re.fullmatch(r".?(\d)\.(\d).*", text, re.DOTALL)
    return int(found[1]) * 10 + int(found[2]) if found else -1


def test_digikam_reads_a_version_of_at_least_2_4(server: str) -> None:
    root = parse_xml(Client(server).raw(b"method=pwg.getVersion", query=""))
    assert digikam_version(root.text or "") >= 24, repr(root.text)


STATUS_FIELDS = {
    "username", "status", "pwg_token", "version", "charset", "language", "theme", "current_datetime",
    "available_sizes",
}  # fmt: skip
ADMIN_FIELDS = {"upload_file_types", "upload_form_chunk_size"}


def test_get_status_for_a_guest_a_member_and_an_admin(server: str, admin: User) -> None:
    services.create_user("bob", "bob's password")
    version = Client(server).ok("pwg.getVersion")
    guest = Client(server).ok("pwg.session.getStatus")
    assert set(guest) >= STATUS_FIELDS and not ADMIN_FIELDS & set(guest)
    assert guest["username"] == "guest" and guest["status"] == "guest"
    assert isinstance(guest["pwg_token"], str)
    assert guest["version"] == version and guest["charset"].lower() == "utf-8"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", guest["current_datetime"])
    assert guest["available_sizes"] and all(isinstance(s, str) for s in guest["available_sizes"])
    bob = member(server, "bob", "bob's password").ok("pwg.session.getStatus")
    assert bob["username"] == "bob" and bob["status"] == "normal" and not ADMIN_FIELDS & set(bob)
    assert isinstance(bob["pwg_token"], str) and bob["pwg_token"]
    boss = member(server)
    status = boss.ok("pwg.session.getStatus")
    assert set(status) >= STATUS_FIELDS | ADMIN_FIELDS
    assert status["username"] == "admin" and status["status"] in ("webmaster", "admin")
    assert isinstance(status["upload_file_types"], str) and "jpg" in status["upload_file_types"]
    assert int(status["upload_form_chunk_size"]) > 0
    assert status["pwg_token"] != bob["pwg_token"]
    # The same in XML, as Shotwell and Remote Sync read it.
    root = boss.xml("pwg.session.getStatus")
    assert root.findtext("username") == "admin" and root.findtext("pwg_token") == status["pwg_token"]
    assert [item.text for item in root.find("available_sizes")] == status["available_sizes"]


def test_logout_ends_the_session_on_the_server(server: str, admin: User) -> None:
    client = member(server)
    cookie = client.pwg_id
    assert client.ok("pwg.session.logout") is True
    assert sessions.lookup(cookie) is None
    replay = Client(server)
    replay.http.cookies.set("pwg_id", cookie, domain="127.0.0.1")
    assert replay.ok("pwg.session.getStatus")["username"] == "guest"


def test_login_cookie_is_new_http_only_and_usable_the_way_shotwell_takes_it(server: str, admin: User) -> None:
    client = Client(server)
    client.http.cookies.set("pwg_id", "planted-by-an-attacker", domain="127.0.0.1")
    answer = client.send("pwg.session.login", {"username": "admin", "password": PASSWORD}, fmt=None)
    assert parse_xml(answer).get("stat") == "ok"
    cookies = answer.raw.headers.getlist("Set-Cookie")
    ours = [c for c in cookies if c.startswith("pwg_id=")]
    assert len(ours) == 1, cookies
    attributes = [part.strip().lower() for part in ours[0].split(";")]
    assert "httponly" in attributes and "path=/" in attributes and "secure" not in attributes
    assert client.pwg_id not in ("", "planted-by-an-attacker")
    # Shotwell: headers.get("Set-Cookie") (all of them, joined), .rstr("pwg_id="), .split(";")[0],
    # sent back as the whole Cookie header of every later request.
    joined = ", ".join(cookies)
    shotwell_cookie = joined[joined.rfind("pwg_id=") :].split(";")[0]
    shotwell = Client(server)
    answer = shotwell.http.post(
        shotwell.url,
        data={"method": "pwg.session.getStatus"},
        headers={"Cookie": shotwell_cookie},
        timeout=30,
    )
    assert parse_xml(answer).findtext("username") == "admin"


# -- albums ------------------------------------------------------------------------------------------------

CATEGORY_FIELDS = {
    "id", "name", "comment", "permalink", "status", "uppercats", "global_rank", "id_uppercat", "nb_images",
    "total_nb_images", "nb_categories", "representative_picture_id", "date_last", "max_date_last", "url",
    "tn_url",
}  # fmt: skip
CATEGORY_ATTRIBUTES = (
    "id", "url", "nb_images", "total_nb_images", "nb_categories", "date_last", "max_date_last", "status",
)  # fmt: skip


def test_categories_get_list_in_json_has_every_field_darktable_reads(server: str, world: World) -> None:
    client = member(server)
    listed = client.ok("pwg.categories.getList", {"cat_id": 0, "recursive": "true"})["categories"]
    by_id = {c["id"]: c for c in listed}
    assert set(by_id) == {world.public.id, world.private.id}
    for album, count in ((world.public, 2), (world.private, 1)):
        item = by_id[album.id]
        assert set(item) >= CATEGORY_FIELDS, CATEGORY_FIELDS - set(item)
        assert isinstance(item["id"], int) and item["name"] == album.title
        assert item["id_uppercat"] is None  # present, and null at the top level
        assert item["uppercats"] == str(album.id)
        assert item["nb_images"] == count and isinstance(item["nb_images"], int)
        assert int(item["total_nb_images"]) == count and int(item["nb_categories"]) == 0
        assert item["status"] == ("public" if album.is_public else "private")
        assert isinstance(item["url"], str) and item["date_last"]
    # Non-recursive with cat_id=N: its children and the album itself (Piwigo's quirk).
    alone = client.ok("pwg.categories.getList", {"cat_id": world.public.id}, http="GET")["categories"]
    assert [c["id"] for c in alone] == [world.public.id]
    # Shotwell asks with no parameter at all: the top level.
    top = client.ok("pwg.categories.getList")["categories"]
    assert {c["id"] for c in top} == {world.public.id, world.private.id}


def test_categories_get_list_in_xml_as_shotwell_and_digikam_parse_it(server: str, world: World) -> None:
    root = member(server).xml("pwg.categories.getList", {"recursive": "true"})
    categories = root.find("categories")
    assert categories is not None and len(root) == 1
    seen = {}
    for node in categories:
        # Shotwell takes every child of <categories> as a category with a <name> child.
        assert node.tag == "category" and node.find("name") is not None
        assert set(CATEGORY_ATTRIBUTES) <= set(node.attrib), node.attrib
        assert not {child.tag for child in node} & set(CATEGORY_ATTRIBUTES), "attributes repeated as elements"
        assert node.find("id_uppercat") is None  # null members are left out of XML
        assert node.findtext("uppercats") == node.get("id")  # digiKam splits it on ","
        seen[int(node.get("id"))] = (node.findtext("name"), int(node.get("nb_images")), node.get("status"))
    assert seen == {world.public.id: ("Public", 2, "public"), world.private.id: ("Private", 1, "private")}


def test_categories_add_answers_its_id_and_the_album_is_on_the_web_at_once(
    server: str, admin: User, library: Library
) -> None:
    client = member(server)
    added = client.ok("pwg.categories.add", {"name": "Seaside 2024", "status": "public"})
    assert added["info"] == "Album added" and isinstance(added["id"], int)
    album = Album.get_by_id(added["id"])
    assert album.title == "Seaside 2024" and album.is_public
    root = client.xml("pwg.categories.add", {"name": "Mountains", "status": "private"})
    assert root.findtext("info") == "Album added"
    mountains = Album.get_by_id(int(root.findtext("id")))
    assert mountains.title == "Mountains" and not mountains.is_public
    # At once on the web: the member sees both, a visitor only the public one.
    page = web_as(server, "admin", PASSWORD).get("/albums")
    assert page.status_code == 200 and "Seaside 2024" in page.text and "Mountains" in page.text
    visitor = Web(server).get("/albums").text
    assert "Seaside 2024" in visitor and "Mountains" not in visitor
    listed = client.ok("pwg.categories.getList", {"recursive": "true"})["categories"]
    assert {c["name"] for c in listed} == {"Seaside 2024", "Mountains"}


def test_get_images_pages_count_what_is_on_that_page(
    server: str, library: Library, admin: User, samples: Path
) -> None:
    album = services.create_album("Five", admin.id, public=True)
    photos = import_photos(library, admin, *(samples / name for name in NATURE), album=album)
    client = member(server)
    seen: list[int] = []
    for page, expected in ((0, 2), (1, 2), (2, 1), (3, 0)):
        result = client.ok(
            "pwg.categories.getImages", {"cat_id": album.id, "per_page": 2, "page": page}, http="GET"
        )
        paging = result["paging"]
        assert paging["count"] == expected and isinstance(paging["count"], int), paging
        assert (
            int(paging["page"]) == page and int(paging["per_page"]) == 2 and int(paging["total_count"]) == 5
        )
        assert len(result["images"]) == expected
        seen += [image["id"] for image in result["images"]]
    assert sorted(seen) == sorted(p.id for p in photos)
    image = client.ok("pwg.categories.getImages", {"cat_id": album.id, "per_page": 1})["images"][0]
    for key in ("id", "width", "height", "file", "name", "comment", "date_creation", "date_available",
                "page_url", "element_url", "derivatives", "categories"):  # fmt: skip
        assert key in image, key
    photo = Photo.get_by_id(image["id"])
    assert image["file"] == photo.file_name and (image["width"], image["height"]) == (
        photo.width,
        photo.height,
    )
    thumb = image["derivatives"]["thumb"]
    assert {"url", "width", "height"} <= set(thumb)
    assert image["categories"][0]["id"] == album.id and {"url", "page_url"} <= set(image["categories"][0])
    # The thumbnail's address works (the album is public: no cookie needed).
    picture = requests.get(urljoin(server + "/ws.php", thumb["url"]), timeout=30)
    assert picture.status_code == 200 and picture.content[:3] == b"\xff\xd8\xff"
    # per_page is capped at 500, like Piwigo's maxValue; an unknown album is 404.
    capped = client.ok("pwg.categories.getImages", {"cat_id": album.id, "per_page": 1000})["paging"]
    assert int(capped["per_page"]) == 500 and capped["count"] == 5
    assert client.fail("pwg.categories.getImages", {"cat_id": 999999})[0] == 404


# -- uploads ---------------------------------------------------------------------------------------------


def test_images_exist_by_md5_and_by_file_name(
    server: str, library: Library, admin: User, samples: Path, tmp_path: Path
) -> None:
    album = services.create_album("Exist", admin.id)
    client = member(server)
    upload = copy_as(samples, SMALL, tmp_path / "IMG_3001.jpg")
    with upload.open("rb") as fh:
        sent = client.ok(
            "pwg.images.addSimple", {"category": album.id}, files={"image": ("IMG_3001.jpg", fh)}
        )
    sent_id = int(sent["image_id"])
    (imported,) = import_photos(library, admin, samples / OTHER)  # by the command line, not ws.php
    a, b = md5(upload.read_bytes()), md5((samples / OTHER).read_bytes())
    unknown1, unknown2 = md5(b"nothing"), md5(b"nothing either")
    found = client.ok("pwg.images.exist", {"md5sum_list": f"{a} {b},{unknown1};{unknown2}|"})
    assert found == {a: str(sent_id), b: str(imported.id), unknown1: None, unknown2: None}
    by_name = client.ok("pwg.images.exist", {"filename_list": "IMG_3001.jpg|Kodak_CX7530.jpg;nothing.jpg"})
    assert by_name == {
        "IMG_3001.jpg": str(sent_id),
        "Kodak_CX7530.jpg": str(imported.id),
        "nothing.jpg": None,
    }


def test_digikam_upload_replayed_chunks_then_add(
    server: str, library: Library, admin: User, samples: Path
) -> None:
    """digiKam's piwigotalker.cpp: XML, urlencoded POSTs with a random Authorization header, chunks of
    500 KB base64 from position 1, then pwg.images.add."""
    album = services.create_album("From digiKam", admin.id)
    other = services.create_album("Second album", admin.id)
    client = Client(server, "Mozilla/5.0")
    headers = {"Authorization": base64.b64encode(b"{9f3c0b7e-1b1a-4c1e-9d8a-5f0c2e7d1a11}").decode()}

    def post(body: str) -> ET.Element:
        root = parse_xml(client.raw(body.encode(), query="", headers=headers))
        assert root.get("stat") == "ok", ET.tostring(root)[:300]
        return root

    post("password=correct%20horse&method=pwg.session.login&username=admin")
    post("method=pwg.getVersion")  # its reading of the text: test_digikam_reads_a_version_of_at_least_2_4
    listed = post("method=pwg.categories.getList&recursive=true")
    assert album.id in [int(c.get("id")) for c in listed.iter("category")]
    data = (samples / BIG).read_bytes()
    checksum = md5(data)
    # digiKam now asks pwg.images.exist with a misspelt list: see test_digikam_exist_with_its_misspelt_list_*.
    chunk_size = 500 * 1024
    chunks = len(data) // chunk_size + 1
    for position in range(1, chunks + 1):
        piece = base64.b64encode(data[(position - 1) * chunk_size : position * chunk_size]).decode()
        body = (
            f"method=pwg.images.addChunk&original_sum={checksum}&position={position}&type=file"
            f"&data={quote(piece, safe='')}"
        )
        if position == 1:
            assert len(body) > 600_000  # far above Bottle's 100 KB MEMFILE_MAX
        post(body)
    added = post(
        f"method=pwg.images.add&original_sum={checksum}&original_filename=DSC09999.JPG&name=Sony%20A200"
        f"&categories={album.id}&file_sum={checksum}&date_creation=2024-05-01%2012%3A00%3A00"
    )
    photo = Photo.get_by_id(int(added.findtext("image_id")))
    assert photo.title == "Sony A200" and album_ids(photo.id) == {album.id}
    stored = File.get((File.photo == photo.id) & (File.role == "original"))
    assert md5(library.store.resolve(stored.path).read_bytes()) == checksum
    assert library.store.has_derivatives(photo.sha256)
    assert not library.store.leftovers(stale_only=False)
    # The next export of the same file: getInfo's <category id=".."> tell digiKam where it already is;
    # then setInfo adds the new album (multiple_value_mode defaults to append).
    info = post(f"method=pwg.images.getInfo&image_id={photo.id}")
    assert album.id in [int(c.get("id")) for c in info.iter("category") if c.get("id")]
    post(f"method=pwg.images.setInfo&image_id={photo.id}&categories={quote(f'{album.id};{other.id}')}")
    assert album_ids(photo.id) == {album.id, other.id}


def test_digikam_exist_with_its_misspelt_list_answers_ok(server: str, admin: User) -> None:
    client = member(server)
    body = f"method=pwg.images.exist&md5sud->list={md5(b'x')}".encode()
    assert parse_xml(client.raw(body, query="")).get("stat") == "ok"


def test_images_upload_in_chunks_as_the_mobile_apps_do(
    server: str, library: Library, admin: User, samples: Path
) -> None:
    album = services.create_album("Phone", admin.id)
    client = member(server, agent="Piwigo/1.0 CFNetwork/1410.0.3 Darwin/22.6.0")
    token = client.token()
    data = (samples / NATURE[3]).read_bytes()
    size = len(data) // 3 + 1
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    assert len(pieces) == 3
    last: Any = None
    for number, piece in enumerate(pieces):
        fields = {
            "chunk": number, "chunks": len(pieces), "name": "IMG_0042.JPG", "category": album.id, "level": 0,
            "pwg_token": token,
        }  # fmt: skip
        last = client.ok(
            "pwg.images.upload", fields, files={"file": ("blob", piece, "application/octet-stream")}
        )
        if number < len(pieces) - 1:
            assert last is None  # intermediate chunks answer null
    assert {"image_id", "src", "square_src", "name", "category"} <= set(last)
    photo = Photo.get_by_id(int(last["image_id"]))
    assert isinstance(last["src"], str) and isinstance(last["square_src"], str) and last["name"]
    category = last["category"]
    assert (
        int(category["id"]) == album.id and int(category["nb_photos"]) == 1 and category["label"] == "Phone"
    )
    stored = File.get((File.photo == photo.id) & (File.role == "original"))
    assert library.store.resolve(stored.path).read_bytes() == data
    assert album_ids(photo.id) == {album.id} and photo.level == 0
    assert not library.store.leftovers(stale_only=False)
    # The apps end a batch with uploadCompleted; Photoflow accepts it.
    client.ok("pwg.images.uploadCompleted", {"pwg_token": token, "category_id": album.id})


def test_darktable_export_replayed_as_it_builds_its_requests(
    server: str, library: Library, admin: User, samples: Path
) -> None:
    """darktable: every call a POST to ws.php?format=json, values not URL-encoded (raw spaces, raw UTF-8),
    uploads as multipart with two parts named `image` (a path, then the file), 4.2's original name."""
    dt = Client(server, "darktable")
    ok_result(dt.raw(b"method=pwg.session.login&username=admin&password=correct%20horse"))
    token = ok_result(dt.raw(b"method=pwg.session.getStatus"))["pwg_token"]
    ok_result(dt.raw(b"method=pwg.categories.getList&cat_id=0&recursive=true"))
    added = ok_result(dt.raw("method=pwg.categories.add&name=Été à Zürich 2024&status=private".encode()))
    album = Album.get_by_id(added["id"])
    assert album.title == "Été à Zürich 2024" and not album.is_public
    empty = ok_result(
        dt.raw(f"method=pwg.categories.getImages&cat_id={album.id}&per_page=100&page=0".encode())
    )
    assert empty["paging"]["count"] == 0
    parts = [
        ("method", (None, "pwg.images.addSimple")),
        ("image", (None, "/tmp/darktable.ABC123/DSC_0001.NEF")),
        ("category", (None, str(album.id))),
        ("level", (None, "0")),
        ("name", (None, "DSC_0001")),
        ("author", (None, "Ann")),
        ("comment", (None, "Exported from darktable")),
        ("tags", (None, "sea,sun")),
        ("image", ("DSC_0001.NEF", (samples / SMALL).read_bytes(), "application/octet-stream")),
    ]
    sent = ok_result(dt.http.post(dt.url + "?format=json", files=parts, timeout=120))
    photo = Photo.get_by_id(int(sent["image_id"]))
    assert isinstance(sent["url"], str)
    assert photo.title == "DSC_0001" and photo.description == "Exported from darktable"
    assert set(photo.keywords) == {"sea", "sun"} and album_ids(photo.id) == {album.id}
    assert File.get(File.photo == photo.id).mime == "image/jpeg"  # the content decides, not ".NEF"
    # The next export finds it by file name on page 0, then an empty page ends the loop.
    first = ok_result(
        dt.raw(f"method=pwg.categories.getImages&cat_id={album.id}&per_page=100&page=0".encode())
    )
    assert first["paging"]["count"] == 1 and first["images"][0]["file"] == "DSC_0001.NEF"
    assert first["images"][0]["id"] == photo.id
    second = ok_result(
        dt.raw(f"method=pwg.categories.getImages&cat_id={album.id}&per_page=100&page=1".encode())
    )
    assert second["paging"]["count"] == 0
    ok_result(
        dt.raw(f"method=pwg.images.setInfo&image_id={photo.id}&single_value_mode=replace&name=Sea".encode())
    )
    assert Photo.get_by_id(photo.id).title == "Sea"
    # 5.x ends with uploadCompleted and category_id=0 for a new album.
    ok_result(dt.raw(f"method=pwg.images.uploadCompleted&pwg_token={token}&category_id=0".encode()))


# -- photo information and edits ---------------------------------------------------------------------


def test_get_info_and_set_info_single_and_multiple_value_modes(
    server: str, library: Library, admin: User, samples: Path
) -> None:
    first = services.create_album("First", admin.id)
    second = services.create_album("Second", admin.id)
    (photo,) = import_photos(library, admin, samples / TAGGED, album=first)
    client = member(server)
    info = client.ok("pwg.images.getInfo", {"image_id": photo.id}, http="GET")
    assert info["id"] == photo.id and info["file"] == "XMP.jpg" and info["name"] == "Test IPTC picture"
    assert (info["width"], info["height"]) == (photo.width, photo.height)
    assert [c["id"] for c in info["categories"]] == [first.id]
    assert {t["name"] for t in info["tags"]} == {"ExifTool", "Test", "XMP"}
    assert isinstance(info["element_url"], str) and isinstance(info["derivatives"], dict)

    def set_info(**fields: Any) -> None:
        client.ok("pwg.images.setInfo", {"image_id": photo.id, **fields})

    described = photo.description
    assert described  # the file's own XMP description
    set_info(name="Not taken", comment="Not taken either")  # fill_if_empty is the default
    current = Photo.get_by_id(photo.id)
    assert current.title == "Test IPTC picture" and current.description == described
    (bare,) = import_photos(library, admin, samples / SMALL)
    assert bare.title == "" and bare.description == ""
    client.ok("pwg.images.setInfo", {"image_id": bare.id, "name": "Filled", "comment": "Filled too"})
    bare = Photo.get_by_id(bare.id)
    assert bare.title == "Filled" and bare.description == "Filled too"
    set_info(name="Taken", comment="Replaced", single_value_mode="replace")
    current = Photo.get_by_id(photo.id)
    assert current.title == "Taken" and current.description == "Replaced"
    set_info(categories=str(second.id), multiple_value_mode="append")
    assert album_ids(photo.id) == {first.id, second.id}
    set_info(categories=str(second.id), multiple_value_mode="replace")
    assert album_ids(photo.id) == {second.id}
    set_info(author="Ann")  # accepted
    assert client.ok("pwg.images.getInfo", {"image_id": photo.id})["name"] == "Taken"
    assert client.fail("pwg.images.setInfo", {"image_id": 999999, "name": "x"})[0] == 404


def test_images_delete_and_categories_delete_need_the_session_token(
    server: str, library: Library, world: World
) -> None:
    client = member(server)
    old = Client(server)
    old.login()
    stale = old.token()
    old.ok("pwg.session.logout")
    token = client.token()
    target = world.shown
    paths = [f.path for f in File.select().where(File.photo == target.id)]
    before = snapshot(library)
    assert client.fail("pwg.images.delete", {"image_id": target.id})[0] in (1002, 403)
    assert client.fail("pwg.images.delete", {"image_id": target.id, "pwg_token": "0" * 32})[0] == 403
    assert client.fail("pwg.images.delete", {"image_id": target.id, "pwg_token": stale})[0] == 403
    assert (
        client.fail("pwg.categories.delete", {"category_id": world.public.id, "pwg_token": stale})[0] == 403
    )
    assert snapshot(library) == before
    client.ok("pwg.images.delete", {"image_id": target.id, "pwg_token": token})
    assert Photo.get_or_none(Photo.id == target.id) is None
    assert not File.select().where(File.photo == target.id).exists()
    assert not any(library.store.exists(path) for path in paths)
    assert not library.store.has_derivatives(target.sha256)
    # Deleting an album keeps its photos.
    client.ok("pwg.categories.delete", {"category_id": world.public.id, "pwg_token": token})
    assert Album.get_or_none(Album.id == world.public.id) is None
    assert Photo.get_or_none(Photo.id == world.hidden.id) is not None
    assert client.fail("pwg.images.getInfo", {"image_id": target.id})[0] == 404


def test_tags_rate_plugins_and_upload_completed(
    server: str, library: Library, admin: User, samples: Path
) -> None:
    album = services.create_album("Tags", admin.id)
    (photo,) = import_photos(library, admin, samples / TAGGED, album=album)
    client = member(server)
    tags = client.ok("pwg.tags.getList")["tags"]
    assert {"ExifTool", "Test", "XMP"} <= {t["name"] for t in tags}
    assert all({"id", "name"} <= set(t) for t in tags)
    added = client.ok("pwg.tags.add", {"name": "Holiday"})
    assert int(added["id"]) == Tag.get(Tag.name == "Holiday").id
    client.ok("pwg.images.rate", {"image_id": photo.id, "rate": 5})
    assert client.ok("pwg.plugins.getList") == []
    client.ok("pwg.images.uploadCompleted", {"pwg_token": client.token(), "category_id": 0})


# -- reflection ------------------------------------------------------------------------------------------

WRITE_METHODS = (
    "pwg.session.login", "pwg.categories.add", "pwg.categories.delete", "pwg.images.addSimple",
    "pwg.images.add", "pwg.images.addChunk", "pwg.images.upload", "pwg.images.setInfo", "pwg.images.delete",
    "pwg.tags.add",
)  # fmt: skip
USED_METHODS = (
    *WRITE_METHODS, "pwg.getVersion", "pwg.session.getStatus", "pwg.session.logout", "pwg.categories.getList",
    "pwg.categories.getImages", "pwg.images.exist", "pwg.images.getInfo", "pwg.tags.getList",
    "pwg.images.rate", "pwg.plugins.getList", "pwg.images.uploadCompleted", "reflection.getMethodList",
    "reflection.getMethodDetails",
)  # fmt: skip


def test_reflection_lists_methods_and_tells_post_only_and_params(server: str, admin: User) -> None:
    guest = Client(server)  # reflection is open to guests: piwigo2 asks before logging in
    methods = guest.ok("reflection.getMethodList")["methods"]
    assert set(USED_METHODS) <= set(methods), set(USED_METHODS) - set(methods)
    for name in WRITE_METHODS:
        details = guest.ok("reflection.getMethodDetails", {"methodName": name}, http="GET")
        assert details["name"] == name and isinstance(details["description"], str)
        assert details["options"]["post_only"] is True, name
        for param in details["params"]:
            assert {"name", "optional", "acceptArray", "type"} <= set(param), param
            assert isinstance(param["optional"], bool) and isinstance(param["acceptArray"], bool)
    reading = guest.ok("reflection.getMethodDetails", {"methodName": "pwg.categories.getList"})
    assert not (reading["options"] or {}).get("post_only")  # piwigo2 GETs it
    params = {p["name"]: p for p in reading["params"]}
    assert params["cat_id"]["optional"] is True and params["recursive"]["optional"] is True
    delete = guest.ok("reflection.getMethodDetails", {"methodName": "pwg.images.delete"})
    params = {p["name"]: p for p in delete["params"]}
    assert params["image_id"]["optional"] is False and params["pwg_token"]["optional"] is False
    login = guest.ok("reflection.getMethodDetails", {"methodName": "pwg.session.login"})
    assert {p["name"]: p["optional"] for p in login["params"]}["username"] is False
    # Members upload, edit and make albums in Photoflow: those are not advertised as admin-only.
    for name in ("pwg.images.addSimple", "pwg.images.setInfo", "pwg.categories.add", "pwg.images.upload"):
        options = guest.ok("reflection.getMethodDetails", {"methodName": name})["options"]
        assert not options.get("admin_only"), name
    # piwigo2 turns a failure here into "this method does not exist".
    assert guest.fail("reflection.getMethodDetails", {"methodName": "pwg.no.such"})[0] in (1003, 501)


# -- Piwigo Remote Sync's strict XML -------------------------------------------------------------------

# What the Simple XML classes of Piwigo-Java (remotesync-api) declare; strict parsing refuses anything
# else. BasicResponse: <rsp stat="..">. PwgSessionLoginResponse and PwgSessionLogoutResponse: nothing.
# PwgGetVersionResponse: @Text only. PwgCategoriesAddResponse: info, id (both required).
# PwgImagesUploadResponse: image_id, src, square_src, name, category (UploadCategory: id, nb_photos, label).
# PwgSessionGetStatusResponse: username, status, theme, language, pwg_token, charset, current_datetime
# (required), version, upload_file_types, upload_form_chunk_size; the newest version adds
# @ElementList available_sizes of entries with an `item`. PwgSessionGetStatusResponseLegacy (and Piwigo's
# own answer to the Apache-HttpClient agent that the released client sends) has no available_sizes.
STATUS_REQUIRED = {"username", "status", "theme", "language", "pwg_token", "charset", "current_datetime"}
STATUS_LEGACY = STATUS_REQUIRED | {"version", "upload_file_types", "upload_form_chunk_size"}
STATUS_NEWEST = STATUS_LEGACY | {"available_sizes", "available_sizes/item"}
UPLOAD_DECLARED = {"image_id", "src", "square_src", "name", "category", "category/id", "category/nb_photos",
                   "category/label"}  # fmt: skip


def declared_only(root: ET.Element, allowed: set[str], required: set[str] = frozenset()) -> set[str]:
    """Every element path under <rsp> is declared, no element but <rsp> carries attributes."""
    assert root.tag == "rsp" and set(root.attrib) == {"stat"} and root.get("stat") == "ok", ET.tostring(root)
    paths: set[str] = set()

    def walk(node: ET.Element, prefix: str) -> None:
        for child in node:
            path = prefix + child.tag
            assert not child.attrib, f"<{path}> has attributes {child.attrib}"
            paths.add(path)
            walk(child, path + "/")

    walk(root, "")
    assert paths <= allowed, f"not declared by Piwigo-Java: {sorted(paths - allowed)}"
    assert required <= paths, f"required by Piwigo-Java: {sorted(required - paths)}"
    return paths


@pytest.mark.parametrize("agent", ["PiwigoRemoteSync/1.0.3", "Apache-HttpClient/4.5.14 (Java/17.0.9)"])
def test_remote_sync_gets_only_elements_its_classes_declare(
    server: str, library: Library, admin: User, samples: Path, tmp_path: Path, agent: str
) -> None:
    client = Client(server, agent)

    def send(method: str, **fields: Any) -> ET.Element:
        # WSClient: a multipart POST to ws.php (no format), `method` first, null values as "".
        parts: list[tuple[str, Any]] = [("method", (None, method))]
        for key, value in fields.items():
            if isinstance(value, Path):
                parts.append((key, (value.name, value.read_bytes(), "application/octet-stream")))
            else:
                parts.append((key, (None, "" if value is None else str(value))))
        answer = client.http.post(client.url, files=parts, timeout=120, allow_redirects=False)
        assert answer.status_code == 200, answer.text[:300]  # checkStatusCode: anything else is an error
        return parse_xml(answer)

    declared_only(send("pwg.session.login", username="admin", password=PASSWORD), set())
    version = send("pwg.getVersion")
    declared_only(version, set())
    major, minor, _build = (version.text or "").strip().split(".")
    status = send("pwg.session.getStatus")
    newest = agent.startswith("PiwigoRemoteSync") and not (int(major) <= 2 and int(minor) <= 8)
    declared_only(status, STATUS_NEWEST if newest else STATUS_LEGACY, STATUS_REQUIRED)
    added = send("pwg.categories.add", name="Synced folder", parent=None)
    declared_only(added, {"info", "id"}, {"info", "id"})
    album_id = int(added.findtext("id"))
    picture = copy_as(samples, SMALL, tmp_path / "IMG_7001.jpg")
    uploaded = send(
        "pwg.images.upload", category=album_id, name="IMG_7001.jpg", pwg_token=status.findtext("pwg_token"),
        file=picture,
    )  # fmt: skip
    declared_only(uploaded, UPLOAD_DECLARED, {"image_id"})
    photo = Photo.get_by_id(int(uploaded.findtext("image_id")))
    assert album_ids(photo.id) == {album_id}
    if uploaded.find("category/id") is not None:
        assert int(uploaded.findtext("category/id")) == album_id
    declared_only(send("pwg.session.logout"), set())


# -- access and protection ---------------------------------------------------------------------------


def write_call(name: str, world: World, token: str, samples: Path) -> tuple[dict[str, Any], Any]:
    """Parameters (and file parts) with which `name` would succeed for an admin."""
    checksum = md5(b"chunk")
    picture = ("IMG_9.jpg", (samples / SMALL).read_bytes(), "image/jpeg")
    calls: dict[str, tuple[dict[str, Any], Any]] = {
        "pwg.session.login": ({"username": "admin", "password": PASSWORD}, None),
        "pwg.categories.add": ({"name": "Sneaky"}, None),
        "pwg.categories.delete": ({"category_id": world.public.id, "pwg_token": token}, None),
        "pwg.images.addSimple": ({"category": world.public.id}, {"image": picture}),
        "pwg.images.add": ({"original_sum": checksum, "name": "Sneaky", "categories": world.public.id}, None),
        "pwg.images.addChunk": (
            {
                "data": base64.b64encode(b"chunk").decode(),
                "original_sum": checksum,
                "position": 1,
                "type": "file",
            },
            None,
        ),
        "pwg.images.upload": (
            {"category": world.public.id, "name": "IMG_9.jpg", "pwg_token": token},
            {"file": picture},
        ),
        "pwg.images.setInfo": (
            {"image_id": world.shown.id, "name": "Sneaky", "single_value_mode": "replace"},
            None,
        ),
        "pwg.images.delete": ({"image_id": world.shown.id, "pwg_token": token}, None),
        "pwg.tags.add": ({"name": "sneaky"}, None),
        "pwg.images.exist": ({"md5sum_list": md5((samples / NATURE[0]).read_bytes())}, None),
        "pwg.images.rate": ({"image_id": world.shown.id, "rate": 5}, None),
        "pwg.images.uploadCompleted": ({"pwg_token": token, "category_id": world.public.id}, None),
        "pwg.tags.getList": ({}, None),
        "pwg.plugins.getList": ({}, None),
    }
    return calls[name]


def test_writes_are_post_only(server: str, library: Library, world: World, samples: Path) -> None:
    client = member(server)
    token = client.token()
    before = snapshot(library)
    for name in WRITE_METHODS:  # one server for all: each is answered 405 and changes nothing
        params, _files = write_call(name, world, token, samples)
        assert client.fail(name, params, http="GET") == (405, "This method requires HTTP POST"), name
        assert snapshot(library) == before, name


GUEST_REFUSED = (
    "pwg.categories.add", "pwg.categories.delete", "pwg.images.addSimple", "pwg.images.add",
    "pwg.images.addChunk", "pwg.images.upload", "pwg.images.setInfo", "pwg.images.delete", "pwg.tags.add",
    "pwg.images.exist", "pwg.images.uploadCompleted", "pwg.tags.getList", "pwg.plugins.getList",
)  # fmt: skip


def guest_call_refused(server: str, library: Library, world: World, samples: Path, name: str) -> None:
    guest = Client(server)
    params, files = write_call(name, world, guest.token(), samples)
    before = snapshot(library)
    assert guest.fail(name, params, files=files)[0] == 401, name
    assert snapshot(library) == before, name
    assert not library.store.leftovers(stale_only=False), name


def test_guests_get_401_outside_the_allow_list(
    server: str, library: Library, world: World, samples: Path
) -> None:
    for name in GUEST_REFUSED:
        guest_call_refused(server, library, world, samples, name)


def test_guests_get_401_for_a_rating(server: str, library: Library, world: World, samples: Path) -> None:
    guest_call_refused(server, library, world, samples, "pwg.images.rate")


def test_guests_see_only_public_albums_and_level_0_photos(server: str, world: World) -> None:
    guest = Client(server)
    listed = guest.ok("pwg.categories.getList", {"recursive": "true"})["categories"]
    assert [(c["id"], c["nb_images"]) for c in listed] == [(world.public.id, 1)]
    xml_listed = guest.xml("pwg.categories.getList", {"recursive": "true"})
    assert [c.get("id") for c in xml_listed.iter("category")] == [str(world.public.id)]
    images = guest.ok("pwg.categories.getImages", {"cat_id": world.public.id})
    assert [i["id"] for i in images["images"]] == [world.shown.id] and images["paging"]["count"] == 1
    nothing = guest.fail("pwg.categories.getImages", {"cat_id": 999999})
    assert guest.fail("pwg.categories.getImages", {"cat_id": world.private.id}) == nothing
    assert guest.ok("pwg.images.getInfo", {"image_id": world.shown.id})["id"] == world.shown.id
    missing = guest.fail("pwg.images.getInfo", {"image_id": 999999})
    assert missing[0] == 404
    assert guest.fail("pwg.images.getInfo", {"image_id": world.hidden.id}) == missing
    assert guest.fail("pwg.images.getInfo", {"image_id": world.secret.id}) == missing
    exist = guest.send("pwg.images.exist", {"md5sum_list": md5(b"x"), "filename_list": "a.jpg"})
    assert failure(exist)[0] == 401 and str(world.hidden.id) not in exist.text
    # Members see everything.
    client = member(server)
    every = client.ok("pwg.categories.getList", {"recursive": "true"})["categories"]
    assert {(c["id"], c["nb_images"]) for c in every} == {(world.public.id, 2), (world.private.id, 1)}
    assert client.ok("pwg.images.getInfo", {"image_id": world.secret.id})["id"] == world.secret.id


def test_a_member_uploads_and_edits_but_deletes_only_their_own(
    server: str, library: Library, world: World, samples: Path
) -> None:
    services.create_user("bob", "bob's password")
    bob = member(server, "bob", "bob's password")
    with (samples / SMALL).open("rb") as fh:
        sent = bob.ok("pwg.images.addSimple", {"category": world.public.id}, files={"image": ("bob.jpg", fh)})
    mine = Photo.get_by_id(int(sent["image_id"]))
    assert mine.owner.name == "bob" and world.public.id in album_ids(mine.id)
    bob.ok(
        "pwg.images.setInfo",
        {"image_id": world.shown.id, "name": "Bob was here", "single_value_mode": "replace"},
    )
    assert Photo.get_by_id(world.shown.id).title == "Bob was here"
    token = bob.token()
    before = snapshot(library)
    assert bob.fail("pwg.images.delete", {"image_id": world.shown.id, "pwg_token": token})[0] == 401
    assert snapshot(library) == before
    bob.ok("pwg.images.delete", {"image_id": mine.id, "pwg_token": token})
    assert Photo.get_or_none(Photo.id == mine.id) is None


def test_a_foreign_origin_or_cross_site_fetch_changes_nothing(
    server: str, library: Library, admin: User
) -> None:
    client = member(server)
    before = snapshot(library)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {"Origin": "null"}):
        code, _ = client.fail("pwg.categories.add", {"name": "Forged"}, headers=headers)
        assert code in (401, 403), headers
    assert snapshot(library) == before
    # Our own origin (a page of this site) and no Origin at all (darktable) are fine.
    client.ok(
        "pwg.categories.add",
        {"name": "Same site"},
        headers={"Origin": server, "Sec-Fetch-Site": "same-origin"},
    )
    client.ok("pwg.categories.add", {"name": "No origin"})
    assert {a.title for a in Album.select()} == {"Same site", "No origin"}


def test_a_post_with_an_empty_body_takes_the_querys_parameters(server: str, admin: User) -> None:
    """The Android app creates an album with every parameter in the query of a POST and no body (issue 12,
    item 2); Piwigo reads the body when it has parameters and the query otherwise."""
    client = member(server)
    answer = client.http.post(
        client.url,
        params={"format": "json", "method": "pwg.categories.add", "name": "From the query"},
        data=b"",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    album_id = ok_result(answer)["id"]
    assert Album.get_by_id(album_id).title == "From the query"
    # A body with parameters is what counts, as in Piwigo: the query's name is not read then.
    answer = client.raw(b"method=pwg.categories.add&name=From+the+body", query="format=json&name=Ignored")
    assert Album.get_by_id(ok_result(answer)["id"]).title == "From the body"
    # Still POST only, and still refused when another site started it.
    code, _ = client.fail("pwg.categories.add", {"name": "By GET"}, http="GET")
    assert code == 405
    answer = client.http.post(
        client.url,
        params={"format": "json", "method": "pwg.categories.add", "name": "Forged"},
        headers={"Sec-Fetch-Site": "cross-site"},
        timeout=30,
    )
    assert answer.status_code == 401
    assert not Album.select().where(Album.title.in_(["By GET", "Forged", "Ignored"])).exists()


def test_a_logout_link_from_another_site_ends_no_session(server: str, admin: User) -> None:
    """A GET that changes state is refused when another site started it, and a ws.php logout never ends
    the web session of the same browser (issue 12: a link or redirect carries the SameSite=Lax cookie)."""
    browser = web_as(server, "admin", PASSWORD)
    logout = server + "/ws.php?format=json&method=pwg.session.logout"
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        answer = browser.http.get(logout, headers=headers, timeout=30)
        assert answer.status_code == 401 and answer.json()["stat"] == "fail", headers
        assert browser.get("/account").status_code == 200  # still logged in on the web
    # From this site, or from no page at all, the call succeeds: and still ends no web session.
    answer = browser.http.get(logout, headers={"Sec-Fetch-Site": "same-origin"}, timeout=30)
    assert answer.status_code == 200 and answer.json()["result"] is True
    assert browser.get("/account").status_code == 200
    # A ws.php session (pwg_id) is what a ws.php logout ends, and a cross-site one is refused too.
    client = member(server)
    assert client.fail("pwg.session.logout", http="GET", headers={"Sec-Fetch-Site": "cross-site"})[0] == 401
    assert client.ok("pwg.session.getStatus")["username"] == "admin"
    client.ok("pwg.session.logout")
    assert client.ok("pwg.session.getStatus")["username"] == "guest"
    # Reads stay open to any site's links (nothing to change, and no CORS to read them with).
    assert (
        browser.http.get(
            server + "/ws.php?format=json&method=pwg.getVersion",
            headers={"Sec-Fetch-Site": "cross-site"},
            timeout=30,
        ).json()["stat"]
        == "ok"
    )


def test_several_sessions_of_one_user_work_at_once(server: str, world: World) -> None:
    clients = [member(server) for _ in range(3)]
    assert len({c.pwg_id for c in clients}) == 3
    errors: list[BaseException] = []

    def work(client: Client) -> None:
        try:
            for _ in range(5):
                assert client.ok("pwg.session.getStatus")["username"] == "admin"
                assert len(client.ok("pwg.categories.getList", {"recursive": "true"})["categories"]) == 2
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    clients[0].ok("pwg.session.logout")
    assert clients[0].ok("pwg.session.getStatus")["username"] == "guest"
    assert all(c.ok("pwg.session.getStatus")["username"] == "admin" for c in clients[1:])


@pytest.mark.slow
def test_login_shares_the_webs_rate_limit(server: str, admin: User) -> None:
    client = Client(server)
    for _ in range(sessions.MAX_FAILURES):
        answer = client.send("pwg.session.login", {"username": "admin", "password": "guess"})
        assert answer.status_code == 200 and failure(answer)[0] == 999
    assert LoginFailure.select().where(LoginFailure.key == "user:admin").count() == sessions.MAX_FAILURES
    # Now even the right password is refused, on ws.php and on the web's form alike.
    refused = client.send("pwg.session.login", {"username": "admin", "password": PASSWORD})
    assert failure(refused)[0] != 0 and "pwg_id" not in refused.headers.get("Set-Cookie", "")
    assert client.ok("pwg.session.getStatus")["username"] == "guest"
    browser = Web(server)
    browser.get("/login")
    assert browser.post("/login", {"name": "admin", "password": PASSWORD}).status_code == 429


# -- bad input -----------------------------------------------------------------------------------------


@dataclass
class Bad:
    """One bad request and the Piwigo codes that may answer it (None: any failure but a 500)."""

    name: str
    method: str | None = None
    params: Any = field(default_factory=dict)
    http: str = "POST"
    codes: tuple[int, ...] | None = None
    raw: bytes | None = None  # a urlencoded body sent as is
    member: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    fmt: str | None = "json"
    files: Any = None
    message: str = ""  # the message starts with this


TEXT_AS_IMAGE = ("holiday.jpg", b"this is not a picture, only text\n" * 20, "image/jpeg")
BAD_INPUT = [
    Bad("unknown method", "pwg.no.such.method", codes=(501,)),
    Bad("missing method", None, {"name": "x"}, codes=(501,)),
    Bad("missing parameter", "pwg.categories.add", codes=(1002,), message="Missing parameters: name"),
    Bad("empty required parameter", "pwg.categories.add", {"name": ""}, codes=(1002,)),
    Bad(
        "missing parameters",
        "pwg.images.delete",
        codes=(1002,),
        message="Missing parameters: image_id,pwg_token",
    ),
    Bad("cat_id=abc", "pwg.categories.getImages", {"cat_id": "abc"}, "GET", codes=(1003, 404)),
    Bad("cat_id=-1", "pwg.categories.getImages", {"cat_id": "-1"}, "GET", codes=(1003, 404)),
    Bad("cat_id=1e309", "pwg.categories.getImages", {"cat_id": "1e309"}, "GET", codes=(1003, 404)),
    Bad("getList cat_id=1e309", "pwg.categories.getList", {"cat_id": "1e309"}, "GET", codes=(1003, 404)),
    Bad(
        "per_page=abc",
        "pwg.categories.getImages",
        {"cat_id": "{album}", "per_page": "abc"},
        "GET",
        codes=(1003,),
    ),
    Bad(
        "array for a scalar",
        "pwg.images.getInfo",
        [("image_id[]", "1"), ("image_id[]", "2")],
        "GET",
        codes=(1003, 404),
    ),
    Bad("image_id=0", "pwg.images.getInfo", {"image_id": "0"}, "GET", codes=(1003, 404)),
    Bad("invalid UTF-8, encoded", raw=b"method=pwg.categories.add&name=%FF%FEbad", codes=(1003,)),
    Bad("invalid UTF-8, raw", raw=b"method=pwg.categories.add&name=\xff\xfe", codes=(1003,)),
    Bad("invalid UTF-8 in the method", raw=b"method=pwg.%FFcategories.add&name=x", codes=(501, 1003)),
    Bad(
        "invalid UTF-8 in a query",
        "pwg.categories.getImages",
        {"cat_id": b"\xff"},
        "GET",
        codes=(1003, 404),
    ),
    Bad("NUL in a name", raw=b"method=pwg.categories.add&name=a%00b", codes=(1003,)),
    Bad(
        "NUL in a title",
        raw=b"method=pwg.images.setInfo&image_id={photo}&single_value_mode=replace&name=a%00b",
        codes=(1003,),
    ),
    Bad("10 MB name", "pwg.categories.add", {"name": "x" * (10 * 1024 * 1024)}, codes=(1003, 413)),
    Bad(
        "text file as the image",
        "pwg.images.addSimple",
        {"category": "{album}"},
        files={"image": TEXT_AS_IMAGE},
    ),
    Bad(
        "text file in chunks",
        "pwg.images.upload",
        {"category": "{album}", "name": "a.jpg", "pwg_token": "{token}"},
        files={"file": TEXT_AS_IMAGE},
    ),
    Bad("guest write", "pwg.categories.add", {"name": "x"}, member=False, codes=(401,)),
    Bad(
        "foreign origin",
        "pwg.categories.add",
        {"name": "x"},
        headers={"Origin": "https://evil.example"},
        codes=(401, 403),
    ),
    Bad("wrong pwg_token", "pwg.images.delete", {"image_id": "{photo}", "pwg_token": "f" * 32}, codes=(403,)),
    Bad("unknown image", "pwg.images.setInfo", {"image_id": "999999", "name": "x"}, codes=(404,)),
    Bad(
        "unknown album",
        "pwg.images.addSimple",
        {"category": "999999"},
        files={"image": TEXT_AS_IMAGE},
        codes=(404, 1003),
    ),
    Bad(
        "malformed multipart",
        raw=b"--xyz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--xyz--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=xyz"},
    ),
    Bad(
        "multipart without a boundary",
        raw=b"method=pwg.categories.add&name=x",
        headers={"Content-Type": "multipart/form-data"},
    ),
]


@pytest.mark.parametrize(
    "bad",
    [pytest.param(b, id=b.name) for b in BAD_INPUT],
)
def test_bad_input_fails_cleanly_and_changes_nothing(
    server: str, library: Library, small: tuple[Album, Photo], bad: Bad
) -> None:
    client = member(server) if bad.member else Client(server)
    album, photo = small
    values = {"{album}": str(album.id), "{photo}": str(photo.id), "{token}": client.token()}

    def filled(value: Any) -> Any:
        if isinstance(value, str):
            for key, text in values.items():
                value = value.replace(key, text)
        return value

    before = snapshot(library)
    if bad.raw is not None:
        body = bad.raw
        for key, text in values.items():
            body = body.replace(key.encode(), text.encode())
        answer = client.raw(body, headers=bad.headers)
    else:
        pairs = bad.params.items() if isinstance(bad.params, Mapping) else bad.params
        params = [(key, filled(value)) for key, value in pairs]
        answer = client.send(bad.method, params, http=bad.http, files=bad.files, headers=bad.headers)
    code, message = failure(answer)
    if bad.codes is not None:
        assert code in bad.codes, (code, message)
    else:
        assert code != 500, message
    assert message.startswith(bad.message), message
    assert snapshot(library) == before
    assert not library.store.leftovers(stale_only=False)
    assert client.ok("pwg.getVersion")  # the server goes on answering


def test_unoffered_formats_answer_an_error_not_a_crash(server: str, library: Library, admin: User) -> None:
    client = member(server)
    before = snapshot(library)
    for fmt in ("php", "xmlrpc", "yaml"):
        for method, params in (("pwg.getVersion", {}), ("pwg.categories.add", {"name": "Via " + fmt})):
            answer = client.send(method, params, fmt=fmt)
            assert answer.status_code < 500 and not 300 <= answer.status_code < 400, answer.text[:300]
            assert b"fail" in answer.content, answer.text[:300]
    assert snapshot(library) == before


def test_an_oversized_upload_is_refused_in_json_before_it_is_read(
    server: str, library: Library, admin: User
) -> None:
    client = member(server)
    before = snapshot(library)
    host, port = urlsplit(server).netloc.split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.putrequest("POST", "/ws.php?format=json&method=pwg.images.addSimple")
        connection.putheader("Content-Type", "multipart/form-data; boundary=----pf")
        # Over the routes' limit, under the server's own (twice as much: beyond it cheroot answers its
        # plain-text 413 before the app sees the request, which is what photoflow serve does too).
        connection.putheader("Content-Length", str(MAX_REQUEST_BYTES + 1))  # announced; a few bytes sent
        connection.putheader("Cookie", f"pwg_id={client.pwg_id}")
        connection.endheaders()
        connection.send(
            b'------pf\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n\r\n'
            + b"\xff" * 4096
        )
        answer = connection.getresponse()
        body = answer.read()
    finally:
        connection.close()
    assert answer.status == 413 and "json" in answer.getheader("Content-Type", ""), body[:300]
    parsed = json.loads(body)
    assert parsed["stat"] == "fail" and parsed["err"] == 413 and parsed["message"]
    assert snapshot(library) == before
    assert client.ok("pwg.getVersion")
