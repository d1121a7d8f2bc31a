"""File types: filetypes.classify on real samples staged under a neutral name (as the datastore stages
them, so no extension can help), with the real exiftool's verdict; and the refusals, each with its reason."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from photoflow.errors import Invalid
from photoflow.filetypes import FileKind, classify, name_for
from photoflow.metadata import ExifReader, Metadata, normalise
from tests.test_importer import write_darktable_sidecar


@pytest.fixture(scope="module")
def reader() -> Iterator[ExifReader]:
    """One exiftool process for the module, stopped at the end."""
    r = ExifReader()
    yield r
    r.close()


def staged(source: Path, tmp_path: Path) -> Path:
    """A copy named like a file being written to the datastore: nothing to learn from the name."""
    target = tmp_path / "x.part"
    shutil.copyfile(source, target)
    return target


def kind_of(reader: ExifReader, path: Path) -> FileKind:
    return classify(path, normalise(reader.read(path)))


def refusal(reader: ExifReader, path: Path) -> str:
    with pytest.raises(Invalid) as caught:
        kind_of(reader, path)
    reason = caught.value.reason
    assert reason and "\n" not in reason
    return reason


@pytest.mark.parametrize(
    ("rel", "fmt", "mime", "extension"),
    [
        ("jpeg/nature/silver_fir.jpg", "JPEG", "image/jpeg", ".jpg"),
        ("jpeg/cameras/Panasonic Lumix DMC-LX7.jpg", "JPEG", "image/jpeg", ".jpg"),  # an MPO, two frames
        ("png/density_plot.png", "PNG", "image/png", ".png"),
        ("webp/denali.webp", "WebP", "image/webp", ".webp"),  # exiftool: "Extended WEBP" (VP8X)
        ("webp/webpvp8x.webp", "WebP", "image/webp", ".webp"),
        ("tiff/BSG1.tiff", "TIFF", "image/tiff", ".tif"),
        ("tiff/multipage.tif", "TIFF", "image/tiff", ".tif"),
        ("heic/IMG_5195.HEIC", "HEIF", "image/heic", ".heic"),
        ("heic/iphone_13_pro_max.HEIC", "HEIF", "image/heic", ".heic"),
        ("avif/8bit-sRGB.avif", "AVIF", "image/avif", ".avif"),
        ("avif/10bit-HDR-P3-nclx.avif", "AVIF", "image/avif", ".avif"),
        ("raw/Issue 247-1.nef", "JPEG", "image/jpeg", ".jpg"),  # a JPEG under a RAW's name
    ],
)
def test_pictures(
    reader: ExifReader, samples: Path, tmp_path: Path, rel: str, fmt: str, mime: str, extension: str
) -> None:
    assert kind_of(reader, staged(samples / rel, tmp_path)) == FileKind("picture", fmt, mime, extension)


def test_webp_samples_are_both_extended(reader: ExifReader, samples: Path) -> None:
    """Both WebP samples are VP8X containers, which exiftool names apart from plain WebP."""
    for rel in ("webp/denali.webp", "webp/webpvp8x.webp"):
        path = (samples / rel).resolve()
        assert path.read_bytes()[12:16] == b"VP8X"
        assert normalise(reader.read(path)).file_type == "Extended WEBP"


@pytest.mark.parametrize(
    ("rel", "fmt", "mime"),
    [
        ("raw/Canon-R6-pruned.CR3", "CR3", "image/x-canon-cr3"),
        ("raw/metadata-only/CanonRaw.cr3", "CR3", "image/x-canon-cr3"),
        ("raw/metadata-only/Nikon.nef", "NEF", "image/x-nikon-nef"),
        ("raw/synthetic_24mp_fullprev.dng", "DNG", "image/x-adobe-dng"),
        ("raw/metadata-only/DNG.dng", "DNG", "image/x-adobe-dng"),
        ("raw/metadata-only/FujiFilm.raf", "RAF", "image/x-fujifilm-raf"),
        ("raw/metadata-only/Panasonic.rw2", "RW2", "image/x-panasonic-rw2"),
        ("raw/metadata-only/Minolta.mrw", "MRW", "image/x-minolta-mrw"),
        ("raw/metadata-only/CanonRaw.cr2", "CR2", "image/x-canon-cr2"),
    ],
)
def test_raws(reader: ExifReader, samples: Path, tmp_path: Path, rel: str, fmt: str, mime: str) -> None:
    kind = kind_of(reader, staged(samples / rel, tmp_path))
    assert kind == FileKind("raw", fmt, mime, "." + fmt.lower())


def test_darktable_sidecar(reader: ExifReader, tmp_path: Path) -> None:
    source = tmp_path / "IMG_0001.CR3.xmp"
    write_darktable_sidecar(source, "IMG_0001.CR3", rating=3, labels=(1,), history_end=2)
    (tmp_path / "staging").mkdir()
    path = staged(source, tmp_path / "staging")
    assert kind_of(reader, path) == FileKind("sidecar", "XMP", "application/rdf+xml", ".xmp")


# -- refusals --------------------------------------------------------------------------------------------


def test_empty_file(reader: ExifReader, tmp_path: Path) -> None:
    empty = tmp_path / "x.part"
    empty.write_bytes(b"")
    assert refusal(reader, empty) == "the file is empty"


@pytest.mark.parametrize(
    ("content", "exiftool_type"),
    [
        (b"just some text, not a picture\n", "TXT"),
        (b"<!doctype html><html><body><script>alert(1)</script></body></html>", "HTML"),
        (
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
            b'<script>alert(1)</script><rect width="10" height="10"/></svg>',
            "SVG",
        ),
        # The file type behind CVE-2021-22204: exiftool recognises it from its content, whatever its name.
        (b"AT&TFORM\x00\x00\x01\x00DJVUINFO" + b"\x00" * 200, "DJVU"),
    ],
    ids=["text", "html", "svg", "djvu"],
)
def test_other_content_is_refused(
    reader: ExifReader, tmp_path: Path, content: bytes, exiftool_type: str
) -> None:
    path = tmp_path / "x.part"
    path.write_bytes(content)
    reason = refusal(reader, path)
    assert reason == f"{exiftool_type} files are not pictures, RAWs or sidecars that Photoflow keeps"


def test_pdf_is_refused(reader: ExifReader, tmp_path: Path) -> None:
    pdf = tmp_path / "page.pdf"
    Image.new("RGB", (10, 10), "red").save(pdf)
    assert "PDF files are not" in refusal(reader, staged(pdf, tmp_path))


def test_zip_is_refused(reader: ExifReader, tmp_path: Path) -> None:
    archive = tmp_path / "x.part"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("IMG_0001.jpg", b"\xff\xd8\xff\xe0 not really")
    assert "ZIP files are not" in refusal(reader, archive)


def test_unknown_bytes_are_refused_with_exiftools_reason(reader: ExifReader, tmp_path: Path) -> None:
    path = tmp_path / "x.part"
    path.write_bytes(b"\x01\x02\x03\x04" * 64)
    assert refusal(reader, path).startswith("not a picture, RAW or sidecar that Photoflow can read (")


def test_first_bytes_must_agree_with_exiftool(samples: Path, tmp_path: Path) -> None:
    png = staged(samples / "png/density_plot.png", tmp_path)
    with pytest.raises(Invalid, match="does not look like the JPEG it claims to be"):
        classify(png, Metadata(file_type="JPEG"))
    with pytest.raises(Invalid, match="does not look like the NEF RAW"):
        classify(png, Metadata(file_type="NEF"))
    with pytest.raises(Invalid, match="the sidecar is not XML"):
        classify(png, Metadata(file_type="XMP"))
    with pytest.raises(Invalid, match="File format error"):
        classify(png, Metadata(file_type="", error="File format error"))


def test_bigtiff_is_a_tiff(reader: ExifReader, tmp_path: Path) -> None:
    path = tmp_path / "x.part"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(path, "TIFF", big_tiff=True)
    assert path.read_bytes()[:4] == b"II+\x00"
    assert kind_of(reader, path) == FileKind("picture", "TIFF", "image/tiff", ".tif")


@pytest.mark.parametrize(
    ("name", "mime", "expected"),
    [
        ("DSC_0001.NEF", "image/jpeg", "DSC_0001.jpg"),  # darktable 4.2: the export under the RAW's name
        ("IMG_1.JPG", "image/jpeg", "IMG_1.JPG"),
        ("a.jpeg", "image/jpeg", "a.jpeg"),
        ("plot.jpg", "image/png", "plot.png"),
        ("IMG_2.CR3", "image/x-canon-cr3", "IMG_2.CR3"),
        ("noextension", "image/png", "noextension.png"),
    ],
)
def test_download_names_say_what_the_content_is(name: str, mime: str, expected: str) -> None:
    assert name_for(name, mime) == expected
