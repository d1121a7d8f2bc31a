"""The long jobs the command line and the console both offer: importing server paths, regenerating
derivatives, checking the datastore and sweeping it. Each returns a report that says what happened in
one sentence (`describe()`), which both doors print as it is."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from photoflow import batch
from photoflow.batch import RenderJob, Workers, collect_files, render_jobs, worker_pool
from photoflow.check import CheckReport, check_datastore, sweep
from photoflow.config import Config
from photoflow.errors import Invalid
from photoflow.importer import FileResult, ImportOptions, ImportSummary
from photoflow.library import Library, open_library
from photoflow.metadata import check_exiftool
from photoflow.services.albums import album_for_import
from photoflow.services.users import default_owner, user_by_name

ImportProgress = Callable[[int, int, FileResult | None], None]
RenderProgress = Callable[[int, int, RenderJob | None, str], None]


def plural(n: int, noun: str) -> str:
    """1 problem, 2 problems."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


# -- importing server paths --------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import of server paths did: the files' results, how many there were, whether cancelled."""

    total: int
    summary: ImportSummary = field(default_factory=ImportSummary)
    cancelled: bool = False

    @property
    def done(self) -> int:
        """How many files were dealt with (all of them, unless cancelled)."""
        return len(self.summary.results)

    @property
    def failed(self) -> list[FileResult]:
        """The files that failed, each with its reason."""
        return self.summary.failed

    def counts(self) -> str:
        """imported 3, duplicates 0, attached RAWs/sidecars 2, failed 1."""
        s = self.summary
        return (
            f"imported {s.count('imported')}, duplicates {s.count('duplicate')}, "
            f"attached RAWs/sidecars {s.count('attached')}, failed {len(s.failed)}"
        )

    def describe(self) -> str:
        """The one summary sentence (without its full stop), as every door prints it."""
        if self.cancelled:
            return (
                f"cancelled after {self.done} of {self.total} files: {self.counts()}; "
                "importing again finishes the rest"
            )
        return self.counts()

    def failures(self) -> list[str]:
        """One line per failed file: its name and why."""
        return [f"{result.name}: {result.reason}" for result in self.failed]


def import_paths(
    library: Library | Config,
    paths: Sequence[Path],
    *,
    album: str | None = None,
    public: bool = False,
    owner: str | None = None,
    recursive: bool = False,
    workers: int | None = None,
    progress: ImportProgress | None = None,
    cancel: threading.Event | None = None,
) -> ImportReport:
    """Import files and folders on this server into the library, as `owner` (default: the first admin),
    into `album` (created if missing; `public` makes it public), over worker processes.

    Refuses (Invalid, NotFound) before importing anything: a path that does not exist, nothing to
    import, an unknown owner, `public` without an album. `library` is an open library, or the
    configuration to open one with: then the worker processes start first, so that their start-up
    overlaps the exiftool check and the opening, and the library is closed at the end.
    `progress(done, total, result)` is called once with (0, total, None) as the import starts, then
    after every file; setting `cancel` stops after the files under way, keeping what they made.
    """
    if public and not album:
        raise Invalid("public applies to an album: name the album")
    for path in paths:
        if not path.exists():
            raise Invalid(f"{path} does not exist")
    files = collect_files(paths, recursive)
    if not files:
        raise Invalid(f"there are no files to import in {', '.join(map(str, paths))}")
    config = library if isinstance(library, Config) else library.config
    with worker_pool(config, len(files), workers) as pool, _opened(library) as lib:
        who = user_by_name(owner) if owner else default_owner()
        target = album_for_import(album, who.id, public or None)[0] if album else None
        options = ImportOptions(owner_id=who.id, album_id=target.id if target else None)
        if progress:
            progress(0, len(files), None)
        summary = batch.import_files(lib, files, options, _workers(pool, workers), progress, cancel)
    cancelled = cancel is not None and cancel.is_set() and len(summary.results) < len(files)
    return ImportReport(len(files), summary, cancelled)


@contextlib.contextmanager
def _opened(library: Library | Config) -> Iterator[Library]:
    """The library as given, or opened from a configuration (exiftool checked first) and closed after."""
    if isinstance(library, Library):
        yield library
        return
    check_exiftool(library.exiftool)
    opened = open_library(library)
    try:
        yield opened
    finally:
        opened.close()


def _workers(pool: Workers | None, workers: int | None) -> Workers | int | None:
    # No pool: too few files for one to pay off; `workers` then only says how many, and batch
    # decides the same way (so a few files run in this process).
    return pool if pool is not None else workers


# -- regenerating derivatives ------------------------------------------------------------------------


@dataclass
class RegenerateReport:
    """What a regeneration did: how many photos it had, reached and could not render, and why."""

    total: int
    done: int = 0
    failures: list[tuple[RenderJob, str]] = field(default_factory=list)
    cancelled: bool = False

    def describe(self) -> str:
        """The one summary sentence (without its full stop), as every door prints it."""
        rendered = f"rendered {self.done - len(self.failures)} of {self.total} photos"
        if self.cancelled:
            return f"cancelled: {rendered}; the photos already rendered keep their new thumbnails"
        return rendered

    def failure_lines(self) -> list[str]:
        """One line per photo that could not be rendered: its id and why."""
        return [f"photo {job.photo_id}: {reason}" for job, reason in self.failures]


def regenerate_thumbnails(
    library: Library,
    *,
    missing_only: bool = False,
    workers: int | None = None,
    progress: RenderProgress | None = None,
    cancel: threading.Event | None = None,
) -> RegenerateReport:
    """Make the derivatives again from the stored files (every photo's, or only where one is missing).

    A photo that fails is listed with its reason and the others go on. `progress(done, total, job,
    error)` is called once with (0, total, None, "") as the job starts, then after every photo;
    setting `cancel` stops after the photos under way.
    """
    jobs = list(render_jobs(library.store, missing_only))
    report = RegenerateReport(len(jobs))
    if progress:
        progress(0, len(jobs), None, "")

    def advanced(done: int, total: int, job: RenderJob, error: str) -> None:
        report.done = done
        if progress:
            progress(done, total, job, error)

    with worker_pool(library.config, len(jobs), workers) as pool:
        report.failures = batch.regenerate(library, jobs, _workers(pool, workers), advanced, cancel)
    report.cancelled = cancel is not None and cancel.is_set() and report.done < report.total
    return report


# -- checking and sweeping the datastore -------------------------------------------------------------


@dataclass
class CheckResult:
    """What the datastore check found (`report`), in lines and one sentence."""

    report: CheckReport

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return self.report.ok

    def lines(self) -> list[str]:
        """One problem a line."""
        return self.report.lines()

    @property
    def sweepable(self) -> int:
        """How many files a sweep may remove: leftovers, and files no row refers to."""
        return len(self.report.leftovers) + len(self.report.orphans)

    def describe(self) -> str:
        """The one summary sentence (without its full stop), as every door prints it."""
        return "the datastore is consistent" if self.ok else plural(len(self.lines()), "problem")


def check_library(library: Library) -> CheckResult:
    """Compare the rows with the files: rows without files, files without rows, leftovers."""
    return CheckResult(check_datastore(library.store))


@dataclass
class SweepResult:
    """What a sweep removed, and what the check found after it."""

    removed: int
    after: CheckResult

    @property
    def ok(self) -> bool:
        """True when the datastore is consistent after the sweep."""
        return self.after.ok

    def describe(self) -> str:
        """The one summary sentence (without its full stop), as every door prints it."""
        left = "the datastore is consistent" if self.after.ok else f"{self.after.describe()} left"
        return f"swept {plural(self.removed, 'file')}; {left}"


def sweep_library(
    library: Library, checked: CheckResult | None = None, *, orphans: bool = False
) -> SweepResult:
    """Remove the leftovers of interrupted writes that a check found (with `orphans`, also the files no
    row refers to, older than an hour), then check again. Without `checked`, the check runs first.
    Rows without their files are only reported."""
    found = checked if checked is not None else check_library(library)
    removed = sweep(library.store, found.report, orphans=orphans)
    return SweepResult(removed, check_library(library))
