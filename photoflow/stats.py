"""The library in figures, for the console's overview: counts, disk use, recent imports, last check."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from peewee import fn

from photoflow import check
from photoflow.models import Album, File, Photo, User
from photoflow.storage import DERIVATIVES, Datastore


@dataclass
class Recent:
    """A photo imported lately."""

    id: int
    file_name: str
    created_at: dt.datetime


@dataclass
class Overview:
    """What the overview screen shows."""

    photos: int = 0
    albums: int = 0
    public_albums: int = 0
    users: int = 0
    bytes_by_role: dict[str, int] = field(default_factory=dict)  # original, raw, sidecar
    free_bytes: int = 0
    total_bytes: int = 0
    recent: list[Recent] = field(default_factory=list)
    last_check: tuple[float, list[str], int] | None = None


def overview(store: Datastore, recent: int = 8) -> Overview:
    """Count everything the database knows; quick at 100,000 photos (see `derivative_bytes` for the rest)."""
    result = Overview(
        photos=Photo.select().count(),
        albums=Album.select().count(),
        public_albums=Album.select().where(Album.is_public == True).count(),  # noqa: E712
        users=User.select().count(),
    )
    sizes = File.select(File.role, fn.SUM(File.size)).group_by(File.role).tuples()
    result.bytes_by_role = {role: int(total or 0) for role, total in sizes}
    usage = shutil.disk_usage(store.root)
    result.free_bytes, result.total_bytes = usage.free, usage.total
    latest = Photo.select(Photo.id, Photo.file_name, Photo.created_at).order_by(
        Photo.created_at.desc(), Photo.id.desc()
    )
    result.recent = [Recent(p.id, p.file_name, p.created_at) for p in latest.limit(recent)]
    result.last_check = check.last_check(store)
    return result


def derivative_bytes(store: Datastore) -> int:
    """The size of every thumbnail and preview: a walk of derivatives/, some seconds at 100,000 photos
    (their sizes are in no table), so callers keep the figure a while."""
    return _folder_bytes(store.root / DERIVATIVES)


def _folder_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                continue
    return total


def human_bytes(size: int) -> str:
    """1.2 GB."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"
