"""Sessions and authentication through both doors that take a password: the web forms and /ws.php.

security.md's cases, each tried against the real app over HTTP: session fixation, logout and password
change ending sessions everywhere, one rate limit, an unknown user costing what a wrong password costs,
a CSRF token and our Origin on every state-changing route the app has (found from its route table, so a
new route cannot slip past), and a foreign Origin on ws.php. The rate limit itself and ws.php's Origin
rules are in test_web.py and test_piwigo.py; this module adds what those do not cover.
"""

from __future__ import annotations

import hashlib
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from photoflow import db as database
from photoflow import services, sessions
from photoflow.batch import import_files
from photoflow.importer import ImportOptions
from photoflow.library import Library, open_library
from photoflow.models import Session, User
from photoflow.web import create_app
from photoflow.web.context import SESSION_COOKIE
from tests.conftest import Web, make_config, serving, web_as
from tests.test_piwigo import Client

PASSWORD = "correct horse"
SMALL = "jpeg/small-cameras/Canon_40D.jpg"
HOST = "127.0.0.1"  # where the test servers listen


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[str, Library]]:
    """A server that trusts 127.0.0.1 as its proxy, so each request may name its own client address."""
    config = make_config(tmp_path, TRUSTED_PROXIES="127.0.0.1/32")
    database.open_database(config.database)
    database.upgrade()
    library = open_library(config)
    try:
        with serving(create_app(library)) as base:
            yield base, library
    finally:
        library.close()


def digest() -> str:
    """A fingerprint of every row of every table, to prove a refusal changed nothing."""
    h = hashlib.sha256()
    for model in sorted(database.db.get_tables()):
        for row in database.db.execute_sql(f'SELECT * FROM "{model}" ORDER BY 1'):
            h.update(repr(row).encode())
    return h.hexdigest()


# -- fixation -----------------------------------------------------------------------------------------


def test_a_planted_web_session_id_is_never_adopted(server: str, admin: User) -> None:
    """An attacker who sets the victim's cookie (a sibling subdomain, a shared machine) gains nothing:
    neither a made-up id nor the attacker's own live session becomes the victim's after login."""
    services.create_user("mallory", "mallory's password")
    mallory = web_as(server, "mallory", "mallory's password")
    planted_live = mallory.http.cookies[SESSION_COOKIE]
    for planted in ("attacker-chosen-value", planted_live):
        victim = Web(server)
        # As a browser would hold it: for this host and path, so the login's Set-Cookie replaces it.
        victim.http.cookies.set(SESSION_COOKIE, planted, domain=HOST, path="/")
        answer = victim.login("admin", PASSWORD)
        assert answer.status_code == 303
        fresh = victim.http.cookies[SESSION_COOKIE]
        assert fresh != planted
        # The planted id is still nobody's admin session: with it, the admin pages stay closed.
        holder = requests.Session()
        holder.cookies.set(SESSION_COOKIE, planted)
        assert holder.get(server + "/users", allow_redirects=False).status_code in (303, 403)
    assert victim.get("/users").status_code == 200


def test_a_planted_pwg_id_is_never_adopted(server: str, admin: User) -> None:
    client = Client(server)
    client.http.cookies.set("pwg_id", "attacker-chosen-value", domain=HOST, path="/")
    client.login()
    assert client.pwg_id != "attacker-chosen-value"
    assert client.ok("pwg.session.getStatus")["username"] == "admin"
    stranger = Client(server)
    stranger.http.cookies.set("pwg_id", "attacker-chosen-value")
    assert stranger.ok("pwg.session.getStatus")["username"] == "guest"


# -- logout and password changes end sessions on the server ------------------------------------------


def test_logout_kills_the_cookie_on_the_server_not_only_in_the_browser(server: str, admin: User) -> None:
    browser = web_as(server, "admin", PASSWORD)
    stolen = browser.http.cookies[SESSION_COOKIE]
    assert browser.post("/logout").status_code == 303
    replay = requests.Session()
    replay.cookies.set(SESSION_COOKIE, stolen)
    assert replay.get(server + "/users", allow_redirects=False).status_code == 303  # to the login page
    assert Session.select().count() == 0


def test_a_password_reset_by_an_admin_ends_every_session_of_that_user_on_both_doors(
    server: str, admin: User
) -> None:
    services.create_user("bob", "bob's password")
    bob_web = web_as(server, "bob", "bob's password")
    bob_ws = Client(server)
    bob_ws.login("bob", "bob's password")
    boss = web_as(server, "admin", PASSWORD)
    bob_id = User.get(User.name == "bob").id
    assert boss.post(f"/users/{bob_id}/password", {"password": "bob's new password"}).status_code == 303
    assert bob_web.get("/upload").status_code == 303
    assert bob_ws.ok("pwg.session.getStatus")["username"] == "guest"
    # The admin's own session is untouched by another user's reset.
    assert boss.get("/users").status_code == 200


def test_changing_ones_own_password_keeps_this_session_and_ends_the_others(server: str, admin: User) -> None:
    here = web_as(server, "admin", PASSWORD)
    elsewhere = web_as(server, "admin", PASSWORD)
    darktable = Client(server)
    darktable.login()
    changed = here.post(
        "/account/password", {"old": PASSWORD, "new": "a new long secret", "new2": "a new long secret"}
    )
    assert changed.status_code == 303, changed.text[:300]
    assert here.get("/users").status_code == 200
    assert elsewhere.get("/users").status_code == 303
    assert darktable.ok("pwg.session.getStatus")["username"] == "guest"


# -- the password form re-checks the password under the login's rate limit --------------------------

NEW = {"new": "the thief's password", "new2": "the thief's password"}


def _alert(answer: requests.Response) -> str:
    """The error sentence a form page shows."""
    found = re.search(r'<p class="error" role="alert">([^<]*)</p>', answer.text)
    assert found, answer.text[:500]
    return found.group(1)


def _login_from(base: str, name: str, password: str, address: str) -> requests.Response:
    browser = Web(base)
    browser.get("/login")
    return browser.post("/login", {"name": name, "password": password}, headers={"X-Forwarded-For": address})


def test_a_stolen_session_cannot_guess_the_password_on_the_change_form(server: str, admin: User) -> None:
    """Ten wrong current passwords, and the eleventh try is refused before it is checked (429), the
    right password included: the form is limited like the login, with the login's sentence."""
    thief = web_as(server, "admin", PASSWORD)
    for n in range(sessions.MAX_FAILURES):
        wrong = thief.post("/account/password", {"old": f"guess {n}", **NEW})
        assert wrong.status_code == 400 and _alert(wrong) == "The current password is wrong."
    limited = thief.post("/account/password", {"old": PASSWORD, **NEW})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert _alert(limited).startswith("Too many failed logins: try again in ")
    assert services.authenticate("admin", PASSWORD) is not None  # unchanged
    assert services.authenticate("admin", NEW["new"]) is None
    # The same counts as the login's, and the same sentence.
    login = Web(server)
    refused = login.login("admin", PASSWORD)
    assert refused.status_code == 429 and _alert(refused) == _alert(limited)
    assert thief.get("/account").status_code == 200  # the session itself is not ended by the limit


@pytest.mark.slow
def test_failures_on_the_change_form_count_toward_the_logins_limits(proxied) -> None:
    """Per account and per address, as failed logins do; and failed logins limit the form."""
    base, _library = proxied
    for name in ("ann", "bob", "cid"):
        services.create_user(name, f"{name}'s password")
    ann = web_as(base, "ann", "ann's password")
    half = sessions.MAX_FAILURES // 2
    for n in range(half):  # half the guesses on the form, from the thief's address...
        wrong = ann.post(
            "/account/password", {"old": f"guess {n}", **NEW}, headers={"X-Forwarded-For": "203.0.113.7"}
        )
        assert wrong.status_code == 400
    for n in range(sessions.MAX_FAILURES - half):  # ...and half at the login, from another one
        assert _login_from(base, "ann", f"login guess {n}", "198.51.100.9").status_code == 401
    # The account's count is full: the right password is refused, wherever it comes from.
    assert _login_from(base, "ann", "ann's password", "192.0.2.1").status_code == 429
    limited = ann.post("/account/password", {"old": "ann's password", **NEW})
    assert limited.status_code == 429
    # The thief's address holds half a count from the form: half more at other accounts' logins fill it.
    for n in range(sessions.MAX_FAILURES - half):
        assert _login_from(base, "bob", f"guess {n}", "203.0.113.7").status_code == 401
    assert _login_from(base, "cid", "cid's password", "203.0.113.7").status_code == 429
    # Elsewhere, another account logs in as usual.
    assert _login_from(base, "cid", "cid's password", "192.0.2.2").status_code == 303
    assert services.authenticate("ann", "ann's password") is not None


# -- an unknown name costs what a wrong password costs ------------------------------------------------


def _login_time(base: str, name: str, password: str, address: str) -> tuple[float, int, str]:
    browser = Web(base)
    browser.get("/login")
    started = time.perf_counter()
    answer = browser.post(
        "/login", {"name": name, "password": password}, headers={"X-Forwarded-For": address}
    )
    elapsed = time.perf_counter() - started
    return elapsed, answer.status_code, re.sub(r'(value|content)="[^"]*"', "", answer.text)


@pytest.mark.serial
def test_an_unknown_user_and_a_wrong_password_answer_alike_in_about_the_same_time(proxied) -> None:
    """Not a speed test: without the dummy hash an unknown name answers ~50x faster than a wrong
    password (a few ms against an argon2 verification), which tells an attacker who has an account.
    Each attempt comes from its own address and names its own account, so the rate limit stays out."""
    base, _library = proxied
    users = [f"user{n}" for n in range(9)]
    for name in users:
        services.create_user(name, f"{name}'s password")
    unknown, wrong = [], []
    for n, name in enumerate(users):
        t, status, body_unknown = _login_time(base, f"nobody{n}", "a guess", f"192.0.2.{n + 1}")
        unknown.append(t)
        assert status == 401
        t, status, body_wrong = _login_time(base, name, "a guess", f"198.51.100.{n + 1}")
        wrong.append(t)
        assert status == 401
        # The same page either way, but for the name typed back into the form.
        assert body_unknown.replace(f"nobody{n}", "") == body_wrong.replace(name, "")
    ratio = statistics.median(unknown) / statistics.median(wrong)
    print(f"unknown user {statistics.median(unknown) * 1000:.1f} ms, wrong password "
          f"{statistics.median(wrong) * 1000:.1f} ms, ratio {ratio:.2f}")  # fmt: skip
    assert 0.5 < ratio < 2, (unknown, wrong)
    # ws.php answers both with the same error.
    client = Client(base)
    assert client.fail("pwg.session.login", {"username": "nobody", "password": "x"}) == client.fail(
        "pwg.session.login", {"username": "user0", "password": "x"}
    )


# -- CSRF and Origin on every state-changing route ------------------------------------------------------


def _bodies(ids: dict[str, int]) -> dict[str, dict[str, str]]:
    """For each state-changing route, a body that succeeds with the token, so a refusal is the token's."""
    return {
        "/login": {"name": "admin", "password": PASSWORD},
        "/logout": {},
        "/account/password": {"old": PASSWORD, "new": "another long one", "new2": "another long one"},
        "/users": {"name": "eve", "password": "eve's password"},
        "/users/<user_id:int>/password": {"password": "bob's new password"},
        "/users/<user_id:int>/admin": {"admin": "1"},
        "/users/<user_id:int>/delete": {},
        "/api/albums": {"title": "By script"},
        "/albums": {"title": "By form"},
        "/album/<album_id:int>": {"action": "visibility", "public": "1"},
        "/photo/<photo_id:int>": {"title": "Renamed"},
    }


# Routes with their own rule: /setup exists only before the first admin (tested in test_web.py),
# /upload is multipart with the token in a header (below), /ws.php is Piwigo's (test_piwigo.py).
OWN_RULES = {"/setup", "/upload", "/ws.php"}


def _url(rule: str, ids: dict[str, int]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in ids, f"no test id for <{name}> in {rule}: add one to this test"
        return str(ids[name])

    return re.sub(r"<(\w+)(?::\w+)?>", fill, rule)


@pytest.fixture
def routes_world(library: Library, admin: User, server: str, samples: Path):
    bob = services.create_user("bob", "bob's password")
    album = services.create_album("Private things", admin.id)
    summary = import_files(library, [samples / SMALL], ImportOptions(owner_id=admin.id), workers=1)
    photo_id = summary.results[0].photo_id
    app = create_app(library)
    changing = sorted(
        {r.rule for r in app.routes if r.method not in ("GET", "HEAD")} - OWN_RULES
    )  # fmt: skip
    return server, {"user_id": bob.id, "album_id": album.id, "photo_id": photo_id}, changing


@pytest.mark.parametrize(
    "attack",
    ["no token", "wrong token", "foreign origin", "opaque origin", "cross-site fetch"],
)
def test_every_state_changing_route_needs_the_token_and_our_origin(routes_world, attack: str) -> None:
    server, ids, changing = routes_world
    bodies = _bodies(ids)
    assert set(changing) == set(bodies), "a new state-changing route: give it a body in _bodies"
    # /login is a visitor's form (double-submitted token); the others are an admin's. A refusal changes
    # nothing, so one browser of each serves every route.
    visitor, admin = Web(server), web_as(server, "admin", PASSWORD)
    visitor.get("/login")
    admin.get("/")
    for rule in changing:
        browser = visitor if rule == "/login" else admin
        data, headers, csrf = dict(bodies[rule]), {}, True
        if attack == "no token":
            csrf = False
        elif attack == "wrong token":
            data["csrf"] = "not-the-token"
        elif attack == "foreign origin":
            headers["Origin"] = "https://evil.example"
        elif attack == "opaque origin":
            headers["Origin"] = "null"
        else:
            headers["Sec-Fetch-Site"] = "cross-site"
        before = digest()
        answer = browser.post(_url(rule, ids), data, csrf=csrf, headers=headers)
        assert answer.status_code == 403, (rule, attack, answer.status_code, answer.text[:300])
        # Nothing at all changed (the sessions table included: the logins happened before `before`).
        assert digest() == before, (rule, attack)


@pytest.mark.slow
def test_the_same_bodies_go_through_with_the_token_and_our_origin(routes_world) -> None:
    """So the refusals above are the checks' doing, not a bad body's."""
    server, ids, changing = routes_world
    bodies = _bodies(ids)
    for rule in changing:
        browser = Web(server) if rule == "/login" else web_as(server, "admin", PASSWORD)
        browser.get("/login" if rule == "/login" else "/")
        answer = browser.post(_url(rule, ids), bodies[rule])
        assert answer.status_code in (200, 201, 303), (rule, answer.status_code, answer.text[:300])
        if rule == "/account/password":
            services.set_password(User.get(User.name == "admin").id, PASSWORD)
        if rule == "/users/<user_id:int>/delete":
            ids["user_id"] = services.create_user("bob2", "bob's password").id


def test_an_upload_needs_the_token_header_and_our_origin(server: str, admin: User, samples: Path) -> None:
    browser = web_as(server, "admin", PASSWORD)
    path = samples / SMALL
    for headers in (
        {"Origin": browser.origin},  # no token
        {"X-CSRF-Token": "forged", "Origin": browser.origin},
        {"X-CSRF-Token": browser.csrf, "Origin": "https://evil.example"},
        {"X-CSRF-Token": browser.csrf, "Sec-Fetch-Site": "cross-site"},
    ):
        before = digest()
        with path.open("rb") as fh:
            answer = browser.http.post(
                server + "/upload",
                files=[("file", (path.name, fh, "image/jpeg"))],
                headers=headers,
                timeout=60,
            )
        assert answer.status_code == 403, (headers, answer.text[:300])
        assert digest() == before
    assert browser.upload(path).status_code == 200


def test_ws_php_refuses_a_foreign_origin_even_with_a_valid_session_and_token(
    server: str, admin: User
) -> None:
    client = Client(server)
    client.login()
    token = client.token()
    before = digest()
    code, _ = client.fail(
        "pwg.categories.add",
        {"name": "From evil", "pwg_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert code in (401, 403)
    assert digest() == before
    assert client.ok("pwg.categories.add", {"name": "From darktable"})["id"]


@pytest.mark.serial
def test_password_checks_at_once_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each argon2 check holds 64 MB: sixteen request threads checking at once must not all run."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from photoflow import passwords

    real = passwords._hasher
    stored = real.hash("a long enough password")
    running, peak, lock = [0], [0], threading.Lock()

    class Counting:
        """The real hasher, counting how many of its checks run at the same moment."""

        def verify(self, hash: str, password: str) -> bool:
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            try:
                return real.verify(hash, password)
            finally:
                with lock:
                    running[0] -= 1

    monkeypatch.setattr(passwords, "_hasher", Counting())
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: passwords.verify(stored, "a long enough password"), range(16)))
    assert all(results)
    assert 1 < peak[0] <= passwords._at_once._initial_value, peak
