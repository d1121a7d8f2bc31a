"""Server-side sessions and the login rate limit, both in the database so every instance shares them.

A session id is 256 random bits given to the browser; the database keeps only its SHA-256, so a copy
of the database logs nobody in. Each session has its own CSRF token. Failed logins are counted per
address and per account name; past the limit, logins are refused before any password is checked.
Every check of a password goes through here: the logins of both doors and a member's re-check of
their own password (the password-change form), all under the same counts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from photoflow import services
from photoflow.db import db
from photoflow.errors import PhotoflowError
from photoflow.models import LoginFailure, Session, User, utcnow

SESSION_LIFETIME = dt.timedelta(days=30)
# last_seen_at is written at most this often, so that browsing is not a stream of writes.
TOUCH_EVERY = dt.timedelta(minutes=5)
FAILURE_WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES = 10  # per address and per account within the window


class RateLimited(PhotoflowError):
    """Too many failed logins; `retry_after` is in seconds."""

    def __init__(self, reason: str, retry_after: int) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class Started:
    """A new session: the id for the cookie (shown once, never stored) and its CSRF token."""

    token: str
    csrf_token: str
    user: User


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def start(user: User) -> Started:
    """A new session for `user` (a fresh id at every login, so a planted id is worthless)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = utcnow()
    with db.atomic():
        Session.create(
            token_hash=_hash(token),
            user=user,
            csrf_token=csrf,
            created_at=now,
            last_seen_at=now,
            expires_at=now + SESSION_LIFETIME,
        )
        # Expired sessions go as new ones come: no separate clean-up job to forget.
        Session.delete().where(Session.expires_at < now).execute()
    return Started(token, csrf, user)


def lookup(token: str | None) -> Session | None:
    """The live session for a cookie value, with its user; None if unknown or expired."""
    if not token or len(token) > 200:
        return None
    now = utcnow()
    session = (
        Session.select(Session, User)
        .join(User)
        .where((Session.token_hash == _hash(token)) & (Session.expires_at > now))
        .first()
    )
    if session is not None and now - session.last_seen_at > TOUCH_EVERY:
        Session.update(last_seen_at=now, expires_at=now + SESSION_LIFETIME).where(
            Session.token_hash == session.token_hash
        ).execute()
    return session


def end(token: str | None) -> None:
    """End the session with this cookie value (logout)."""
    if token:
        Session.delete().where(Session.token_hash == _hash(token)).execute()


def csrf_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison of CSRF tokens."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


# -- logging in --------------------------------------------------------------------------------------


def _keys(name: str, address: str) -> list[str]:
    return [f"ip:{address}"[:300], f"user:{(name or '').strip().casefold()}"[:300]]


def check_rate(name: str, address: str) -> None:
    """Raise RateLimited when this address or this account has failed too often lately."""
    since = utcnow() - FAILURE_WINDOW
    for key in _keys(name, address):
        recent = (
            LoginFailure.select(LoginFailure.at)
            .where((LoginFailure.key == key) & (LoginFailure.at > since))
            .order_by(LoginFailure.at)
        )
        times = [row.at for row in recent.limit(MAX_FAILURES)]
        if len(times) >= MAX_FAILURES:
            wait = int((times[0] + FAILURE_WINDOW - utcnow()).total_seconds()) + 1
            minutes = max(1, (wait + 59) // 60)
            raise RateLimited(f"too many failed logins: try again in {minutes} minutes", max(1, wait))


def login(name: str, password: str, address: str) -> User | None:
    """Check the password, within the rate limit shared by the web and ws.php.

    Returns the user, or None for a wrong name or password (the same answer, in about the same time).
    Raises RateLimited without checking anything when the limit is reached.
    """
    check_rate(name, address)
    user = services.authenticate(name, password)
    keys = _keys(name, address)
    with db.atomic():
        if user is None:
            LoginFailure.insert_many([{"key": key} for key in keys]).execute()
            LoginFailure.delete().where(LoginFailure.at < utcnow() - FAILURE_WINDOW).execute()
        else:
            # A success clears the account's count (not the address's: one right password must not
            # reset an attacker's tally of guesses at other accounts).
            LoginFailure.delete().where(LoginFailure.key == keys[1]).execute()
    return user


def recheck(user: User, password: str, address: str) -> bool:
    """Check a logged-in user's password again (before a password change), within the login's limit.

    A stolen session must not be a way to guess the real password: each failure here counts toward
    the account's and the address's limit as a failed login does, and past it RateLimited is raised
    before anything is checked, the right password included.
    """
    found = login(user.name, password, address)
    return found is not None and found.id == user.id
