"""Listings cost a fixed number of queries whatever their size (counted at the database, not timed).

A page of ws.php's getImages, the albums of getList and the albums page ran two or three queries per
photo or album; darktable pages through the whole library 500 at a time. bench/piwigo_paging_bench.py
measures the same at 100,000 photos.
"""

from __future__ import annotations

from typing import Any

from photoflow import gallery, piwigo, services
from photoflow.access import ANONYMOUS, Viewer
from photoflow.db import statements
from photoflow.library import Library
from photoflow.models import Photo, User


def ws(library: Library, viewer: Viewer, method: str, **params: str) -> Any:
    call = piwigo.Call(
        method=method,
        params={key: [value] for key, value in params.items()},
        http_method="GET",
        library=library,
        viewer=viewer,
        session=None,
        address="127.0.0.1",
        base_url="http://photos.test",
        secret=library.config.secret,
    )
    return piwigo.to_json(piwigo.dispatch(call).result)


def test_a_page_of_get_images_costs_the_same_whatever_its_size(stocked: Library, admin: User) -> None:
    for viewer in (Viewer(admin), ANONYMOUS):
        counts = {}
        for per_page in ("1", "4", "11"):
            with statements() as seen:
                result = ws(stocked, viewer, "pwg.categories.getImages", per_page=per_page)
            assert len(result["images"]) == min(int(per_page), result["paging"]["total_count"])
            counts[per_page] = len(seen)
        assert len(set(counts.values())) == 1, counts
        assert counts["11"] <= 5


def test_a_page_of_an_albums_images_costs_the_same(stocked: Library, admin: User) -> None:
    album = next(a for a in services.albums() if a.title == "Cameras")
    counts = []
    for per_page in ("2", "11"):
        with statements() as seen:
            result = ws(
                stocked, Viewer(admin), "pwg.categories.getImages", cat_id=str(album.id), per_page=per_page
            )
        assert result["paging"]["count"] == int(per_page)
        counts.append(len(seen))
    assert counts[0] == counts[1]


def test_get_info_and_get_list_cost_a_fixed_number(stocked: Library, admin: User) -> None:
    photo = Photo.select().first()
    with statements() as seen:
        info = ws(stocked, Viewer(admin), "pwg.images.getInfo", image_id=str(photo.id))
    assert info["id"] == photo.id and len(seen) <= 5
    counts = []
    for extra in (0, 6):
        for i in range(extra):
            album = services.create_album(f"More {i}", admin.id, public=True)
            services.add_to_album(album.id, [photo.id])
        for viewer in (Viewer(admin), ANONYMOUS):
            with statements() as seen:
                listed = ws(stocked, viewer, "pwg.categories.getList")
            assert listed["categories"]
            counts.append(len(seen))
    assert counts[0] == counts[2] and counts[1] == counts[3], counts


def test_the_albums_page_costs_a_fixed_number(stocked: Library, admin: User) -> None:
    photos = [p.id for p in Photo.select(Photo.id)]
    counts = []
    for extra in (0, 5):
        for i in range(extra):
            album = services.create_album(f"Trip {i}", admin.id, public=bool(i % 2))
            services.add_to_album(album.id, photos[i : i + 3])
            if i == 2:
                services.set_cover(album.id, photos[i + 1])
        with statements() as seen:
            cards = gallery.album_cards(ANONYMOUS)
        assert cards
        counts.append(len(seen))
    assert counts[0] == counts[1], counts
