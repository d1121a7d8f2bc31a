"""Accounts: creating, authenticating, promoting, deleting."""

from __future__ import annotations

from peewee import fn

from photoflow import passwords
from photoflow.db import db
from photoflow.errors import Conflict, Invalid, NotFound
from photoflow.models import Album, Photo, Session, User
from photoflow.services.text import MAX_USER_NAME


def _clean_user_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("the user name is empty")
    if len(name) > MAX_USER_NAME:
        raise Invalid(f"the user name is longer than {MAX_USER_NAME} characters")
    if not name.isprintable():
        raise Invalid("the user name contains control characters")
    return name


def create_user(name: str, password: str, admin: bool = False) -> User:
    """Create an account; Conflict when the name is taken (names compare without case)."""
    name = _clean_user_name(name)
    passwords.check_new(password)
    hashed = passwords.hash_password(password)  # slow: outside the transaction
    with db.atomic():
        if User.select().where(User.name.ilike(name)).exists():
            raise Conflict(f"a user named {name!r} already exists")
        return User.create(name=name, password_hash=hashed, is_admin=admin)


def user_by_name(name: str) -> User:
    """The user with this name (case-insensitive); NotFound otherwise."""
    user = User.get_or_none(User.name.ilike((name or "").strip()))
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


def authenticate(name: str, password: str) -> User | None:
    """The user when name and password match; None otherwise, in the same time either way."""
    user = User.get_or_none(User.name.ilike((name or "").strip()[:MAX_USER_NAME]))
    if not passwords.verify(user.password_hash if user else None, password or ""):
        return None
    assert user is not None
    if passwords.needs_rehash(user.password_hash):
        User.update(password_hash=passwords.hash_password(password)).where(User.id == user.id).execute()
    return user


def set_password(user_id: int, password: str) -> None:
    """Change a password and end every session of that user."""
    passwords.check_new(password)
    hashed = passwords.hash_password(password)
    with db.atomic():
        if not User.update(password_hash=hashed).where(User.id == user_id).execute():
            raise NotFound("no such user")
        Session.delete().where(Session.user == user_id).execute()


def needs_setup() -> bool:
    """True on a fresh install: no account exists yet, so the first visit may create the first admin."""
    return not User.select().exists()


def create_first_admin(name: str, password: str) -> User:
    """The first account, an admin; Conflict once any account exists (the setup page is gone then)."""
    name = _clean_user_name(name)
    passwords.check_new(password)
    hashed = passwords.hash_password(password)
    with db.atomic():  # IMMEDIATE on SQLite: two first visitors cannot both win
        if User.select().exists():
            raise Conflict("Photoflow is already set up")
        return User.create(name=name, password_hash=hashed, is_admin=True)


def set_admin(user_id: int, admin: bool) -> None:
    """Make an account an admin or not; the last admin stays one."""
    with db.atomic():
        user = User.get_or_none(User.id == user_id)
        if user is None:
            raise NotFound("no such user")
        if not admin and user.is_admin and _admins() <= 1:
            raise Conflict("this is the last administrator: make another one first")
        User.update(is_admin=admin).where(User.id == user_id).execute()


def delete_user(user_id: int, heir_id: int) -> int:
    """Delete an account; its photos and albums pass to `heir_id`, so nothing is lost.

    Returns how many photos changed hands.
    """
    with db.atomic():
        user = User.get_or_none(User.id == user_id)
        if user is None:
            raise NotFound("no such user")
        if user_id == heir_id:
            raise Conflict("an account cannot hand its photos to itself")
        if User.get_or_none(User.id == heir_id) is None:
            raise NotFound("no such user to receive the photos")
        if user.is_admin and _admins() <= 1:
            raise Conflict("this is the last administrator: make another one first")
        moved = Photo.update(owner=heir_id).where(Photo.owner == user_id).execute()
        Album.update(owner=heir_id).where(Album.owner == user_id).execute()
        user.delete_instance()  # sessions go with it
    return moved


def _admins() -> int:
    return User.select().where(User.is_admin == True).count()  # noqa: E712


def users() -> list[User]:
    """Every account, by name."""
    return list(User.select().order_by(fn.LOWER(User.name)))


def first_admin() -> User | None:
    """The oldest administrator account, or None while there is none."""
    return User.select().where(User.is_admin == True).order_by(User.id).first()  # noqa: E712


def default_owner() -> User:
    """The account that owns imports when none is named: the first admin."""
    user = first_admin()
    if user is None:
        raise NotFound("there is no admin account yet: create one with `photoflow create-user NAME --admin`")
    return user
