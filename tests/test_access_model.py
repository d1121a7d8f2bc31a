"""The access rule against a model, over real HTTP: hypothesis drives random sequences of changes.

A RuleBasedStateMachine uploads photos (the web upload tab, sometimes with a RAW beside the JPEG, or
ws.php addSimple with a level), moves them into and out of albums (the photo's form, the album's
"remove" form), flips albums public and private, deletes albums, sets levels (ws.php setInfo),
deletes photos (the form, or ws.php), chooses covers, and makes and revokes share links — each
through the doors people use, on a real server. After every step, for every photo ever uploaded:

- an anonymous visitor gets its bytes (the original, every derivative size, the RAW if any) if and
  only if the model says it is public — level 0, in at least one public album, not deleted — and
  otherwise the same 404 as for a photo that never existed;
- ws.php as a guest agrees: getImages (everything, and each album), getInfo, getList (the public
  albums, their counts, and covers that are public photos), and so does the gallery's first screen;
- a share link's holder gets, under /s/<token>, what is public plus the level-0 photos of the shared
  album; a revoked link opens nothing.

Expectations come from the model alone, never from the database.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from photoflow import db as database
from photoflow import services
from photoflow.library import Library, open_library
from photoflow.models import Album, Photo
from photoflow.storage import DERIVATIVE_SIZES
from tests.conftest import Web, make_config, make_jpegs, serving, web_as

PASSWORD = "correct horse"
LEVELS = (0, 1, 2, 4, 8)
MISSING = 999999
CR3 = "raw/Canon-R6-pruned.CR3"
_numbers = itertools.count(1)  # every generated picture is new bytes, across examples too


# -- the model ---------------------------------------------------------------------------------------


@dataclass
class ModelPhoto:
    """What the model knows of one uploaded photo: its bytes, and what decides who sees it."""

    id: int
    picture: bytes = field(repr=False)
    raw: bytes | None = field(default=None, repr=False)
    level: int = 0
    albums: set[int] = field(default_factory=set)
    deleted: bool = False

    @property
    def sha(self) -> str:
        return hashlib.sha256(self.picture).hexdigest()


@dataclass
class ModelAlbum:
    """An album: public or not, its live share link, and whether it was deleted."""

    id: int
    public: bool
    token: str | None = None


@dataclass
class Env:
    """The test's server and the people using it."""

    base: str
    library: Library
    src: Path
    cr3: bytes
    admin: Web  # the web, logged in through the form
    piwigo: Web  # ws.php, logged in through pwg.session.login
    pwg_token: str


# -- HTTP helpers ------------------------------------------------------------------------------------


def ws(client: Web, method: str, data: dict | None = None, files: dict | None = None) -> dict:
    """A ws.php call (POST, JSON); the whole envelope."""
    answer = client.http.post(
        client.base + "/ws.php?format=json",
        data={"method": method, **(data or {})},
        files=files,
        timeout=120,
        allow_redirects=False,
    )
    return answer.json()


def ws_result(client: Web, method: str, data: dict | None = None, files: dict | None = None):
    body = ws(client, method, data, files)
    assert body["stat"] == "ok", (method, body)
    return body["result"]


def get(client: Web, path: str) -> requests.Response:
    return client.http.get(client.base + path, allow_redirects=False, timeout=60)


def redirected(answer: requests.Response, what: str) -> None:
    assert answer.status_code == 303, f"{what}: {answer.status_code} {answer.text[:300]}"


def script_json(answer: requests.Response, element_id: str) -> list[int]:
    """The photo ids a page carries in <script type="application/json" id=...>."""
    assert answer.status_code == 200, answer.text[:300]
    found = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', answer.text, re.S)
    assert found, f"no #{element_id} in the page"
    return [entry[0] for entry in json.loads(found.group(1))]


# -- the machine -------------------------------------------------------------------------------------


class AccessModel(RuleBasedStateMachine):
    """Random changes through the web and ws.php; after each, anonymous access matches the model."""

    env: Env  # set by the test

    def __init__(self) -> None:
        super().__init__()
        self.photos: dict[int, ModelPhoto] = {}  # live photos by id
        self.gone: list[ModelPhoto] = []  # deleted photos (their ids may be given again in SQLite)
        self.albums: dict[int, ModelAlbum] = {}
        self.revoked: list[str] = []
        self.visitor = Web(self.env.base)

    def teardown(self) -> None:
        # The next example starts from an empty library (services, not HTTP: this is not under test).
        for (photo_id,) in Photo.select(Photo.id).tuples():
            services.delete_photo(photo_id, self.env.library.store)
        for (album_id,) in Album.select(Album.id).tuples():
            services.delete_album(album_id)

    # -- what the model says -------------------------------------------------------------------------

    def public(self, photo: ModelPhoto) -> bool:
        return (
            not photo.deleted
            and photo.level == 0
            and any(self.albums[a].public for a in photo.albums if a in self.albums)
        )

    def shared(self, photo: ModelPhoto, album: ModelAlbum) -> bool:
        """Does the holder of `album`'s link see the photo?"""
        return self.public(photo) or (not photo.deleted and photo.level == 0 and album.id in photo.albums)

    # -- rules ---------------------------------------------------------------------------------------

    @initialize()
    def two_albums(self) -> None:
        """A public and a private album to start with, so that most uploads land in one."""
        self.create_album(public=True)
        self.create_album(public=False)

    @rule(public=st.booleans())
    def create_album(self, public: bool) -> None:
        admin = self.env.admin
        answer = admin.post("/albums", {"title": f"Album {next(_numbers)}", "public": "1" if public else "0"})
        redirected(answer, "create album")
        found = re.search(r"/album/(\d+)$", answer.headers["Location"])
        assert found, answer.headers["Location"]
        album_id = int(found.group(1))
        self.albums[album_id] = ModelAlbum(album_id, public)

    def _new_picture(self) -> Path:
        number = next(_numbers)
        (path,) = make_jpegs(self.env.src, 1, start=number)
        return path

    def _album(self, data: st.DataObject, maybe_none: bool = True) -> int | None:
        choices: list[int | None] = sorted(self.albums)
        if maybe_none:
            choices = [None, *choices]
        return data.draw(st.sampled_from(choices), label="album")

    @rule(data=st.data(), with_raw=st.booleans())
    def upload_through_the_web(self, data: st.DataObject, with_raw: bool) -> None:
        album = self._album(data)
        picture = self._new_picture()
        paths = [picture]
        raw = None
        if with_raw:
            # The sample CR3 with a box of its own appended: still a CR3, but new bytes, same base name.
            payload = f"photoflow-model {picture.stem} {next(_numbers)}".encode()
            raw = self.env.cr3 + struct.pack(">I", 8 + len(payload)) + b"free" + payload
            raw_path = picture.with_suffix(".CR3")
            raw_path.write_bytes(raw)
            paths.append(raw_path)
        answer = self.env.admin.upload(*paths, album=album)
        assert answer.status_code == 200, answer.text[:300]
        results = answer.json()["results"]
        assert [r["status"] for r in results] == ["imported", "attached"][: len(paths)], results
        (photo_id,) = {r["photo"] for r in results}
        self._add(ModelPhoto(photo_id, picture.read_bytes(), raw, albums={album} if album else set()))

    @rule(data=st.data(), level=st.one_of(st.just(0), st.sampled_from(LEVELS)))
    def upload_through_ws(self, data: st.DataObject, level: int) -> None:
        album = self._album(data)
        picture = self._new_picture()
        fields = {"level": str(level), **({"category": str(album)} if album else {})}
        files = {"image": (picture.name, picture.read_bytes(), "image/jpeg")}
        result = ws_result(self.env.piwigo, "pwg.images.addSimple", fields, files)
        photo = ModelPhoto(result["image_id"], picture.read_bytes(), level=level)
        photo.albums = {album} if album else set()
        self._add(photo)

    def _add(self, photo: ModelPhoto) -> None:
        assert photo.id not in self.photos, "a live photo's id was given to another"
        self.photos[photo.id] = photo

    def _photo(self, data: st.DataObject) -> ModelPhoto:
        return self.photos[data.draw(st.sampled_from(sorted(self.photos)), label="photo")]

    @precondition(lambda self: self.photos and self.albums)
    @rule(data=st.data())
    def move_into_an_album(self, data: st.DataObject) -> None:
        """The photo's form: its albums, plus one."""
        photo, album = self._photo(data), self._album(data, maybe_none=False)
        assert album is not None
        wanted = sorted(photo.albums | {album})
        answer = self.env.admin.post(
            f"/photo/{photo.id}", {"albums_sent": "1", "album": [str(a) for a in wanted]}
        )
        redirected(answer, "photo form")
        photo.albums = set(wanted)

    def _photo_in_an_album(self, data: st.DataObject) -> tuple[ModelPhoto, int]:
        """A photo that is in some album, and one of its albums."""
        ids = sorted(p.id for p in self.photos.values() if p.albums)
        photo = self.photos[data.draw(st.sampled_from(ids), label="photo")]
        return photo, data.draw(st.sampled_from(sorted(photo.albums)), label="album")

    @precondition(lambda self: any(p.albums for p in self.photos.values()))
    @rule(data=st.data())
    def take_out_of_an_album(self, data: st.DataObject) -> None:
        """The album's "remove" form, or the photo's form with one album less."""
        photo, album = self._photo_in_an_album(data)
        if data.draw(st.booleans(), label="through the album's form"):
            answer = self.env.admin.post(f"/album/{album}", {"action": "remove", "photo": str(photo.id)})
        else:
            rest = [str(a) for a in sorted(photo.albums - {album})]
            answer = self.env.admin.post(f"/photo/{photo.id}", {"albums_sent": "1", "album": rest})
        redirected(answer, "take out")
        photo.albums.discard(album)

    @precondition(lambda self: self.albums)
    @rule(data=st.data())
    def flip_an_album(self, data: st.DataObject) -> None:
        album = self.albums[self._album(data, maybe_none=False)]  # type: ignore[index]
        public = not album.public
        answer = self.env.admin.post(
            f"/album/{album.id}", {"action": "visibility", "public": "1" if public else "0"}
        )
        redirected(answer, "visibility form")
        album.public = public

    @precondition(lambda self: self.photos)
    @rule(data=st.data(), level=st.sampled_from(LEVELS))
    def set_a_level(self, data: st.DataObject, level: int) -> None:
        photo = self._photo(data)
        ws_result(self.env.piwigo, "pwg.images.setInfo", {"image_id": str(photo.id), "level": str(level)})
        photo.level = level

    @precondition(lambda self: self.photos)
    @rule(data=st.data(), through_ws=st.booleans())
    def delete_a_photo(self, data: st.DataObject, through_ws: bool) -> None:
        photo = self._photo(data)
        if through_ws:
            params = {"image_id": str(photo.id), "pwg_token": self.env.pwg_token}
            assert ws_result(self.env.piwigo, "pwg.images.delete", params) == 1
        else:
            redirected(self.env.admin.post(f"/photo/{photo.id}", {"action": "delete"}), "delete form")
        photo.deleted = True
        del self.photos[photo.id]
        self.gone.append(photo)

    @precondition(lambda self: self.albums)
    @rule(data=st.data())
    def delete_an_album(self, data: st.DataObject) -> None:
        album = self.albums.pop(self._album(data, maybe_none=False))  # type: ignore[arg-type]
        redirected(self.env.admin.post(f"/album/{album.id}", {"action": "delete"}), "album delete")
        if album.token:
            self.revoked.append(album.token)
        for photo in self.photos.values():
            photo.albums.discard(album.id)

    @precondition(lambda self: any(p.albums for p in self.photos.values()))
    @rule(data=st.data())
    def choose_a_cover(self, data: st.DataObject) -> None:
        photo, album = self._photo_in_an_album(data)
        answer = self.env.admin.post(f"/album/{album}", {"action": "cover", "photo": str(photo.id)})
        redirected(answer, "cover form")

    @precondition(lambda self: any(not a.public for a in self.albums.values()))
    @rule(data=st.data())
    def share_an_album(self, data: st.DataObject) -> None:
        """The private album's form (public albums offer no link: anyone sees them already)."""
        private = sorted(a.id for a in self.albums.values() if not a.public)
        album = self.albums[data.draw(st.sampled_from(private), label="album")]
        redirected(self.env.admin.post(f"/album/{album.id}", {"action": "share"}), "share form")
        page = self.env.admin.get(f"/album/{album.id}").text
        found = re.search(r'value="http://[^"]+/s/([^"/]+)"', page)
        assert found, "the album page shows no share link"
        if album.token:
            self.revoked.append(album.token)  # a new link replaces the old one
        album.token = found.group(1)

    @precondition(lambda self: any(a.token for a in self.albums.values()))
    @rule(data=st.data())
    def revoke_a_share_link(self, data: st.DataObject) -> None:
        shared = sorted(a.id for a in self.albums.values() if a.token)
        album = self.albums[data.draw(st.sampled_from(shared), label="album")]
        redirected(self.env.admin.post(f"/album/{album.id}", {"action": "unshare"}), "unshare form")
        assert album.token
        self.revoked.append(album.token)
        album.token = None

    # -- the invariant -------------------------------------------------------------------------------

    def _urls(self, photo: ModelPhoto) -> dict[str, tuple[str, bytes | None]]:
        """Every URL holding the photo's bytes, with the bytes it must give (None: a derivative)."""
        urls: dict[str, tuple[str, bytes | None]] = {
            f"d/{size}": (f"/d/{size}/{{id}}-{photo.sha[:16]}.jpg", None) for size in DERIVATIVE_SIZES
        }
        urls["original"] = ("/photo/{id}/file/original", photo.picture)
        if photo.raw is not None:
            urls["raw"] = ("/photo/{id}/file/raw", photo.raw)
        return urls

    def _check_bytes(self, client: Web, prefix: str, photo: ModelPhoto, visible: bool, kinds=None) -> None:
        for kind, (path, expected) in self._urls(photo).items():
            if kinds is not None and kind not in kinds:
                continue
            answer = get(client, prefix + path.format(id=photo.id))
            what = f"{prefix or 'anonymous'} {kind} of photo {photo.id} (model: {photo})"
            if visible:
                assert answer.status_code == 200, what
                if expected is not None:
                    assert answer.content == expected, what
                else:
                    assert answer.content[:3] == b"\xff\xd8\xff", what
            elif photo.deleted and photo.id in self.photos:
                # SQLite gave the id to a newer photo: its URLs are that one's now, never these bytes.
                assert answer.status_code == 404 or answer.content != expected, what
                assert expected is not None or answer.status_code == 404, what
            else:
                missing = get(client, prefix + path.format(id=MISSING))
                assert answer.status_code == 404, what
                assert answer.content == missing.content, what

    @invariant()
    def anonymous_access_matches_the_model(self) -> None:
        visitor = self.visitor
        everyone = [*self.photos.values(), *self.gone]
        public = {p.id for p in self.photos.values() if self.public(p)}
        for photo in everyone:
            self._check_bytes(visitor, "", photo, self.public(photo))

        # ws.php as a guest: the same photos, the public albums, their counts, covers among the public.
        listing = ws_result(visitor, "pwg.categories.getImages", {"per_page": "500"})
        assert {image["id"] for image in listing["images"]} == public
        assert listing["paging"]["total_count"] == len(public)
        for photo in self.photos.values():
            info = ws(visitor, "pwg.images.getInfo", {"image_id": str(photo.id)})
            assert (info["stat"] == "ok") == (photo.id in public), (photo, info)
            if photo.id not in public:
                assert info == ws(visitor, "pwg.images.getInfo", {"image_id": str(MISSING)})
        for photo in self.gone:
            if photo.id not in self.photos:
                info = ws(visitor, "pwg.images.getInfo", {"image_id": str(photo.id)})
                assert info == ws(visitor, "pwg.images.getInfo", {"image_id": str(MISSING)})
        public_albums = {a.id for a in self.albums.values() if a.public}
        categories = ws_result(visitor, "pwg.categories.getList", {"recursive": "true"})["categories"]
        assert {c["id"] for c in categories} == public_albums
        for category in categories:
            inside = {p.id for p in self.photos.values() if category["id"] in p.albums and p.id in public}
            assert category["nb_images"] == len(inside), category
            cover = category["representative_picture_id"]
            assert cover is None or int(cover) in inside, category
            images = ws_result(visitor, "pwg.categories.getImages", {"cat_id": str(category["id"])})
            assert {image["id"] for image in images["images"]} == inside
        for album in self.albums.values():
            if not album.public:
                hidden = ws(visitor, "pwg.categories.getImages", {"cat_id": str(album.id)})
                assert hidden == ws(visitor, "pwg.categories.getImages", {"cat_id": str(MISSING)})

        # The web's listings: the gallery's first screen (all of it: the model never holds more than a
        # screen), and each public album's page; a private album's page is a 404 like a missing one's.
        assert set(script_json(get(visitor, "/"), "first-screen")) == public
        for album in self.albums.values():
            answer = get(visitor, f"/album/{album.id}")
            if album.public:
                inside = {p.id for p in self.photos.values() if album.id in p.albums and p.id in public}
                assert set(script_json(answer, "album-photos")) == inside, album
            else:
                assert answer.status_code == 404
                assert answer.content == get(visitor, f"/album/{MISSING}").content

    @invariant()
    def share_links_open_what_the_model_says(self) -> None:
        visitor = self.visitor
        everyone = [*self.photos.values(), *self.gone]
        for album in self.albums.values():
            if album.token:
                for photo in everyone:
                    seen = self.shared(photo, album)
                    self._check_bytes(visitor, f"/s/{album.token}", photo, seen, ("d/250", "original"))
        for token in self.revoked[-3:]:
            assert get(visitor, f"/s/{token}").status_code == 404
            for photo in self.photos.values():
                self._check_bytes(visitor, f"/s/{token}", photo, False, ("d/250",))


# -- the test ----------------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path, samples: Path) -> Iterator[Env]:
    """A fresh library with an admin, on its own server; the admin logged in on the web and on ws.php."""
    from photoflow.web import create_app

    config = make_config(tmp_path)
    database.open_database(config.database)
    database.upgrade()
    library = open_library(config)
    services.create_user("admin", PASSWORD, admin=True)
    try:
        with serving(create_app(library)) as base:
            admin = web_as(base, "admin", PASSWORD)
            piwigo = Web(base)
            assert ws_result(piwigo, "pwg.session.login", {"username": "admin", "password": PASSWORD})
            token = ws_result(piwigo, "pwg.session.getStatus")["pwg_token"]
            src = tmp_path / "src"
            src.mkdir()
            yield Env(base, library, src, (samples / CR3).read_bytes(), admin, piwigo, token)
    finally:
        library.close()


@pytest.mark.slow
def test_anonymous_access_follows_the_model(env: Env) -> None:
    """9 sequences of up to 15 changes (about 45-60 s here), each from the emptied library; a failure
    takes some minutes more to shrink to its shortest sequence (each replay is real HTTP)."""
    AccessModel.env = env
    run_state_machine_as_test(
        AccessModel,
        settings=settings(
            max_examples=9,
            stateful_step_count=15,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
