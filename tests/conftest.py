"""Fixtures: each builds a real world on disk for a test — a datastore in tmp_path, a migrated
database (SQLite, or PostgreSQL where a test asks), users, and paths to the real camera files in
../shared/samples (read in place, never copied into the repository)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from photoflow import db as database
from photoflow import services
from photoflow.config import Config, load_config
from photoflow.library import Library, open_library

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO.parent / "shared" / "samples"


def pytest_report_header() -> list[str]:
    return [f"samples: {SAMPLES} ({'found' if SAMPLES.is_dir() else 'MISSING'})"]


@pytest.fixture(scope="session")
def samples() -> Path:
    """The folder of real camera files; the suite cannot run without it."""
    if not SAMPLES.is_dir():
        pytest.fail(f"sample files not found at {SAMPLES}: put ../shared beside the repository")
    return SAMPLES


def make_config(tmp_path: Path, database_url: str | None = None, **extra: str) -> Config:
    """A configuration whose datastore (and SQLite database) live in `tmp_path`."""
    env = {"DATASTORE": str(tmp_path / "datastore"), "WORKERS": "2", **extra}
    if database_url:
        env["DATABASE"] = database_url
    return load_config(env)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """A fresh datastore and SQLite database path in tmp_path (not yet migrated)."""
    return make_config(tmp_path)


@pytest.fixture
def library(config: Config) -> Iterator[Library]:
    """A migrated SQLite database and a prepared datastore in tmp_path."""
    database.open_database(config.database)
    database.upgrade()
    lib = open_library(config)
    yield lib
    lib.close()


@pytest.fixture
def admin(library: Library):
    """An admin account named `admin` with the password `correct horse`."""
    return services.create_user("admin", "correct horse", admin=True)


# -- PostgreSQL --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server():
    """One real PostgreSQL server for the session, on a private port and socket folder."""
    from tests.pgserver import PostgresServer, why_unavailable

    reason = why_unavailable()
    if reason:
        pytest.skip(reason)
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def any_library(request, tmp_path: Path) -> Iterator[Library]:
    """A migrated library on SQLite and, as a second run, on a fresh PostgreSQL database."""
    if request.param == "postgres":
        server = request.getfixturevalue("pg_server")
        name = "t_" + os.urandom(6).hex()
        config = make_config(tmp_path, server.create_database(name))
    else:
        config = make_config(tmp_path)
    database.open_database(config.database)
    database.upgrade()
    lib = open_library(config)
    yield lib
    lib.close()
    if request.param == "postgres":
        server.drop_database(name)


# -- the command line as a person runs it ------------------------------------------------------------


def run_cli(
    config: Config,
    *args: str,
    input: str | None = None,
    timeout: float = 300,
    env_override: dict[str, str] | None = None,
):
    """Run `python -m photoflow ARGS` in a subprocess with `config`'s environment (or `env_override`)."""
    env = {
        **os.environ,
        **(env_override if env_override is not None else config.env()),
        "PYTHONPATH": str(REPO),
    }
    return subprocess.run(
        [sys.executable, "-m", "photoflow", *args],
        env=env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
