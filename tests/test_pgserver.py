"""The private PostgreSQL server of tests/pgserver.py: it starts fast, hands out empty databases that
peewee connects to, listens only on 127.0.0.1, runs unprivileged when we are root, and leaves no
process or folder behind — not even when the test run that started it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import peewee
import psycopg2
import pytest
from playhouse.db_url import connect

from tests import pgserver
from tests.pgserver import PostgresServer, unique_name, why_unavailable

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("pgserver")]  # one module server


def _skip_if_unavailable() -> None:
    reason = why_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    _skip_if_unavailable()
    with PostgresServer() as srv:
        print(f"\nPostgreSQL started in {srv.startup_seconds:.2f}s on {srv.url} from {srv.bin_dir}")
        yield srv


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie waiting for its new parent to reap it counts as gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    return fields[0] != "Z"


def _wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket in LISTEN state on `port`, read from the kernel's tables
    (no ss or netstat needed)."""
    found: set[str] = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state != "0A" or int(port_hex, 16) != port:
                continue
            if width == 8:  # IPv4: one little-endian 32-bit word
                found.add(".".join(str(b) for b in bytes.fromhex(address)[::-1]))
            else:  # IPv6: four little-endian 32-bit words
                words = [bytes.fromhex(address[i : i + 8])[::-1] for i in range(0, 32, 8)]
                raw = b"".join(words)
                found.add(":".join(raw[i : i + 2].hex() for i in range(0, 16, 2)))
    return found


# -- without a server ------------------------------------------------------------------------------


def test_reason_names_the_debian_package_when_binaries_are_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pgserver.ENV_BIN_DIR, raising=False)
    monkeypatch.setattr(pgserver, "find_postgres_bin", lambda: None)
    reason = why_unavailable()
    assert reason is not None
    assert "PostgreSQL server binaries not found" in reason
    assert "apt-get install postgresql" in reason


def test_reason_names_a_wrong_bin_dir_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(pgserver.ENV_BIN_DIR, str(tmp_path))
    assert pgserver.find_postgres_bin() is None
    assert str(tmp_path) in (why_unavailable() or "")


def test_finds_the_newest_debian_server_binaries() -> None:
    _skip_if_unavailable()
    bin_dir = pgserver.find_postgres_bin()
    assert bin_dir is not None
    assert (bin_dir / "postgres").is_file() and (bin_dir / "initdb").is_file()
    if os.environ.get(pgserver.ENV_BIN_DIR) is None and Path("/usr/lib/postgresql").is_dir():
        versions = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "postgres").exists()]
        assert bin_dir.parent == max(versions, key=lambda p: [int(n) for n in p.name.split(".")])


# -- one shared server ------------------------------------------------------------------------------


def test_two_fresh_databases_hold_their_own_tables_through_peewee(server: PostgresServer) -> None:
    first, second = unique_name(), unique_name()
    first_url, second_url = server.create_database(first), server.create_database(second)
    assert first_url == f"postgresql://photoflow@127.0.0.1:{server.port}/{first}"
    db1, db2 = connect(first_url), connect(second_url)
    try:
        assert isinstance(db1, peewee.PostgresqlDatabase)

        class Photo(peewee.Model):
            title = peewee.CharField()
            taken = peewee.IntegerField()

        with db1.bind_ctx([Photo]):
            db1.create_tables([Photo])
            Photo.insert_many([("Étretat", 1), ("harbour", 2)], fields=[Photo.title, Photo.taken]).execute()
            assert [p.title for p in Photo.select().order_by(Photo.taken)] == ["Étretat", "harbour"]
        assert db1.get_tables() == ["photo"]
        assert db2.get_tables() == []  # a fresh database from template0 is empty
        encoding = db2.execute_sql("SHOW server_encoding").fetchone()[0]
        assert encoding == "UTF8"
    finally:
        db1.close()
        db2.close()
        server.drop_database(first)
        server.drop_database(second)
    with psycopg2.connect(server.url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_database WHERE datname IN (%s, %s)", (first, second))
        assert cur.fetchone() == (0,)
    conn.close()


def test_another_process_shares_the_database_over_tcp(server: PostgresServer) -> None:
    name = unique_name()
    url = server.create_database(name)
    try:
        script = (
            "import sys, psycopg2\n"
            "conn = psycopg2.connect(sys.argv[1])\n"
            "with conn, conn.cursor() as cur:\n"
            "    cur.execute('CREATE TABLE seen (who text)')\n"
            "    cur.execute(\"INSERT INTO seen VALUES ('child')\")\n"
        )
        subprocess.run([sys.executable, "-c", script, url], check=True, timeout=60)
        db = connect(url)
        assert db.execute_sql("SELECT who FROM seen").fetchall() == [("child",)]
        db.close()
    finally:
        server.drop_database(name)  # WITH (FORCE), so even a leaked connection would not block it


def test_drop_database_ends_connections_left_open(server: PostgresServer) -> None:
    name = unique_name()
    db = connect(server.create_database(name))
    db.connect()
    server.drop_database(name)
    server.drop_database(name)  # dropping twice is harmless
    with pytest.raises(peewee.OperationalError):
        db.execute_sql("SELECT 1")


def test_listens_only_on_loopback_and_its_private_socket(server: PostgresServer) -> None:
    assert _listening_addresses(server.port) == {"127.0.0.1"}
    with psycopg2.connect(server.url) as conn, conn.cursor() as cur:
        cur.execute("SHOW listen_addresses")
        assert cur.fetchone() == ("127.0.0.1",)
        cur.execute("SELECT inet_server_addr()::text, current_setting('unix_socket_directories')")
        assert cur.fetchone() == ("127.0.0.1/32", str(server.socket_dir))
    conn.close()
    assert server.port != 5432
    assert server.socket_dir is not None and server.data_dir is not None
    assert (server.socket_dir / f".s.PGSQL.{server.port}").is_socket()
    assert not str(server.socket_dir).startswith("/var/run/postgresql")
    # The private socket works too, for tools that prefer it.
    conn = psycopg2.connect(
        host=str(server.socket_dir), port=server.port, user="photoflow", dbname="postgres"
    )
    conn.close()


def test_runs_unprivileged_when_we_are_root(server: PostgresServer) -> None:
    assert server.process is not None and server.data_dir is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    uid = int(next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1])
    assert uid == os.stat(server.data_dir).st_uid
    if os.geteuid() == 0:
        assert uid != 0
    else:
        assert uid == os.geteuid()


# -- life cycle --------------------------------------------------------------------------------------


def test_stop_ends_the_process_and_removes_every_folder() -> None:
    _skip_if_unavailable()
    srv = PostgresServer()
    srv.start()
    assert srv.startup_seconds is not None
    print(f"\nsecond start took {srv.startup_seconds:.2f}s")
    assert srv.process is not None and srv.base_dir is not None and srv.socket_dir is not None
    pid, base_dir, port = srv.process.pid, srv.base_dir, srv.port
    assert _alive(pid) and base_dir.is_dir()
    srv.stop()
    assert not _alive(pid)
    assert not base_dir.exists()
    assert not srv.running and srv.port == 0
    assert _listening_addresses(port) == set()
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(host="127.0.0.1", port=port, user="photoflow", dbname="postgres", connect_timeout=2)
    srv.stop()  # a second stop is harmless


@pytest.mark.slow
def test_a_killed_test_run_leaves_nothing_that_blocks_the_next() -> None:
    _skip_if_unavailable()
    script = (
        "import sys, time\n"
        "from tests.pgserver import PostgresServer\n"
        "srv = PostgresServer().start()\n"
        "print(srv.process.pid, srv.port, srv.base_dir, flush=True)\n"
        "time.sleep(120)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        pid_text, port_text, base_text = child.stdout.readline().split()
    finally:
        child.send_signal(signal.SIGKILL)  # as a CI timeout or an impatient developer would
        child.wait(30)
    pid, port, base_dir = int(pid_text), int(port_text), Path(base_text)
    # The kernel signals the orphaned server (parent-death signal); the next start sweeps the rest.
    srv = PostgresServer().start()
    try:
        assert _wait_gone(pid), "the server of the killed run is still running"
        assert not base_dir.exists(), "the folder of the killed run was not removed"
        assert srv.port != port or _listening_addresses(port) == {"127.0.0.1"}
        with psycopg2.connect(srv.url) as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
        conn.close()
    finally:
        srv.stop()
