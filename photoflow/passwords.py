"""Password hashing with argon2id, and the checks a new password must pass."""

from __future__ import annotations

import functools
import os
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from photoflow.errors import Invalid

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; a bound keeps a megabyte "password" from costing CPU

# argon2-cffi's defaults are argon2id with RFC 9106's low-memory profile.
_hasher = PasswordHasher()
# Each hash or check holds 64 MB for about a third of a second. Without a bound, logins arriving at
# once on every request thread (from many addresses, which the rate limit does not stop) would take a
# gigabyte; more at once than there are cores would not finish sooner anyway.
_at_once = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))


@functools.cache
def _dummy() -> str:
    """A hash verified when the user does not exist, so an unknown name costs what a wrong password does.

    Made on first use, not at import: hashing costs a fifth of a second that every import worker
    process would otherwise pay for nothing.
    """
    with _at_once:
        return _hasher.hash("photoflow-timing-equaliser")


def check_new(password: str) -> None:
    """Refuse a password that is too short, too long or blank."""
    if not password or not password.strip():
        raise Invalid("the password is empty")
    if len(password) < MIN_LENGTH:
        raise Invalid(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise Invalid(f"the password must have at most {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    """An argon2id hash of `password`."""
    with _at_once:
        return _hasher.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """True when `password` matches the stored hash; with no hash, spends the same time and says no."""
    if len(password) > MAX_LENGTH:
        password = password[:MAX_LENGTH]
    against = stored or _dummy()
    try:
        with _at_once:
            return _hasher.verify(against, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when the hash was made with older parameters and should be replaced at the next login."""
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True
