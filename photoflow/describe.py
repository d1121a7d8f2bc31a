"""Metadata as people read it: "1/250 s", "ƒ/2.8", "35 mm (52 mm in 35 mm terms)", "43.4674° N"."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from fractions import Fraction

from photoflow.models import Photo

COLOURS = {"red": "#e5484d", "yellow": "#f5d90a", "green": "#30a46c", "blue": "#3e63dd", "purple": "#8e4ec6"}


@dataclass(frozen=True)
class Fact:
    """One line of the metadata panel; `link` for the map."""

    label: str
    value: str
    link: str = ""


def taken(photo: Photo) -> str:
    """The capture time as the camera recorded it, with its UTC offset when known."""
    if photo.taken_at is None:
        return ""
    when: dt.datetime = photo.taken_at
    text = when.strftime("%a %-d %b %Y, %H:%M:%S")
    if photo.taken_offset is not None:
        sign = "+" if photo.taken_offset >= 0 else "−"
        hours, minutes = divmod(abs(photo.taken_offset), 60)
        text += f" (UTC{sign}{hours:02d}:{minutes:02d})"
    elif photo.date_source == "file time":
        text += " (the file's date: the picture has none)"
    return text


def exposure(seconds: float | None) -> str:
    """1/250 s, 0.5 s, 30 s."""
    if not seconds:
        return ""
    if seconds >= 0.3:
        return f"{seconds:g} s"
    fraction = Fraction(seconds).limit_denominator(16000)
    if fraction.numerator == 1:
        return f"1/{fraction.denominator} s"
    return f"1/{round(1 / seconds)} s"


def megapixels(width: int, height: int) -> str:
    """6000 × 4000 (24 MP)."""
    mp = width * height / 1e6
    shown = f"{mp:.0f}" if mp >= 10 else f"{mp:.1f}"
    return f"{width} × {height} ({shown} MP)"


def file_size(size: int) -> str:
    """7.7 MB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def coordinates(lat: float, lon: float) -> str:
    """43.4674° N, 11.8851° E."""
    return f"{abs(lat):.4f}° {'N' if lat >= 0 else 'S'}, {abs(lon):.4f}° {'E' if lon >= 0 else 'W'}"


def map_link(lat: float, lon: float) -> str:
    """OpenStreetMap at that point; the page itself loads no map tiles."""
    return f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=15/{lat:.6f}/{lon:.6f}"


def stars(rating: int | None) -> str:
    """★★★☆☆, or Rejected for darktable's -1."""
    if rating is None:
        return ""
    if rating < 0:
        return "Rejected"
    return "★" * rating + "☆" * (5 - rating)


def camera_name(make: str | None, model: str | None) -> str:
    """Maker and model as a person says them: cameras often repeat the maker in the model
    ("NIKON CORPORATION" / "NIKON D90", "Canon" / "Canon EOS 5D"), so the model alone then."""
    if make and model and model.lower().startswith(make.split()[0].lower()):
        return model
    return " ".join(p for p in (make or "", model or "") if p)


def facts(photo: Photo, size: int) -> list[Fact]:
    """The metadata panel, in the order a photographer reads it; empty values left out."""
    camera = camera_name(photo.camera_make, photo.camera_model)
    focal = ""
    if photo.focal_length:
        focal = f"{photo.focal_length:g} mm"
        if photo.focal_length_35mm and round(photo.focal_length_35mm) != round(photo.focal_length):
            focal += f" ({photo.focal_length_35mm:.0f} mm in 35 mm terms)"
    rows = [
        Fact("Taken", taken(photo)),
        Fact("Camera", camera),
        Fact("Lens", photo.lens or ""),
        Fact("Exposure", exposure(photo.exposure_time)),
        Fact("Aperture", f"ƒ/{photo.aperture:g}" if photo.aperture else ""),
        Fact("ISO", str(photo.iso) if photo.iso else ""),
        Fact("Focal length", focal),
        Fact("Flash", photo.flash or ""),
        Fact("Size", megapixels(photo.width, photo.height) if photo.width and photo.height else ""),
        Fact("File", file_size(size) if size else ""),
        Fact("Rating", stars(photo.rating)),
        Fact("Software", photo.software or ""),
        Fact("Author", photo.author or ""),
    ]
    if photo.gps_lat is not None and photo.gps_lon is not None:
        place = coordinates(photo.gps_lat, photo.gps_lon)
        if photo.gps_alt is not None:
            place += f", {photo.gps_alt:.0f} m"
        rows.append(Fact("Location", place, map_link(photo.gps_lat, photo.gps_lon)))
    return [row for row in rows if row.value]


def labels(photo: Photo) -> list[tuple[str, str]]:
    """The colour labels as (name, colour)."""
    return [(name, COLOURS[name]) for name in (photo.color_labels or "").split(",") if name in COLOURS]
