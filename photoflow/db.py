"""The database: a late-initialised proxy, connection settings, and the migration runner."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from peewee import Database, DatabaseProxy, OperationalError, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import connect as connect_url
from playhouse.migrations import Runner

from photoflow.errors import Invalid, Unavailable

db = DatabaseProxy()

MIGRATIONS = Path(__file__).with_name("migrations")

# Order matters: busy_timeout first so that switching to WAL waits for other connections instead of
# failing, then WAL so readers never block the writer, then foreign keys (per connection in SQLite).
SQLITE_PRAGMAS: tuple[tuple[str, Any], ...] = (
    ("busy_timeout", 30_000),
    ("journal_mode", "wal"),
    ("foreign_keys", 1),
    # FULL: a committed import survives a power cut, and costs one fsync per (short) transaction.
    ("synchronous", "full"),
    ("cache_size", -16_000),
)


def make_database(url: str) -> Database:
    """A peewee database for a SQLite path or a postgresql:// URL, not yet connected."""
    if url.startswith(("postgres://", "postgresql://")):
        database = connect_url(url.replace("postgres://", "postgresql://", 1))
        assert isinstance(database, PostgresqlDatabase)
        return database
    # lock_type IMMEDIATE: every write transaction takes the write lock when it begins. A deferred
    # transaction that reads and then writes fails at once with "database is locked" in WAL mode when
    # another connection committed in between, whatever the busy timeout.
    return SqliteDatabase(url, pragmas=SQLITE_PRAGMAS, lock_type="IMMEDIATE", check_same_thread=False)


def open_database(url: str) -> Database:
    """Bind the global proxy to the database at `url` and check that it can be reached."""
    database = make_database(url)
    try:
        database.connect(reuse_if_open=True)
    except (OperationalError, Exception) as exc:  # psycopg2 raises its own error classes
        raise Unavailable(f"DATABASE={_redact(url)}: cannot connect ({_first_line(exc)})") from None
    db.initialize(database)
    return database


def close_database() -> None:
    """Close this thread's connection, if any."""
    if db.obj is not None and not db.is_closed():
        db.close()


def ping() -> None:
    """Ask the database for nothing, to see that it answers (raises the driver's error otherwise)."""
    db.execute_sql("SELECT 1")


@contextlib.contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement the database runs meanwhile, for the tests and benchmarks that count them."""
    seen: list[str] = []
    database = db.obj
    original = database.execute_sql

    def execute_sql(sql: str, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        seen.append(sql)
        return original(sql, params, *args, **kwargs)

    database.execute_sql = execute_sql
    try:
        yield seen
    finally:
        del database.execute_sql


def runner(database: Database | None = None) -> Runner:
    """peewee's migration runner over `photoflow/migrations/`."""
    return Runner(database or db.obj, directory=str(MIGRATIONS), table_name="schema_migration")


def migration_status(database: Database | None = None) -> list[tuple[str, bool]]:
    """Each known migration's name and whether it is applied, oldest first."""
    run = runner(database)
    applied = set(run.applied())
    return [(m.name, m.name in applied) for m in run.migrations()]


def upgrade(database: Database | None = None) -> list[str]:
    """Apply every pending migration (idempotent); return the names applied now."""
    return list(runner(database).up())


def is_current(database: Database | None = None) -> bool:
    """True when every migration is applied."""
    return all(done for _, done in migration_status(database))


def backup_sqlite(source: str, dest: Path) -> int:
    """A consistent copy of a SQLite database that may be in use (the backup API reads one snapshot,
    committed transactions only, while the server goes on writing); the copy's size in bytes."""
    import sqlite3

    if dest.exists():
        raise Invalid(f"{dest} already exists: name a new file")
    tmp = dest.with_name(dest.name + ".part")
    try:
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as src, sqlite3.connect(tmp) as out:
            src.execute("PRAGMA busy_timeout = 10000")
            src.backup(out, pages=4096)
        # Only a complete copy gets the name asked for.
        os.replace(tmp, dest)
    except sqlite3.Error as exc:
        tmp.unlink(missing_ok=True)
        raise Unavailable(f"could not back up {source}: {exc}") from None
    return dest.stat().st_size


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _redact(url: str) -> str:
    # A postgresql URL may carry a password; never print it.
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url
