"""The content-addressed datastore: atomic writes, paths for every kind of file, and its inventory.

Layout under the datastore root (every file named by the SHA-256 of its bytes):

    originals/ab/<sha256><ext>      pictures as uploaded
    raws/ab/<sha256><ext>           camera RAW files
    sidecars/ab/<sha256>.xmp        XMP sidecars
    derivatives/ab/<sha256>-<size>.jpg
                                    grid heights and the large preview, named after the file shown
    tmp/<pid>@<host>@<random>.part  files being written; anything left here after a crash is swept

A file is written to tmp/, fsynced, renamed into place and its folder fsynced before any row that
names it is committed, so a crash leaves at worst a leftover or an unreferenced file, never a row
pointing at a half file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import math
import mmap
import os
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from photoflow.errors import Invalid, NotFound, PhotoflowError, TooLarge
from photoflow.faults import crash_point
from photoflow.imaging import SIZES

ROLE_DIRS = {"original": "originals", "raw": "raws", "sidecar": "sidecars"}
DERIVATIVES = "derivatives"
# What `imaging.render` makes: the large preview and the pig.js grid heights.
DERIVATIVE_SIZES = SIZES
TMP = "tmp"
CHUNKS = "chunks"
CHUNK = 1 << 20
# A leftover whose writer is gone (same host) or that is older than this (another host) is stale.
STALE_SECONDS = 6 * 3600


_HOST = socket.gethostname().replace("@", "_")


class Readable(Protocol):
    """What staging reads from: an upload's stream, a file, the pieces of a chunked upload."""

    def read(self, size: int = -1, /) -> bytes: ...


class StorageFull(PhotoflowError):
    """The datastore's disk is full."""


@dataclass
class Staged:
    """A file written to tmp/ and hashed, not yet given its final name."""

    path: Path
    sha256: str
    size: int
    md5: str = ""  # for Piwigo clients, which name files by MD5


class Datastore:
    """The folder holding every file Photoflow keeps."""

    def __init__(self, root: Path) -> None:
        # The real path: containment checks compare against it, so a symlinked datastore works and a
        # symlink inside it cannot lead out.
        self.root = Path(root).resolve()
        self.tmp = self.root / TMP
        self.chunks = Chunks(self)

    def prepare(self) -> None:
        """Create the folders (idempotent)."""
        for name in (*ROLE_DIRS.values(), DERIVATIVES, TMP, CHUNKS):
            (self.root / name).mkdir(parents=True, exist_ok=True)

    # -- writing ---------------------------------------------------------------------------------

    def stage(self, source: Readable, max_bytes: int | None = None) -> Staged:
        """Stream `source` into tmp/, hashing as it goes, and fsync it. Raises TooLarge past `max_bytes`."""
        path = self._tmp_name()
        digest, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
        size = 0
        with _removed_on_failure(path), open(path, "xb") as out:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise TooLarge(f"file is larger than the limit of {max_bytes} bytes")
                digest.update(chunk)
                md5.update(chunk)
                out.write(chunk)
            crash_point("staged")
            out.flush()
            os.fsync(out.fileno())
            crash_point("fsynced")
        return Staged(path, digest.hexdigest(), size, md5.hexdigest())

    def stage_file(self, source: Path, max_bytes: int | None = None) -> Staged:
        """Stage a copy of the regular file at `source`.

        The kernel copies (copy_file_range: no pass through Python, a reflink where the filesystem
        can), and the hash is taken from the copy through a memory map, so what is hashed is what is
        stored, even should the source change meanwhile. A third of the CPU of a read/write loop.
        """
        # O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever (regular files ignore it).
        with open(os.open(source, os.O_RDONLY | os.O_NONBLOCK), "rb") as src:
            info = os.fstat(src.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise Invalid("not a regular file")
            if max_bytes is not None and info.st_size > max_bytes:
                raise TooLarge(f"file is larger than the limit of {max_bytes} bytes")
            path = self._tmp_name()
            # Opened for reading too: the hash is read back through a memory map.
            with _removed_on_failure(path), open(path, "x+b") as out:
                _copy(src, out, info.st_size)
                crash_point("staged")
                os.fsync(out.fileno())
                crash_point("fsynced")
                size = os.fstat(out.fileno()).st_size
                digest, md5 = _hashes(out, size)
        return Staged(path, digest, size, md5)

    def commit(self, staged: Staged, role: str, extension: str) -> str:
        """Give a staged file its content address; return the path relative to the datastore."""
        rel = self.blob_path(role, staged.sha256, extension)
        with _removed_on_failure(staged.path):  # a full disk (a new folder) is StorageFull too
            self._install(staged.path, self.root / rel)
        crash_point("renamed")
        return rel

    def discard(self, staged: Staged) -> None:
        """Drop a staged file."""
        staged.path.unlink(missing_ok=True)

    def write_derivatives(self, sha256: str, outputs: dict[str, bytes]) -> list[str]:
        """Write the derivatives of one file atomically, each to its final name; return their paths.

        They share one folder, so each file is fsynced and renamed and the folder is fsynced once.
        """
        staged = [(self._tmp_name(), self.derivative_path(sha256, size)) for size in outputs]
        with _removed_on_failure(*(tmp for tmp, _rel in staged)):
            for (tmp, _rel), data in zip(staged, outputs.values(), strict=True):
                with open(tmp, "xb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
            folder = self.root / DERIVATIVES / sha256[:2]
            folder.mkdir(parents=True, exist_ok=True)
            for tmp, rel in staged:
                os.replace(tmp, self.root / rel)
            _fsync_dir(folder)
        crash_point("derivatives")
        return [rel for _tmp, rel in staged]

    def _tmp_name(self) -> Path:
        # The writer's pid and host are in the name so that a sweep can tell a crashed writer's
        # leftover from a live upload, even on a datastore shared by several hosts.
        self.tmp.mkdir(parents=True, exist_ok=True)
        return self.tmp / f"{os.getpid()}@{_HOST}@{secrets.token_hex(8)}.part"

    def _install(self, tmp: Path, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        # rename() replaces atomically: two writers of the same content address both succeed and
        # leave one whole file, since both wrote the same bytes.
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    # -- reading ---------------------------------------------------------------------------------

    @staticmethod
    def blob_path(role: str, sha256: str, extension: str) -> str:
        """The relative path of an original, RAW or sidecar."""
        return f"{ROLE_DIRS[role]}/{sha256[:2]}/{sha256}{extension.lower()}"

    @staticmethod
    def derivative_path(sha256: str, size: str) -> str:
        """The relative path of a derivative of the file with this hash."""
        return f"{DERIVATIVES}/{sha256[:2]}/{sha256}-{size}.jpg"

    def resolve(self, rel: str) -> Path:
        """The absolute path of a stored file; NotFound if missing or outside the datastore."""
        path = (self.root / rel).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise NotFound("no such file")
        return path

    def exists(self, rel: str) -> bool:
        """True when the stored file is there."""
        try:
            self.resolve(rel)
        except NotFound:
            return False
        return True

    def remove(self, rel: str) -> None:
        """Delete a stored file if present."""
        path = (self.root / rel).resolve()
        if path.is_relative_to(self.root):
            path.unlink(missing_ok=True)

    def has_derivatives(self, sha256: str) -> bool:
        """True when every derivative of the file with this hash is there."""
        return all((self.root / self.derivative_path(sha256, size)).is_file() for size in DERIVATIVE_SIZES)

    def remove_derivatives(self, sha256: str) -> None:
        """Delete every derivative of the file with this hash."""
        folder = self.root / DERIVATIVES / sha256[:2]
        for path in folder.glob(f"{sha256}-*.jpg"):
            path.unlink(missing_ok=True)

    # -- inventory -------------------------------------------------------------------------------

    def stored_files(self) -> Iterator[str]:
        """Every relative path under originals/, raws/, sidecars/ and derivatives/."""
        for top in (*ROLE_DIRS.values(), DERIVATIVES):
            base = self.root / top
            if not base.is_dir():
                continue
            for dirpath, _dirs, files in os.walk(base):
                for name in files:
                    yield str(Path(dirpath, name).relative_to(self.root))

    def leftovers(self, stale_only: bool = True) -> list[Path]:
        """Files in tmp/ left by writers that are gone, and chunked uploads abandoned long ago (or every
        one of them, with stale_only=False)."""
        found = []
        now = time.time()
        if self.tmp.is_dir():
            found += [path for path in self.tmp.iterdir() if not stale_only or _is_stale(path, now)]
        found += self.chunks.abandoned(now if stale_only else math.inf)
        return sorted(found)

    def sweep(self) -> int:
        """Remove stale leftovers; return how many."""
        count = 0
        for path in self.leftovers():
            remove_leftover(path)
            count += 1
        return count


@contextlib.contextmanager
def _removed_on_failure(*paths: Path) -> Iterator[None]:
    """Remove `paths` if the block fails (Ctrl-C included), so an interrupted write leaves nothing; a
    full disk becomes StorageFull."""
    try:
        yield
    except BaseException as exc:
        for path in paths:
            path.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull("the datastore's disk is full") from None
        raise


def _copy(src: BinaryIO, out: BinaryIO, size: int) -> None:
    """Copy `size` bytes (fewer if the source shrinks) in the kernel, or by hand where it cannot."""
    copied = 0
    try:
        while copied < size:
            n = os.copy_file_range(src.fileno(), out.fileno(), size - copied)
            if n == 0:
                return
            copied += n
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
            raise
        shutil.copyfileobj(src, out, CHUNK)  # both offsets are where the kernel copy stopped
        # `out` is buffered: without this, a tail shorter than its buffer (a whole XMP sidecar) would
        # still be in memory when the caller fsyncs, measures and hashes the file, which would then be
        # named after fewer bytes than it holds (the empty file's hash, for a small sidecar).
        out.flush()


def _hashes(fh: BinaryIO, size: int) -> tuple[str, str]:
    """SHA-256 (the content address) and MD5 (what Piwigo clients know files by) of a whole file."""
    if size == 0:
        return hashlib.sha256().hexdigest(), hashlib.md5(usedforsecurity=False).hexdigest()
    with mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ) as view:
        return hashlib.sha256(view).hexdigest(), hashlib.md5(view, usedforsecurity=False).hexdigest()


def remove_leftover(path: Path) -> None:
    """Remove a leftover file, or an abandoned chunk folder with what it holds."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class Chunks:
    """Pieces of a file that arrives over several requests (Piwigo's addChunk, and chunked uploads).

    Each file being sent has a folder in chunks/ named by a key the caller makes (who sends it and
    what); each piece is a file named by its position, written whole or not at all. When the last
    piece has come, `assemble` streams them in order into the staging area like any upload, and the
    folder goes. A folder untouched for STALE_SECONDS is an abandoned upload, swept by the check.
    """

    def __init__(self, store: Datastore) -> None:
        self.store = store
        self.root = store.root / CHUNKS

    def _folder(self, key: str) -> Path:
        if not key or not all(ch.isalnum() or ch in "-_" for ch in key):
            raise ValueError(f"not a chunk key: {key!r}")
        folder = self.root / key
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def put(self, key: str, position: int, staged: Path) -> None:
        """Keep a staged file (in tmp/, the same disk) as piece `position`."""
        target = self._folder(key) / f"{position:08d}"
        os.replace(staged, target)
        os.utime(target.parent)

    def put_bytes(self, key: str, position: int, data: bytes) -> None:
        """Keep `data` as piece `position`."""
        staged = self.store.stage(io.BytesIO(data))
        self.put(key, position, staged.path)

    def assemble(self, key: str, count: int | None) -> Staged:
        """The whole file, staged; with `count`, pieces 0..count-1 must all be there."""
        folder = self._folder(key)
        pieces = sorted(folder.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1)
        if count is not None and [p.name for p in pieces] != [f"{n:08d}" for n in range(count)]:
            raise Invalid("some chunks of the file are missing")
        if not pieces:
            raise Invalid("no chunks were sent for this file")
        staged = self.store.stage(_Concatenated(pieces))
        shutil.rmtree(folder, ignore_errors=True)
        return staged

    def abandoned(self, now: float) -> list[Path]:
        """Folders of uploads nobody has added to for STALE_SECONDS."""
        if not self.root.is_dir():
            return []
        old = []
        for folder in self.root.iterdir():
            try:
                if now - folder.stat().st_mtime > STALE_SECONDS:
                    old.append(folder)
            except FileNotFoundError:
                continue
        return old


class _Concatenated(io.RawIOBase):
    """Several files read one after another, as one stream."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = list(paths)
        self.current: BinaryIO | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while True:
            if self.current is None:
                if not self.paths:
                    return b""
                self.current = open(self.paths.pop(0), "rb")  # noqa: SIM115 (closed when drained)
            data = self.current.read(size if size and size > 0 else CHUNK)
            if data:
                return data
            self.current.close()
            self.current = None


def _is_stale(path: Path, now: float) -> bool:
    try:
        age = now - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > STALE_SECONDS:
        return True
    parts = path.name.split("@")
    if len(parts) != 3 or not parts[0].isdigit():
        return True
    if parts[1] != _HOST:
        return False  # another host's writer: only age tells
    return not _alive(int(parts[0]))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
