"""The one table of formats Photoflow keeps, and what follows from it.

What a file *is* is decided from its content, never its name: two witnesses must agree, exiftool's
FileType, which it decides from the bytes (Photoflow hands it files named `….part`, so it has no name
to go by), and the file's own first bytes. A file that is neither, or on which they disagree, is refused
with its reason (`classify`).

What a file's *name* says is only a hint, for pairing: a picture, its RAW and its sidecar share a base
name (`pair_key`), and the extension hints at the kind (`hinted_kind`). Every list of extensions
elsewhere comes from the table: the upload page's `accept` and its script (`browser_rules`, handed over
as the page's JSON), ws.php's `upload_file_types` (`upload_extensions`), the batch import's hints.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from photoflow.errors import Invalid
from photoflow.metadata import Metadata

KINDS = ("picture", "raw", "sidecar")


@dataclass(frozen=True)
class Format:
    """One file type, once: everything Photoflow knows about it."""

    file_type: str  # exiftool's FileType, decided from the content
    kind: str  # "picture", "raw" or "sidecar"
    shown: str  # the format name Photoflow shows
    mime: str
    extensions: tuple[str, ...]  # every name it goes by, lowercase with the dot
    stored: str  # the extension it is kept under in the datastore
    # What the first bytes may announce (see _magic). A RAW whose bytes announce nothing we know passes
    # on exiftool's word alone; a picture must always be announced.
    magic: frozenset[str] = frozenset({"tiff"})
    aliases: tuple[str, ...] = ()  # other FileTypes exiftool gives the same format


def _picture(
    file_type: str, shown: str, mime: str, extensions: tuple[str, ...], magic: str, **more: Any
) -> Format:
    stored = more.pop("stored", extensions[0])
    return Format(file_type, "picture", shown, mime, extensions, stored, frozenset({magic}), **more)


def _raw(file_type: str, mime: str, *also: str, magic: frozenset[str] = frozenset({"tiff"})) -> Format:
    own = "." + file_type.lower()
    return Format(file_type, "raw", file_type, mime, (own, *also), own, magic)


FORMATS: tuple[Format, ...] = (
    _picture("JPEG", "JPEG", "image/jpeg", (".jpg", ".jpeg", ".jpe"), "jpeg"),
    # A JPEG with extra frames (3D cameras, some phones): shown and kept as the JPEG it is.
    _picture("MPO", "JPEG", "image/jpeg", (".mpo",), "jpeg", stored=".jpg"),
    _picture("PNG", "PNG", "image/png", (".png",), "png"),
    _picture("WEBP", "WebP", "image/webp", (".webp",), "webp", aliases=("EXTENDED WEBP",)),  # VP8X
    _picture("TIFF", "TIFF", "image/tiff", (".tif", ".tiff"), "tiff", aliases=("BTF",)),  # BigTIFF
    _picture("HEIC", "HEIF", "image/heic", (".heic",), "isobmff"),
    _picture("HEIF", "HEIF", "image/heif", (".heif", ".hif"), "isobmff"),
    _picture("AVIF", "AVIF", "image/avif", (".avif",), "isobmff"),
    # Camera RAWs exiftool recognises from their content. Many are TIFF inside; exiftool tells them
    # apart by their maker tags, which is why its verdict is taken over the first bytes alone.
    _raw("DNG", "image/x-adobe-dng"),
    _raw("CR2", "image/x-canon-cr2"),
    _raw("CR3", "image/x-canon-cr3", magic=frozenset({"cr3", "isobmff"})),
    _raw("CRW", "image/x-canon-crw", magic=frozenset({"crw"})),
    _raw("NEF", "image/x-nikon-nef"),
    _raw("NRW", "image/x-nikon-nrw"),
    _raw("ARW", "image/x-sony-arw"),
    _raw("SR2", "image/x-sony-sr2"),
    _raw("SRF", "image/x-sony-srf"),
    _raw("RAF", "image/x-fujifilm-raf", magic=frozenset({"raf"})),
    # .ori: an E-M5's original before in-camera processing; exiftool calls its content ORF.
    Format("ORF", "raw", "ORF", "image/x-olympus-orf", (".orf", ".ori"), ".orf", aliases=("ORI",)),
    _raw("RW2", "image/x-panasonic-rw2"),
    _raw("RWL", "image/x-leica-rwl"),
    _raw("PEF", "image/x-pentax-pef"),
    _raw("MRW", "image/x-minolta-mrw", magic=frozenset({"mrw"})),
    _raw("SRW", "image/x-samsung-srw"),
    _raw("X3F", "image/x-sigma-x3f", magic=frozenset({"x3f"})),
    _raw("IIQ", "image/x-raw"),
    _raw("3FR", "image/x-hasselblad-3fr"),
    _raw("FFF", "image/x-hasselblad-fff"),
    _raw("ERF", "image/x-epson-erf"),
    _raw("KDC", "image/x-kodak-kdc"),
    _raw("DCR", "image/x-kodak-dcr"),
    _raw("MEF", "image/x-mamiya-mef"),
    _raw("MOS", "image/x-raw"),
    _raw("GPR", "image/x-raw"),
    # darktable's, Lightroom's and Capture One's sidecars; checked as XML (see classify).
    Format("XMP", "sidecar", "XMP", "application/rdf+xml", (".xmp",), ".xmp", frozenset()),
)

BY_TYPE: dict[str, Format] = {name: f for f in FORMATS for name in (f.file_type, *f.aliases)}
BY_EXTENSION: dict[str, Format] = {ext: f for f in FORMATS for ext in f.extensions}


def extensions(kind: str) -> frozenset[str]:
    """Every extension (lowercase, with the dot) of the formats of this kind."""
    return frozenset(ext for f in FORMATS if f.kind == kind for ext in f.extensions)


@dataclass(frozen=True)
class FileKind:
    """A classified file: its kind, the format name Photoflow shows, its MIME type and stored extension."""

    kind: str  # "picture", "raw" or "sidecar"
    format: str
    mime: str
    extension: str


_HEAD = 64


def _magic(head: bytes) -> str:
    """The container the first bytes announce, or ''."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand == b"crx ":
            return "cr3"
        return "isobmff"
    if head.startswith((b"IIRO", b"IIRS", b"IIU\x00")):  # Olympus ORF variants, Panasonic RW2
        return "tiff"
    if head.startswith(b"FUJIFILMCCD-RAW"):
        return "raf"
    if head.startswith(b"\x00MRM"):
        return "mrw"
    if head.startswith(b"FOVb"):
        return "x3f"
    if head.startswith(b"II\x1a\x00\x00\x00HEAPCCDR"):
        return "crw"
    return ""


def classify(path: Path, meta: Metadata) -> FileKind:
    """The kind of the stored file at `path`, from exiftool's reading and the file's first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(_HEAD)
    if not head:
        raise Invalid("the file is empty")
    said = (meta.file_type or "").upper()
    if not said:
        reason = meta.error or "unknown file type"
        raise Invalid(f"not a picture, RAW or sidecar that Photoflow can read ({reason.rstrip('.')})")
    known = BY_TYPE.get(said)
    if known is None:
        raise Invalid(f"{said} files are not pictures, RAWs or sidecars that Photoflow keeps")
    file_type = known.file_type
    magic = _magic(head)
    if known.kind == "sidecar":
        if b"<" not in head or magic:
            raise Invalid("the sidecar is not XML")
    elif known.kind == "picture":
        if magic not in known.magic:
            raise Invalid(f"the content does not look like the {file_type} it claims to be")
    # A few RAW containers are neither TIFF nor announced by a signature we know (newer makers);
    # exiftool's word is enough for those, since Photoflow only reads their embedded preview.
    elif magic and magic not in known.magic:
        raise Invalid(f"the content does not look like the {file_type} RAW it claims to be")
    return FileKind(known.kind, known.shown, known.mime, known.stored)


def name_for(name: str, mime: str) -> str:
    """A file name whose extension says what the content is.

    Darktable 4.2 sends its JPEG export under the RAW's name (DSC_0001.NEF): kept as the photo's name
    (that is how darktable finds it again), but downloaded as DSC_0001.jpg, which opens as what it is.
    """
    wanted = next((f for f in FORMATS if f.kind == "picture" and f.mime == mime), None)
    if wanted is None:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return name + wanted.stored
    # Any name of the same format will do: IMG_1.JPEG stays, as does a HEIF picture's .heic.
    same = {e for f in FORMATS if f.shown == wanted.shown for e in f.extensions}
    if ("." + ext.lower()) in same:
        return name
    return stem + wanted.stored


# -- names: what a client's file name becomes, and what it hints at --------------------------------------

_MAX_NAME = 255
# Pixel 7+ phones write one shot as PXL_<stamp>.RAW-01.MP.COVER.jpg + PXL_<stamp>.RAW-02.ORIGINAL.dng.
# Written for both sides: ASCII only (the browser's RegExp "i" folds no other letters onto these),
# and no newline can reach the `$` (display names have none).
PHONE_PAIR = r"\.RAW-[0-9]+(?:\.MP)?\.(?:COVER|ORIGINAL)$"
_PHONE_PAIR = re.compile(PHONE_PAIR, re.IGNORECASE | re.ASCII)
# Which extensions, before a sidecar's own, name the file it describes (IMG_1.CR2.xmp).
_DESCRIBED = extensions("picture") | extensions("raw")


def display_name(name: str) -> str:
    """The client's file name reduced to display text: no folders, no control characters, bounded."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    base = "".join(ch for ch in base if ch.isprintable())
    return base[:_MAX_NAME].strip() or "unnamed"


def _split(name: str) -> tuple[str, str]:
    dot = name.rfind(".")
    if dot <= 0:
        return name, ""
    return name[:dot], name[dot:].lower()


def pair_key(name: str) -> str:
    """The base name that pairs a picture with its RAW and sidecar.

    `IMG_1.CR2.xmp`, `IMG_1.CR2`, `IMG_1.xmp` and `img_1.jpg` all give `img_1`; Pixel's
    `PXL_1.RAW-01.MP.COVER.jpg` and `PXL_1.RAW-02.ORIGINAL.dng` give `pxl_1`.
    """
    stem, ext = _split(display_name(name))
    if ext in extensions("sidecar"):
        inner, inner_ext = _split(stem)
        if inner_ext in _DESCRIBED:
            stem = inner
    return _PHONE_PAIR.sub("", stem).casefold()


def hinted_kind(name: str) -> str:
    """The kind a file's extension suggests ("picture", "raw", "sidecar"), or "" when it names none.

    A hint only, for ordering and for skipping work: what a file is comes from `classify`.
    """
    known = BY_EXTENSION.get(_split(display_name(name))[1])
    return known.kind if known else ""


# -- what the other places need, derived ----------------------------------------------------------------


def upload_extensions() -> list[str]:
    """Every extension Photoflow takes, lowercase without the dot, in the table's order (ws.php's
    `upload_file_types`)."""
    return [ext.removeprefix(".") for f in FORMATS for ext in f.extensions]


def accept() -> str:
    """The upload field's `accept`: any picture the browser knows (a phone then offers its photo
    library), and every extension of the table, since most systems know no MIME type for RAWs."""
    return ",".join(["image/*", *(ext for f in FORMATS for ext in f.extensions)])


@functools.cache
def _case_folds() -> dict[str, str]:
    # pair_key folds case with str.casefold; JavaScript has only toLowerCase, which is Python's
    # str.lower. The characters where the two differ (ß, ς, ligatures, Cherokee: about 300) go to the
    # browser. No cased letter lies beyond U+1FFFF.
    folds = {}
    for ch in map(chr, range(0x20000)):
        folded = ch.casefold()
        if folded != ch.lower():
            folds[ch] = folded
    return folds


def browser_rules() -> dict[str, Any]:
    """What the upload page's script needs to group and order files exactly as `pair_key` and
    `hinted_kind` do: the extensions by kind, the phone-pair pattern, the longest display name, and
    the case folds."""
    return {
        "extensions": {kind: sorted(extensions(kind)) for kind in KINDS},
        "phonePair": PHONE_PAIR,
        "maxName": _MAX_NAME,
        "caseFolds": _case_folds(),
    }
