"""ws.php methods on albums (Piwigo's categories): list, add, delete, and a page of their images."""

from __future__ import annotations

from typing import Any

from peewee import fn

from photoflow import access, gallery, services
from photoflow.models import Album, Photo, PhotoAlbum
from photoflow.piwigo.envelopes import NamedArray, NamedStruct
from photoflow.piwigo.protocol import ACCESS_DENIED, INVALID_PARAM, NOT_FOUND, Call, Param, WsError, method
from photoflow.piwigo.shapes import CATEGORY_ATTRIBUTES, IMAGE_ATTRIBUTES, IMAGE_COLUMNS, category, images

MAX_PER_PAGE = 500


@method(
    "pwg.categories.getList",
    Param("cat_id", "positive", optional=True, default=0),
    Param("recursive", "bool", optional=True, default=False),
    Param("public", "bool", optional=True, default=False),
    Param("tree_output", "bool", optional=True, default=False),
    Param("fullname", "bool", optional=True, default=False),
    Param("thumbnail_size", optional=True, default="thumb"),
    guests=True,
)
def categories_list(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """The albums the caller may see (Photoflow's albums are flat: every one is top level)."""
    query = Album.select().where(access.visible_albums(call.viewer)).order_by(fn.LOWER(Album.title), Album.id)
    if p["public"]:
        query = query.where(Album.is_public == True)  # noqa: E712
    if p["cat_id"]:
        # Piwigo answers an album's children and the album itself; ours have no children.
        query = query.where(Album.id == p["cat_id"])
    albums = list(query)
    summaries = gallery.album_summaries(call.viewer, [album.id for album in albums])
    cats = [
        category(call, album, summaries[album.id], rank, p["fullname"])
        for rank, album in enumerate(albums, 1)
    ]
    return {"categories": NamedArray(cats, "category", CATEGORY_ATTRIBUTES)}


@method(
    "pwg.categories.add",
    Param("name"),
    Param("parent", "positive", optional=True),
    Param("comment", optional=True, default=""),
    Param("visible", "bool", optional=True, default=True),
    Param("status", optional=True),
    Param("commentable", "bool", optional=True, default=True),
    post_only=True,
)
def categories_add(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """A new album: public when status is "public" (darktable's "everyone"), private otherwise."""
    if p["parent"]:
        # Albums are flat in Photoflow: a parent must exist and be visible, and the album is made at the
        # top level beside it.
        access.album_for(call.viewer, p["parent"])
    if p["status"] not in (None, "public", "private"):
        raise WsError(INVALID_PARAM, "Invalid parameter status: public or private")
    user = access.require_member(call.viewer)
    album = services.create_album(
        p["name"], user.id, public=p["status"] == "public", description=p["comment"]
    )
    return {"info": "Album added", "id": album.id}


@method(
    "pwg.categories.delete",
    Param("category_id", "positive", array=True),
    Param("photo_deletion_mode", optional=True, default="no_delete"),
    post_only=True,
    token=True,
)
def categories_delete(call: Call, p: dict[str, Any]) -> None:
    """Delete albums; their photos stay in the library (whatever photo_deletion_mode says)."""
    albums = [_album(album_id) for album_id in p["category_id"]]
    if not all(access.may_delete_album(call.viewer, album) for album in albums):
        raise WsError(ACCESS_DENIED, "Access denied: only an album's owner or an administrator may delete it")
    for album in albums:
        services.delete_album(album.id)
    return None


@method(
    "pwg.categories.getImages",
    Param("cat_id", "positive", optional=True, array=True),
    Param("recursive", "bool", optional=True, default=False),
    Param("per_page", "positive", optional=True, default=100, max_value=MAX_PER_PAGE),
    Param("page", "positive", optional=True, default=0),
    Param("order", optional=True),
    guests=True,
)
def categories_images(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    """A page of photos of albums (or of everything), newest first; `count` is the number on this page.

    A fixed number of queries whatever the page's size (darktable pages through every photo, 500 at a
    time, to find the one it exports again).
    """
    condition = access.visible_photos(call.viewer)
    if p["cat_id"]:
        wanted = sorted(set(p["cat_id"]))
        seen = Album.select(Album.id).where(Album.id.in_(wanted) & access.visible_albums(call.viewer))
        if len(seen) != len(wanted):
            raise WsError(NOT_FOUND, "Invalid category")
        in_albums = fn.EXISTS(
            PhotoAlbum.select(PhotoAlbum.photo).where(
                (PhotoAlbum.photo == Photo.id) & PhotoAlbum.album.in_(wanted)
            )
        )
        condition = condition & in_albums
    total = Photo.select().where(condition).count()
    per_page = max(1, p["per_page"])
    photos = list(gallery.page_of_photos(condition, p["page"] * per_page, per_page, IMAGE_COLUMNS))
    found = images(call, photos)
    paging = {"page": p["page"], "per_page": per_page, "count": len(found), "total_count": total}
    return {
        "paging": NamedStruct(paging, "paging", ("page", "per_page", "count", "total_count")),
        "images": NamedArray(found, "image", IMAGE_ATTRIBUTES),
    }


def _album(album_id: int) -> Album:
    album = Album.get_or_none(Album.id == album_id)
    if album is None:
        raise WsError(NOT_FOUND, f"Album {album_id} does not exist")
    return album
