"""What a file is, decided from its content (never its name): a picture, a camera RAW, or an XMP sidecar.

Two witnesses must agree: exiftool's FileType, which it decides from the bytes (Photoflow hands it
files named `….part`, so it has no name to go by), and the file's own first bytes. A file that is
neither, or on which they disagree, is refused with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from photoflow.errors import Invalid
from photoflow.metadata import Metadata


@dataclass(frozen=True)
class FileKind:
    """A classified file: its kind, the format name Photoflow shows, its MIME type and stored extension."""

    kind: str  # "picture", "raw" or "sidecar"
    format: str
    mime: str
    extension: str


# exiftool FileType -> (format shown, MIME type, extension kept in the datastore)
PICTURES: dict[str, tuple[str, str, str]] = {
    "JPEG": ("JPEG", "image/jpeg", ".jpg"),
    "MPO": ("JPEG", "image/jpeg", ".jpg"),  # a JPEG with extra frames (3D cameras, some phones)
    "PNG": ("PNG", "image/png", ".png"),
    "WEBP": ("WebP", "image/webp", ".webp"),
    "TIFF": ("TIFF", "image/tiff", ".tif"),
    "HEIC": ("HEIF", "image/heic", ".heic"),
    "HEIF": ("HEIF", "image/heif", ".heif"),
    "AVIF": ("AVIF", "image/avif", ".avif"),
}

# Camera RAW formats exiftool recognises from their content. Many are TIFF inside; exiftool tells
# them apart by their maker tags, which is why its verdict is taken over the first bytes alone.
RAWS: dict[str, str] = {
    "DNG": "image/x-adobe-dng",
    "CR2": "image/x-canon-cr2",
    "CR3": "image/x-canon-cr3",
    "CRW": "image/x-canon-crw",
    "NEF": "image/x-nikon-nef",
    "NRW": "image/x-nikon-nrw",
    "ARW": "image/x-sony-arw",
    "SR2": "image/x-sony-sr2",
    "SRF": "image/x-sony-srf",
    "RAF": "image/x-fujifilm-raf",
    "ORF": "image/x-olympus-orf",
    "ORI": "image/x-olympus-orf",
    "RW2": "image/x-panasonic-rw2",
    "RWL": "image/x-leica-rwl",
    "PEF": "image/x-pentax-pef",
    "MRW": "image/x-minolta-mrw",
    "SRW": "image/x-samsung-srw",
    "X3F": "image/x-sigma-x3f",
    "IIQ": "image/x-raw",
    "3FR": "image/x-hasselblad-3fr",
    "FFF": "image/x-hasselblad-fff",
    "ERF": "image/x-epson-erf",
    "KDC": "image/x-kodak-kdc",
    "DCR": "image/x-kodak-dcr",
    "MEF": "image/x-mamiya-mef",
    "MOS": "image/x-raw",
    "GPR": "image/x-raw",
}

_HEAD = 64
# exiftool names some variants apart; Photoflow treats them as their family.
_ALIASES = {"EXTENDED WEBP": "WEBP", "BTF": "TIFF"}  # BTF: BigTIFF


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


# What the first bytes must say for each exiftool FileType.
_EXPECTED = {
    "JPEG": {"jpeg"},
    "MPO": {"jpeg"},
    "PNG": {"png"},
    "WEBP": {"webp"},
    "TIFF": {"tiff"},
    "HEIC": {"isobmff"},
    "HEIF": {"isobmff"},
    "AVIF": {"isobmff"},
    "CR3": {"cr3"},
    "RAF": {"raf"},
    "MRW": {"mrw"},
    "X3F": {"x3f"},
    "CRW": {"crw"},
}


def classify(path: Path, meta: Metadata) -> FileKind:
    """The kind of the stored file at `path`, from exiftool's reading and the file's first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(_HEAD)
    if not head:
        raise Invalid("the file is empty")
    file_type = _ALIASES.get((meta.file_type or "").upper(), (meta.file_type or "").upper())
    if not file_type:
        reason = meta.error or "unknown file type"
        raise Invalid(f"not a picture, RAW or sidecar that Photoflow can read ({reason.rstrip('.')})")
    magic = _magic(head)
    if file_type == "XMP":
        if b"<" not in head or magic:
            raise Invalid("the sidecar is not XML")
        return FileKind("sidecar", "XMP", "application/rdf+xml", ".xmp")
    expected = _EXPECTED.get(file_type, {"tiff"} if file_type in RAWS else set())
    if file_type in PICTURES:
        if magic not in expected:
            raise Invalid(f"the content does not look like the {file_type} it claims to be")
        shown, mime, extension = PICTURES[file_type]
        return FileKind("picture", shown, mime, extension)
    if file_type in RAWS:
        # A few RAW containers are neither TIFF nor announced by a signature we know (newer makers);
        # exiftool's word is enough for those, since Photoflow only reads their embedded preview.
        if magic and magic not in expected and not (magic == "isobmff" and file_type == "CR3"):
            raise Invalid(f"the content does not look like the {file_type} RAW it claims to be")
        return FileKind("raw", file_type, RAWS[file_type], "." + file_type.lower())
    raise Invalid(f"{file_type} files are not pictures, RAWs or sidecars that Photoflow keeps")


def name_for(name: str, mime: str) -> str:
    """A file name whose extension says what the content is.

    Darktable 4.2 sends its JPEG export under the RAW's name (DSC_0001.NEF): kept as the photo's name
    (that is how darktable finds it again), but downloaded as DSC_0001.jpg, which opens as what it is.
    """
    known = {kind_mime: ext for _fmt, kind_mime, ext in PICTURES.values()}
    wanted = known.get(mime)
    if wanted is None:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        return name + wanted
    if ("." + ext.lower()) in _SAME.get(wanted, {wanted}):
        return name
    return stem + wanted


_SAME = {".jpg": {".jpg", ".jpeg", ".jpe"}, ".tif": {".tif", ".tiff"}, ".heic": {".heic", ".heif"}}
