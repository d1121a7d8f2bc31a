"""security.md cases at the web door that no other module covers: the request limits of the server
as `photoflow serve` builds it, ten parallel uploads of one file, and password hashes made with older
argon2 parameters replaced at the next login (through the web and through ws.php)."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from argon2 import PasswordHasher

from photoflow import passwords, services
from photoflow.library import Library
from photoflow.models import Album, File, Photo, User
from photoflow.server import MAX_REQUEST_HEADER
from tests.conftest import web_as
from tests.test_piwigo import Client

PASSWORD = "correct horse"
SMALL = "jpeg/small-cameras/Canon_40D.jpg"


def raw_exchange(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_headers_beyond_the_limit_are_refused_and_the_server_goes_on(server: str, admin: User) -> None:
    """cheroot has no header limit by default: a client could send headers until memory runs out.
    (The test server is built as `photoflow serve` builds its own: server.build_server.)"""
    huge = b"X-Padding: " + b"a" * (MAX_REQUEST_HEADER + 1024) + b"\r\n"
    answer = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n" + huge + b"Connection: close\r\n\r\n")
    status = answer.split(b"\r\n", 1)[0]
    assert status.split()[1] in (b"413", b"431"), status
    many = b"".join(b"X-H%d: v\r\n" % n for n in range(MAX_REQUEST_HEADER // 8))
    answer = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"Connection: close\r\n\r\n")
    assert answer.split(b"\r\n", 1)[0].split()[1] in (b"413", b"431")
    assert requests.get(server + "/healthz", timeout=10).json() == {"status": "ok"}


def test_ten_parallel_uploads_of_one_file_are_one_photo(
    server: str, admin: User, library: Library, samples: Path
) -> None:
    browsers = [web_as(server, "admin", PASSWORD) for _ in range(10)]
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda b: b.upload(samples / SMALL), browsers))
    assert [a.status_code for a in answers] == [200] * 10, [a.text[:200] for a in answers]
    statuses = sorted(a.json()["results"][0]["status"] for a in answers)
    assert statuses == ["duplicate"] * 9 + ["imported"], statuses
    assert Photo.select().count() == 1 and File.select().count() == 1
    originals = [p for p in (library.config.datastore / "originals").rglob("*") if p.is_file()]
    assert len(originals) == 1


WEAK = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@pytest.mark.parametrize("door", ["web", "ws.php"])
def test_a_hash_with_older_parameters_is_replaced_at_the_next_login(
    server: str, admin: User, door: str
) -> None:
    """When argon2's parameters are raised, old hashes are upgraded as their owners log in."""
    user = services.create_user("olive", "olive's password")
    User.update(password_hash=WEAK.hash("olive's password")).where(User.id == user.id).execute()
    assert passwords.needs_rehash(User.get_by_id(user.id).password_hash)
    if door == "web":
        web_as(server, "olive", "olive's password")
    else:
        Client(server).login("olive", "olive's password")
    stored = User.get_by_id(user.id).password_hash
    assert not passwords.needs_rehash(stored) and passwords.verify(stored, "olive's password")


def test_a_replaced_picture_is_never_served_stale_under_its_download_url(
    server: str, admin: User, samples: Path
) -> None:
    """Downloads are named by photo, not by bytes: browsers must ask again, and get the new picture."""
    album = services.create_album("Open", admin.id, public=True)
    darktable = Client(server)
    darktable.login()
    first = darktable.ok(
        "pwg.images.addSimple",
        {"category": str(album.id)},
        files={"image": ("a.jpg", (samples / SMALL).read_bytes())},
    )
    url = f"{server}/photo/{first['image_id']}/file/original"
    seen = requests.get(url, timeout=30)
    assert seen.status_code == 200 and "no-cache" in seen.headers["Cache-Control"]
    assert "immutable" not in seen.headers["Cache-Control"]
    other = (samples / "jpeg/small-cameras/Kodak_CX7530.jpg").read_bytes()
    darktable.ok(
        "pwg.images.addSimple",
        {"category": str(album.id), "image_id": str(first["image_id"])},
        files={"image": ("a.jpg", other)},
    )
    again = requests.get(url, headers={"If-None-Match": seen.headers["ETag"]}, timeout=30)
    assert again.status_code == 200 and again.content == other


def test_a_share_link_stays_in_sight_while_its_album_is_public(server: str, admin: User) -> None:
    """A link made while private works again when the album goes private again: the album page keeps
    showing it (with Revoke) while public, so nobody forgets it exists."""
    album = services.create_album("Trip", admin.id)
    boss = web_as(server, "admin", PASSWORD)
    assert boss.post(f"/album/{album.id}", {"action": "share"}).status_code == 303
    link = Album.get_by_id(album.id).share_token
    assert boss.post(f"/album/{album.id}", {"action": "visibility", "public": "1"}).status_code == 303
    page = boss.get(f"/album/{album.id}").text
    assert f"/s/{link}" in page and "Revoke link" in page
    assert boss.post(f"/album/{album.id}", {"action": "unshare"}).status_code == 303
    assert boss.post(f"/album/{album.id}", {"action": "visibility", "public": "0"}).status_code == 303
    assert requests.get(f"{server}/s/{link}", timeout=30).status_code == 404
