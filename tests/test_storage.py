"""The content-addressed datastore: atomic writes, one file per content, containment, leftovers."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from photoflow.errors import Invalid, NotFound, TooLarge
from photoflow.storage import STALE_SECONDS, Datastore


@pytest.fixture
def store(tmp_path: Path) -> Datastore:
    store = Datastore(tmp_path / "ds")
    store.prepare()
    return store


def test_stage_hashes_while_writing_and_commit_names_by_content(store: Datastore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks
    staged = store.stage(io.BytesIO(data))
    assert staged.sha256 == hashlib.sha256(data).hexdigest() and staged.size == len(data)
    assert staged.path.parent == store.tmp
    rel = store.commit(staged, "original", ".JPG")
    assert rel == f"originals/{staged.sha256[:2]}/{staged.sha256}.jpg"
    assert store.resolve(rel).read_bytes() == data
    assert not staged.path.exists() and list(store.tmp.iterdir()) == []


def test_same_bytes_twice_are_one_file(store: Datastore) -> None:
    first = store.commit(store.stage(io.BytesIO(b"same")), "raw", ".nef")
    second = store.commit(store.stage(io.BytesIO(b"same")), "raw", ".nef")
    assert first == second
    assert list(store.stored_files()) == [first]


def test_too_large_leaves_nothing(store: Datastore) -> None:
    with pytest.raises(TooLarge):
        store.stage(io.BytesIO(b"x" * 5000), max_bytes=4096)
    assert list(store.tmp.iterdir()) == []


def test_interrupted_stream_leaves_nothing(store: Datastore) -> None:
    class Broken(io.RawIOBase):
        calls = 0

        def read(self, n: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise ConnectionResetError("client went away")
            return b"x" * 1000

    with pytest.raises(ConnectionResetError):
        store.stage(Broken())
    assert list(store.tmp.iterdir()) == []


def test_resolve_refuses_paths_outside_the_datastore(store: Datastore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    (store.root / "originals" / "ab").mkdir(parents=True)
    (store.root / "originals" / "ab" / "link").symlink_to(secret)
    for rel in ("../secret.txt", "originals/../../secret.txt", str(secret), "originals/ab/link", "originals"):
        with pytest.raises(NotFound):
            store.resolve(rel)


def test_derivatives_are_named_by_hash_and_size(store: Datastore) -> None:
    sha = "ab" + "0" * 62
    written = store.write_derivatives(
        sha, {size: b"jpeg bytes" for size in ("preview", "500", "250", "100", "20")}
    )
    assert written[1] == f"derivatives/ab/{sha}-500.jpg"
    assert list(store.tmp.iterdir()) == []
    assert store.has_derivatives(sha)
    assert store.resolve(store.derivative_path(sha, "250")).read_bytes() == b"jpeg bytes"
    store.remove_derivatives(sha)
    assert not store.has_derivatives(sha) and list(store.stored_files()) == []


def test_leftovers_of_dead_writers_are_stale_and_live_ones_are_not(store: Datastore) -> None:
    # A writer that is gone: a real process that has exited.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    host = __import__("socket").gethostname()
    stale = store.tmp / f"{dead.stdout.strip()}@{host}@0123.part"
    stale.write_bytes(b"half")
    live = store.tmp / f"{os.getpid()}@{host}@4567.part"
    live.write_bytes(b"being written")
    other_host = store.tmp / "1@elsewhere@89ab.part"
    other_host.write_bytes(b"another host's upload")
    assert store.leftovers() == [stale]
    old = store.tmp / "1@elsewhere@cdef.part"
    old.write_bytes(b"old")
    os.utime(old, (0, 0))
    assert set(store.leftovers()) == {stale, old}
    assert store.sweep() == 2
    assert sorted(p.name for p in store.tmp.iterdir()) == sorted([live.name, other_host.name])
    assert STALE_SECONDS >= 3600


def test_stage_file_copies_in_the_kernel_and_hashes_the_copy(store: Datastore, tmp_path: Path) -> None:
    source = tmp_path / "big.bin"
    data = os.urandom(5 * 1024 * 1024 + 3)
    source.write_bytes(data)
    staged = store.stage_file(source)
    assert staged.sha256 == hashlib.sha256(data).hexdigest() and staged.size == len(data)
    assert staged.path.read_bytes() == data
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert store.stage_file(empty).sha256 == hashlib.sha256(b"").hexdigest()
    with pytest.raises(TooLarge):
        store.stage_file(source, max_bytes=1024)


def test_stage_file_refuses_what_is_not_a_regular_file(store: Datastore, tmp_path: Path) -> None:
    """/dev/zero would never end and a FIFO would wait forever: neither is a picture on disk."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo, tmp_path):
        with pytest.raises((Invalid, IsADirectoryError)):
            store.stage_file(path)
    assert list(store.tmp.iterdir()) == []
