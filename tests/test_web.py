"""The web front end over real HTTP: first run, accounts, sessions, CSRF, albums, photos, uploads,
downloads, zips, feeds and the grid's JSON — each through the routes a browser uses."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from photoflow import services, sessions
from photoflow.batch import collect_files, import_files
from photoflow.config import Config
from photoflow.importer import ImportOptions
from photoflow.library import Library
from photoflow.models import Album, File, Photo, PhotoAlbum, Session, User
from tests.conftest import REPO, Web, free_port, make_config, run_cli, wait_up, web_as

JPEG = "jpeg/small-cameras/Canon_40D.jpg"
CR3 = "raw/Canon-R6-pruned.CR3"


def shot(samples: Path, folder: Path, base: str = "IMG_0001") -> list[Path]:
    """A JPEG, its RAW and a darktable sidecar sharing a base name."""
    folder.mkdir(parents=True, exist_ok=True)
    jpeg, raw = folder / f"{base}.jpg", folder / f"{base}.CR3"
    shutil.copyfile(samples / JPEG, jpeg)
    shutil.copyfile(samples / CR3, raw)
    sidecar = folder / f"{base}.CR3.xmp"
    sidecar.write_text(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:Rating="3"/>'
        "</rdf:RDF></x:xmpmeta>"
    )
    return [jpeg, raw, sidecar]


def imported(library: Library, owner: User, *paths: Path, album: Album | None = None) -> list[Photo]:
    files = collect_files(list(paths))
    options = ImportOptions(owner_id=owner.id, album_id=album.id if album else None)
    summary = import_files(library, files, options, workers=1)
    assert not summary.failed, summary.failed
    return list(Photo.select().order_by(Photo.id))


def album_titles(photo: Photo) -> set[str]:
    links = Album.select(Album.title).join(PhotoAlbum).where(PhotoAlbum.photo == photo.id)
    return {a.title for a in links}


# -- first run and accounts --------------------------------------------------------------------------


def test_first_visit_creates_the_first_admin_then_the_page_is_gone(web: Web) -> None:
    assert web.get("/").headers["Location"].endswith("/setup")
    assert web.get("/login").headers["Location"].endswith("/setup")
    form = web.get("/setup")
    assert form.status_code == 200 and "Create the first account" in form.text
    differ = web.post("/setup", {"name": "ann", "password": "long enough", "password2": "different"})
    assert differ.status_code == 400 and "The passwords differ." in differ.text
    short = web.post("/setup", {"name": "ann", "password": "short", "password2": "short"})
    assert short.status_code == 400 and "at least 8 characters" in short.text
    made = web.post("/setup", {"name": "ann", "password": "long enough", "password2": "long enough"})
    assert made.status_code == 303 and made.headers["Location"].endswith("/upload")
    assert User.get(User.name == "ann").is_admin
    assert "pf_session" in web.http.cookies
    # Afterwards the page is gone, for everyone.
    assert web.get("/setup").status_code == 404
    other = Web(web.base)
    assert other.get("/setup").status_code == 404
    again = other.post("/setup", {"name": "eve", "password": "long enough", "password2": "long enough"})
    assert again.status_code == 404 and User.select().count() == 1


def test_login_logout_and_a_new_session_id_each_time(server: str, admin: User) -> None:
    browser = Web(server)
    browser.get("/login")
    browser.http.cookies.set("pf_session", "planted-by-an-attacker", domain="127.0.0.1")
    wrong = browser.post("/login", {"name": "admin", "password": "wrong"})
    assert wrong.status_code == 401 and "Wrong name or password." in wrong.text
    unknown = browser.post("/login", {"name": "nobody", "password": "correct horse"})
    assert unknown.status_code == 401 and "Wrong name or password." in unknown.text
    ok = browser.post("/login", {"name": "admin", "password": "correct horse", "next": "/albums"})
    assert ok.status_code == 303 and ok.headers["Location"].endswith("/albums")
    cookie = ok.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Secure" not in cookie
    token = browser.http.cookies.get("pf_session", domain="127.0.0.1")
    assert token and token != "planted-by-an-attacker"
    assert sessions.lookup(token).user.name == "admin"
    assert browser.get("/account").status_code == 200
    # Logging out deletes the session on the server, not only the cookie.
    browser.get("/account")
    out = browser.post("/logout")
    assert out.status_code == 303 and sessions.lookup(token) is None
    thief = Web(server)
    thief.http.cookies.set("pf_session", token, domain="127.0.0.1")
    assert thief.get("/account").status_code == 303  # to the login page


def test_next_after_login_stays_on_this_site(server: str, admin: User) -> None:
    browser = Web(server)
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        browser.get("/login")
        answer = browser.post("/login", {"name": "admin", "password": "correct horse", "next": target})
        assert answer.headers["Location"].rstrip("/").endswith("127.0.0.1:" + server.rsplit(":", 1)[1]), (
            target
        )


def test_login_rate_limit_per_account_and_address(server: str, admin: User) -> None:
    browser = Web(server)
    browser.get("/login")
    for _ in range(sessions.MAX_FAILURES):
        assert browser.post("/login", {"name": "admin", "password": "guess"}).status_code == 401
    # Now even the right password is refused, before it is checked, with a time to wait.
    limited = browser.post("/login", {"name": "admin", "password": "correct horse"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "too many failed logins" in limited.text.lower()
    # The same address trying another account is limited too (the address's count).
    other = browser.post("/login", {"name": "someone-else", "password": "x"})
    assert other.status_code == 429


def test_password_change_ends_every_other_session(server: str, admin: User) -> None:
    laptop, phone = web_as(server, "admin", "correct horse"), web_as(server, "admin", "correct horse")
    assert Session.select().count() == 2
    wrong = laptop.post(
        "/account/password", {"old": "nope", "new": "a new password", "new2": "a new password"}
    )
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text
    done = laptop.post(
        "/account/password", {"old": "correct horse", "new": "a new password", "new2": "a new password"}
    )
    assert done.status_code == 303
    assert laptop.get("/account").status_code == 200  # this browser got a new session
    assert phone.get("/account").status_code == 303  # the other one is logged out
    assert services.authenticate("admin", "a new password") is not None


def test_changes_need_the_csrf_token_and_our_origin(server: str, admin: User) -> None:
    browser = web_as(server, "admin", "correct horse")
    no_token = browser.post("/albums", {"title": "x"}, csrf=False)
    assert no_token.status_code == 403 and Album.select().count() == 0
    wrong_token = browser.post("/albums", {"title": "x", "csrf": "not-the-token"})
    assert wrong_token.status_code == 403
    foreign = browser.post("/albums", {"title": "x"}, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    cross = browser.post("/albums", {"title": "x"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert Album.select().count() == 0
    assert browser.post("/albums", {"title": "Fine"}).status_code == 303
    # A visitor's login form needs its double-submitted token too.
    visitor = Web(server)
    visitor.get("/login")
    forged = visitor.post("/login", {"name": "admin", "password": "correct horse", "csrf": "forged"})
    assert forged.status_code == 403


def test_security_headers_on_pages_files_and_errors(server: str, admin: User) -> None:
    browser = Web(server)
    for path in ("/", "/login", "/nonexistent", "/static/css/photoflow.css", "/healthz"):
        answer = browser.get(path)
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        assert answer.headers["Referrer-Policy"] == "same-origin", path
        if "text/html" in answer.headers["Content-Type"]:  # documents; files and JSON carry no page rules
            assert "default-src 'self'" in answer.headers["Content-Security-Policy"], path
            assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"], path
            assert answer.headers["X-Frame-Options"] == "DENY", path
    assert browser.get("/nonexistent").status_code == 404
    assert "Content-Security-Policy" in browser.get("/nonexistent").headers


def test_members_and_admins_pages(server: str, admin: User) -> None:
    services.create_user("bob", "bob's password")
    bob = web_as(server, "bob", "bob's password")
    assert bob.get("/users").status_code == 403
    assert bob.post("/users", {"name": "eve", "password": "eve's password"}).status_code == 403
    visitor = Web(server)
    to_login = visitor.get("/upload")
    assert to_login.status_code == 303 and to_login.headers["Location"].endswith("/login?next=%2Fupload")
    boss = web_as(server, "admin", "correct horse")
    page = boss.get("/users")
    assert page.status_code == 200 and "bob" in page.text
    assert (
        boss.post("/users", {"name": "carol", "password": "carol's password", "admin": "1"}).status_code
        == 303
    )
    carol = User.get(User.name == "carol")
    assert carol.is_admin
    assert boss.post("/users", {"name": "Carol", "password": "another one"}).status_code == 400
    assert boss.post(f"/users/{carol.id}/admin", {"admin": "0"}).status_code == 303
    assert not User.get_by_id(carol.id).is_admin
    # The last admin cannot be demoted or deleted.
    last = boss.post(f"/users/{admin.id}/admin", {"admin": "0"})
    assert last.status_code == 409 and "last administrator" in last.text
    assert (
        boss.post(
            f"/users/{User.get(User.name == 'bob').id}/password", {"password": "new bob pw"}
        ).status_code
        == 303
    )
    assert services.authenticate("bob", "new bob pw") is not None
    assert bob.get("/account").status_code == 303  # the reset logged bob out
    deleted = boss.post(f"/users/{carol.id}/delete")
    assert deleted.status_code == 303 and User.get_or_none(User.id == carol.id) is None


# -- albums and photos ---------------------------------------------------------------------------------


def test_album_life(server: str, library: Library, admin: User, samples: Path) -> None:
    browser = web_as(server, "admin", "correct horse")
    assert browser.post("/albums", {"title": "  Summer  trip ", "public": "1"}).status_code == 303
    album = Album.get()
    assert album.title == "Summer trip" and album.is_public
    photos = imported(library, admin, samples / "jpeg/nature", album=album)
    page = browser.get(f"/album/{album.id}")
    assert page.status_code == 200 and "Summer trip" in page.text and f"{len(photos)} photos" in page.text
    ok = browser.post(
        f"/album/{album.id}", {"action": "edit", "title": "Summer", "description": "Hot <b>days</b>"}
    )
    assert ok.status_code == 303
    page = browser.get(f"/album/{album.id}")
    assert "Hot &lt;b&gt;days&lt;/b&gt;" in page.text and "<b>days</b>" not in page.text
    cover = photos[3]
    assert browser.post(f"/album/{album.id}", {"action": "cover", "photo": cover.id}).status_code == 303
    albums_page = browser.get("/albums")
    assert f"/d/250/{cover.id}-{cover.sha256[:16]}.jpg" in albums_page.text
    removed = browser.post(f"/album/{album.id}", {"action": "remove", "photo": [cover.id, photos[0].id]})
    assert removed.status_code == 303
    assert Album.get_by_id(album.id).cover_id is None
    assert f"{len(photos) - 2} photos" in browser.get(f"/album/{album.id}").text
    assert Photo.select().count() == len(photos)  # out of the album, still in the library
    # Share link for a private album; revoking it closes it at once.
    browser.post(f"/album/{album.id}", {"action": "visibility", "public": "0"})
    browser.post(f"/album/{album.id}", {"action": "share"})
    token = Album.get_by_id(album.id).share_token
    assert token and len(token) >= 24
    assert f"/s/{token}" in browser.get(f"/album/{album.id}").text
    stranger = Web(server)
    assert stranger.get(f"/album/{album.id}").status_code == 404
    shared = stranger.get(f"/s/{token}")
    assert shared.status_code == 200 and "Summer" in shared.text
    assert "Edit" not in shared.text and "csrf" not in shared.text.split("</header>", 1)[1]
    browser.post(f"/album/{album.id}", {"action": "unshare"})
    assert stranger.get(f"/s/{token}").status_code == 404
    deleted = browser.post(f"/album/{album.id}", {"action": "delete"})
    assert deleted.status_code == 303 and Album.select().count() == 0
    assert Photo.select().count() == len(photos)


def test_photo_page_edit_and_delete_permissions(
    server: str, library: Library, admin: User, samples: Path
) -> None:
    photo = imported(library, admin, samples / "jpeg/gps/DSCN0010.jpg")[0]
    services.create_user("bob", "bob's password")
    bob = web_as(server, "bob", "bob's password")
    page = bob.get(f"/photo/{photo.id}")
    assert page.status_code == 200
    assert "43.4674° N, 11.8851° E" in page.text and "openstreetmap.org/?mlat=43.46" in page.text
    assert "NIKON" in page.text and "All metadata" in page.text
    # A member may edit anyone's photo but delete only their own.
    edit = bob.post(f"/photo/{photo.id}", {"title": '<script>alert("x")</script>', "description": "Tuscany"})
    assert edit.status_code == 303
    page = bob.get(f"/photo/{photo.id}")
    assert '<script>alert("x")</script>' not in page.text and "&lt;script&gt;" in page.text
    assert "Delete photo" not in page.text
    assert bob.post(f"/photo/{photo.id}", {"action": "delete"}).status_code == 403
    assert Photo.select().count() == 1
    boss = web_as(server, "admin", "correct horse")
    gone = boss.post(f"/photo/{photo.id}", {"action": "delete"})
    assert gone.status_code == 303 and Photo.select().count() == 0 and File.select().count() == 0
    assert boss.get(f"/photo/{photo.id}").status_code == 404


def test_photo_albums_and_neighbours(server: str, library: Library, admin: User, samples: Path) -> None:
    photos = imported(library, admin, samples / "jpeg/orientation/landscape_1.jpg", samples / JPEG)
    a = services.create_album("A", admin.id)
    b = services.create_album("B", admin.id)
    browser = web_as(server, "admin", "correct horse")
    target = photos[0]
    saved = browser.post(f"/photo/{target.id}", {"albums_sent": "1", "album": [a.id, b.id], "title": ""})
    assert saved.status_code == 303
    assert album_titles(target) == {"A", "B"}
    browser.post(f"/photo/{target.id}", {"albums_sent": "1", "album": [b.id]})
    page = browser.get(f"/photo/{target.id}?album={b.id}")
    assert page.status_code == 200 and f'data-back="/album/{b.id}"' in page.text
    # Stepping within album A, where the photo no longer is: 404.
    assert browser.get(f"/photo/{target.id}?album={a.id}").status_code == 404
    gallery_page = browser.get(f"/photo/{photos[1].id}")
    assert re.search(r'data-(newer|older)="/photo/\d+"', gallery_page.text)


# -- uploads -----------------------------------------------------------------------------------------


def test_upload_a_shot_and_see_each_files_result(
    server: str, admin: User, samples: Path, tmp_path: Path
) -> None:
    browser = web_as(server, "admin", "correct horse")
    album = services.create_album("Uploads", admin.id)
    answer = browser.upload(*shot(samples, tmp_path / "a"), album=album.id)
    assert answer.status_code == 200, answer.text
    results = {r["name"]: r for r in answer.json()["results"]}
    assert results["IMG_0001.jpg"]["status"] == "imported"
    assert (
        results["IMG_0001.CR3"]["status"] == "attached"
        and results["IMG_0001.CR3.xmp"]["status"] == "attached"
    )
    photo = Photo.get()
    assert sorted(f.role for f in photo.files) == ["original", "raw", "sidecar"] and photo.rating == 3
    assert album_titles(photo) == {"Uploads"}
    again = browser.upload(tmp_path / "a" / "IMG_0001.jpg")
    assert again.json()["results"][0]["status"] == "duplicate"
    bad = tmp_path / "b"
    bad.mkdir()
    (bad / "notes.jpg").write_text("this is not a picture")
    failed = browser.upload(bad / "notes.jpg")
    result = failed.json()["results"][0]
    assert result["status"] == "failed" and result["reason"]
    assert Photo.select().count() == 1
    # Without the token, or as a visitor: refused, nothing stored.
    browser.csrf = "wrong"
    assert browser.upload(samples / "jpeg/nature/silver_fir.jpg").status_code == 403
    assert Web(server).upload(samples / "jpeg/nature/silver_fir.jpg").status_code == 403
    assert Photo.select().count() == 1


def test_upload_names_are_display_text(server: str, admin: User, samples: Path) -> None:
    browser = web_as(server, "admin", "correct horse")
    answer = browser.upload(samples / JPEG, names=["../../etc/passwd\n.jpg"])
    result = answer.json()["results"][0]
    assert result["status"] == "imported" and "/" not in result["name"] and "\n" not in result["name"]
    stored = File.get()
    assert stored.path.startswith("originals/") and ".." not in stored.path


@pytest.mark.slow
def test_a_100_mb_raw_uploads_without_filling_memory(
    admin: User, library: Library, samples: Path, tmp_path: Path
) -> None:
    """The server's peak memory grows by far less than the file while a 100 MB RAW streams in."""
    config: Config = library.config
    big = tmp_path / "BIG_0001.dng"
    with big.open("wb") as out:  # the real 24 MP DNG, padded to 100 MB as a RAW with a large trailer
        out.write((samples / "raw/synthetic_24mp_fullprev.dng").read_bytes())
        out.truncate(100 * 1024 * 1024)
    port = free_port()
    env = {**os.environ, **config.env(), "PORT": str(port), "PYTHONPATH": str(REPO), "THREADS": "4"}
    proc = subprocess.Popen([sys.executable, "serve.py", "run"], cwd=REPO, env=env, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base, proc)
        browser = web_as(base, "admin", "correct horse")
        before = _peak_rss(proc.pid)
        answer = browser.upload(big)
        assert answer.status_code == 200, answer.text
        assert answer.json()["results"][0]["status"] == "imported"
        growth = _peak_rss(proc.pid) - before
        # Decoding its 24 MP preview takes memory of its own; the 100 MB file itself must not be held.
        assert growth < 90 * 1024 * 1024, f"peak memory grew by {growth / 1e6:.0f} MB"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert File.get().size == 100 * 1024 * 1024


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


# -- files, zips, feeds, JSON ------------------------------------------------------------------------


def test_downloads_zips_and_feed(
    server: str, library: Library, admin: User, samples: Path, tmp_path: Path
) -> None:
    album = services.create_album("Trip", admin.id, public=True)
    imported(
        library, admin, *shot(samples, tmp_path / "s"), samples / "jpeg/nature/silver_fir.jpg", album=album
    )
    paired = Photo.get(Photo.file_name == "IMG_0001.jpg")
    visitor = Web(server)
    raw = visitor.get(f"/photo/{paired.id}/file/raw")
    assert raw.status_code == 200 and raw.content == (samples / CR3).read_bytes()
    assert raw.headers["Content-Disposition"].startswith('attachment; filename="IMG_0001.CR3"')
    assert raw.headers["Content-Type"] == "image/x-canon-cr3"
    ranged = visitor.get(f"/photo/{paired.id}/file/raw", headers={"Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.content == (samples / CR3).read_bytes()[10:20]
    for what, names in (
        ("pictures", {"IMG_0001.jpg", "silver_fir.jpg"}),
        ("raws", {"IMG_0001.CR3"}),
        ("both", {"IMG_0001.jpg", "IMG_0001.CR3", "IMG_0001.CR3.xmp", "silver_fir.jpg"}),
    ):
        answer = visitor.get(f"/album/{album.id}/download?what={what}")
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
            assert archive.testzip() is None
            assert set(archive.namelist()) == names, what
            if "IMG_0001.CR3" in names:
                assert archive.read("IMG_0001.CR3") == (samples / CR3).read_bytes()
    selection = visitor.get(f"/download?ids={paired.id}&what=both")
    with zipfile.ZipFile(io.BytesIO(selection.content)) as archive:
        assert set(archive.namelist()) == {"IMG_0001.jpg", "IMG_0001.CR3", "IMG_0001.CR3.xmp"}
    feed = visitor.get(f"/album/{album.id}/feed.atom")
    assert feed.status_code == 200 and feed.headers["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(feed.content)
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert root.find("a:title", ns).text == "Trip" and len(root.findall("a:entry", ns)) == 2
    services.set_album_visibility(album.id, False)
    assert visitor.get(f"/album/{album.id}/feed.atom").status_code == 404


def test_derivatives_cache_and_conditional_requests(
    server: str, library: Library, admin: User, samples: Path
) -> None:
    album = services.create_album("Public", admin.id, public=True)
    photo = imported(library, admin, samples / JPEG, album=album)[0]
    visitor = Web(server)
    url = f"/d/250/{photo.id}-{photo.sha256[:16]}.jpg"
    first = visitor.get(url)
    assert first.status_code == 200 and first.headers["Content-Type"] == "image/jpeg"
    assert first.headers["Cache-Control"] == "public, max-age=31536000, s-maxage=0, immutable"
    again = visitor.get(url, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and not again.content
    head = visitor.http.head(server + url)
    assert head.status_code == 200 and head.headers["Content-Length"] == first.headers["Content-Length"]
    assert not head.content
    assert visitor.get(f"/d/250/{photo.id}-{'0' * 16}.jpg").status_code == 404  # another hash
    assert visitor.get(f"/d/999/{photo.id}-{photo.sha256[:16]}.jpg").status_code == 404
    services.set_album_visibility(album.id, False)
    # A shared cache revalidating (s-maxage=0) after the album went private: refused, not "not modified".
    assert visitor.get(url, headers={"If-None-Match": first.headers["ETag"]}).status_code == 404
    member = web_as(server, "admin", "correct horse")
    private = member.get(url)
    assert private.status_code == 200 and private.headers["Cache-Control"].startswith("private")


def test_grid_json(server: str, library: Library, admin: User, samples: Path) -> None:
    photos = imported(library, admin, samples / "jpeg/gps", samples / "jpeg/dates")
    member = web_as(server, "admin", "correct horse")
    days = member.get("/api/timeline").json()["days"]
    assert sum(n for _, n in days) == len(photos)
    assert [d for d, _ in days] == sorted((d for d, _ in days), reverse=True)
    span = []
    for day, count in days:
        some = member.get(f"/api/days?newest={day}&oldest={day}").json()["photos"]
        assert len(some) == count and {p[3] for p in some} == {day}
        span += some
    assert {p[0] for p in span} == {p.id for p in photos}
    assert all(len(p[1]) == 16 and p[2] > 0 for p in span)
    assert member.get("/api/days?newest=2030-01-01&oldest=2010-01-01").status_code == 400  # too long a span
    assert member.get("/api/days?newest=2020-01-01&oldest=2021-01-01").status_code == 400
    assert member.get("/api/days?newest=x&oldest=y").status_code == 400
    page = member.get("/")
    first = re.search(r'<script type="application/json" id="first-screen">(.*?)</script>', page.text, re.S)
    assert first and str(photos[-1].id) in first.group(1)
    # Visitors see nothing of a library without public albums.
    assert Web(server).get("/api/timeline").json()["days"] == []


def test_serve_command_serves_the_gallery(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    assert run_cli(config, "db", "upgrade").returncode == 0
    port = free_port()
    env = {**os.environ, **config.env(), "PORT": str(port), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "photoflow", "serve"], cwd=REPO, env=env, stderr=subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base, proc)
        assert Web(base).get("/").headers["Location"].endswith("/setup")
        assert Web(base).get("/static/vendor/pig.js").status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_upload_with_a_mixed_case_boundary(server: str, admin: User, samples: Path) -> None:
    """Browsers' boundaries are mixed case (Chromium: ----WebKitFormBoundary...); case matters."""
    browser = web_as(server, "admin", "correct horse")
    boundary = "----WebKitFormBoundaryJI4a5V2BU5tdun8Z"
    data = (samples / JPEG).read_bytes()
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="Mixed.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = browser.http.post(
        server + "/upload",
        data=body,
        headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-CSRF-Token": browser.csrf,
            "Origin": server,
        },
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["status"] == "imported"


def test_the_forms_maxlength_are_the_limits_the_services_check(
    server: str, library: Library, admin: User, samples: Path
) -> None:
    from photoflow.services import text

    photo = imported(library, admin, samples / "jpeg/gps/DSCN0010.jpg")[0]
    services.create_album("Trip", admin.id)
    browser = web_as(server, "admin", "correct horse")
    album = services.albums()[0]
    expected = {
        "/albums": {text.MAX_ALBUM_TITLE},
        f"/album/{album.id}": {text.MAX_ALBUM_TITLE, text.MAX_DESCRIPTION},
        f"/photo/{photo.id}": {text.MAX_PHOTO_TITLE, text.MAX_DESCRIPTION},
        "/upload": {text.MAX_ALBUM_TITLE},
        "/users": {text.MAX_USER_NAME},
    }
    for path, limits in expected.items():
        page = browser.get(path)
        assert page.status_code == 200, path
        assert {int(n) for n in re.findall(r'maxlength="(\d+)"', page.text)} == limits, path
