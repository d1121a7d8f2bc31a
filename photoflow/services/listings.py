"""What the doors list for people to pick from: albums and users with their counts, and one photo's
albums, keywords and files. Read-only queries; the console shows them, any door may."""

from __future__ import annotations

from dataclasses import dataclass

from peewee import JOIN, fn

from photoflow.errors import NotFound
from photoflow.models import Album, File, Photo, PhotoAlbum, User


@dataclass(frozen=True)
class AlbumListing:
    """An album with how many photos it holds and its owner's name ("" when it has none)."""

    album: Album
    photos: int
    owner_name: str


def albums_with_counts() -> list[AlbumListing]:
    """Every album by title, with its photo count and owner: two queries whatever their number."""
    counts = dict(
        PhotoAlbum.select(PhotoAlbum.album, fn.COUNT(PhotoAlbum.photo)).group_by(PhotoAlbum.album).tuples()
    )
    query = (
        Album.select(Album, User.name.alias("owner_name"))
        .join(User, JOIN.LEFT_OUTER, on=(Album.owner == User.id))
        .order_by(fn.LOWER(Album.title), Album.id)
        .objects()
    )
    return [AlbumListing(album, counts.get(album.id, 0), album.owner_name or "") for album in query]


@dataclass(frozen=True)
class UserListing:
    """An account with how many photos it owns."""

    user: User
    photos: int


def users_with_counts() -> list[UserListing]:
    """Every account by name, with its photo count: two queries whatever their number."""
    counts = dict(Photo.select(Photo.owner, fn.COUNT(Photo.id)).group_by(Photo.owner).tuples())
    query = User.select().order_by(fn.LOWER(User.name), User.id)
    return [UserListing(user, counts.get(user.id, 0)) for user in query]


def photo_albums(photo_id: int) -> list[tuple[int, str]]:
    """The albums a photo is in, as (id, title), by title."""
    query = (
        Album.select(Album.id, Album.title)
        .join(PhotoAlbum)
        .where(PhotoAlbum.photo == photo_id)
        .order_by(fn.LOWER(Album.title), Album.id)
        .tuples()
    )
    return list(query)


@dataclass(frozen=True)
class PhotoDetails:
    """One photo with the titles of its albums, its keywords and its files (original first)."""

    photo: Photo
    albums: list[str]
    keywords: list[str]
    files: list[File]


def photo_details(photo_id: int) -> PhotoDetails:
    """Everything a details screen shows of a photo, read at once; NotFound when it is gone."""
    photo = Photo.get_or_none(Photo.id == photo_id)
    if photo is None:
        raise NotFound("no such photo")
    return PhotoDetails(
        photo,
        [title for _id, title in photo_albums(photo_id)],
        photo.keywords,
        list(File.select().where(File.photo == photo_id).order_by(File.role)),
    )
