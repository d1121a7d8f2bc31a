"""Importing many files from the server's disk: worker processes prepare, this process writes the rows.

Used by `photoflow import-image` and the console's import screen. Files are grouped by folder and
base name before anything runs, so a picture, its RAW and its sidecar become one photo whatever
order they finish in; each group is written in its own short transaction as soon as its last file
is prepared, so an interrupted import keeps every group it finished and a re-run completes the rest.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import resource_tracker
from pathlib import Path
from typing import TypeVar

from photoflow.config import Config, load_config
from photoflow.errors import PhotoflowError
from photoflow.filetypes import extensions
from photoflow.importer import (
    FileResult,
    ImportOptions,
    ImportSummary,
    Pipeline,
    Prepared,
    finalise,
    pair_key,
)
from photoflow.library import Library, open_library
from photoflow.models import File, Photo
from photoflow.storage import Datastore

Progress = Callable[[int, int, FileResult | None], None]

# Extensions that name pictures: a hint only, used to skip rendering a RAW whose picture is in the
# same group. Types themselves are always decided from content.
_PICTURE_HINTS = extensions("picture")
# Below this many files the start-up of worker processes costs more than it saves.
_POOL_THRESHOLD = 4


@dataclass(frozen=True)
class RenderJob:
    """What it takes to (re)make one photo's derivatives: plain values, so it crosses processes."""

    photo_id: int
    sha256: str
    path: str
    raw: bool  # shown from a RAW's embedded preview


def render_jobs(store: Datastore, missing_only: bool = False) -> Iterator[RenderJob]:
    """The photos whose derivatives to make: all, or only those with some derivative missing."""
    query = (
        Photo.select(Photo.id, Photo.sha256, File.path, Photo.kind)
        .join(File, on=(File.sha256 == Photo.sha256))
        .order_by(Photo.id)
        .tuples()
    )
    for photo_id, sha, path, kind in query.iterator():
        if missing_only and store.has_derivatives(sha):
            continue
        yield RenderJob(photo_id, sha, path, kind == "raw")


def render_photo(pipeline: Pipeline, job: RenderJob) -> str:
    """Make one photo's derivatives again from its stored file; returns an error reason or ''."""
    try:
        rendered = pipeline.render(pipeline.store.resolve(job.path), job.raw)
        pipeline.store.write_derivatives(job.sha256, rendered.outputs)
    except PhotoflowError as exc:
        return exc.reason
    return ""


@dataclass(frozen=True)
class _Job:
    index: int
    path: str
    name: str
    want_preview: bool


def collect_files(paths: Iterable[Path], recursive: bool = False) -> list[Path]:
    """The files named or found in the folders named; hidden files inside folders are skipped."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(_walk(path, recursive))
        else:
            found.append(path)  # missing files fail later with their reason
    return found


def _walk(folder: Path, recursive: bool) -> Iterator[Path]:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_file():
            yield Path(entry.path)
        elif recursive and entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path), recursive)


def import_files(
    library: Library,
    files: list[Path],
    options: ImportOptions,
    workers: Workers | int | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> ImportSummary:
    """Import `files` into the library; a broken file fails alone, with its reason.

    `progress(done, total, result)` is called after every file; setting `cancel` stops after the
    files under way, and writes what was prepared.
    """
    total = len(files)
    groups: dict[tuple[str, str], list[int]] = {}
    for i, path in enumerate(files):
        groups.setdefault((str(path.parent), pair_key(path.name)), []).append(i)
    jobs = []
    for members in groups.values():
        has_picture = any(files[i].suffix.lower() in _PICTURE_HINTS for i in members)
        for i in members:
            jobs.append(_Job(i, str(files[i]), files[i].name, want_preview=not has_picture))
    group_of = {i: key for key, members in groups.items() for i in members}

    summary = ImportSummary()
    prepared: dict[int, Prepared] = {}

    def write(group: list[Prepared]) -> None:
        _render_lone_raws(library, group)
        for result in finalise(group, options, library.store):
            summary.results.append(result)
            if progress:
                progress(len(summary.results), total, result)

    def prepare_here(job: _Job) -> Prepared:
        return library.pipeline().prepare_path(Path(job.path), job.name, job.want_preview)

    for job, outcome in _outcomes(library, jobs, prepare_here, _prepare_in_worker, workers, cancel):
        if not isinstance(outcome, Prepared):
            outcome = Prepared(job.name, pair_key(job.name), "failed", _failure(outcome))
        prepared[job.index] = outcome
        members = groups[group_of[job.index]]
        if all(i in prepared for i in members):
            write([prepared.pop(i) for i in members])
    # Cancelled: what was prepared is kept, even where the rest of its group was not reached (a RAW
    # that comes later attaches to its picture), so nothing is left stored without its row.
    for key in dict.fromkeys(group_of[i] for i in sorted(prepared)):
        write([prepared.pop(i) for i in groups[key] if i in prepared])
    return summary


J = TypeVar("J")
R = TypeVar("R")


class WorkerCrashed(Exception):
    """The worker process handling a job died (a crash in a decoder, or the OOM killer)."""


def _failure(exc: BaseException) -> str:
    if isinstance(exc, WorkerCrashed):
        return "the import worker died while reading this file (a crash, or out of memory)"
    return f"unexpected error: {type(exc).__name__}: {exc}"


def _outcomes(
    library: Library,
    jobs: list[J],
    here: Callable[[J], R],
    in_worker: Callable[[J], R],
    workers: Workers | int | None,
    cancel: threading.Event | None,
) -> Iterator[tuple[J, R | BaseException]]:
    """Run every job, in this process or over worker processes, and yield each with its outcome.

    `workers` is a running `Workers`, or how many to start (default: the configuration's); a few
    jobs run here, where starting processes would cost more than it saves. Setting `cancel` stops
    taking new jobs; those under way finish and are yielded.
    """
    if isinstance(workers, Workers):
        yield from workers.run(in_worker, jobs, cancel)
        return
    count = workers or library.config.workers
    if count > 1 and len(jobs) >= _POOL_THRESHOLD:
        with Workers(library.config, count) as pool:
            yield from pool.run(in_worker, jobs, cancel)
        return
    for job in jobs:
        if cancel is not None and cancel.is_set():
            return
        try:
            yield job, here(job)
        except Exception as exc:  # a bug, not a bad file: that file fails, the others go on
            yield job, exc


class Workers:
    """Import worker processes, started as soon as this is made so that their start-up (a Python,
    Pillow and exiftool each) overlaps whatever the caller does next; a context manager."""

    def __init__(self, config: Config, size: int) -> None:
        self.config = config
        self.size = size
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        pool = _pool(self.config, self.size)
        # The pool spawns a process per submitted job; a no-op each makes them all start now.
        for _ in range(self.size):
            pool.submit(int)
        return pool

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def run(
        self, fn: Callable[[J], R], jobs: Iterable[J], cancel: threading.Event | None = None
    ) -> Iterator[tuple[J, R | BaseException]]:
        """Run `fn` over `jobs`, yielding (job, result or exception) as they finish.

        A worker that dies breaks the whole pool, and with it every job in flight. Those jobs are run
        again one at a time in a fresh pool, so the one file that kills a worker fails alone (with
        WorkerCrashed) and the others are imported.
        """
        queue = deque(jobs)
        suspects: deque[J] = deque()
        pending: dict[Future[R], tuple[J, bool]] = {}

        def submit(job: J, alone: bool) -> bool:
            try:
                pending[self._pool.submit(fn, job)] = (job, alone)
            except BrokenProcessPool:
                # The pool broke since the last wait (its futures have not failed yet): this job
                # never ran, so it goes back where it came from, and the pool is replaced below.
                (suspects if alone else queue).appendleft(job)
                return False
            return True

        try:
            while True:
                broken = False
                if not (cancel is not None and cancel.is_set()):
                    if suspects:
                        if not pending:
                            broken = not submit(suspects.popleft(), True)
                    else:
                        # A short queue per worker, so that a cancel or Ctrl-C stops soon.
                        while not broken and queue and len(pending) < self.size * 2:
                            broken = not submit(queue.popleft(), False)
                if not pending and not broken:
                    return
                finished = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)[0] if pending else set()
                for future in finished:
                    job, alone = pending.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken = True
                        if alone:
                            yield job, WorkerCrashed()
                        else:
                            suspects.append(job)
                        continue
                    except Exception as exc:
                        yield job, exc
                        continue
                    yield job, result
                if broken:
                    suspects.extend(job for job, _alone in pending.values())
                    pending.clear()
                    self._pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = self._start()
        finally:
            for future in pending:
                future.cancel()


def worker_pool(
    config: Config, jobs: int, workers: int | None = None
) -> Workers | contextlib.nullcontext[None]:
    """Workers for `jobs` jobs, started now; or nothing (`with` gives None) when too few to pay off."""
    count = workers or config.workers
    if count > 1 and jobs >= _POOL_THRESHOLD:
        return Workers(config, count)
    return contextlib.nullcontext()


def _render_lone_raws(library: Library, group: list[Prepared]) -> None:
    """Render a RAW that skipped rendering because a picture was expected, when that picture failed."""
    if any(p.role == "original" and p.status != "failed" for p in group):
        return
    for p in group:
        if p.role == "raw" and p.status == "ok" and not p.rendered and not p.render_error:
            try:
                library.pipeline().render_into(library.store.resolve(p.path), p)
            except Exception as exc:
                p.render_error = getattr(exc, "reason", str(exc))


# -- worker processes -----------------------------------------------------------------------------

_worker_library: Library | None = None
_quiet_workers = False


def keep_workers_off_the_screen() -> None:
    """Get worker processes ready for a caller that draws on the whole terminal (the console).

    multiprocessing starts a helper process (its resource tracker) on first use and hands it this
    process's stderr; under Textual, stderr has no file descriptor and that start fails with "bad
    value(s) in fds_to_keep". Started now, while stderr is still the terminal, it works. Workers
    started afterwards send their stray output (a library's warning) to /dev/null rather than over
    the screen; what matters to a person comes back in the results.
    """
    global _quiet_workers
    _quiet_workers = True
    resource_tracker.ensure_running()


def _pool(config: Config, workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: a forked child would share the parent's database connection and exiftool pipes.
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(config.env(), _quiet_workers)
    )


def _init_worker(env: dict[str, str], quiet: bool = False) -> None:
    global _worker_library
    # Ctrl-C reaches the whole process group; the parent decides what to stop, the workers finish
    # the file in hand so that nothing is left half-written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if quiet:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
    _worker_library = open_library(load_config(env))
    # exiftool takes a tenth of a second to start: begin now, beside the first file's staging.
    _worker_library.pipeline().warm_up()


def _prepare_in_worker(job: _Job) -> Prepared:
    assert _worker_library is not None
    return _worker_library.pipeline().prepare_path(Path(job.path), job.name, job.want_preview)


def _render_in_worker(job: RenderJob) -> str:
    assert _worker_library is not None
    return render_photo(_worker_library.pipeline(), job)


def regenerate(
    library: Library,
    jobs: list[RenderJob],
    workers: Workers | int | None = None,
    progress: Callable[[int, int, RenderJob, str], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[tuple[RenderJob, str]]:
    """Make the derivatives of `jobs` again, over worker processes; returns the failures with reasons."""
    failures: list[tuple[RenderJob, str]] = []

    def here(job: RenderJob) -> str:
        return render_photo(library.pipeline(), job)

    outcomes = _outcomes(library, jobs, here, _render_in_worker, workers, cancel)
    for count, (job, outcome) in enumerate(outcomes, 1):
        error = outcome if isinstance(outcome, str) else _failure(outcome)
        if error:
            failures.append((job, error))
        if progress:
            progress(count, len(jobs), job, error)
    return failures
