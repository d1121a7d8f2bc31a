"""Browser uploads: one request per shot (the files sharing a base name), streamed into the datastore.

The page groups the chosen files by base name (IMG_1.jpg, IMG_1.CR2, IMG_1.CR2.xmp) and sends each group
as one multipart request, so a picture, its RAW and its sidecar are paired exactly as a command-line
batch pairs them. Each file part streams straight into the datastore's staging area while it is hashed:
a 100 MB RAW never sits in memory, nor in a temporary file of Bottle's. Then the same import pipeline
as every other door reads, classifies and renders it, and one transaction writes the group's rows.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from bottle import Bottle, request

from photoflow import access, services
from photoflow.errors import Invalid, TooLarge
from photoflow.importer import FileResult, Prepared
from photoflow.library import Library
from photoflow.models import parse_id
from photoflow.services import PhotoEdit, UploadTarget, uploads
from photoflow.web import multipart
from photoflow.web.context import answer_json, check_csrf, current

MAX_REQUEST_BYTES = 4 * 1024**3  # one shot: a picture, a RAW of a medium-format camera, a sidecar
MAX_FILES = 16


def install(app: Bottle, library: Library) -> None:
    """The upload routes."""

    @app.post("/api/albums")
    def create_album() -> Any:
        check_csrf()
        user = access.require_member(current().viewer)
        title = request.forms.getunicode("title") or ""
        public = request.forms.get("public") == "1"
        album = services.create_album(title, user.id, public=public)
        return answer_json({"id": album.id, "title": album.title, "public": album.is_public}, status=201)

    @app.post("/upload")
    def upload() -> Any:
        check_csrf()
        ctx = current()
        user = access.require_member(ctx.viewer)
        album_id = _album_id(request.query.get("album"))
        target = uploads.check_target(
            UploadTarget(user.id, PhotoEdit(albums=(album_id,) if album_id is not None else None))
        )
        length = request.content_length
        if length < 0:
            raise Invalid("the upload must say its length (Content-Length)")
        if length > MAX_REQUEST_BYTES:
            raise TooLarge(f"one upload may hold at most {MAX_REQUEST_BYTES // 1024**3} GB")

        def receive(_field: str, file_name: str, reader: BinaryIO) -> Prepared:
            return uploads.receive(ctx.library, reader, file_name, MAX_REQUEST_BYTES)

        # A request cut off half way raises here: the part being written is removed by the datastore;
        # parts already complete stay unreferenced, for `photoflow check --sweep --orphans` (deleting
        # them now could race another upload of the same bytes that is about to reference them).
        # The raw header: Bottle's request.content_type is lowercased, and boundaries are case-sensitive
        # (Chromium's are mixed case).
        content_type = request.environ.get("CONTENT_TYPE", "")
        form = multipart.parse(
            request.environ["wsgi.input"], length, content_type, receive, max_parts=MAX_FILES + 4
        )
        prepared: list[Prepared] = form.files
        if not prepared:
            raise Invalid("no files in the upload")
        results = uploads.upload(ctx.library, prepared, target)
        # Each file has its own result; the status speaks for the request as a whole, so that a script
        # sees at once that nothing was taken (a bomb, a non-picture, a truncated file: 422).
        status = 422 if all(r.status == "failed" for r in results) else 200
        return answer_json({"results": [_result(r) for r in results]}, status=status)


def _album_id(raw: str | None) -> int | None:
    if not raw:
        return None
    album_id = parse_id(raw)
    if album_id is None:
        raise Invalid("album must be an album number")
    return album_id


def _result(result: FileResult) -> dict[str, Any]:
    return {
        "name": result.name,
        "status": result.status,
        "reason": result.reason,
        "photo": result.photo_id,
        "role": result.role,
    }
