"""A throwaway PostgreSQL server for the test suite: Debian's real server binaries, a fresh cluster
in a temporary folder, a random free port on 127.0.0.1 and a private Unix socket folder, stopped and
deleted at the end. Nothing here touches the system cluster or its port 5432.

How tests/conftest.py should use it::

    @pytest.fixture(scope="session")
    def pg_server():
        reason = pgserver.why_unavailable()
        if reason:
            pytest.skip(reason)  # binaries missing, or root with no unprivileged user
        with pgserver.PostgresServer() as server:  # a failing start raises: that is a real error
            yield server

    @pytest.fixture
    def pg_url(pg_server):
        name = pgserver.unique_name()
        url = pg_server.create_database(name)  # empty, from template0; a few tens of ms
        yield url  # postgresql://photoflow@127.0.0.1:PORT/NAME, for playhouse.db_url.connect
        pg_server.drop_database(name)  # WITH (FORCE): connections left open don't block it

Run as root (as in CI), initdb and postgres run as the `postgres` user of Debian's package (or
`nobody`), which own the temporary folders; otherwise they run as the current user. The server gets
SIGQUIT if the thread that started it dies (start it from the main thread, as a session fixture is),
and the next start deletes folders left by a killed run. $PHOTOFLOW_PG_BINDIR picks other binaries.

Under pytest-xdist each worker is its own session and so starts its own server: its own folder (mkdtemp),
its own port (probed free, retried if taken, and checked to be this server's before use), nothing shared.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

SUPERUSER = "photoflow"
HOST = "127.0.0.1"
INSTALL_HINT = "install Debian's postgresql package (apt-get install postgresql)"
# Folders of one server all start with this, so that a later run can find those of a killed run.
DIR_PREFIX = "photoflow-pg-"
OWNER_FILE = "owner.pid"
# Unix socket paths are limited to 107 bytes; ".s.PGSQL.65535" takes 14 of them.
MAX_SOCKET_DIR_LEN = 90
START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
ENV_BIN_DIR = "PHOTOFLOW_PG_BINDIR"


class PostgresError(RuntimeError):
    """The server could not be initialised, started or stopped; the message holds its log."""


def _version_key(path: Path) -> tuple[int, ...]:
    """/usr/lib/postgresql/15/bin -> (15,); non-numeric versions sort first."""
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (-1,)


def _has_server(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in ("postgres", "initdb"))


def find_postgres_bin() -> Path | None:
    """The folder holding `postgres` and `initdb`: $PHOTOFLOW_PG_BINDIR if set, else the newest
    Debian /usr/lib/postgresql/*/bin, else the folder `postgres` on PATH really lives in.

    Debian's own folders come before PATH on purpose: /usr/local/bin may hold wrappers or links, and
    Debian keeps the server binaries off PATH anyway."""
    override = os.environ.get(ENV_BIN_DIR)
    if override:
        return Path(override) if _has_server(Path(override)) else None
    debian = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if _has_server(p)]
    if debian:
        return max(debian, key=_version_key)
    on_path = shutil.which("postgres")
    if on_path:
        real_dir = Path(on_path).resolve().parent
        if _has_server(real_dir):
            return real_dir
    return None


def _server_user() -> pwd.struct_passwd | None:
    """Whom initdb and postgres run as: None for the current user, or, as root (which PostgreSQL
    refuses to run as), the `postgres` user of Debian's package, else `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise KeyError("no unprivileged user")


def why_unavailable() -> str | None:
    """Why no server can be started here, in words fit for pytest.skip, or None if it can."""
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed: pip install psycopg2-binary"
    override = os.environ.get(ENV_BIN_DIR)
    if find_postgres_bin() is None:
        if override:
            return f"{ENV_BIN_DIR}={override} holds no executable postgres and initdb"
        return f"PostgreSQL server binaries not found: {INSTALL_HINT}"
    try:
        _server_user()
    except KeyError:
        return "running as root, and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL as"
    return None


def unique_name(prefix: str = "test") -> str:
    """A database name no other test of any run will use."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _free_port() -> int:
    """A port nothing listens on right now; start() retries if someone takes it first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, and not ours to touch
    # A zombie still answers kill(0) until its new parent reaps it, but it is dead all the same.
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _temp_root() -> Path:
    """Where the server's folder goes: the usual temp folder, unless the unprivileged server user
    could not reach it (a private TMPDIR under /root) or a socket path in it would be too long."""
    root = Path(tempfile.gettempdir())
    too_long = len(str(root)) > MAX_SOCKET_DIR_LEN - len(DIR_PREFIX) - 20
    if os.geteuid() == 0:
        # Every folder above ours must be searchable by others for the postgres user to get in.
        closed = any(not (p.stat().st_mode & 0o001) for p in [root, *root.parents])
        if closed or too_long:
            return Path("/tmp")
    return Path("/tmp") if too_long else root


def _remove_stale(root: Path) -> None:
    """Delete folders (and stop servers) left by runs whose process is gone, e.g. a test run killed
    with SIGKILL, so that they don't pile up; a live run's folder is left alone."""
    for path in root.glob(DIR_PREFIX + "*"):
        try:
            owner = int((path / OWNER_FILE).read_text())
        except (OSError, ValueError):
            # Being created right now, or not ours: only very old ones are fair game.
            with contextlib.suppress(OSError):
                if time.time() - path.stat().st_mtime > 86400:
                    shutil.rmtree(path, ignore_errors=True)
            continue
        if _pid_alive(owner):
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            postmaster = int((path / "data" / "postmaster.pid").read_text().split()[0])
            cmdline = Path(f"/proc/{postmaster}/cmdline").read_bytes()
            # Only signal the pid if it still is that server, not a process that reused the pid.
            if b"postgres" in cmdline and str(path).encode() in cmdline:
                os.kill(postmaster, signal.SIGQUIT)
                for _ in range(50):
                    if not _pid_alive(postmaster):
                        break
                    time.sleep(0.1)
        shutil.rmtree(path, ignore_errors=True)


class PostgresServer:
    """One private PostgreSQL server. `start()` makes a fresh cluster and waits until it accepts
    connections; `stop()` shuts it down and deletes every file it had. Also a context manager."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_postgres_bin()
        self.user = SUPERUSER
        self.host = HOST
        self.port: int = 0
        self.base_dir: Path | None = None
        self.data_dir: Path | None = None
        self.socket_dir: Path | None = None
        self.log_file: Path | None = None
        self.startup_seconds: float | None = None
        self.process: subprocess.Popen[bytes] | None = None
        try:
            self._run_as = _server_user()
        except KeyError:
            raise PostgresError(why_unavailable() or "no user to run PostgreSQL as") from None
        self._owner_pid = os.getpid()

    # -- URLs ---------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """URL of the `postgres` maintenance database, over TCP so other processes can share it."""
        return self.database_url("postgres")

    def database_url(self, name: str) -> str:
        """psycopg2 and playhouse.db_url.connect both take this; trust auth, so no password."""
        if not self.port:
            raise PostgresError("the server is not started")
        return f"postgresql://{self.user}@{self.host}:{self.port}/{name}"

    def dsn(self, name: str = "postgres") -> dict[str, object]:
        """Keyword arguments for psycopg2.connect."""
        return {"host": self.host, "port": self.port, "user": self.user, "dbname": name}

    # -- life cycle ---------------------------------------------------------------------------------

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> PostgresServer:
        if self.running:
            return self
        if self.bin_dir is None:
            raise PostgresError(f"PostgreSQL server binaries not found: {INSTALL_HINT}")
        began = time.monotonic()
        root = _temp_root()
        _remove_stale(root)
        try:
            self._make_dirs(root)
            self._initdb()
            # A free port can be taken between our probe and postgres binding it: try a few.
            for _ in range(5):
                self.port = _free_port()
                if not self._launch_lost_port():
                    break
        except BaseException:
            self.stop()
            raise
        if not self.running:
            log = self._log_tail()
            self.stop()
            raise PostgresError(f"PostgreSQL did not start:\n{log}")
        self.startup_seconds = time.monotonic() - began
        # A test run that forgets stop() (or dies of an exception) still takes its server down.
        atexit.register(self._stop_at_exit)
        return self

    def stop(self) -> None:
        """Fast shutdown (SIGINT: disconnect clients, no checkpoint wait), harder signals if it
        hangs, then delete the folders. Safe to call twice or after a failed start."""
        atexit.unregister(self._stop_at_exit)
        process, self.process = self.process, None
        if process is not None:
            for sig, wait in ((signal.SIGINT, STOP_TIMEOUT), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
                if process.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(wait)
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        self.base_dir = self.data_dir = self.socket_dir = self.log_file = None
        self.port = 0

    def _stop_at_exit(self) -> None:
        # A child forked from the test process inherits atexit handlers: only the owner stops it.
        if os.getpid() == self._owner_pid:
            self.stop()

    # -- databases ----------------------------------------------------------------------------------

    def create_database(self, name: str) -> str:
        """Create an empty database (from template0, so nothing a test put in template1 leaks in)
        and return its URL."""
        from psycopg2 import sql

        self._admin(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name))
        )
        return self.database_url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database if it exists, ending any connection a test left open to it."""
        from psycopg2 import sql

        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def _admin(self, statement: object) -> None:
        import psycopg2

        # CREATE/DROP DATABASE cannot run inside a transaction block, hence autocommit.
        conn = psycopg2.connect(**self.dsn("postgres"), connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    # -- internals ----------------------------------------------------------------------------------

    def _make_dirs(self, root: Path) -> None:
        self.base_dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=root))
        (self.base_dir / OWNER_FILE).write_text(str(os.getpid()))
        self.data_dir = self.base_dir / "data"  # initdb creates it, owned by the server user
        self.socket_dir = self.base_dir / "sock"
        self.socket_dir.mkdir(mode=0o700)
        self.log_file = self.base_dir / "postgres.log"
        self.log_file.touch()
        if self._run_as is not None:
            for path in (self.base_dir, self.socket_dir, self.log_file):
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)

    def _child_env(self) -> dict[str, str]:
        """A clean environment: no PGDATA/PGPORT/PGHOST of the caller's leaks into initdb or the
        server, and the C locale keeps its messages (which start() reads) in English."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_", "LANG"))}
        env.update(LC_ALL="C", LANG="C", TZ="UTC")
        if self._run_as is not None:
            env.update(HOME=str(self.base_dir), USER=self._run_as.pw_name, LOGNAME=self._run_as.pw_name)
        return env

    def _popen(self, args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        """Run a PostgreSQL program as the server user, from a folder that user can enter."""
        drop: dict[str, object] = {}
        if self._run_as is not None:
            drop = {"user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}
        return subprocess.Popen(args, cwd=self.base_dir, env=self._child_env(), **drop, **kwargs)  # type: ignore[call-overload]

    def _initdb(self) -> None:
        assert self.bin_dir is not None and self.data_dir is not None
        args = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "--auth=trust",  # private port and socket on loopback, throwaway data: no passwords
            f"--username={SUPERUSER}",
            "--no-sync",  # the cluster dies with the test run: skip fsync, it is most of initdb's time
            "--encoding=UTF8",
            "--locale=C",  # the same sorting and messages on every machine
            "--no-instructions",
        ]
        proc = self._popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise PostgresError(f"initdb failed ({proc.returncode}):\n{out.decode(errors='replace')}")

    def _launch_lost_port(self) -> bool:
        """Start postgres on self.port and wait until it answers. True only if it exited because
        another process took the port first (worth another try); other failures show in start()."""
        assert self.bin_dir is not None and self.log_file is not None
        args = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.socket_dir),
            "-h",
            HOST,
            "-c",
            f"listen_addresses={HOST}",  # = -h; command-line settings outrank postgresql.conf
            # Durability is worthless for a throwaway cluster and costs most of the write time.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",  # several app processes with their own pools share one server
            "-c",
            "log_min_messages=warning",
        ]
        setpriv = shutil.which("setpriv")
        if setpriv:
            # If the test process dies without stopping us (SIGKILL, crash), the kernel sends the
            # server SIGQUIT (immediate shutdown) instead of leaving it running forever. setpriv runs
            # after the switch of user, which would otherwise clear the death signal.
            args = [setpriv, "--pdeathsig", "SIGQUIT", "--", *args]
        # "wb": each attempt gets a fresh log, so an old "could not bind" is not read as a new one.
        with open(self.log_file, "wb") as log:
            self.process = self._popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        return not self._wait_ready()

    def _wait_ready(self) -> bool:
        """True once the server answers; False if it exited because the port was taken."""
        import psycopg2

        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                # Exited. "could not bind" means another process won the port: try another one.
                code, self.process = self.process.returncode, None
                log = self._log_tail()
                if "could not bind" in log or "already in use" in log:
                    return False
                raise PostgresError(f"PostgreSQL exited with code {code}:\n{log}")
            try:
                conn = psycopg2.connect(**self.dsn("postgres"), connect_timeout=2)
            except psycopg2.OperationalError:
                time.sleep(0.02)
                continue
            try:
                with conn.cursor() as cur:
                    cur.execute("SHOW data_directory")
                    (data_directory,) = cur.fetchone()
            finally:
                conn.close()
            # Something answered on our port: make sure it is our server and not a stranger's.
            if Path(data_directory).resolve() != Path(str(self.data_dir)).resolve():
                raise PostgresError(f"port {self.port} is served by another PostgreSQL ({data_directory})")
            return True
        raise PostgresError(
            f"PostgreSQL did not accept connections in {START_TIMEOUT:.0f}s:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 40) -> str:
        if self.log_file is None or not self.log_file.exists():
            return ""
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])

    def __repr__(self) -> str:
        state = f"port {self.port}" if self.running else "stopped"
        return f"<PostgresServer {state} {self.base_dir or ''}>"
