"""The streaming multipart reader (photoflow/web/multipart.py), alone and behind /upload over real HTTP.

Proves that bodies made by urllib3 (what requests sends) and by hand come back byte for byte, whatever
the pieces the body arrives in and however the file callback reads (random chunk sizes, contents that
hold the boundary's beginnings); that names with quotes, semicolons and RFC 5987 `filename*` are read
right; that every malformed or oversized body is refused with Invalid or TooLarge and nothing else;
that a 50 MB part streams through in a few MB of memory; and that over HTTP a malformed upload is a 400
with a JSON error, too many parts (or a declared length over the limit) a 413, a client that goes away
mid-upload leaves no file in tmp/ and no row, and a refused upload's body is neither buffered in memory
nor spooled to a temporary file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import socket
import stat
import struct
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from urllib3 import encode_multipart_formdata

from photoflow.errors import Invalid, TooLarge
from photoflow.library import Library
from photoflow.models import File, Photo, User
from photoflow.storage import Datastore
from photoflow.web import multipart
from photoflow.web.multipart import MAX_FIELD_BYTES, MAX_HEADER_BYTES, Form, parse
from tests.conftest import Web, eventually, web_as

BOUNDARY = "pfTestBoundary7MA4YWxkTrZu0gW"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
DELIMITER = b"\r\n--" + BOUNDARY.encode()


# -- streams and callbacks ---------------------------------------------------------------------------


class Trickle:
    """A request body arriving in pieces of the given sizes (in turn), as a socket delivers it.

    It ends when `data` does, which may be before the length the request declared (a client gone).
    """

    def __init__(self, data: bytes, sizes: list[int] | None = None) -> None:
        self.data = data
        self.sizes = sizes or [len(data) or 1]
        self.position = 0
        self.reads = 0

    def read(self, size: int = -1) -> bytes:
        piece = self.sizes[self.reads % len(self.sizes)]
        self.reads += 1
        if size is not None and size >= 0:
            piece = min(piece, size)
        chunk = self.data[self.position : self.position + piece]
        self.position += len(chunk)
        return chunk


def reading_in(size: int) -> Callable[[str, str, BinaryIO], tuple[str, str, bytes]]:
    """A file callback that reads its part `size` bytes at a time and keeps (field, file name, bytes)."""

    def collect(field: str, file_name: str, reader: BinaryIO) -> tuple[str, str, bytes]:
        parts = []
        while chunk := reader.read(size):
            assert len(chunk) <= size
            parts.append(chunk)
        return field, file_name, b"".join(parts)

    return collect


def read_form(
    body: bytes,
    content_type: str = CONTENT_TYPE,
    sizes: list[int] | None = None,
    read_size: int = 65536,
    length: int | None = None,
    **options: Any,
) -> Form:
    """Parse `body` as it arrives in `sizes` pieces, with a callback reading `read_size` at a time."""
    stream = Trickle(body, sizes)
    return parse(
        stream, len(body) if length is None else length, content_type, reading_in(read_size), **options
    )


def part(headers: str, content: bytes) -> bytes:
    """One hand-made part: its delimiter line, headers and content (the next delimiter closes it)."""
    return f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + content + b"\r\n"


def closing() -> bytes:
    """The closing delimiter that ends a hand-made body."""
    return f"--{BOUNDARY}--\r\n".encode()


def refused(body: bytes, content_type: str = CONTENT_TYPE, **kwargs: Any) -> Invalid | TooLarge:
    """Parse and expect a refusal: Invalid or TooLarge, never another exception."""
    try:
        read_form(body, content_type, **kwargs)
    except (Invalid, TooLarge) as exc:
        assert exc.reason
        return exc
    raise AssertionError("the body was accepted")


# -- bodies that must come back byte for byte --------------------------------------------------------


def test_a_urllib3_body_with_fields_and_several_files() -> None:
    tricky = b"before\r\n--" + BOUNDARY[:-1].encode() + b"\r\n--" + BOUNDARY[:3].encode() + b"--\r\nafter"
    fields = [
        ("album", "12"),
        ("title", 'Été à Paris; "quoted" — ünïcode'),
        ("file", ("IMG_0001.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40, "image/jpeg")),
        ("file", ("IMG_0001.CR3", tricky, "application/octet-stream")),
        ("file", ("empty.xmp", b"", "application/rdf+xml")),
        ("file", ("naïve; name=evil.jpg", b"\r\n\r\n--\r\n", "image/jpeg")),
        ("tags", "a"),
        ("tags", "b"),
    ]
    body, content_type = encode_multipart_formdata(fields, boundary=BOUNDARY)
    form = read_form(body, content_type)
    assert form.fields == {"album": ["12"], "title": ['Été à Paris; "quoted" — ünïcode'], "tags": ["a", "b"]}
    assert form.get("album") == "12" and form.get("missing", "x") == "x"
    assert form.files == [
        ("file", "IMG_0001.jpg", fields[2][1][1]),
        ("file", "IMG_0001.CR3", tricky),
        ("file", "empty.xmp", b""),
        ("file", "naïve; name=evil.jpg", b"\r\n\r\n--\r\n"),
    ]


def test_hand_made_names_quotes_semicolons_and_rfc_5987() -> None:
    body = b"".join(
        [
            part('Content-Disposition: form-data; name="a"; filename="quote\\"d;semi.jpg"', b"1"),
            part('Content-Disposition: form-data; name="b"; filename="x; name=evil; filename=y.jpg"', b"2"),
            part(
                "Content-Disposition: form-data; name=\"c\"; filename*=UTF-8''%E2%82%AC%20rates%3B.jpg", b"3"
            ),
            part(
                'Content-Disposition: form-data; name="d"; filename="fallback.jpg"; '
                "filename*=UTF-8'en'r%C3%A9el.jpg",
                b"4",
            ),
            part("Content-Disposition: form-data; name=e; filename=plain.jpg", b"5"),
            part('Content-Disposition: form-data; name="f"; filename=""', b""),
            part('content-disposition: FORM-DATA; NAME="g"; FILENAME="upper.jpg"', b"7"),
            part('Content-Disposition: form-data; name="h"\r\nContent-Type: text/plain', b"field value"),
            closing(),
        ]
    )
    form = read_form(body)
    assert form.files == [
        ("a", 'quote"d;semi.jpg', b"1"),
        ("b", "x; name=evil; filename=y.jpg", b"2"),
        ("c", "€ rates;.jpg", b"3"),
        ("d", "réel.jpg", b"4"),
        ("e", "plain.jpg", b"5"),
        ("f", "", b""),
        ("g", "upper.jpg", b"7"),
    ]
    assert form.fields == {"h": ["field value"]}


def test_the_closing_boundary_may_end_the_body_without_crlf_and_an_epilogue_is_ignored() -> None:
    body = part('Content-Disposition: form-data; name="a"', b"x") + f"--{BOUNDARY}--".encode()
    assert read_form(body).fields == {"a": ["x"]}
    assert read_form(body + b"\r\nepilogue, ignored").fields == {"a": ["x"]}


def test_the_content_type_may_quote_the_boundary_and_carry_other_parameters() -> None:
    body, _ = encode_multipart_formdata([("a", "1")], boundary=BOUNDARY)
    for content_type in (
        f'multipart/form-data; boundary="{BOUNDARY}"',
        f"Multipart/Form-Data; charset=utf-8; BOUNDARY={BOUNDARY}",
        f'multipart/form-data; boundary="{BOUNDARY}"; charset=utf-8',
    ):
        assert read_form(body, content_type).fields == {"a": ["1"]}


def test_a_part_that_straddles_every_read_boundary() -> None:
    """600 KB with near-delimiters placed across the reader's own 256 KiB look-ahead."""
    chunk = multipart.CHUNK
    content = bytearray(random.Random(7).randbytes(600_000))
    near = DELIMITER[:-1]
    for at in (chunk - len(near) + 1, chunk - 1, chunk, 2 * chunk - 3, 2 * chunk + 5):
        content[at : at + len(near)] = near
    content = bytes(content)
    assert DELIMITER not in content
    body, content_type = encode_multipart_formdata([("f", ("big.bin", content))], boundary=BOUNDARY)
    for sizes, read_size in (([len(body)], 1 << 20), ([1, 7, 4096, 65536], 1000), ([8191], 262144)):
        form = read_form(body, content_type, sizes=sizes, read_size=read_size)
        assert form.files == [("f", "big.bin", content)]


NEAR_MISSES = [
    b"\r\n",
    b"--",
    b"\r\n--",
    b"\r\n\r\n",
    BOUNDARY.encode(),
    b"--" + BOUNDARY.encode(),
    b"\r\n--" + BOUNDARY[:1].encode(),
    b"\r\n--" + BOUNDARY[:10].encode(),
    b"\r\n--" + BOUNDARY[:-1].encode(),
    b"\r\n-" + BOUNDARY.encode(),
    b"\n--" + BOUNDARY.encode(),
]
# File contents built from random bytes and near-misses of the delimiter (never the delimiter itself,
# which no multipart body may carry inside a part).
contents = (
    st.lists(st.one_of(st.binary(max_size=300), st.sampled_from(NEAR_MISSES)), max_size=12)
    .map(b"".join)
    .filter(lambda data: DELIMITER not in data)
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    files=st.lists(contents, min_size=1, max_size=4),
    values=st.lists(st.text(max_size=50), max_size=3),
    sizes=st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=16),
    read_size=st.integers(min_value=1, max_value=5000),
)
def test_any_contents_in_any_pieces_come_back_exactly(
    files: list[bytes], values: list[str], sizes: list[int], read_size: int
) -> None:
    fields: list[tuple[str, Any]] = [(f"v{i}", value) for i, value in enumerate(values)]
    fields += [("file", (f"f{i}.bin", data, "application/octet-stream")) for i, data in enumerate(files)]
    body, content_type = encode_multipart_formdata(fields, boundary=BOUNDARY)
    form = read_form(body, content_type, sizes=sizes, read_size=read_size)
    assert form.files == [("file", f"f{i}.bin", data) for i, data in enumerate(files)]
    assert form.fields == {f"v{i}": [value] for i, value in enumerate(values)}


def test_a_callback_that_stops_early_skips_the_rest_of_its_part() -> None:
    body, content_type = encode_multipart_formdata(
        [("f", ("a.bin", b"a" * 300_000)), ("f", ("b.bin", b"b" * 10)), ("x", "after")], boundary=BOUNDARY
    )
    form = parse(
        Trickle(body, [999]), len(body), content_type, lambda _f, name, reader: (name, reader.read(5))
    )
    assert form.files == [("a.bin", b"aaaaa"), ("b.bin", b"bbbbb")]
    assert form.fields == {"x": ["after"]}


def test_the_part_reader_keeps_the_file_contract() -> None:
    content = bytes(range(256)) * 2000  # 512,000 bytes: more than the reader's 256 KiB look-ahead
    body, content_type = encode_multipart_formdata([("f", ("a.bin", content))], boundary=BOUNDARY)

    def contract(_field: str, _name: str, reader: BinaryIO) -> tuple[bytes, bytes, bytes]:
        return reader.read(0), reader.read(), reader.read()

    form = parse(Trickle(body, [4096]), len(body), content_type, contract)
    assert form.files == [(b"", content, b"")]


def test_the_part_reader_is_a_buffered_binary_stream() -> None:
    """What a callback gets is a real io.BufferedReader: peek, readinto and readline work as on a file."""
    content = b"line one\r\nline two\r\n" + bytes(300_000)
    body, content_type = encode_multipart_formdata([("f", ("a.bin", content))], boundary=BOUNDARY)

    def use(_field: str, _name: str, reader: BinaryIO) -> tuple[bool, bytes, bytes, int, bytes]:
        """Peek, read a line, read into a buffer, read the rest."""
        into = bytearray(4)
        buffered = isinstance(reader, io.BufferedReader)
        first, line = reader.peek(4)[:4], reader.readline()
        return buffered, first, line, reader.readinto(into) + len(reader.read()), bytes(into)

    form = parse(Trickle(body, [1000]), len(body), content_type, use)
    assert form.files == [(True, b"line", b"line one\r\n", len(content) - 10, b"line")]


def test_file_names_are_utf_8_with_bad_bytes_replaced_and_never_refused() -> None:
    latin_1 = "café".encode("latin-1")  # an old client's name, not UTF-8
    body = b"".join(
        [
            part('Content-Disposition: form-data; name="a"; filename="', b"")[:-6]
            + latin_1
            + b'.jpg"\r\n\r\nx\r\n',
            part('Content-Disposition: form-data; name="b"; filename="été.jpg"', b"y"),
            closing(),
        ]
    )
    assert read_form(body).files == [("a", "caf\ufffd.jpg", b"x"), ("b", "été.jpg", b"y")]


def test_rfc_5987_names_in_latin_1_and_never_from_inside_a_quoted_name() -> None:
    body = b"".join(
        [
            part("Content-Disposition: form-data; name=\"a\"; filename*=ISO-8859-1''caf%E9.jpg", b"1"),
            part(
                'Content-Disposition: form-data; name="b"; filename="plain; filename*=UTF-8\'\'evil.jpg"',
                b"2",
            ),
            part("Content-Disposition: form-data; name=\"c\"; FILENAME*=utf-8''%F0%9F%93%B7.jpg", b"3"),
            closing(),
        ]
    )
    assert read_form(body).files == [
        ("a", "café.jpg", b"1"),
        ("b", "plain; filename*=UTF-8''evil.jpg", b"2"),
        ("c", "\U0001f4f7.jpg", b"3"),
    ]


def test_a_preamble_before_the_first_boundary_is_skipped() -> None:
    """RFC 2046 lets a body begin with text before its first boundary; it is not part of the form."""
    assert read_form(b"This is a preamble.\r\n" + VALID, sizes=[7]).fields == {"a": ["value"]}


def test_a_callback_that_catches_the_bodys_error_cannot_read_past_it() -> None:
    """A callback that reports a cut-off file as failed (as /upload's does) gets the same error again
    at the next read, and so does the whole parse: nothing after a broken part is believed."""
    caught: list[Exception] = []

    def forgiving(_field: str, _name: str, reader: BinaryIO) -> str:
        """Read the part; on Invalid, note it, check the next read fails too, and go on."""
        try:
            reader.read()
        except Invalid as exc:
            caught.append(exc)
            with pytest.raises(Invalid):
                reader.read(1)
        return "failed"

    cut = VALID[: len(VALID) - 40]
    with pytest.raises(Invalid) as refusal:
        parse(Trickle(cut), len(VALID), CONTENT_TYPE, forgiving)
    assert caught and refusal.value is caught[0]


# -- refusals: Invalid or TooLarge, never anything else ----------------------------------------------

FIELD = part('Content-Disposition: form-data; name="a"', b"value")
FILE = part('Content-Disposition: form-data; name="f"; filename="a.jpg"', b"\xff\xd8" + b"x" * 5000)
VALID = FIELD + FILE + closing()


def test_the_valid_body_used_below_is_accepted() -> None:
    form = read_form(VALID)
    assert form.fields == {"a": ["value"]} and form.files == [("f", "a.jpg", b"\xff\xd8" + b"x" * 5000)]


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; charset=utf-8",
        'multipart/form-data; boundary=""',
        "multipart/form-data; boundary=",
        "application/x-www-form-urlencoded",
        f"multipart/mixed; boundary={BOUNDARY}",
        f"text/plain; boundary={BOUNDARY}",
        "",
    ],
)
def test_no_boundary_or_the_wrong_content_type_is_invalid(content_type: str) -> None:
    assert isinstance(refused(VALID, content_type), Invalid)


def test_a_boundary_outside_latin_1_is_invalid() -> None:
    assert isinstance(refused(VALID, "multipart/form-data; boundary=€uro"), Invalid)


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("empty", b""),
        ("garbage", b"this is not a multipart body at all\r\n\r\n"),
        ("another boundary", VALID.replace(BOUNDARY.encode(), b"SomethingElse")),
        ("no CRLF after the boundary", f"--{BOUNDARY}Content-Disposition: form-data".encode()),
        ("garbage after a boundary", FIELD + f"--{BOUNDARY}garbage\r\n".encode()),
        ("no closing boundary", FIELD + FILE),
        ("ends after a delimiter", FIELD + f"--{BOUNDARY}".encode()),
        ("ends inside headers", FIELD + f"--{BOUNDARY}\r\nContent-Disposition: form-da".encode()),
        ("ends inside a part", FIELD + FILE[:-100]),
        ("not form-data", part('Content-Disposition: attachment; filename="a.jpg"', b"x") + closing()),
        ("no disposition", part("Content-Type: image/jpeg", b"x") + closing()),
        ("LF only", VALID.replace(b"\r\n", b"\n")),
    ],
)
def test_malformed_bodies_are_invalid(name: str, body: bytes) -> None:
    assert isinstance(refused(body), Invalid), name


@pytest.mark.parametrize("sizes", [[1], [3, 1000], [65536]])
def test_a_stream_that_ends_before_its_length_is_invalid(sizes: list[int]) -> None:
    for cut in (0, 10, len(FIELD) + 20, len(VALID) // 2, len(VALID) - 1):
        exc = refused(VALID[:cut], sizes=sizes, length=len(VALID))
        assert isinstance(exc, Invalid), cut


@settings(max_examples=100, deadline=None)
@given(
    cut=st.integers(min_value=0, max_value=len(VALID) - 1), sizes=st.lists(st.integers(1, 500), min_size=1)
)
def test_every_cut_of_a_body_is_refused(cut: int, sizes: list[int]) -> None:
    # Cut short of what it declared (the client went away), or honestly short (its end is missing).
    assert isinstance(refused(VALID[:cut], sizes=sizes, length=len(VALID)), Invalid)
    if cut < len(VALID) - len("\r\n"):  # short of the closing "--"
        assert isinstance(refused(VALID[:cut], sizes=sizes), Invalid)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_damaged_bodies_are_refused_or_read_never_crash(data: st.DataObject) -> None:
    body = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(body) - 1))
        body[at : at + data.draw(st.integers(0, 4))] = data.draw(st.binary(max_size=6))
    sizes = data.draw(st.lists(st.integers(1, 300), min_size=1, max_size=5))
    with contextlib.suppress(Invalid, TooLarge):
        read_form(bytes(body), sizes=sizes)


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=400), boundary=st.text(st.characters(max_codepoint=255), max_size=80))
def test_random_bytes_are_refused_or_read_never_crash(body: bytes, boundary: str) -> None:
    for content_type in (CONTENT_TYPE, "multipart/form-data; boundary=" + boundary):
        with contextlib.suppress(Invalid, TooLarge):
            read_form(body, content_type)


def test_too_many_parts_is_too_large() -> None:
    fields = [(f"f{i}", str(i)) for i in range(5)]
    body, content_type = encode_multipart_formdata(fields, boundary=BOUNDARY)
    assert len(read_form(body, content_type, max_parts=5).fields) == 5
    assert isinstance(refused(body, content_type, max_parts=4), TooLarge)
    many, content_type = encode_multipart_formdata(
        [(f"f{i}", "") for i in range(multipart.MAX_PARTS + 1)], boundary=BOUNDARY
    )
    assert isinstance(refused(many, content_type), TooLarge)


def test_a_field_larger_than_the_limit_is_too_large() -> None:
    at_limit, content_type = encode_multipart_formdata([("d", "x" * MAX_FIELD_BYTES)], boundary=BOUNDARY)
    assert read_form(at_limit, content_type, sizes=[70_000]).fields == {"d": ["x" * MAX_FIELD_BYTES]}
    over, content_type = encode_multipart_formdata([("d", "x" * (MAX_FIELD_BYTES + 1))], boundary=BOUNDARY)
    assert isinstance(refused(over, content_type, sizes=[70_000]), TooLarge)


def test_headers_larger_than_the_limit_are_too_large() -> None:
    disposition = 'Content-Disposition: form-data; name="a"'
    fits = part(f"{disposition}\r\nX-Pad: {'p' * (MAX_HEADER_BYTES - 200)}", b"v") + closing()
    assert read_form(fits).fields == {"a": ["v"]}
    for sizes in ([len(fits) * 2], [100]):
        big = part(f"{disposition}\r\nX-Pad: {'p' * MAX_HEADER_BYTES}", b"v") + closing()
        assert isinstance(refused(big, sizes=sizes), TooLarge)
        # Headers that never end are refused once they pass the limit, not read to the body's end.
        endless = f"--{BOUNDARY}\r\n{disposition}\r\n".encode() + b"X: y\r\n" * 100_000
        stream = Trickle(endless, sizes)
        with pytest.raises(TooLarge):
            parse(stream, len(endless), CONTENT_TYPE, reading_in(100))
        assert stream.position < 4 * MAX_HEADER_BYTES + multipart.CHUNK


def test_more_header_lines_than_the_limit_is_too_large() -> None:
    disposition = 'Content-Disposition: form-data; name="a"'
    fits = part("\r\n".join([disposition] + ["X: y"] * (multipart.MAX_HEADERS - 1)), b"v") + closing()
    assert read_form(fits).fields == {"a": ["v"]}
    over = part("\r\n".join([disposition] + ["X: y"] * multipart.MAX_HEADERS), b"v") + closing()
    assert isinstance(refused(over), TooLarge)


# -- memory ------------------------------------------------------------------------------------------


class Synthetic:
    """A body of `size` bytes made as it is read (never whole in memory): head, a pattern, tail."""

    def __init__(self, head: bytes, pattern: bytes, size: int, tail: bytes) -> None:
        self.head, self.pattern, self.size, self.tail = head, pattern, size, tail
        self.position = 0
        self.length = len(head) + size + len(tail)

    def read(self, want: int = -1) -> bytes:
        want = min(want, 1 << 16, self.length - self.position)
        if want <= 0:
            return b""
        start, end = self.position, self.position + want
        if start < len(self.head):
            chunk = self.head[start:end]
        elif start < len(self.head) + self.size:
            offset = (start - len(self.head)) % len(self.pattern)
            body_left = len(self.head) + self.size - start
            chunk = (self.pattern[offset:] + self.pattern)[: min(want, body_left)]
        else:
            offset = start - len(self.head) - self.size
            chunk = self.tail[offset : offset + want]
        self.position += len(chunk)
        return chunk


def test_a_50_mb_part_streams_into_the_datastore_in_bounded_memory(tmp_path: Path) -> None:
    size = 50 * 1024 * 1024
    pattern = random.Random(1).randbytes(65536 + 17)  # not a divisor: the pattern drifts across reads
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="a"\r\n\r\nalbum\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.CR3"\r\n\r\n'
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    expected = hashlib.sha256()
    for start in range(0, size, len(pattern)):
        expected.update(pattern[: min(len(pattern), size - start)])
    store = Datastore(tmp_path / "datastore")
    store.prepare()
    body = Synthetic(head, pattern, size, tail)
    tracemalloc.start()
    try:
        form = parse(body, body.length, CONTENT_TYPE, lambda _f, _n, reader: store.stage(reader))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (staged,) = form.files
    assert staged.size == size and staged.sha256 == expected.hexdigest()
    assert form.fields == {"a": ["album"]}
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB while streaming 50 MiB"


def test_a_skipped_50_mb_part_is_read_past_in_bounded_memory() -> None:
    """A callback that reads nothing (ws.php's, for a guest): the part is skipped as it comes."""
    size = 50 * 1024 * 1024
    head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.CR3"\r\n\r\n'
    tail = f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="after"\r\n\r\nyes\r\n--{BOUNDARY}--'
    body = Synthetic(head.encode(), random.Random(2).randbytes(4099), size, tail.encode())
    tracemalloc.start()
    try:
        form = parse(body, body.length, CONTENT_TYPE, lambda _f, name, _reader: name)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert form.files == ["big.CR3"] and form.fields == {"after": ["yes"]}
    assert body.position == body.length
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB while skipping 50 MiB"


# -- over HTTP: /upload ------------------------------------------------------------------------------


def _post(web: Web, body: bytes, content_type: str) -> requests.Response:
    return web.http.post(
        web.base + "/upload",
        data=body,
        headers={
            "Content-Type": content_type,
            "X-CSRF-Token": web.csrf,
            "Origin": web.base,
            "Accept": "application/json",
        },
        timeout=60,
    )


def _nothing_left(library: Library) -> None:
    assert sorted(p.name for p in library.store.tmp.iterdir()) == []
    assert Photo.select().count() == 0 and File.select().count() == 0


def _jpeg(samples: Path) -> bytes:
    return (samples / "jpeg" / "small-cameras" / "Canon_40D.jpg").read_bytes()


@pytest.fixture
def member(server: str, admin: User) -> Web:
    """The admin's browser, logged in on the test server."""
    return web_as(server, "admin", "correct horse")


def test_a_well_formed_upload_is_imported(member: Web, library: Library, samples: Path) -> None:
    """The reference for the refusals below: the same kind of body, well formed, is imported."""
    body = (
        part('Content-Disposition: form-data; name="file"; filename="IMG_1.jpg"', _jpeg(samples)) + closing()
    )
    answer = _post(member, body, CONTENT_TYPE)
    assert answer.status_code == 200, answer.text[:300]
    assert [r["status"] for r in answer.json()["results"]] == ["imported"]
    assert Photo.select().count() == 1
    assert list(library.store.tmp.iterdir()) == []


MALFORMED = {
    "no boundary": (None, "multipart/form-data"),
    "wrong content type": (None, "application/octet-stream"),
    "another boundary": (b"--Other\r\n", CONTENT_TYPE),
    "garbage": (b"GARBAGE\r\n\r\n", CONTENT_TYPE),
    "no closing boundary": (b"", CONTENT_TYPE),
    "ends inside headers": (f"--{BOUNDARY}\r\nContent-Disposition: form-data; na".encode(), CONTENT_TYPE),
    "not form-data": (part("Content-Disposition: inline", b"x") + closing(), CONTENT_TYPE),
    "garbage instead of the next boundary": (b"\r\n--NotTheBoundary--\r\n", CONTENT_TYPE),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_upload_is_a_400_with_a_json_error_and_leaves_nothing(
    case: str, member: Web, library: Library, samples: Path
) -> None:
    extra, content_type = MALFORMED[case]
    file_part = part('Content-Disposition: form-data; name="file"; filename="IMG_1.jpg"', _jpeg(samples))
    if case in ("another boundary", "garbage", "ends inside headers", "not form-data"):
        body = extra
    elif case == "garbage instead of the next boundary":
        body = file_part[:-2] + extra
    elif case == "no closing boundary":
        body = file_part[:-2]  # a whole JPEG, then the body ends without its delimiter
    else:
        body = file_part + closing()
    answer = _post(member, body, content_type)
    assert answer.status_code == 400, answer.text[:300]
    assert answer.headers["Content-Type"].startswith("application/json")
    error = answer.json()["error"]
    assert isinstance(error, str) and error
    _nothing_left(library)


def test_more_parts_than_allowed_is_a_413(member: Web, library: Library) -> None:
    from photoflow.web.upload import MAX_FILES

    fields = [(f"note{i}", "x") for i in range(MAX_FILES + 5)]
    body, content_type = encode_multipart_formdata(fields, boundary=BOUNDARY)
    answer = _post(member, body, content_type)
    assert answer.status_code == 413, answer.text[:300]
    assert answer.json()["error"]
    # Parts that are files (refused as not pictures) count the same, and leave nothing behind.
    files = [("file", (f"n{i}.txt", f"not a picture {i}".encode())) for i in range(MAX_FILES + 5)]
    body, content_type = encode_multipart_formdata(files, boundary=BOUNDARY)
    answer = _post(member, body, content_type)
    assert answer.status_code == 413, answer.text[:300]
    _nothing_left(library)


def _open_upload(member: Web, declared: int) -> tuple[socket.socket, bytes]:
    """A socket to the server and the head of an upload request declaring `declared` body bytes."""
    parts = urlsplit(member.base)
    cookies = "; ".join(f"{c.name}={c.value}" for c in member.http.cookies)
    head = (
        f"POST /upload HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {CONTENT_TYPE}\r\n"
        f"Content-Length: {declared}\r\nCookie: {cookies}\r\nX-CSRF-Token: {member.csrf}\r\n"
        f"Origin: {member.base}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    return socket.create_connection((parts.hostname, parts.port), timeout=30), head


@pytest.mark.parametrize("how", ["close", "reset"])
def test_a_client_that_goes_away_mid_upload_leaves_no_file_and_no_row(
    how: str, member: Web, library: Library
) -> None:
    data = random.Random(3).randbytes(4 * 1024 * 1024)
    head = part('Content-Disposition: form-data; name="file"; filename="IMG_9.CR3"', b"")[:-2]
    declared = len(head) + 64 * 1024 * 1024
    sock, request_head = _open_upload(member, declared)
    try:
        sock.sendall(request_head + head + data)  # a sixteenth of what it declared
        # The server is writing the part into tmp/ ...
        assert eventually(lambda: any(library.store.tmp.iterdir())), "the upload never reached tmp/"
    finally:
        if how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    # ... and once the client is gone, nothing of it stays.
    assert eventually(lambda: not any(library.store.tmp.iterdir())), list(library.store.tmp.iterdir())
    _nothing_left(library)
    assert [p for p in library.store.stored_files()] == []
    # The server still serves.
    assert member.get("/healthz").status_code == 200


def _answer_of(sock: socket.socket) -> bytes:
    """What the server said on `sock` (up to its first 64 KiB), or b"" when it closed without a word."""
    data = b""
    try:
        while len(data) < 65536 and (chunk := sock.recv(65536)):
            data += chunk
            if b"\r\n\r\n" in data and b'"}' in data:
                break
    except OSError:
        pass
    return data


def test_an_upload_declaring_more_than_the_limit_is_a_413_before_its_body(
    member: Web, library: Library
) -> None:
    from photoflow.web.upload import MAX_REQUEST_BYTES

    sock, request_head = _open_upload(member, MAX_REQUEST_BYTES + 1)
    with sock:
        sock.sendall(request_head)  # and not one byte of the body
        answer = _answer_of(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'{"error": ' in answer
    _nothing_left(library)


def test_a_refused_upload_is_never_buffered_in_memory(server: str, library: Library) -> None:
    parts = urlsplit(server)
    size = 64 * 1024 * 1024
    block = bytes(1 << 20)
    head = (
        f"POST /upload HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {CONTENT_TYPE}\r\n"
        f"Content-Length: {size}\r\nX-CSRF-Token: not-a-session-token\r\nAccept: application/json\r\n\r\n"
    ).encode()
    tracemalloc.start()  # traces the server's threads too: they run in this process
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
            try:
                sock.sendall(head)
                for _ in range(size // len(block)):
                    sock.sendall(block)
            except OSError:
                pass  # a server may close a refused request without reading it: that is fine
            answer = _answer_of(sock)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not answer or answer.startswith(b"HTTP/1.1 403"), answer[:200]
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB for a refused 64 MiB body"
    _nothing_left(library)


def _spooled(at_least: int) -> set[str]:
    """Regular files of at least `at_least` bytes that this process (the server too) holds open in the
    temporary directory: where Bottle spools a request body it reads itself."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            info = os.stat(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if (
            target.startswith(tempfile.gettempdir())
            and stat.S_ISREG(info.st_mode)
            and info.st_size >= at_least
        ):
            found.add(f"{fd} {target}")
    return found


def test_an_upload_without_a_token_is_refused_before_anything_reads_its_body(server: str) -> None:
    parts = urlsplit(server)
    size, sent = 64 * 1024 * 1024, 8 * 1024 * 1024
    head = (
        f"POST /upload HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {CONTENT_TYPE}\r\n"
        f"Content-Length: {size}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    first = part('Content-Disposition: form-data; name="file"; filename="x.CR3"', b"")[:-2]
    before = _spooled(4 * 1024 * 1024)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head + first + bytes(sent))
        spooled = eventually(lambda: bool(_spooled(4 * 1024 * 1024) - before), seconds=3)
    assert not spooled, "a visitor's upload without a token was spooled to a temporary file"


def test_the_tests_own_streams_deliver_what_they_hold() -> None:
    """Trickle and Synthetic, the bodies used above, give their bytes in the pieces asked for."""
    stream = Trickle(b"abcdefgh", [3, 1])
    assert [stream.read(10) for _ in range(5)] == [b"abc", b"d", b"efg", b"h", b""]
    synthetic = Synthetic(b"H", b"xyz", 7, b"T")
    assert b"".join(iter(lambda: synthetic.read(2), b"")) == b"Hxyzxyzx" + b"T"
