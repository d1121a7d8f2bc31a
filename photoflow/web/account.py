"""Accounts: the first admin on a fresh install, logging in and out, one's password, and users for admins."""

from __future__ import annotations

from typing import Any

from bottle import Bottle, request, response

from photoflow import access, services, sessions
from photoflow.errors import Conflict, Invalid, NotFound
from photoflow.library import Library
from photoflow.web.context import (
    check_csrf,
    clear_session_cookie,
    current,
    go,
    page,
    safe_next,
    set_session_cookie,
)


def client_address() -> str:
    """The address the rate limit counts by: the peer, or the client a trusted proxy names (proxy.py)."""
    return request.environ.get("REMOTE_ADDR") or "unknown"


def install(app: Bottle, library: Library) -> None:
    """The account routes."""

    @app.get("/setup")
    def setup_form() -> str:
        if not services.needs_setup():
            raise NotFound("no such page")
        return page("setup", title="Welcome to Photoflow", error="", name="")

    @app.post("/setup")
    def setup() -> Any:
        check_csrf()
        name = request.forms.getunicode("name") or ""
        password = request.forms.getunicode("password") or ""
        if password != (request.forms.getunicode("password2") or ""):
            return page(
                "setup", status=400, title="Welcome to Photoflow", error="The passwords differ.", name=name
            )
        try:
            user = services.create_first_admin(name, password)
        except Conflict:
            raise NotFound("no such page") from None
        except Invalid as exc:
            return page(
                "setup", status=400, title="Welcome to Photoflow", error=_sentence(exc.reason), name=name
            )
        _log_in(user)
        go("/upload", f"Welcome, {user.name}. Your account is ready: add your first photos.")

    @app.get("/login")
    def login_form() -> str:
        if services.needs_setup():
            go("/setup")
        return page("login", title="Log in", error="", name="", next=safe_next(request.query.get("next")))

    @app.post("/login")
    def login() -> Any:
        check_csrf()
        name = request.forms.getunicode("name") or ""
        password = request.forms.getunicode("password") or ""
        target = safe_next(request.forms.getunicode("next"))
        try:
            user = sessions.login(name, password, client_address())
        except sessions.RateLimited as exc:
            response.set_header("Retry-After", str(exc.retry_after))
            return page(
                "login", status=429, title="Log in", error=_sentence(exc.reason), name=name, next=target
            )
        if user is None:
            return page(
                "login", status=401, title="Log in", error="Wrong name or password.", name=name, next=target
            )
        _log_in(user)
        go(target)

    @app.post("/logout")
    def logout() -> None:
        check_csrf()
        sessions.end(request.get_cookie("pf_session"))
        clear_session_cookie()
        go("/", "You are logged out.")

    @app.get("/account")
    def account_form() -> str:
        user = access.require_member(current().viewer)
        return page("account", title="Your account", user=user, error="")

    @app.post("/account/password")
    def change_password() -> Any:
        check_csrf()
        user = access.require_member(current().viewer)
        old = request.forms.getunicode("old") or ""
        new = request.forms.getunicode("new") or ""
        try:
            # The login's rate limit and counts: a stolen session cannot guess the password here.
            right = sessions.recheck(user, old, client_address())
        except sessions.RateLimited as exc:
            response.set_header("Retry-After", str(exc.retry_after))
            return page("account", status=429, title="Your account", user=user, error=_sentence(exc.reason))
        if not right:
            return page(
                "account", status=400, title="Your account", user=user, error="The current password is wrong."
            )
        if new != (request.forms.getunicode("new2") or ""):
            return page(
                "account", status=400, title="Your account", user=user, error="The new passwords differ."
            )
        try:
            services.set_password(user.id, new)  # ends every session, this one too
        except Invalid as exc:
            return page("account", status=400, title="Your account", user=user, error=_sentence(exc.reason))
        _log_in(user)
        go("/account", "Password changed. Every other session has been logged out.")

    # -- users (admins) ------------------------------------------------------------------------------

    @app.get("/users")
    def users() -> str:
        access.require_admin(current().viewer)
        return page("users", title="Users", users=services.users(), error="")

    @app.post("/users")
    def create_user() -> Any:
        check_csrf()
        access.require_admin(current().viewer)
        name = request.forms.getunicode("name") or ""
        try:
            services.create_user(
                name, request.forms.getunicode("password") or "", admin=bool(request.forms.get("admin"))
            )
        except (Invalid, Conflict) as exc:
            return page(
                "users", status=400, title="Users", users=services.users(), error=_sentence(exc.reason)
            )
        go("/users", f"Created {name.strip()}.")

    @app.post("/users/<user_id:int>/password")
    def reset_password(user_id: int) -> Any:
        check_csrf()
        access.require_admin(current().viewer)
        try:
            services.set_password(user_id, request.forms.getunicode("password") or "")
        except Invalid as exc:
            return page(
                "users", status=400, title="Users", users=services.users(), error=_sentence(exc.reason)
            )
        go("/users", "Password reset; that account's sessions are logged out.")

    @app.post("/users/<user_id:int>/admin")
    def toggle_admin(user_id: int) -> Any:
        check_csrf()
        access.require_admin(current().viewer)
        try:
            services.set_admin(user_id, request.forms.get("admin") == "1")
        except Conflict as exc:
            return page(
                "users", status=409, title="Users", users=services.users(), error=_sentence(exc.reason)
            )
        go("/users", "Saved.")

    @app.post("/users/<user_id:int>/delete")
    def delete_user(user_id: int) -> Any:
        check_csrf()
        admin = access.require_admin(current().viewer)
        try:
            moved = services.delete_user(user_id, heir_id=admin.id)
        except Conflict as exc:
            return page(
                "users", status=409, title="Users", users=services.users(), error=_sentence(exc.reason)
            )
        go("/users", f"Deleted; {moved} photos are now yours.")


def _log_in(user: Any) -> None:
    """A new session (a new id: a planted one is worthless) and its cookie."""
    old = request.get_cookie("pf_session")
    if old:
        sessions.end(old)
    started = sessions.start(user)
    set_session_cookie(started.token)


def _sentence(reason: str) -> str:
    return reason[:1].upper() + reason[1:] + ("" if reason.endswith(".") else ".")
