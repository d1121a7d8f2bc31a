"""Metadata: one long-lived exiftool process, and its raw tags turned into Photoflow's normalised fields.

exiftool is only ever given paths that Photoflow built itself inside the datastore: PyExifTool joins
its arguments with newlines into exiftool's argument stream without checking them, so a client's
name such as `a.jpg\\n-if\\nsystem(...)` would become a command. `ExifReader` refuses any argument
with a newline, carriage return or NUL, and any path that is not absolute.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import exiftool
from exiftool.exceptions import ExifToolException

from photoflow.errors import Invalid, Unavailable

MIN_EXIFTOOL = (12, 38)  # older releases have code-execution bugs (CVE-2021-22204, CVE-2022-23935)
INSTALL_HINT = "install it with `sudo apt-get install libimage-exiftool-perl`"

# Caps: a file may carry megabytes of XMP; what Photoflow keeps of it is bounded.
MAX_TEXT = 2_000  # any one value in the full tag set
MAX_TAGS_JSON = 256 * 1024  # the whole tag set, as JSON
MAX_TITLE = 500
MAX_DESCRIPTION = 5_000
MAX_SHORT = 200  # camera, lens, software, flash
MAX_KEYWORD = 200
MAX_KEYWORDS = 500

# darktable's colour labels by number, as it writes them in `darktable:colorlabels`.
COLOR_LABELS = ("red", "yellow", "green", "blue", "purple")

# Tags kept out of the stored tag set: they describe the copy on the server, not the picture.
_SKIPPED_GROUPS = ("System:", "ExifTool:", "SourceFile")

_BINARY = re.compile(r"^\(Binary data (\d+) bytes")
# Embedded pictures a RAW may carry, in the order to try them when sizes are equal.
_PREVIEW_TAGS = ("JpgFromRaw", "PreviewImage", "OtherImage", "ThumbnailImage")


@dataclass
class Metadata:
    """What Photoflow knows about a file after reading it: normalised fields plus every tag."""

    file_type: str = ""  # exiftool's FileType, decided from the content
    mime: str = ""
    error: str = ""  # exiftool's own error for the file ("File format error", ...)
    taken_at: dt.datetime | None = None  # aware when the file gives an offset, naive otherwise
    date_source: str | None = None
    make: str | None = None
    model: str | None = None
    lens: str | None = None
    exposure_time: float | None = None
    aperture: float | None = None
    iso: int | None = None
    focal_length: float | None = None
    focal_length_35mm: float | None = None
    flash: str | None = None
    gps_lat: float | None = None
    gps_lon: float | None = None
    gps_alt: float | None = None
    width: int | None = None
    height: int | None = None
    orientation: int | None = None
    title: str | None = None
    description: str | None = None
    keywords: list[str] = field(default_factory=list)
    rating: int | None = None  # -1 rejected, 0..5
    color_labels: list[str] = field(default_factory=list)
    software: str | None = None
    derived_from: str | None = None  # darktable's xmpMM:DerivedFrom: the RAW an export came from
    edited: bool | None = None  # darktable's history_end > 0
    previews: dict[str, int] = field(default_factory=dict)  # embedded picture tag -> size in bytes
    tags: dict[str, Any] = field(default_factory=dict)  # every tag, print-converted, capped


# -- the exiftool process --------------------------------------------------------------------------


def exiftool_version(executable: str = "exiftool") -> tuple[int, ...]:
    """The version of the exiftool at `executable`; Unavailable when it is missing or broken."""
    try:
        out = subprocess.run([executable, "-ver"], capture_output=True, text=True, timeout=30, check=True)
    except FileNotFoundError:
        raise Unavailable(f"exiftool was not found ({executable}): {INSTALL_HINT}") from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise Unavailable(f"exiftool ({executable}) does not run: {exc}") from None
    try:
        return tuple(int(part) for part in out.stdout.strip().split("."))
    except ValueError:
        raise Unavailable(
            f"exiftool ({executable}) printed no version: {out.stdout.strip()[:80]!r}"
        ) from None


def check_exiftool(executable: str = "exiftool") -> None:
    """Refuse to start with a missing exiftool or one older than 12.38."""
    version = exiftool_version(executable)
    if version < MIN_EXIFTOOL:
        shown = ".".join(map(str, version))
        raise Unavailable(
            f"exiftool {shown} is older than 12.38, which fixes code-execution bugs: "
            f"upgrade libimage-exiftool-perl"
        )


def _safe_path(path: Path) -> str:
    text = str(path)
    if not path.is_absolute() or any(ch in text for ch in "\n\r\0"):
        raise ValueError(f"refusing to pass {text!r} to exiftool: only datastore paths go there")
    return text


class ExifReader:
    """One long-lived exiftool process (PyExifTool), restarted after a failure or a timeout.

    Thread-safe: every call runs on the reader's own thread, one at a time. That thread is also the
    one that starts exiftool, and it lives as long as the reader, which matters: PyExifTool starts
    exiftool with PR_SET_PDEATHSIG, which Linux ties to the starting *thread*, so an exiftool started
    from a short-lived thread (a console worker, say) would be killed when that thread ends.

    Every call is under a time limit. PyExifTool waits for exiftool without one; when the limit
    passes, the caller kills the stuck exiftool, which makes the waiting read fail, and gets Invalid.
    """

    def __init__(self, executable: str = "exiftool", timeout: float = 30.0) -> None:
        self.executable = executable
        self.timeout = timeout
        self._tool: exiftool.ExifTool | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exiftool")

    def close(self) -> None:
        """Stop the exiftool process and the reader's thread."""
        with contextlib.suppress(RuntimeError):  # already closed
            self._thread.submit(self._stop).result()
        self._thread.shutdown(wait=True)

    def _stop(self) -> None:
        tool, self._tool = self._tool, None
        if tool is not None:
            with contextlib.suppress(Exception):  # already dead: nothing left to stop
                tool.terminate()

    def _forget(self, tool: exiftool.ExifTool) -> None:
        if self._tool is tool:
            self._tool = None
            _discard(tool)

    def start(self) -> None:
        """Start exiftool in the background now rather than at the first read (which waits for it)."""
        self._thread.submit(self._start_quietly)

    def _start_quietly(self) -> None:
        with contextlib.suppress(Unavailable):  # said again, with its reason, by the first read
            self._running()

    def _running(self) -> exiftool.ExifTool:
        if self._tool is None or not self._tool.running:
            # No common arguments: each call says what it wants. -charset filename=utf8 is not needed:
            # datastore paths are ASCII. (PyExifTool looks for the executable when it is constructed.)
            try:
                tool = exiftool.ExifTool(executable=self.executable, common_args=[])
                tool.run()
            except FileNotFoundError:
                raise Unavailable(f"exiftool was not found ({self.executable}): {INSTALL_HINT}") from None
            self._tool = tool
        return self._tool

    def _execute(self, *params: str, raw: bool = False) -> str | bytes:
        started: list[exiftool.ExifTool] = []

        def call() -> str | bytes:
            tool = self._running()
            started.append(tool)
            try:
                return tool.execute(*params, raw_bytes=raw)
            except (OSError, ExifToolException, ValueError, UnicodeDecodeError):
                self._tool = None
                _discard(tool)
                raise

        future = self._thread.submit(call)
        try:
            return future.result(timeout=self.timeout)
        except TimeoutError:
            if started:
                _kill_stuck(started[0])
                # The read fails at once now. Should it have finished just as the limit passed, the
                # killed process is still the reader's: let it go too, so the next call starts afresh.
                self._thread.submit(self._forget, started[0])
            with contextlib.suppress(Exception):
                future.result(timeout=30)
            raise Invalid(f"exiftool took longer than {self.timeout:g} s to read the file") from None
        except (OSError, ExifToolException, ValueError, UnicodeDecodeError) as exc:
            raise Invalid(f"exiftool failed to read the file ({type(exc).__name__})") from None

    def read(self, path: Path) -> dict[str, Any]:
        """Every tag of the file at `path` (a datastore path), in exiftool's long JSON form."""
        # -l: each tag as {"val": printed, "num": numeric}, so one read serves both the display and
        # the normalised numbers. -a: duplicates kept (EXIF and XMP both); -G1: the group of each.
        # LargeFileSupport: RAW and TIFF files over 2 GB.
        out = self._execute("-j", "-l", "-G1", "-a", "-api", "LargeFileSupport=1", _safe_path(path))
        try:
            parsed = json.loads(out or "[]")
        except ValueError:
            raise Invalid("exiftool's answer for the file was not readable") from None
        if not parsed or not isinstance(parsed[0], dict):
            raise Invalid("exiftool could not read the file")
        return parsed[0]

    def extract(self, path: Path, tag: str) -> bytes:
        """The bytes of one binary tag (an embedded preview) of the file at `path`."""
        if not tag.isalnum():
            raise ValueError(f"not a tag name: {tag!r}")
        data = self._execute("-b", f"-{tag}", _safe_path(path), raw=True)
        assert isinstance(data, bytes)
        return data


def _discard(tool: exiftool.ExifTool) -> None:
    """Kill an exiftool that failed, reap it and close its pipes, so nothing of it lingers."""
    process = getattr(tool, "_process", None)
    if process is None:
        return
    with contextlib.suppress(OSError):
        process.kill()
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        process.wait(timeout=10)
    for stream in (process.stdin, process.stdout, process.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.close()
    # Tell PyExifTool it is over, or its destructor warns that the process "died".
    with contextlib.suppress(AttributeError):
        tool._flag_running_false()


def _kill_stuck(tool: exiftool.ExifTool) -> None:
    """Kill exiftool and make a read waiting on its pipes fail rather than spin or wait forever."""
    process = getattr(tool, "_process", None)
    if process is None:
        return
    with contextlib.suppress(OSError):
        process.kill()
    # PyExifTool's reader loops until it sees its end marker and treats end-of-file as "no data yet",
    # so a killed exiftool alone would leave it spinning. Replacing the pipe descriptors (same numbers,
    # so nothing else can take them) with a write-only /dev/null makes its next read fail with EBADF.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (process.stdout, process.stderr):
            with contextlib.suppress(OSError, ValueError):
                os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


# -- normalisation ---------------------------------------------------------------------------------


def normalise(raw: Mapping[str, Any]) -> Metadata:
    """Turn exiftool's long JSON for one file into normalised fields; impossible values become None."""
    tags = _Tags(raw)
    meta = Metadata(
        file_type=tags.text("File:FileType") or "",
        mime=tags.text("File:MIMEType") or "",
        error=tags.text("ExifTool:Error") or "",
    )
    meta.taken_at, meta.date_source = _taken_at(tags)
    meta.make = _short(tags.text("IFD0:Make", "XMP-tiff:Make", "QuickTime:Make", "*:Make"))
    meta.model = _short(tags.text("IFD0:Model", "XMP-tiff:Model", "QuickTime:Model", "*:Model"))
    meta.lens = _short(
        tags.text(
            "Composite:LensID", "ExifIFD:LensModel", "XMP-aux:Lens", "XMP-exifEX:LensModel", "*:LensModel"
        )
    )
    meta.exposure_time = _positive(
        tags.number("ExifIFD:ExposureTime", "XMP-exif:ExposureTime", "*:ExposureTime")
    )
    meta.aperture = _positive(tags.number("ExifIFD:FNumber", "Composite:Aperture", "XMP-exif:FNumber"))
    iso = _positive(tags.number("ExifIFD:ISO", "XMP-exif:ISOSpeedRatings", "Composite:ISO", "*:ISO"))
    meta.iso = int(iso) if iso is not None and iso < 10_000_000 else None
    meta.focal_length = _positive(tags.number("ExifIFD:FocalLength", "XMP-exif:FocalLength", "*:FocalLength"))
    meta.focal_length_35mm = _positive(
        tags.number(
            "ExifIFD:FocalLengthIn35mmFormat", "XMP-exif:FocalLengthIn35mmFilm", "Composite:FocalLength35efl"
        )
    )
    meta.flash = _short(tags.text("ExifIFD:Flash", "XMP-exif:Flash", "*:Flash"))
    meta.gps_lat, meta.gps_lon, meta.gps_alt = _gps(tags)
    meta.width, meta.height = _image_size(tags)
    orientation = tags.number("IFD0:Orientation", "XMP-tiff:Orientation", "*:Orientation")
    meta.orientation = int(orientation) if orientation in (1, 2, 3, 4, 5, 6, 7, 8) else None
    meta.title = _capped(tags.text("XMP-dc:Title", "IPTC:ObjectName", "IFD0:XPTitle"), MAX_TITLE)
    meta.description = _capped(_description(tags), MAX_DESCRIPTION)
    meta.keywords = _keywords(tags)
    rating = tags.number("XMP-xmp:Rating", "IFD0:Rating", "*:Rating")
    meta.rating = int(rating) if rating is not None and -1 <= rating <= 5 else None
    meta.color_labels = _color_labels(tags)
    meta.software = _short(tags.text("IFD0:Software", "XMP-xmp:CreatorTool", "*:Software"))
    meta.derived_from = _capped(tags.text("XMP-xmpMM:DerivedFrom"), 255)
    history_end = tags.number("XMP-darktable:HistoryEnd", "XMP-darktable:History_end")
    meta.edited = None if history_end is None else history_end > 0
    meta.previews = _previews(tags)
    meta.tags = _display_tags(raw)
    return meta


class _Tags:
    """Lookup over exiftool's long JSON by "Group:Tag", with "*:Tag" meaning any group."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.by_name: dict[str, list[str]] = {}
        for key in raw:
            name = key.split(":", 1)[-1]
            self.by_name.setdefault(name.lower(), []).append(key)

    def _entries(self, names: Iterable[str]) -> Iterable[tuple[str, Any]]:
        for name in names:
            if name.startswith("*:"):
                keys = self.by_name.get(name[2:].lower(), [])
            else:
                keys = [name] if name in self.raw else []
            for key in keys:
                entry = self.raw[key]
                if isinstance(entry, dict):
                    yield key, entry
                else:
                    yield key, {"val": entry}

    def text(self, *names: str) -> str | None:
        """The first non-blank printed value among `names`."""
        for _key, entry in self._entries(names):
            value = entry.get("val")
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            if value is None:
                continue
            text = _clean_text(str(value))
            if text:
                return text
        return None

    def number(self, *names: str) -> float | None:
        """The first finite numeric value among `names` (the numeric form when exiftool gives one)."""
        for _key, entry in self._entries(names):
            value = entry.get("num", entry.get("val"))
            number = _to_number(value)
            if number is not None:
                return number
        return None

    def values(self, *names: str) -> list[Any]:
        """Every value among `names`, lists flattened (keywords come as lists or single strings)."""
        found: list[Any] = []
        for _key, entry in self._entries(names):
            value = entry.get("val")
            if isinstance(value, list):
                found.extend(value)
            elif value is not None:
                found.append(value)
        return found

    def entry(self, name: str) -> dict[str, Any] | None:
        """The raw entry of one exact "Group:Tag"."""
        for _key, entry in self._entries([name]):
            return entry
        return None


def _to_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip().split(" ")[0]
        try:
            if "/" in text:
                top, bottom = text.split("/", 1)
                number = float(top) / float(bottom)
            else:
                number = float(text)
        except (ValueError, ZeroDivisionError):
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _clean_text(text: str) -> str:
    # NULs and other control characters come from padded camera fields; keep newlines and tabs.
    text = "".join(ch for ch in text if ch.isprintable() or ch in "\n\t")
    return text.strip()


def _capped(text: str | None, limit: int) -> str | None:
    if not text:
        return None
    return text[:limit]


def _short(text: str | None) -> str | None:
    return _capped(" ".join(text.split()) if text else None, MAX_SHORT)


def _positive(number: float | None) -> float | None:
    return number if number is not None and 0 < number < 1e7 else None


def _dimension(number: float | None) -> int | None:
    return int(number) if number is not None and 0 < number < 1_000_000 else None


def _image_size(tags: _Tags) -> tuple[int | None, int | None]:
    # Composite:ImageSize is exiftool's judgement of the main picture's size (a RAW's sensor area
    # rather than its thumbnail's), stored before any orientation is applied.
    entry = tags.entry("Composite:ImageSize")
    if entry is not None:
        parts = re.split(r"[ x]", str(entry.get("num", entry.get("val", ""))))
        if len(parts) == 2:
            w, h = _dimension(_to_number(parts[0])), _dimension(_to_number(parts[1]))
            if w and h:
                return w, h
    return (
        _dimension(tags.number("File:ImageWidth", "*:ImageWidth")),
        _dimension(tags.number("File:ImageHeight", "*:ImageHeight")),
    )


# Cameras fill ImageDescription with their own name or blanks; that is not a description.
_JUNK_DESCRIPTIONS = re.compile(
    r"^(?:OLYMPUS DIGITAL CAMERA|SONY DSC|DCF\s*\d*(?:\.\d+)?|KONICA MINOLTA DIGITAL CAMERA|"
    r"MINOLTA DIGITAL CAMERA|DIGITAL CAMERA|SAMSUNG DIGITAL CAMERA|Exif_JPEG_PICTURE|default|"
    r"LEAD Technologies Inc\. V1\.01|<KENOX S630  / Samsung S630>|Created with GIMP)$",
    re.IGNORECASE,
)


def _description(tags: _Tags) -> str | None:
    for name in ("XMP-dc:Description", "IPTC:Caption-Abstract", "IFD0:ImageDescription", "IFD0:XPComment"):
        text = tags.text(name)
        if text and not _JUNK_DESCRIPTIONS.match(text):
            return text
    return None


def _keywords(tags: _Tags) -> list[str]:
    seen: dict[str, str] = {}
    for value in tags.values("IPTC:Keywords", "XMP-dc:Subject", "IFD0:XPKeywords"):
        for part in str(value).split(";") if isinstance(value, str) and ";" in value else [value]:
            word = " ".join(_clean_text(str(part)).split())[:MAX_KEYWORD]
            if word and word.casefold() not in seen:
                seen[word.casefold()] = word
            if len(seen) >= MAX_KEYWORDS:
                return list(seen.values())
    return list(seen.values())


def _color_labels(tags: _Tags) -> list[str]:
    labels: list[str] = []
    for value in tags.values("XMP-darktable:ColorLabels", "XMP-darktable:Colorlabels"):
        number = _to_number(value)
        if number is not None and 0 <= number < len(COLOR_LABELS):
            name = COLOR_LABELS[int(number)]
            if name not in labels:
                labels.append(name)
    # Lightroom and others write one label by name in xmp:Label.
    label = (tags.text("XMP-xmp:Label") or "").lower()
    if label in COLOR_LABELS and label not in labels:
        labels.append(label)
    return labels


def _gps(tags: _Tags) -> tuple[float | None, float | None, float | None]:
    lat = tags.number("Composite:GPSLatitude", "XMP-exif:GPSLatitude")
    lon = tags.number("Composite:GPSLongitude", "XMP-exif:GPSLongitude")
    alt = tags.number("Composite:GPSAltitude", "XMP-exif:GPSAltitude")
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return None, None, None
    if alt is not None and not -12_000 < alt < 100_000:
        alt = None
    return lat, lon, alt


# -- dates -------------------------------------------------------------------------------------------

# Where the capture time is, best first, with the tag that holds its offset from UTC when separate.
# Composite:SubSec* already carry the sub-seconds and the offset when the camera wrote them.
_DATE_SOURCES: tuple[tuple[str, str | None], ...] = (
    ("Composite:SubSecDateTimeOriginal", "ExifIFD:OffsetTimeOriginal"),
    ("ExifIFD:DateTimeOriginal", "ExifIFD:OffsetTimeOriginal"),
    ("XMP-exif:DateTimeOriginal", None),
    ("XMP-photoshop:DateCreated", None),
    ("Composite:SubSecCreateDate", "ExifIFD:OffsetTimeDigitized"),
    ("ExifIFD:CreateDate", "ExifIFD:OffsetTimeDigitized"),
    ("XMP-xmp:CreateDate", None),
    ("QuickTime:CreationDate", None),
    ("Composite:DateTimeCreated", None),
    ("XMP-pdf:CreationDate", None),
    ("Composite:GPSDateTime", None),
    ("XMP-exif:GPSDateTime", None),
    ("IFD0:ModifyDate", "ExifIFD:OffsetTime"),
)
_MAKER_TIME_ZONES = ("Nikon:TimeZone", "Canon:TimeZone", "Panasonic:TimeZone", "Olympus:TimeZone")
_DATE = re.compile(
    r"^\s*(\d{4})[:\-](\d{2})[:\-](\d{2})"
    r"(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?"
    r"\s*(Z|[+\-]\d{2}:?\d{2})?\s*$"
)
_OFFSET = re.compile(r"^\s*([+\-])(\d{2}):?(\d{2})\s*$")


def _taken_at(tags: _Tags) -> tuple[dt.datetime | None, str | None]:
    for name, offset_tag in _DATE_SOURCES:
        text = tags.text(name)
        parsed = parse_date(text) if text else None
        if parsed is None:
            continue
        if parsed.tzinfo is None:
            offset = _offset(tags.text(offset_tag)) if offset_tag else None
            if offset is None and not name.startswith(("IFD0:", "Composite:GPS", "XMP-exif:GPS")):
                offset = _maker_offset(tags)
            if offset is not None:
                parsed = parsed.replace(tzinfo=offset)
        return parsed, name.split(":", 1)[1]
    return None, None


def parse_date(text: str) -> dt.datetime | None:
    """An exiftool or XMP date; None for the impossible ones (`0000:00:00`, month 13, year 99999)."""
    match = _DATE.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        value = dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
        )
    except ValueError:
        return None
    # Before photography, or more than a day in the future: a camera with a reset clock.
    if value.year < 1826 or value > dt.datetime.now() + dt.timedelta(days=2):
        return None
    if zone:
        offset = dt.UTC if zone == "Z" else _offset(zone)
        if offset is not None:
            value = value.replace(tzinfo=offset)
    return value


def _offset(text: str | None) -> dt.timezone | None:
    match = _OFFSET.match(text or "")
    if not match:
        return None
    sign, hours, minutes = match.groups()
    delta = dt.timedelta(hours=int(hours), minutes=int(minutes))
    if delta > dt.timedelta(hours=14) or int(minutes) >= 60:
        return None
    return dt.timezone(-delta if sign == "-" else delta)


def _maker_offset(tags: _Tags) -> dt.timezone | None:
    for name in _MAKER_TIME_ZONES:
        offset = _offset(tags.text(name))
        if offset is not None:
            return offset
    return None


# -- what is kept ------------------------------------------------------------------------------------


def _previews(tags: _Tags) -> dict[str, int]:
    found: dict[str, int] = {}
    for name in _PREVIEW_TAGS:
        for _key, entry in tags._entries([f"*:{name}"]):
            match = _BINARY.match(str(entry.get("val", "")))
            if match:
                found[name] = max(found.get(name, 0), int(match.group(1)))
    return found


def _display_tags(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every tag with its printed value, each capped, the whole bounded; file-system tags left out."""
    kept: dict[str, Any] = {}
    for key, entry in raw.items():
        if key.startswith(_SKIPPED_GROUPS):
            continue
        value = entry.get("val") if isinstance(entry, dict) else entry
        if isinstance(value, list):
            value = [_cap_value(v) for v in value[:MAX_KEYWORDS]]
        else:
            value = _cap_value(value)
        kept[key] = value
    sizes = {key: _json_size(key) + _json_size(value) + 2 for key, value in kept.items()}
    total = sum(sizes.values()) + 2
    if total <= MAX_TAGS_JSON:
        return kept
    # Too much: the longest values give way first, each replaced by a note that it was dropped;
    # if the sheer number of tags is the problem, the last ones go altogether.
    note = "(too long to keep)"
    for key in sorted(kept, key=sizes.__getitem__, reverse=True):
        if total <= MAX_TAGS_JSON:
            return kept
        smaller = _json_size(key) + _json_size(note) + 2
        if smaller < sizes[key]:
            total -= sizes[key] - smaller
            kept[key], sizes[key] = note, smaller
    for key in reversed(list(kept)):
        if total <= MAX_TAGS_JSON:
            break
        total -= sizes.pop(key)
        del kept[key]
    return kept


def _json_size(value: Any) -> int:
    # +1 for the comma or colon that follows each key and value in the encoded object.
    return len(json.dumps(value, ensure_ascii=False, default=str)) + 1


def _cap_value(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + "…"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, default=str)
        return value if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"
    return value
