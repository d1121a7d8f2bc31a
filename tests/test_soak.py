"""bench/soak.py, short: one real server under browsing, uploads and logins at once for about 15 s, with
no error (a 401 or 429 only where the soak expects one) and the server's memory, read at rest (no request
in flight) after the warm-up and at the end, growing less than the soak's bound. Latencies are printed
(pytest -s), never asserted. In 10 s the bound catches only a gross leak; tests/test_memory.py counts the
objects a page leaves behind."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))

import soak  # bench/ is not a package: its scripts import harness as a module

pytestmark = [pytest.mark.serial, pytest.mark.slow]  # latencies and memory under load: the machine alone

SECONDS = 10
WARMUP = 3


def test_a_short_soak_has_no_errors_and_bounded_memory(tmp_path: Path, samples: Path) -> None:
    report = soak.soak(SECONDS, WARMUP, browsers=4, root=tmp_path)
    print("\n" + "\n".join(soak.describe(report, 4)))
    assert not report.figures.errors, report.figures.errors[:20]
    assert report.figures.latencies["upload"] and report.figures.latencies["login"]
    assert report.figures.refused[429] > 0  # the bursts did reach the rate limit
    assert report.growth_mb <= report.bound_mb
