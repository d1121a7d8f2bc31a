"""peewee models and their query vocabulary. The schema itself is built by `photoflow/migrations/`."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from peewee import (
    BooleanField,
    CharField,
    CompositeKey,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from photoflow.db import db

# A row id as clients send it: ASCII digits that fit the 64-bit id columns. Anything else is refused,
# never passed on: "²".isdigit() is true but int("²") raises, and past 2**63 SQLite raises
# OverflowError; both were 500s. Bottle's <id:int> route filter takes the same pattern (web/app.py).
ID_DIGITS = r"[0-9]{1,18}"
_ID = re.compile(ID_DIGITS)


def parse_id(text: str | None) -> int | None:
    """The id `text` spells, or None when it spells none."""
    return int(text) if text and _ID.fullmatch(text) else None


def utcnow() -> dt.datetime:
    """The current UTC time as a naive datetime, the way every timestamp column stores it."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


class User(BaseModel):
    name = CharField(max_length=64, unique=True)
    password_hash = CharField(max_length=255)
    is_admin = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)


class Session(BaseModel):
    # Only a hash of the cookie value is stored, so a copy of the database does not log anyone in.
    token_hash = CharField(max_length=64, primary_key=True)
    user = ForeignKeyField(User, backref="sessions", on_delete="CASCADE")
    csrf_token = CharField(max_length=64)
    created_at = DateTimeField(default=utcnow)
    last_seen_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField(index=True)


class Photo(BaseModel):
    owner = ForeignKeyField(User, backref="photos", on_delete="RESTRICT")
    # SHA-256 of the file the photo is shown from (its picture, or its RAW when it has none); the
    # derivatives are named after it.
    sha256 = CharField(max_length=64, unique=True)
    file_name = CharField(max_length=255)  # the client's name: display text only, never a path
    pair_key = CharField(max_length=255, index=True)  # base name that pairs a picture with its RAW
    kind = CharField(max_length=16)  # "picture" or "raw": what the photo is shown from
    format = CharField(max_length=16)
    width = IntegerField()  # after EXIF orientation
    height = IntegerField()
    taken_at = DateTimeField(null=True)  # local time of capture as the camera recorded it
    taken_offset = IntegerField(null=True)  # minutes east of UTC, when the file says
    date_source = CharField(max_length=64, null=True)
    camera_make = CharField(max_length=200, null=True)
    camera_model = CharField(max_length=200, null=True)
    lens = CharField(max_length=200, null=True)
    exposure_time = FloatField(null=True)
    aperture = FloatField(null=True)
    iso = IntegerField(null=True)
    focal_length = FloatField(null=True)
    focal_length_35mm = FloatField(null=True)
    flash = CharField(max_length=200, null=True)
    gps_lat = FloatField(null=True)
    gps_lon = FloatField(null=True)
    gps_alt = FloatField(null=True)
    orientation = IntegerField(null=True)
    software = CharField(max_length=200, null=True)
    derived_from = CharField(max_length=255, null=True, index=True)
    edited = BooleanField(null=True)
    rating = IntegerField(null=True)  # -1 rejected, 0..5
    color_labels = CharField(max_length=64, default="")  # comma-separated names
    title = TextField(default="")
    description = TextField(default="")
    author = CharField(max_length=200, default="")  # as a Piwigo client sends it
    metadata_json = TextField(default="{}")  # every tag exiftool read
    level = IntegerField(default=0)  # Piwigo privacy level: 0 everyone, 1/2/4/8 members only
    # Kept by the database's own triggers (migration 0003): level 0 and in a public album.
    public = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    @property
    def metadata(self) -> dict[str, Any]:
        """The full tag set as a dict."""
        return json.loads(self.metadata_json or "{}")

    @property
    def keywords(self) -> list[str]:
        """The photo's tags by name, in alphabetical order."""
        query = Tag.select(Tag.name).join(PhotoTag).where(PhotoTag.photo == self).order_by(Tag.name)
        return [t.name for t in query]


class Album(BaseModel):
    title = CharField(max_length=200)
    description = TextField(default="")
    is_public = BooleanField(default=False)
    owner = ForeignKeyField(User, null=True, backref="albums", on_delete="SET NULL")
    cover = ForeignKeyField(Photo, null=True, on_delete="SET NULL")
    share_token = CharField(max_length=64, null=True, unique=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)


class File(BaseModel):
    photo = ForeignKeyField(Photo, backref="files", on_delete="CASCADE")
    role = CharField(max_length=16)  # "original", "raw" or "sidecar"
    sha256 = CharField(max_length=64, unique=True)
    size = IntegerField()
    format = CharField(max_length=16)
    mime = CharField(max_length=64)
    path = CharField(max_length=255)  # relative to the datastore
    original_name = CharField(max_length=255)
    md5 = CharField(max_length=32, null=True)  # Piwigo clients find files by MD5
    created_at = DateTimeField(default=utcnow)


class Tag(BaseModel):
    name = CharField(max_length=200, unique=True)


class PhotoTag(BaseModel):
    photo = ForeignKeyField(Photo, on_delete="CASCADE")
    tag = ForeignKeyField(Tag, backref="photos", on_delete="CASCADE")

    class Meta:
        primary_key = CompositeKey("photo", "tag")


class PhotoAlbum(BaseModel):
    photo = ForeignKeyField(Photo, backref="album_links", on_delete="CASCADE")
    album = ForeignKeyField(Album, backref="photo_links", on_delete="CASCADE")
    added_at = DateTimeField(default=utcnow)

    class Meta:
        primary_key = CompositeKey("album", "photo")


class LoginFailure(BaseModel):
    """One failed login, by address ("ip:…") and by account ("user:…"), for the rate limit."""

    key = CharField(max_length=300, index=True)
    at = DateTimeField(default=utcnow, index=True)


class LibraryState(BaseModel):
    """Counters kept by the database itself; `generation` moves (by trigger) with every gallery change."""

    name = CharField(max_length=32, primary_key=True)
    value = IntegerField(default=0)

    @classmethod
    def generation(cls) -> int:
        """The current gallery generation."""
        row = cls.get_or_none(cls.name == "generation")
        return row.value if row else 0


ALL_MODELS = (User, Session, Album, Photo, File, Tag, PhotoTag, PhotoAlbum, LoginFailure, LibraryState)
