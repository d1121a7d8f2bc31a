"""Who may see what: the one visibility rule every page, JSON answer and file route asks.

- Members (anyone logged in) see every photo and album; admins also manage users.
- Visitors see public albums, and in them the photos whose level is 0. Levels 1, 2, 4 and 8 come
  from Piwigo; Photoflow has no groups behind them, so any level above 0 means "members only".
- A share link shows one private album, read-only, with the same level rule.

What a viewer may not see is, to that viewer, exactly like what does not exist (NotFound).
"""

from __future__ import annotations

from dataclasses import dataclass

from peewee import Expression, fn

from photoflow.errors import Forbidden, NotFound
from photoflow.models import Album, Photo, PhotoAlbum, User


@dataclass(frozen=True)
class Viewer:
    """The person asking: a member (user), a visitor, or a visitor holding an album's share link."""

    user: User | None = None
    shared_album_id: int | None = None

    @property
    def is_member(self) -> bool:
        """Logged in."""
        return self.user is not None

    @property
    def is_admin(self) -> bool:
        """Logged in as an administrator."""
        return self.user is not None and bool(self.user.is_admin)

    @property
    def kind(self) -> str:
        """A short name for what this viewer sees, for caches: "member", "share:N" or "public"."""
        if self.is_member:
            return "member"
        if self.shared_album_id is not None:
            return f"share:{self.shared_album_id}"
        return "public"


ANONYMOUS = Viewer()


def visible_albums(viewer: Viewer) -> Expression | bool:
    """A condition on Album: the albums `viewer` may see."""
    if viewer.is_member:
        return True
    condition = Album.is_public == True  # noqa: E712 (peewee builds SQL from ==)
    if viewer.shared_album_id is not None:
        condition = condition | (Album.id == viewer.shared_album_id)
    return condition


def visible_photos(viewer: Viewer) -> Expression | bool:
    """A condition on Photo: the photos `viewer` may see.

    For visitors this reads `photo.public`, which the database keeps (by trigger, in the same
    transaction as any change) equal to "level 0 and in at least one public album".
    """
    if viewer.is_member:
        return True
    public = Photo.public == True  # noqa: E712 (peewee builds SQL from ==)
    if viewer.shared_album_id is None:
        return public
    in_shared = fn.EXISTS(
        PhotoAlbum.select(PhotoAlbum.photo).where(
            (PhotoAlbum.photo == Photo.id) & (PhotoAlbum.album == viewer.shared_album_id)
        )
    )
    return public | ((Photo.level == 0) & in_shared)


def public_rule() -> Expression:
    """What `photo.public` must equal, computed afresh (for tests and checks of the triggers)."""
    in_public_album = fn.EXISTS(
        PhotoAlbum.select(PhotoAlbum.photo)
        .join(Album)
        .where((PhotoAlbum.photo == Photo.id) & (Album.is_public == True))  # noqa: E712
    )
    return (Photo.level == 0) & in_public_album


def photo_for(viewer: Viewer, photo_id: int) -> Photo:
    """The photo if `viewer` may see it; NotFound otherwise, as if it did not exist."""
    photo = Photo.select().where((Photo.id == photo_id) & visible_photos(viewer)).first()
    if photo is None:
        raise NotFound("no such photo")
    return photo


def photo_file_for(viewer: Viewer, photo_id: int) -> tuple[str, bool]:
    """The shown file's hash and whether anyone may see the photo, if `viewer` may; NotFound otherwise.

    The lean form of photo_for for the file routes, asked once for every thumbnail of a grid.
    """
    query = Photo.select(Photo.sha256, Photo.public).where((Photo.id == photo_id) & visible_photos(viewer))
    row = query.tuples().first()
    if row is None:
        raise NotFound("no such photo")
    return row[0], bool(row[1])


def album_for(viewer: Viewer, album_id: int) -> Album:
    """The album if `viewer` may see it; NotFound otherwise."""
    album = Album.select().where((Album.id == album_id) & visible_albums(viewer)).first()
    if album is None:
        raise NotFound("no such album")
    return album


def album_photos(viewer: Viewer, album: Album) -> Expression | bool:
    """A condition on Photo: the photos of `album` that `viewer` may see there (album already checked)."""
    member_of = fn.EXISTS(
        PhotoAlbum.select(PhotoAlbum.photo).where(
            (PhotoAlbum.photo == Photo.id) & (PhotoAlbum.album == album.id)
        )
    )
    return member_of if viewer.is_member else member_of & visible_in_album(viewer)


def visible_in_album(viewer: Viewer) -> Expression | bool:
    """A condition on Photo, for photos of an album `viewer` may see: members see all, visitors level 0."""
    if viewer.is_member:
        return True
    return Photo.level == 0


def require_member(viewer: Viewer) -> User:
    """The member's account; Forbidden for visitors."""
    if viewer.user is None:
        raise Forbidden("log in first")
    return viewer.user


def require_admin(viewer: Viewer) -> User:
    """The admin's account; Forbidden for everyone else."""
    user = require_member(viewer)
    if not user.is_admin:
        raise Forbidden("only administrators may do this")
    return user


def may_delete_photo(viewer: Viewer, photo: Photo) -> bool:
    """Members may delete their own photos, admins any."""
    return viewer.user is not None and (viewer.is_admin or photo.owner_id == viewer.user.id)


def may_delete_album(viewer: Viewer, album: Album) -> bool:
    """Members may delete albums they made (and albums nobody owns any more), admins any."""
    return viewer.user is not None and (viewer.is_admin or album.owner_id in (None, viewer.user.id))
