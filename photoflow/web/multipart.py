"""A streaming multipart/form-data reader: file parts go straight to a sink, never whole into memory.

Bottle reads a whole request body (to memory or a temporary file) before parsing it, has no limit on
the number of parts, and answers 500 to a malformed header. Uploads of 100 MB RAW files and Piwigo
clients' forms come through here instead: fields are small and kept, each file part is handed to a
callback as a stream that reads up to its boundary, with limits on parts, headers and fields.

The parsing is the `multipart` package's push parser (by Bottle's author). It is fed the request body
a chunk at a time as the callback reads, so nothing waits in a thread or a buffer of ours. On top of it
this module keeps what Photoflow needs: its errors (Invalid, TooLarge), RFC 5987 `filename*`, and
names read as UTF-8 with invalid bytes replaced.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import unquote_to_bytes

import multipart  # type: ignore[import-untyped]  # (it ships no types)

from photoflow.errors import Invalid, PhotoflowError, TooLarge

CHUNK = 256 * 1024
MAX_PARTS = 64
MAX_HEADER_BYTES = 16 * 1024  # one header line of a part
MAX_HEADERS = 16  # header lines in one part (RFC 7578 needs three at most)
MAX_FIELD_BYTES = 1024 * 1024  # a text field (a description, a list of tags)

# The multipart package reads a part's header as latin-1 (every byte is a character, so nothing is
# refused and the bytes come back exactly); names are then read as UTF-8 here, bad bytes replaced.
_HEADER_CHARSET = "latin-1"
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_EXTENDED_NAME = re.compile(r";\s*filename\*\s*=\s*([^;\s]*)", re.IGNORECASE)
_END = object()  # the body has ended, after its closing boundary


@dataclass
class Form:
    """What a multipart body held: text fields (every value, in order) and what the file callback made."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[Any] = field(default_factory=list)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of a field."""
        values = self.fields.get(name)
        return values[0] if values else default


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
    body = _Body(stream, length, _parser(content_type, length, max_parts), max_parts)
    form = Form()
    # Each part is read to its end before the next event is asked for: only a part's head, or the
    # end of the body, can come here.
    while (segment := body.next_event()) is not _END:
        name, file_name = _names(segment)
        part = _Part(body)
        if file_name is not None:
            form.files.append(on_file(name, file_name, io.BufferedReader(part, CHUNK)))
            part.drain()
        else:
            value = bytearray()
            while chunk := part.read(CHUNK):
                value += chunk
                if len(value) > MAX_FIELD_BYTES:
                    raise TooLarge(f"the field {name!r} is larger than {MAX_FIELD_BYTES} bytes")
            form.fields.setdefault(name, []).append(decode(bytes(value)))
    return form


def _parser(content_type: str, length: int, max_parts: int) -> multipart.PushMultipartParser:
    """The push parser for a body of this content type; Invalid unless it is multipart/form-data."""
    kind, options = multipart.parse_options_header(content_type)
    if kind != "multipart/form-data":
        raise Invalid("expected a multipart/form-data body")
    boundary = options.get("boundary")
    if not boundary:
        raise Invalid("the multipart body has no boundary")
    if not boundary.isascii():  # (RFC 2046 boundaries are ASCII)
        raise Invalid("the multipart boundary is not plain text")
    try:
        return multipart.PushMultipartParser(
            boundary,
            length,
            max_header_size=MAX_HEADER_BYTES,
            max_header_count=MAX_HEADERS,
            max_segment_count=max_parts,
            header_charset=_HEADER_CHARSET,
        )
    except multipart.MultipartError as exc:
        raise _refusal(exc, max_parts) from None


class _Body:
    """The request body, pushed through the parser as its events are pulled (never read past its end)."""

    def __init__(
        self, stream: BinaryIO, length: int, parser: multipart.PushMultipartParser, max_parts: int
    ) -> None:
        self.stream = stream
        self.left = max(length, 0)  # (a body of unknown length is read as empty, and so refused)
        self.parser = parser
        self.max_parts = max_parts
        self.events: Iterator[Any] = iter(())
        self.failed: BaseException | None = None

    def next_event(self) -> Any:
        """The parser's next event (a part's head, a piece of its bytes, None at its end), or _END."""
        # A body that failed once fails again the same way: a callback that caught the error (and
        # reported its file as failed) must not read on past it.
        if self.failed is not None:
            raise self.failed
        try:
            while (event := next(self.events, _END)) is _END:
                if self.parser.closed:
                    return _END
                # An empty chunk at the end makes the parser check that the body was complete.
                self.events = self.parser.parse(self._read())
            return event
        except multipart.MultipartError as exc:
            self.failed = _refusal(exc, self.max_parts)
        except Exception as exc:  # the client gone, too slow (server.ClientTooSlow), ...
            self.failed = exc
            raise
        raise self.failed from None

    def _read(self) -> bytes:
        """The body's next chunk; b"" at its end; Invalid if the client went away before it."""
        if self.left == 0:
            return b""
        chunk = self.stream.read(min(CHUNK, self.left))
        if not chunk:
            # The client went away mid-upload.
            raise Invalid("the upload was cut off before it ended")
        self.left -= len(chunk)
        return chunk


class _Part(io.RawIOBase):
    """One part's bytes as a raw stream, ending where the next boundary begins."""

    def __init__(self, body: _Body) -> None:
        super().__init__()
        self.body = body
        self.piece = b""
        self.at = 0
        self.done = False

    def readable(self) -> bool:
        """A part is read, never written."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Fill `buffer` with the part's next bytes; 0 at its end."""
        while self.at >= len(self.piece):
            if self.done:
                return 0
            event = self.body.next_event()
            if not isinstance(event, bytes):  # None: the part's end
                self.done = True
                return 0
            self.piece, self.at = event, 0
        n = min(len(buffer), len(self.piece) - self.at)
        buffer[:n] = memoryview(self.piece)[self.at : self.at + n]
        self.at += n
        return n

    def drain(self) -> None:
        """Skip what the callback left of the part (its pieces are dropped, never copied)."""
        while not self.done:
            self.done = not isinstance(self.body.next_event(), bytes)


def _names(segment: multipart.MultipartSegment) -> tuple[str, str | None]:
    """The field name and the file name (None for a plain field) of a part."""
    file_name = _extended_file_name(segment.header("Content-Disposition", ""))
    if file_name is None and segment.filename is not None:
        file_name = _utf8(segment.filename)
    return _utf8(segment.name or ""), file_name


def _utf8(text: str) -> str:
    """A name read as latin-1 (the bytes the client sent), read again as UTF-8."""
    return text.encode("latin-1").decode("utf-8", "replace")


def _extended_file_name(disposition: str) -> str | None:
    """RFC 5987's `filename*=UTF-8''%E2%82%AC.jpg` (the multipart package leaves it aside), or None."""
    # Sought outside quoted strings: a quoted file name may itself hold the text `; filename*=`.
    blanked = _QUOTED.sub(lambda quoted: "x" * len(quoted.group()), disposition)
    match = _EXTENDED_NAME.search(blanked)
    if match is None:
        return None
    value = disposition[match.start(1) : match.end(1)].strip('"')
    pieces = value.split("'", 2)  # charset ' language ' percent-encoded bytes
    charset, encoded = (pieces[0].lower(), pieces[2]) if len(pieces) == 3 else ("utf-8", value)
    codec = "latin-1" if charset in ("iso-8859-1", "latin-1", "latin1") else "utf-8"
    return unquote_to_bytes(encoded.encode("latin-1")).decode(codec, "replace")


def _refusal(exc: multipart.MultipartError, max_parts: int) -> PhotoflowError:
    """The Photoflow error for the multipart package's: TooLarge past a limit, Invalid otherwise."""
    detail = str(exc.args[0]) if exc.args else type(exc).__name__
    detail = detail[:1].lower() + detail[1:]
    if isinstance(exc, multipart.ParserLimitReached):
        return TooLarge(
            f"the form is over a limit: {detail} (at most {max_parts} parts, each with at most "
            f"{MAX_HEADERS} header lines of {MAX_HEADER_BYTES} bytes)"
        )
    return Invalid(f"the multipart body is malformed: {detail}")
