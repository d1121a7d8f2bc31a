"""Importing many files from the server's disk: worker processes prepare, this process writes the rows.

Used by `photoflow import-image` and the console's import screen. Files are grouped by folder and
base name before anything runs, so a picture, its RAW and its sidecar become one photo whatever
order they finish in; each group is written in its own short transaction as soon as its last file
is prepared, so an interrupted import keeps every group it finished and a re-run completes the rest.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from photoflow.config import Config, load_config
from photoflow.importer import FileResult, ImportOptions, ImportSummary, Prepared, finalise, pair_key
from photoflow.library import Library, open_library
from photoflow.services import RenderJob, render_photo

Progress = Callable[[int, int, FileResult | None], None]

# Extensions that name pictures: a hint only, used to skip rendering a RAW whose picture is in the
# same group. Types themselves are always decided from content.
_PICTURE_HINTS = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
# Below this many files the start-up of worker processes costs more than it saves.
_POOL_THRESHOLD = 4


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
    workers: int | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> ImportSummary:
    """Import `files` into the library; a broken file fails alone, with its reason.

    `progress(done, total, result)` is called after every file; setting `cancel` stops after the
    files under way (their groups are written whole or not at all).
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

    def done(job_index: int, item: Prepared) -> None:
        prepared[job_index] = item
        key = group_of[job_index]
        if all(i in prepared for i in groups[key]):
            group = [prepared.pop(i) for i in groups[key]]
            _render_lone_raws(library, group)
            for result in finalise(group, options, library.store):
                summary.results.append(result)
                if progress:
                    progress(len(summary.results), total, result)

    workers = workers or library.config.workers
    if workers <= 1 or total < _POOL_THRESHOLD:
        pipeline = library.pipeline()
        for job in jobs:
            if cancel is not None and cancel.is_set():
                break
            done(job.index, pipeline.prepare_path(Path(job.path), job.name, job.want_preview))
        return summary

    with _pool(library.config, workers) as pool:
        pending: dict[Future[Prepared], _Job] = {}
        queue = iter(jobs)
        try:
            # Keep a short queue per worker so that a cancel or Ctrl-C stops soon.
            while True:
                while len(pending) < workers * 2 and not (cancel is not None and cancel.is_set()):
                    job = next(queue, None)
                    if job is None:
                        break
                    pending[pool.submit(_prepare_in_worker, job)] = job
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    job = pending.pop(future)
                    done(job.index, _result_of(future, job))
        finally:
            for future in pending:
                future.cancel()
    return summary


def _result_of(future: Future[Prepared], job: _Job) -> Prepared:
    try:
        return future.result()
    except Exception as exc:  # a worker crashed (e.g. killed by the OOM killer): this file fails alone
        return Prepared(job.name, pair_key(job.name), "failed", f"import worker failed: {exc}")


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


def _pool(config: Config, workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: a forked child would share the parent's database connection and exiftool pipes.
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(
        workers, mp_context=context, initializer=_init_worker, initargs=(config.env(),)
    )


def _init_worker(env: dict[str, str]) -> None:
    global _worker_library
    # Ctrl-C reaches the whole process group; the parent decides what to stop, the workers finish
    # the file in hand so that nothing is left half-written.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_library = open_library(load_config(env))


def _prepare_in_worker(job: _Job) -> Prepared:
    assert _worker_library is not None
    return _worker_library.pipeline().prepare_path(Path(job.path), job.name, job.want_preview)


def _render_in_worker(job: RenderJob) -> str:
    assert _worker_library is not None
    return render_photo(_worker_library.pipeline(), job)


def regenerate(
    library: Library,
    jobs: list[RenderJob],
    workers: int | None = None,
    progress: Callable[[int, int, RenderJob, str], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[tuple[RenderJob, str]]:
    """Make the derivatives of `jobs` again, over worker processes; returns the failures with reasons."""
    failures: list[tuple[RenderJob, str]] = []
    total = len(jobs)
    workers = workers or library.config.workers

    def record(count: int, job: RenderJob, error: str) -> None:
        if error:
            failures.append((job, error))
        if progress:
            progress(count, total, job, error)

    if workers <= 1 or total < _POOL_THRESHOLD:
        for count, job in enumerate(jobs, 1):
            if cancel is not None and cancel.is_set():
                break
            record(count, job, render_photo(library.pipeline(), job))
        return failures
    with _pool(library.config, workers) as pool:
        futures = {pool.submit(_render_in_worker, job): job for job in jobs}
        try:
            for count, future in enumerate(_as_done(futures, cancel), 1):
                record(count, futures[future], future.result())
        finally:
            for future in futures:
                future.cancel()
    return failures


def _as_done(futures: dict[Future[str], RenderJob], cancel: threading.Event | None) -> Iterator[Future[str]]:
    pending = set(futures)
    while pending:
        if cancel is not None and cancel.is_set():
            return
        finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
        yield from finished
