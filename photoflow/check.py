"""The datastore check: rows without files, files without rows, and leftovers of interrupted writes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from photoflow.models import File, Photo
from photoflow.storage import DERIVATIVES, Datastore, remove_leftover

# An unreferenced file younger than this may belong to an import that has not written its rows yet.
ORPHAN_GRACE_SECONDS = 3600


@dataclass
class CheckReport:
    """What the check found; empty lists mean a healthy datastore."""

    missing: list[str] = field(default_factory=list)  # rows whose file is gone
    missing_derivatives: list[int] = field(default_factory=list)  # photo ids
    orphans: list[str] = field(default_factory=list)  # files no row refers to
    leftovers: list[Path] = field(default_factory=list)  # tmp/ files of writers that are gone

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not (self.missing or self.missing_derivatives or self.orphans or self.leftovers)

    def lines(self) -> list[str]:
        """A human summary, one problem a line."""
        out = [f"row without its file: {rel}" for rel in self.missing]
        out += [
            f"photo {pid} has missing derivatives (run regenerate-thumbnails --missing-only)"
            for pid in self.missing_derivatives
        ]
        out += [f"file without a row: {rel}" for rel in self.orphans]
        out += [f"leftover of an interrupted write: {p.name}" for p in self.leftovers]
        return out


def check_datastore(store: Datastore) -> CheckReport:
    """Compare the rows with the files in the datastore."""
    report = CheckReport()
    known: set[str] = set()
    for rel in File.select(File.path).tuples().iterator():
        known.add(rel[0])
        if not store.exists(rel[0]):
            report.missing.append(rel[0])
    shown: set[str] = set()
    for photo_id, sha in Photo.select(Photo.id, Photo.sha256).tuples().iterator():
        shown.add(sha)
        if not store.has_derivatives(sha):
            report.missing_derivatives.append(photo_id)
    for rel in store.stored_files():
        if rel.startswith(DERIVATIVES + "/"):
            sha = Path(rel).name.split("-", 1)[0]
            if sha not in shown:
                report.orphans.append(rel)
        elif rel not in known:
            report.orphans.append(rel)
    report.leftovers = store.leftovers()
    remember(store, report)
    return report


def sweep(store: Datastore, report: CheckReport, orphans: bool = False) -> int:
    """Remove the leftovers (and, with `orphans`, unreferenced files older than an hour); return the count."""
    count = 0
    for path in report.leftovers:
        remove_leftover(path)
        count += 1
    if orphans:
        now = time.time()
        for rel in report.orphans:
            path = store.root / rel
            try:
                if now - path.stat().st_mtime < ORPHAN_GRACE_SECONDS:
                    continue
            except FileNotFoundError:
                continue
            store.remove(rel)
            count += 1
    return count


LAST_CHECK = "last-check.json"


def remember(store: Datastore, report: CheckReport) -> None:
    """Keep the report's lines beside the datastore, for the console's overview."""
    data = {"at": time.time(), "problems": report.lines()[:1000], "count": len(report.lines())}
    path = store.root / LAST_CHECK
    tmp = path.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
    except OSError:
        # A full (or read-only) datastore is what a check is run to diagnose: its report still
        # prints; only the console's copy of it is not kept.
        tmp.unlink(missing_ok=True)


def last_check(store: Datastore) -> tuple[float, list[str], int] | None:
    """When the last check ran, its first problems and how many there were; None if it never ran."""
    try:
        data = json.loads((store.root / LAST_CHECK).read_text())
        return float(data["at"]), [str(p) for p in data["problems"]], int(data["count"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
