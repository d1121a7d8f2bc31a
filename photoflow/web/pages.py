"""The pages people look at: the gallery, albums, a photo, the upload tab; and the JSON the grids read.

Viewing routes also exist under /s/<token>, where a share link shows one private album read-only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from bottle import Bottle, HTTPResponse, request, static_file

from photoflow import access, filetypes, gallery, imaging, services, urls
from photoflow.errors import Forbidden, Invalid, NotFound
from photoflow.library import Library
from photoflow.models import File, Photo, parse_id
from photoflow.web.context import answer_json, check_csrf, current, go, open_share, page, safe_next
from photoflow.web.upload import MAX_REQUEST_BYTES

STATIC = Path(__file__).resolve().parents[2] / "static"
# pig.js comes from npm (package.json), installed by the Makefile; it is never copied into the repo.
PIG = Path(__file__).resolve().parents[2] / "node_modules" / "pig.js" / "src" / "pig.js"
MAX_DAYS_SPAN = 400


def install(app: Bottle, library: Library) -> None:
    """The page routes."""

    @app.get("/static/vendor/pig.js")
    def pig_js() -> HTTPResponse:
        if not PIG.is_file():
            raise NotFound("pig.js is not installed: run `make setup`")
        answer = static_file(PIG.name, root=str(PIG.parent), mimetype="text/javascript")
        answer.set_header("Cache-Control", "public, max-age=86400")
        return answer

    @app.get("/static/<path:path>")
    def static(path: str) -> HTTPResponse:
        # Our own containment check: bottle.static_file answers 403 for a path outside its root, and
        # what does not exist here must look like everything else that does not exist.
        root = STATIC.resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise NotFound("no such file")
        answer = static_file(str(target.relative_to(root)), root=str(root))
        answer.set_header("Cache-Control", "public, max-age=3600")
        return answer

    def shared(handler: Any) -> Any:
        def through_link(token: str, **kwargs: Any) -> Any:
            open_share(current(), services.album_by_share_token(token), token)
            return handler(**kwargs)

        return through_link

    @app.get("/")
    def home() -> str:
        if services.needs_setup():
            go("/setup")
        ctx = current()
        first = gallery.first_screen(ctx.viewer)
        return page("gallery", title="Photos", first=[e.as_json() for e in first], grid=_grid_config())

    @app.get("/s/<token>")
    def share_home(token: str) -> str:
        ctx = current()
        album = services.album_by_share_token(token)
        open_share(ctx, album, token)
        return album_page(album.id)

    @app.get("/albums")
    def albums() -> str:
        ctx = current()
        return page("albums", title="Albums", cards=gallery.album_cards(ctx.viewer))

    def album_page(album_id: int) -> str:
        ctx = current()
        album = access.album_for(ctx.viewer, album_id)
        entries = gallery.album_entries(ctx.viewer, album)
        owner = album.owner.name if album.owner_id else ""
        return page(
            "album",
            title=album.title,
            album=album,
            owner=owner,
            entries=[e.as_json() for e in entries],
            may_delete=access.may_delete_album(ctx.viewer, album),
            grid=_grid_config(),
        )

    def photo_page(photo_id: int) -> str:
        ctx = current()
        photo = access.photo_for(ctx.viewer, photo_id)
        album = None
        album_id = parse_id(request.query.get("album"))
        if album_id is not None:
            album = access.album_for(ctx.viewer, album_id)
        elif ctx.shared is not None:
            album = ctx.shared
        if album is not None:
            # Stepping through an album: the photo must be in it, as the viewer sees it.
            in_album = Photo.select().where((Photo.id == photo.id) & access.album_photos(ctx.viewer, album))
            if not in_album.exists():
                raise NotFound("no such photo")
        newer, older = gallery.neighbours(ctx.viewer, photo, album)
        files = {f.role: f for f in File.select().where(File.photo == photo.id)}
        albums_in = gallery.albums_of(photo, ctx.viewer)
        all_albums = services.albums() if ctx.viewer.is_member else []
        return page(
            "photo",
            title=photo.title or photo.file_name,
            photo=photo,
            album=album,
            newer=newer,
            older=older,
            files=files,
            albums_in=albums_in,
            all_albums=all_albums,
            metadata=_metadata_rows(photo),
            may_delete=access.may_delete_photo(ctx.viewer, photo),
        )

    for path, handler in (("/album/<album_id:int>", album_page), ("/photo/<photo_id:int>", photo_page)):
        app.get(path, callback=handler)
        app.get("/s/<token>" + path, callback=shared(handler))

    @app.get("/upload")
    def upload_page() -> str:
        ctx = current()
        access.require_member(ctx.viewer)
        config = {
            "preselect": parse_id(request.query.get("album")),
            "maxBytes": MAX_REQUEST_BYTES,
            "names": filetypes.browser_rules(),
        }
        albums = services.albums()
        return page("upload", title="Upload", albums=albums, accept=filetypes.accept(), config=config)

    # -- JSON for the grids --------------------------------------------------------------------------

    def timeline() -> HTTPResponse:
        ctx = current()
        return answer_json({"days": gallery.timeline(ctx.viewer)})

    def days() -> HTTPResponse:
        ctx = current()
        newest, oldest = request.query.get("newest") or "", request.query.get("oldest") or ""
        _check_days(newest, oldest)
        return answer_json({"photos": [e.as_json() for e in gallery.days(ctx.viewer, newest, oldest)]})

    for path, api in (("/api/timeline", timeline), ("/api/days", days)):
        app.get(path, callback=api)
        app.get("/s/<token>" + path, callback=shared(api))

    # -- changes by members --------------------------------------------------------------------------

    @app.post("/albums")
    def create_album() -> None:
        check_csrf()
        user = access.require_member(current().viewer)
        album = services.create_album(
            request.forms.getunicode("title") or "", user.id, public=request.forms.get("public") == "1"
        )
        go(f"/album/{album.id}", "Album created.")

    @app.post("/album/<album_id:int>")
    def edit_album(album_id: int) -> None:
        check_csrf()
        ctx = current()
        access.require_member(ctx.viewer)
        album = access.album_for(ctx.viewer, album_id)
        action = request.forms.get("action") or "edit"
        message = "Saved."
        if action == "edit":
            services.edit_album(
                album.id,
                title=request.forms.getunicode("title"),
                description=request.forms.getunicode("description"),
            )
        elif action == "visibility":
            public = request.forms.get("public") == "1"
            services.set_album_visibility(album.id, public)
            message = "The album is public: anyone can see it." if public else "The album is private."
        elif action == "cover":
            services.set_cover(album.id, parse_id(request.forms.get("photo")))
            message = "Cover chosen."
        elif action == "remove":
            count = services.remove_from_album(album.id, _ints(request.forms.getall("photo")))
            message = f"Removed {count} photos from the album (they stay in the library)."
        elif action == "share":
            services.share_album(album.id)
            message = "Share link made: anyone with it can see this album."
        elif action == "unshare":
            services.unshare_album(album.id)
            message = "Share link revoked."
        elif action == "delete":
            if not access.may_delete_album(ctx.viewer, album):
                raise Forbidden("only the album's owner or an administrator may delete it")
            services.delete_album(album.id)
            go("/albums", f"Deleted the album {album.title}; its photos stay in the library.")
        else:
            raise Invalid("unknown action")
        go(safe_next(request.forms.get("next"), f"/album/{album.id}"), message)

    @app.post("/photo/<photo_id:int>")
    def edit_photo(photo_id: int) -> None:
        check_csrf()
        ctx = current()
        access.require_member(ctx.viewer)
        photo = access.photo_for(ctx.viewer, photo_id)
        back = safe_next(request.forms.get("next"), f"/photo/{photo.id}")
        if request.forms.get("action") == "delete":
            if not access.may_delete_photo(ctx.viewer, photo):
                raise Forbidden("only the photo's owner or an administrator may delete it")
            services.delete_photo(photo.id, ctx.library.store)
            go(safe_next(request.forms.get("after"), "/"), "Photo deleted.")
        albums = _ints(request.forms.getall("album")) if request.forms.get("albums_sent") else None
        edit = services.PhotoEdit(
            title=request.forms.getunicode("title"),
            description=request.forms.getunicode("description"),
            albums=tuple(albums) if albums is not None else None,
        )
        services.update_photo(photo.id, edit)
        go(back, "Saved.")


def _grid_config() -> dict[str, Any]:
    """What grid.js needs to ask for pictures: the derivative URL's shape, the grid heights pig.js may
    choose from, and the placeholder's."""
    return {
        "derivative": urls.DERIVATIVE,
        "heights": sorted(h for h in imaging.GRID_HEIGHTS if h != imaging.PLACEHOLDER_HEIGHT),
        "placeholder": imaging.PLACEHOLDER_HEIGHT,
    }


def _check_days(newest: str, oldest: str) -> None:
    if newest == gallery.NO_DATE and oldest == gallery.NO_DATE:
        return
    try:
        first = dt.date.fromisoformat(oldest)
        last = dt.date.fromisoformat(newest)
    except ValueError:
        raise Invalid("newest and oldest must be days (YYYY-MM-DD)") from None
    if first > last or (last - first).days > MAX_DAYS_SPAN:
        raise Invalid(f"ask for at most {MAX_DAYS_SPAN} days, oldest first")


def _ints(values: list[str]) -> list[int]:
    return [number for number in map(parse_id, values) if number is not None]


def _metadata_rows(photo: Photo) -> list[tuple[str, str]]:
    """Every tag exiftool read, as (group:tag, value) rows for the expandable table."""
    rows = []
    for key, value in sorted(photo.metadata.items()):
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        rows.append((key, str(value)))
    return rows
