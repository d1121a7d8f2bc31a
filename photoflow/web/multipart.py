"""A streaming multipart/form-data reader: file parts go straight to a sink, never whole into memory.

Bottle reads a whole request body (to memory or a temporary file) before parsing it, has no limit on
the number of parts, and answers 500 to a malformed header. Uploads of 100 MB RAW files and Piwigo
clients' forms come through here instead: fields are small and kept, each file part is handed to a
callback as a stream that reads up to its boundary, with limits on parts and header sizes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import unquote

from photoflow.errors import Invalid, TooLarge

CHUNK = 256 * 1024
MAX_PARTS = 64
MAX_HEADER_BYTES = 16 * 1024
MAX_FIELD_BYTES = 1024 * 1024  # a text field (a description, a list of tags)

_BOUNDARY = re.compile(r'boundary="?([^";]{1,200})"?', re.IGNORECASE)
_PARAM = re.compile(r';\s*([a-zA-Z0-9_*-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


@dataclass
class Form:
    """What a multipart body held: text fields (every value, in order) and what the file callback made."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[Any] = field(default_factory=list)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of a field."""
        values = self.fields.get(name)
        return values[0] if values else default


def boundary_of(content_type: str) -> bytes:
    """The boundary of a multipart/form-data content type; Invalid if there is none."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise Invalid("expected a multipart/form-data body")
    match = _BOUNDARY.search(content_type)
    if not match:
        raise Invalid("the multipart body has no boundary")
    try:
        return match.group(1).encode("latin-1")
    except UnicodeEncodeError:
        raise Invalid("the multipart boundary is not plain text") from None


class _Body:
    """The request body with a look-ahead buffer, never read past its length."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        self.stream = stream
        self.left = length
        self.buffer = b""

    def fill(self, want: int) -> bool:
        """Read until the buffer holds `want` bytes or the body ends; False when nothing more came."""
        grew = False
        while len(self.buffer) < want and self.left > 0:
            chunk = self.stream.read(min(CHUNK, self.left))
            if not chunk:
                # The client went away mid-upload.
                raise Invalid("the upload was cut off before it ended")
            self.left -= len(chunk)
            self.buffer += chunk
            grew = True
        return grew


class _PartReader:
    """A file-like view of one part's bytes, ending where the next boundary begins."""

    def __init__(self, body: _Body, delimiter: bytes) -> None:
        self.body = body
        self.delimiter = delimiter  # b"\r\n--" + boundary
        self.done = False

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes of the part (all the rest with a negative size), b"" at its end."""
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        if self.done or size == 0:
            return b""
        self.body.fill(size + len(self.delimiter))
        buf = self.body.buffer
        at = buf.find(self.delimiter)
        if at >= 0:
            take = min(at, size)
            self.done = take == at
        elif self.body.left == 0:
            raise Invalid("the multipart body ends inside a part")
        else:
            take = size  # the buffer holds more than size + a delimiter, and no delimiter
        self.body.buffer = buf[take:]
        return buf[:take]

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def parse(
    stream: BinaryIO,
    length: int,
    content_type: str,
    on_file: Callable[[str, str, BinaryIO], Any],
    max_parts: int = MAX_PARTS,
    decode: Callable[[bytes], str] = lambda raw: raw.decode("utf-8", "replace"),
) -> Form:
    """Read a multipart body of `length` bytes from `stream`.

    `on_file(field_name, file_name, reader)` is called for every part with a file name and must read
    the part (it may stop early; the rest is skipped); what it returns is collected in `Form.files`.
    `decode` turns a field's bytes into text (by default UTF-8, invalid bytes replaced).
    Raises Invalid for a malformed body and TooLarge past the limits.
    """
    boundary = boundary_of(content_type)
    body = _Body(stream, length)
    opening = b"--" + boundary
    body.fill(len(opening) + 2)
    if not body.buffer.startswith(opening):
        raise Invalid("the multipart body does not start with its boundary")
    body.buffer = b"\r\n" + body.buffer  # so every boundary, the first too, is CRLF + "--" + boundary
    delimiter = b"\r\n" + opening
    form = Form()
    parts = 0
    while True:
        body.fill(len(delimiter) + 2)
        if not body.buffer.startswith(delimiter):
            raise Invalid("the multipart body is malformed")
        body.buffer = body.buffer[len(delimiter) :]
        body.fill(2)
        if body.buffer.startswith(b"--"):
            return form  # the closing boundary; an epilogue, if any, is ignored
        if not body.buffer.startswith(b"\r\n"):
            raise Invalid("the multipart body is malformed")
        body.buffer = body.buffer[2:]
        parts += 1
        if parts > max_parts:
            raise TooLarge(f"more than {max_parts} parts in one request")
        headers = _read_headers(body)
        name, file_name = _disposition(headers.get("content-disposition", ""))
        reader = _PartReader(body, delimiter)
        if file_name is not None:
            form.files.append(on_file(name, file_name, reader))
            reader.drain()
        else:
            value = b""
            while chunk := reader.read(CHUNK):
                value += chunk
                if len(value) > MAX_FIELD_BYTES:
                    raise TooLarge(f"the field {name!r} is larger than {MAX_FIELD_BYTES} bytes")
            form.fields.setdefault(name, []).append(decode(value))


def _read_headers(body: _Body) -> dict[str, str]:
    while b"\r\n\r\n" not in body.buffer:
        if len(body.buffer) > MAX_HEADER_BYTES:
            raise TooLarge("a part's headers are too large")
        if not body.fill(len(body.buffer) + 1024):
            raise Invalid("the multipart body ends inside a part's headers")
    raw, body.buffer = body.buffer.split(b"\r\n\r\n", 1)
    if len(raw) > MAX_HEADER_BYTES:
        raise TooLarge("a part's headers are too large")
    headers: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    return headers


def _disposition(value: str) -> tuple[str, str | None]:
    """The field name and the file name (None for a plain field) of a Content-Disposition value."""
    if not value.lower().startswith("form-data"):
        raise Invalid("a part is not form-data")
    params: dict[str, str] = {}
    for key, raw in _PARAM.findall(value):
        raw = raw.strip()
        if raw.startswith('"') and raw.endswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params[key.lower()] = raw
    if "filename*" in params:  # RFC 5987: UTF-8''name
        encoded = params["filename*"]
        params["filename"] = unquote(encoded.split("'", 2)[-1]) if "'" in encoded else encoded
    return params.get("name", ""), params.get("filename")
