"""Metadata: real exiftool (through ExifReader) on real camera files, and normalise() turning its long JSON
into Photoflow's fields — impossible values as None, darktable sidecars, caps on huge metadata, the safety
checks on what reaches exiftool, and the time limit on a stuck exiftool."""

from __future__ import annotations

import datetime as dt
import gc
import json
import math
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from photoflow import metadata
from photoflow.errors import Invalid, Unavailable
from photoflow.metadata import ExifReader, Metadata, check_exiftool, exiftool_version, normalise, parse_date
from tests.test_importer import write_darktable_sidecar

NIKON_D90 = "jpeg/cameras/Nikon D90.jpg"
PICASA = "jpeg/xmp/picasa.jpg"  # Canon, IPTC keywords, three EXIF dates and no others


@pytest.fixture(scope="module")
def reader() -> Iterator[ExifReader]:
    """One exiftool process for the module, stopped at the end."""
    r = ExifReader()
    yield r
    r.close()


def read(reader: ExifReader, path: Path) -> Metadata:
    return normalise(reader.read(path.resolve()))


def write_tags(path: Path, *args: str) -> None:
    """Write with the real exiftool; -m lets it write extended XMP when the packet passes 64 KB."""
    subprocess.run(["exiftool", "-q", "-q", "-m", "-overwrite_original", *args, str(path)], check=True)


def copy_sample(samples: Path, rel: str, dest: Path) -> Path:
    target = dest / Path(rel).name
    shutil.copyfile(samples / rel, target)
    return target


def long_form(val: Any, num: Any = None) -> dict[str, Any]:
    """One tag as exiftool's -l JSON gives it."""
    return {"val": val} if num is None else {"val": val, "num": num}


def xmp_packet(body: str, attributes: str = "") -> str:
    """An XMP packet without the <?xml ?> declaration (exiftool wants it that way for -xmp<=)."""
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        f" {attributes}>{body}</rdf:Description></rdf:RDF></x:xmpmeta>"
    )


def exiftool_children() -> set[int]:
    """Live (not zombie) exiftool processes started by this test process."""
    found: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        state, ppid = text[text.rindex(")") + 2 :].split()[:2]
        if int(ppid) == os.getpid() and state != "Z" and b"exiftool" in cmdline:
            found.add(int(stat.parent.name))
    return found


# -- real files ------------------------------------------------------------------------------------------


def test_camera_jpeg_fields(reader: ExifReader, samples: Path) -> None:
    meta = read(reader, samples / NIKON_D90)
    assert (meta.file_type, meta.mime) == ("JPEG", "image/jpeg")
    assert (meta.make, meta.model) == ("NIKON CORPORATION", "NIKON D90")
    assert meta.lens == "AF Nikkor 24mm f/2.8D"
    assert meta.exposure_time == pytest.approx(0.1)
    assert meta.aperture == pytest.approx(3.2)
    assert meta.iso == 250
    assert meta.focal_length == pytest.approx(24)
    assert meta.focal_length_35mm == pytest.approx(36)
    assert meta.flash == "No Flash"
    assert (meta.width, meta.height, meta.orientation) == (4288, 2848, 1)
    # EXIF has no OffsetTimeOriginal: the offset comes from the Nikon maker note's TimeZone.
    assert meta.taken_at == dt.datetime(2011, 4, 25, 1, 55, 30, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    assert meta.taken_at.utcoffset() == dt.timedelta(hours=9)
    assert meta.date_source == "SubSecDateTimeOriginal"
    assert meta.previews == {"PreviewImage": 23370, "ThumbnailImage": 9056}
    assert "System:FileName" not in meta.tags and "ExifTool:ExifToolVersion" not in meta.tags
    assert meta.tags["IFD0:Model"] == "NIKON D90"


def test_gps_positions(reader: ExifReader, samples: Path) -> None:
    tuscany = read(reader, samples / "jpeg/gps/DSCN0010.jpg")
    assert tuscany.gps_lat == pytest.approx(43.4674, abs=1e-4)
    assert tuscany.gps_lon == pytest.approx(11.8851, abs=1e-4)
    assert tuscany.gps_alt is None
    utah = read(reader, samples / "jpeg/gps/thompson-springs.jpg")
    assert utah.gps_lat == pytest.approx(39.115, abs=1e-4)
    assert utah.gps_lon == pytest.approx(-108.40097, abs=1e-4)  # West: negative
    assert utah.gps_alt == pytest.approx(1483.9, abs=0.05)
    # The capture time comes from XMP photoshop:DateCreated, which carries no offset.
    assert utah.date_source == "DateCreated"
    assert utah.taken_at.replace(tzinfo=None) == dt.datetime(2022, 1, 10, 15, 15, 44, 310000)


def test_empty_gps_block_gives_no_position(reader: ExifReader, samples: Path) -> None:
    """The phone wrote GPS tags with empty values: no position, and everything else still reads."""
    meta = read(reader, samples / "jpeg/gps/empty_gps.jpg")
    assert (meta.gps_lat, meta.gps_lon, meta.gps_alt) == (None, None, None)
    assert (meta.make, meta.model) == ("motorola", "moto g(9) plus")
    assert meta.taken_at == dt.datetime(2025, 6, 1, 16, 59, 26, 23460)


def test_orientation_is_read_and_size_is_as_stored(reader: ExifReader, samples: Path) -> None:
    meta = read(reader, samples / "jpeg/orientation/landscape_6.jpg")
    assert meta.orientation == 6
    assert (meta.width, meta.height) == (450, 600)  # stored sideways; shown 600x450


BLUE_SQUARE_KEYWORDS = ["XMP", "Blue Square", "test file", "Photoshop", ".jpg"]


@pytest.mark.parametrize(
    ("rel", "title", "keywords", "rating"),
    [
        ("jpeg/xmp/BlueSquare.jpg", "Blue Square Test File - .jpg", BLUE_SQUARE_KEYWORDS, None),
        ("jpeg/xmp/XMP.jpg", "Test IPTC picture", ["ExifTool", "Test", "XMP"], None),
        ("jpeg/xmp/mongolels.jpg", "Mongol Els", [], 3),
        # IPTC, XMP and Windows XPKeywords all say "tag": kept once.
        ("jpeg/xmp/no_exif.jpg", "Der Goalie bin ig", ["tag"], None),
        ("jpeg/xmp/picasa.jpg", None, ["Frost", "Yard"], None),
    ],
)
def test_xmp_samples(
    reader: ExifReader, samples: Path, rel: str, title: str | None, keywords: list[str], rating: int | None
) -> None:
    meta = read(reader, samples / rel)
    assert meta.title == title
    assert meta.keywords == keywords
    assert meta.rating == rating


def test_xmp_descriptions_and_dates(reader: ExifReader, samples: Path) -> None:
    blue = read(reader, samples / "jpeg/xmp/BlueSquare.jpg")
    assert blue.description.startswith("XMPFiles BlueSquare test file")
    # Only XMP xmp:CreateDate, with its offset.
    assert blue.taken_at == dt.datetime(2005, 9, 7, 15, 7, 40, tzinfo=dt.timezone(dt.timedelta(hours=-7)))
    assert read(reader, samples / "jpeg/xmp/XMP.jpg").description == "UTF-16 (big-endian) encoded XMP"
    goalie = read(reader, samples / "jpeg/xmp/no_exif.jpg")
    assert goalie.taken_at.utcoffset() == dt.timedelta(hours=2) and goalie.date_source == "CreateDate"


def test_date_priority(reader: ExifReader, samples: Path) -> None:
    """One tag each: DateTimeOriginal wins over CreateDate, PDF, XMP GPS and IPTC dates."""
    meta = read(reader, samples / "jpeg/dates/date-priority-test.jpg")
    assert meta.taken_at == dt.datetime(2023, 2, 2, 2, 0, 0)
    assert meta.taken_at.tzinfo is None
    assert meta.date_source == "DateTimeOriginal"


def test_gps_time_is_aware_utc(reader: ExifReader, samples: Path) -> None:
    meta = read(reader, samples / "jpeg/dates/gps-datetime.jpg")
    assert meta.taken_at == dt.datetime(2023, 11, 15, 12, 30, tzinfo=dt.UTC)
    assert meta.taken_at.utcoffset() == dt.timedelta(0)
    assert meta.date_source == "GPSDateTime"


def test_time_without_a_date_is_no_capture_time(reader: ExifReader, samples: Path) -> None:
    meta = read(reader, samples / "jpeg/dates/time-created.jpg")  # only IPTC TimeCreated 14:30:00
    assert (meta.taken_at, meta.date_source) == (None, None)
    assert (meta.make, meta.model) == ("Canon", "EOS R5")


def test_datetimeoriginal_with_gps(reader: ExifReader, samples: Path) -> None:
    meta = read(reader, samples / "jpeg/dates/datetimeoriginal-gps.jpg")
    assert meta.taken_at == dt.datetime(2025, 12, 1, 11, 30)
    assert (meta.gps_lat, meta.gps_lon) == (pytest.approx(39.0), pytest.approx(-108.0))


def test_heic(reader: ExifReader, samples: Path) -> None:
    meta = read(reader, samples / "heic/IMG_5195.HEIC")
    assert (meta.file_type, meta.mime) == ("HEIC", "image/heic")
    assert (meta.make, meta.model) == ("Apple", "iPhone 11 Pro Max")
    assert meta.lens and meta.lens.startswith("iPhone 11 Pro Max back triple camera")
    assert meta.taken_at == dt.datetime(
        2021, 4, 11, 15, 47, 53, 54000, tzinfo=dt.timezone(dt.timedelta(hours=-5))
    )
    assert meta.gps_lat == pytest.approx(39.0513, abs=1e-3) and meta.gps_lon == pytest.approx(
        -94.2888, abs=1e-3
    )
    assert (meta.width, meta.height) == (2566, 3313)


@pytest.mark.parametrize(
    ("rel", "file_type", "make"),
    [
        ("raw/Canon-R6-pruned.CR3", "CR3", "Canon"),
        ("raw/synthetic_24mp_fullprev.dng", "DNG", "NIKON CORPORATION"),
        ("raw/metadata-only/CanonRaw.cr2", "CR2", "Canon"),
        ("raw/metadata-only/CanonRaw.cr3", "CR3", "Canon"),
        ("raw/metadata-only/DNG.dng", "DNG", "Canon"),
        ("raw/metadata-only/FujiFilm.raf", "RAF", "FUJIFILM"),
        ("raw/metadata-only/Minolta.mrw", "MRW", "Konica Minolta Camera, Inc."),
        ("raw/metadata-only/Nikon.nef", "NEF", "NIKON CORPORATION"),
        ("raw/metadata-only/Panasonic.rw2", "RW2", "Panasonic"),
        ("raw/Issue 247-1.nef", "JPEG", "NIKON CORPORATION"),  # a JPEG under a RAW's name
    ],
)
def test_raw_files(reader: ExifReader, samples: Path, rel: str, file_type: str, make: str) -> None:
    meta = read(reader, samples / rel)
    assert meta.file_type == file_type
    assert meta.make == make and meta.model
    assert meta.taken_at is not None
    assert meta.previews, "every one carries at least a stub of an embedded picture"
    assert set(meta.previews) <= {"JpgFromRaw", "PreviewImage", "OtherImage", "ThumbnailImage"}
    assert all(isinstance(size, int) and size > 0 for size in meta.previews.values())


def test_raw_preview_sizes_match_what_exiftool_extracts(reader: ExifReader, samples: Path) -> None:
    dng = (samples / "raw/synthetic_24mp_fullprev.dng").resolve()
    meta = normalise(reader.read(dng))
    assert meta.previews["PreviewImage"] > 1_000_000  # the full-size 6016x4016 preview
    data = reader.extract(dng, "PreviewImage")
    assert len(data) == meta.previews["PreviewImage"] and data[:3] == b"\xff\xd8\xff"
    cr3 = read(reader, samples / "raw/Canon-R6-pruned.CR3")
    assert cr3.previews["PreviewImage"] > 300_000 and cr3.previews["ThumbnailImage"] > 10_000


# -- impossible values -----------------------------------------------------------------------------------


def test_impossible_dates_fall_back_to_the_next_source(
    reader: ExifReader, samples: Path, tmp_path: Path
) -> None:
    jpeg = copy_sample(samples, PICASA, tmp_path)
    # '#' writes the value as given: exiftool's own date check refuses month 0 and 13 otherwise. It will not
    # write a year 99999 into XMP at all, so that one comes in a whole packet.
    packet = tmp_path / "dates.xmp"
    packet.write_text(
        xmp_packet(
            "", 'exif:DateTimeOriginal="99999-01-01T00:00:00" xmp:CreateDate="2019-03-04T05:06:07+01:00"'
        )
    )
    write_tags(
        jpeg, "-DateTimeOriginal#=0000:00:00 00:00:00", "-CreateDate#=2020:13:01 10:00:00", f"-xmp<={packet}"
    )
    raw = reader.read(jpeg)
    assert raw["ExifIFD:DateTimeOriginal"]["val"] == "0000:00:00 00:00:00"
    assert raw["ExifIFD:CreateDate"]["val"] == "2020:13:01 10:00:00"
    assert raw["XMP-exif:DateTimeOriginal"]["val"].startswith("99999")
    meta = normalise(raw)
    assert meta.taken_at == dt.datetime(2019, 3, 4, 5, 6, 7, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert meta.date_source == "CreateDate"
    # The rest of the file still reads.
    assert (meta.make, meta.model) == ("Canon", "Canon PowerShot SD1100 IS")
    assert meta.keywords == ["Frost", "Yard"] and meta.iso == 80


def test_only_impossible_dates_give_no_capture_time(
    reader: ExifReader, samples: Path, tmp_path: Path
) -> None:
    jpeg = copy_sample(samples, PICASA, tmp_path)
    write_tags(jpeg, "-AllDates#=0000:00:00 00:00:00")
    meta = read(reader, jpeg)
    assert meta.tags["ExifIFD:DateTimeOriginal"] == "0000:00:00 00:00:00"
    assert (meta.taken_at, meta.date_source) == (None, None)
    assert meta.make == "Canon" and meta.exposure_time == pytest.approx(1 / 400)


def test_month_13_alone_falls_back(reader: ExifReader, samples: Path, tmp_path: Path) -> None:
    jpeg = copy_sample(samples, "jpeg/gps/DSCN0010.jpg", tmp_path)
    write_tags(jpeg, "-DateTimeOriginal#=2008:13:22 16:28:39", "-CreateDate=2008:10:22 16:28:40")
    meta = read(reader, jpeg)
    assert meta.taken_at == dt.datetime(2008, 10, 22, 16, 28, 40) and meta.date_source == "CreateDate"
    assert meta.gps_lat == pytest.approx(43.4674, abs=1e-4)


def test_non_finite_numbers_become_none() -> None:
    nan, inf = float("nan"), float("inf")
    meta = normalise(
        {
            "File:FileType": long_form("JPEG"),
            "ExifIFD:ExposureTime": long_form("nan", nan),
            "ExifIFD:FNumber": long_form("inf", inf),
            "Composite:Aperture": long_form(4.0, 4.0),  # the next source of the aperture is fine
            "ExifIFD:ISO": long_form(-inf),
            "ExifIFD:FocalLength": long_form("0.0 mm", 0),
            "ExifIFD:FocalLengthIn35mmFormat": long_form("1/0", "1/0"),
            "Composite:GPSAltitude": long_form(nan, nan),
            "IFD0:Orientation": long_form(nan, nan),
        }
    )
    assert meta.exposure_time is None and meta.iso is None and meta.focal_length is None
    assert meta.focal_length_35mm is None and meta.orientation is None
    assert meta.aperture == 4.0
    # What is stored is strict JSON: no NaN or Infinity.
    json.dumps(meta.tags, allow_nan=False)


@pytest.mark.parametrize(
    ("lat", "lon", "alt", "expected"),
    [
        (200, 10, 100, (None, None, None)),
        (45, -181, 100, (None, None, None)),
        (0, 0, 0, (None, None, None)),  # "null island": a camera without a fix
        (45.5, -73.5, 1e6, (45.5, -73.5, None)),  # an altitude from space: the position stays
        (-33.9, 151.2, -20, (-33.9, 151.2, -20)),
    ],
)
def test_gps_ranges(lat: float, lon: float, alt: float, expected: tuple[float | None, ...]) -> None:
    meta = normalise(
        {
            "Composite:GPSLatitude": long_form(f"{lat} deg", lat),
            "Composite:GPSLongitude": long_form(f"{lon} deg", lon),
            "Composite:GPSAltitude": long_form(f"{alt} m", alt),
        }
    )
    assert (meta.gps_lat, meta.gps_lon, meta.gps_alt) == expected


@pytest.mark.parametrize(("value", "expected"), [(9, None), (6, None), (-2, None), (-1, -1), (0, 0), (5, 5)])
def test_rating_range(value: int, expected: int | None) -> None:
    assert normalise({"XMP-xmp:Rating": long_form(value, value)}).rating == expected


def test_other_impossible_values() -> None:
    meta = normalise(
        {
            "IFD0:Orientation": long_form("Unknown (9)", 9),
            "ExifIFD:ISO": long_form(10**9, 10**9),
            "IFD0:ImageDescription": long_form("OLYMPUS DIGITAL CAMERA"),  # a camera's filler, not a caption
            "IFD0:Make": long_form("  Canon\x00\x00  "),
            "IFD0:XPKeywords": long_form("sea; Sea;sky;"),
        }
    )
    assert meta.orientation is None and meta.iso is None and meta.description is None
    assert meta.make == "Canon"
    assert meta.keywords == ["sea", "sky"]


@pytest.mark.parametrize(
    "text",
    [
        "0000:00:00 00:00:00",
        "2020:13:01 10:00:00",
        "2020:00:10 10:00:00",
        "2020:02:30 10:00:00",
        "2020:01:01 24:00:00",
        "99999:01:01 00:00:00",
        "9999:12:31 23:59:59",  # the far future: a camera with a reset clock
        "1800:01:01 00:00:00",  # before photography
        "",
        "   ",
        "garbage",
        "14:30:00",
    ],
)
def test_parse_date_refuses_impossible_dates(text: str) -> None:
    assert parse_date(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020:01:01", dt.datetime(2020, 1, 1)),
        ("2020:01:01 12:34", dt.datetime(2020, 1, 1, 12, 34)),
        ("2020-01-01T12:00:00Z", dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC)),
        (
            "2020:01:01 12:00:00+05:30",
            dt.datetime(2020, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=5.5))),
        ),
        (
            "2020:01:01 12:00:00 -0800",
            dt.datetime(2020, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=-8))),
        ),
        ("2020:01:01 12:00:00.123456789", dt.datetime(2020, 1, 1, 12, 0, 0, 123456)),
        ("2020:01:01 12:00:00+25:00", dt.datetime(2020, 1, 1, 12)),  # an impossible offset is dropped
    ],
)
def test_parse_date_accepts_real_dates(text: str, expected: dt.datetime) -> None:
    parsed = parse_date(text)
    assert parsed == expected
    assert parsed.utcoffset() == expected.utcoffset()


def test_offsets_beside_the_date() -> None:
    original = {"ExifIFD:DateTimeOriginal": long_form("2020:01:01 10:00:00")}
    with_offset = normalise({**original, "ExifIFD:OffsetTimeOriginal": long_form("+02:00")})
    assert with_offset.taken_at.utcoffset() == dt.timedelta(hours=2)
    # A bad EXIF offset gives way to the maker note's time zone.
    maker = normalise(
        {
            **original,
            "ExifIFD:OffsetTimeOriginal": long_form("+99:00"),
            "Canon:TimeZone": long_form("-05:00"),
        }
    )
    assert maker.taken_at.utcoffset() == dt.timedelta(hours=-5)
    assert normalise(original).taken_at.tzinfo is None


# -- darktable sidecars ----------------------------------------------------------------------------------


def test_darktable_sidecar_edited(reader: ExifReader, tmp_path: Path) -> None:
    side = tmp_path / "IMG_0001.CR3.xmp"
    write_darktable_sidecar(side, "IMG_0001.CR3", rating=4, labels=(0, 3), history_end=5)
    meta = read(reader, side)
    assert (meta.file_type, meta.mime) == ("XMP", "application/rdf+xml")
    assert meta.rating == 4
    assert meta.color_labels == ["red", "blue"]
    assert meta.edited is True
    assert meta.derived_from == "IMG_0001.CR3"
    assert meta.title == "Harbour at dusk"
    assert meta.keywords == ["harbour", "dusk"]


def test_darktable_sidecar_untouched(reader: ExifReader, tmp_path: Path) -> None:
    side = tmp_path / "IMG_0002.NEF.xmp"
    write_darktable_sidecar(side, "IMG_0002.NEF", rating=-1, labels=(), history_end=0)
    meta = read(reader, side)
    assert meta.rating == -1  # rejected
    assert meta.color_labels == []
    assert meta.edited is False
    assert meta.derived_from == "IMG_0002.NEF"


def test_no_darktable_history_means_unknown(reader: ExifReader, samples: Path) -> None:
    assert read(reader, samples / NIKON_D90).edited is None


# -- caps --------------------------------------------------------------------------------------------------


def test_huge_xmp_is_capped(reader: ExifReader, samples: Path, tmp_path: Path) -> None:
    """A 1 MB description and 5,000 keywords: each field capped, the stored tag set bounded."""
    words = "".join(f"<rdf:li>kw{i:05d}</rdf:li>" for i in range(5000))
    description = "lorem ipsum " * 90_000  # 1 MB
    sidecar = tmp_path / "huge.xmp"
    sidecar.write_text(
        xmp_packet(
            f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}</rdf:li></rdf:Alt>'
            f"</dc:description><dc:subject><rdf:Bag>{words}</rdf:Bag></dc:subject>"
        )
    )
    jpeg = copy_sample(samples, "jpeg/nature/silver_fir.jpg", tmp_path)
    # Tag by tag rather than "-xmp<=": a whole XMP block over 64 KB does not fit a JPEG segment, while
    # copied tags are split into standard and extended XMP.
    write_tags(jpeg, "-tagsfromfile", str(sidecar), "-xmp:all")
    raw = reader.read(jpeg.resolve())
    assert len(raw["XMP-dc:Description"]["val"]) > 1_000_000
    # exiftool has a cap of its own (without -m): the first 1,000 items of a list, with a warning.
    assert len(raw["XMP-dc:Subject"]["val"]) == 1000
    assert "Extracted only 1000" in raw["ExifTool:Warning"]["val"]
    meta = normalise(raw)
    assert meta.description == description[: metadata.MAX_DESCRIPTION]
    assert len(meta.keywords) == metadata.MAX_KEYWORDS
    assert meta.keywords[:2] == ["kw00000", "kw00001"]
    assert len(meta.tags["XMP-dc:Description"]) == metadata.MAX_TEXT + 1  # cut, with an ellipsis
    assert len(meta.tags["XMP-dc:Subject"]) == metadata.MAX_KEYWORDS
    # Stored as the importer stores it.
    assert len(json.dumps(meta.tags, ensure_ascii=False, default=str)) <= metadata.MAX_TAGS_JSON + 1024


def test_many_large_tags_stay_under_the_total_cap(reader: ExifReader, tmp_path: Path) -> None:
    """1,000 PNG text chunks of 2,500 characters each: every value is capped, and the whole must be too."""
    info = PngImagePlugin.PngInfo()
    for i in range(1000):
        info.add_text(f"Note{i:04d}", chr(ord("a") + i % 26) * 2500)
    png = tmp_path / "many.png"
    Image.new("RGB", (8, 8)).save(png, pnginfo=info)
    raw = reader.read(png)
    assert sum(key.startswith("PNG:Note") for key in raw) == 1000
    meta = normalise(raw)
    assert "(too long to keep)" in meta.tags.values()
    assert len(json.dumps(meta.tags, ensure_ascii=False, default=str)) <= metadata.MAX_TAGS_JSON + 1024


# -- what reaches exiftool ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "relative.jpg",
        "/tmp/a.jpg\n-if\nsystem('touch /tmp/photoflow-pwned')||1",
        "/tmp/a.jpg\r-ver",
        "/tmp/a\x00.jpg",
    ],
)
def test_reader_refuses_unsafe_paths_without_running_exiftool(name: str) -> None:
    before = exiftool_children()
    fresh = ExifReader()
    try:
        with pytest.raises(ValueError, match="refusing"):
            fresh.read(Path(name))
        with pytest.raises(ValueError):
            fresh.extract(Path(name), "PreviewImage")
        assert exiftool_children() == before  # nothing was started
    finally:
        fresh.close()
    assert not Path("/tmp/photoflow-pwned").exists()


def test_extract_refuses_a_tag_that_is_not_a_name(reader: ExifReader, samples: Path) -> None:
    with pytest.raises(ValueError):
        reader.extract((samples / NIKON_D90).resolve(), "PreviewImage\n-ver")


def test_missing_exiftool_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="libimage-exiftool-perl"):
        check_exiftool(str(tmp_path / "no-exiftool-here"))


def test_reader_with_a_missing_exiftool_is_unavailable(tmp_path: Path) -> None:
    reader = ExifReader(executable=str(tmp_path / "no-exiftool-here"))
    with pytest.raises(Unavailable, match="libimage-exiftool-perl"):
        reader.read(tmp_path / "x.jpg")


def test_old_exiftool_is_unavailable(tmp_path: Path) -> None:
    """A stand-in that only answers -ver, as exiftool 12.00 would."""
    old = tmp_path / "exiftool"
    old.write_text("#!/bin/sh\necho 12.00\n")
    old.chmod(0o755)
    assert exiftool_version(str(old)) == (12, 0)
    with pytest.raises(Unavailable, match="libimage-exiftool-perl") as caught:
        check_exiftool(str(old))
    assert "12.38" in caught.value.reason


def test_installed_exiftool_passes() -> None:
    check_exiftool("exiftool")
    assert exiftool_version("exiftool") >= metadata.MIN_EXIFTOOL


# -- time limit ------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("error")  # the killed process is cleaned up without noise
def test_stuck_exiftool_is_killed_and_restarted(samples: Path, tmp_path: Path) -> None:
    """exiftool never finishes reading /dev/zero (through a link in tmp_path): the watchdog must end it."""
    stuck = tmp_path / "stuck.part"
    stuck.symlink_to("/dev/zero")
    before = exiftool_children()
    reader = ExifReader(timeout=2)
    try:
        start = time.monotonic()
        with pytest.raises(Invalid, match="longer than 2 s") as caught:
            reader.read(stuck)
        assert time.monotonic() - start < 15
        del caught  # its traceback holds the killed process's PyExifTool object: let it go here
        gc.collect()
        assert exiftool_children() == before  # the stuck one is gone
        # The same reader starts a fresh exiftool and reads correctly.
        assert read(reader, samples / NIKON_D90).model == "NIKON D90"
    finally:
        reader.close()
    assert exiftool_children() == before


def test_named_pipe_is_refused_at_once(samples: Path, tmp_path: Path) -> None:
    """exiftool (12.57) treats a FIFO as missing rather than opening it, so nothing blocks."""
    fifo = tmp_path / "fifo.part"
    os.mkfifo(fifo)
    reader = ExifReader(timeout=5)
    try:
        start = time.monotonic()
        with pytest.raises(Invalid):
            reader.read(fifo)
        assert time.monotonic() - start < 5
        assert read(reader, samples / NIKON_D90).make == "NIKON CORPORATION"
    finally:
        reader.close()


def test_every_jpeg_sample_gives_strict_json(reader: ExifReader, samples: Path) -> None:
    """Every JPEG sample's stored tag set is strict JSON, and its normalised numbers are finite."""
    for path in sorted((samples / "jpeg").rglob("*.jpg")):
        meta = read(reader, path)
        json.dumps(meta.tags, ensure_ascii=False, default=str, allow_nan=False)
        for value in (meta.exposure_time, meta.aperture, meta.focal_length, meta.gps_lat, meta.gps_lon):
            assert value is None or math.isfinite(value), path
