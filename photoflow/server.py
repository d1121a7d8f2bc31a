"""Serving the web application with cheroot: start-up checks, then the WSGI server until a signal."""

from __future__ import annotations

import _pyio
import inspect
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import Any

import cheroot
from bottle import HTTPError
from cheroot import server as cheroot_server
from cheroot import wsgi

from photoflow.config import Config
from photoflow.library import open_library
from photoflow.metadata import check_exiftool
from photoflow.web import create_app
from photoflow.web.upload import MAX_REQUEST_BYTES

log = logging.getLogger("photoflow.server")

MAX_REQUEST_HEADER = 64 * 1024
# Uploads of large RAW files stream to disk; the routes refuse what is over their limit themselves,
# each in its own words (ws.php in Piwigo's JSON: darktable takes cheroot's plain-text 413 for
# success). cheroot's own limit only stops what is far beyond that.
MAX_REQUEST_BODY = 2 * MAX_REQUEST_BYTES

# Slow clients (slowloris). cheroot hands a connection to a request thread as soon as it is readable,
# and the thread then blocks reading the request line and headers with a timeout per read only: a
# client sending a byte every few seconds holds a thread for ever, and THREADS such clients starve
# everybody else. So a connection reaches a thread only once its request head, and the start of its
# body, have arrived; until then the selector thread reads what comes without blocking (`Server`).
# nginx in front (contrib/nginx.conf) buffers request heads itself, but Photoflow must hold on its own
# (it can be served directly, and nginx streams upload bodies through: proxy_request_buffering off).
#
# The request head, and a body of up to BODY_PRELOAD bytes, must arrive within HEAD_TIMEOUT seconds of
# the request's first byte, and that byte within HEAD_TIMEOUT of the connection's opening or of the
# previous answer (cheroot's idle timeout); otherwise the connection is closed. Small bodies (forms,
# logins, most ws.php calls) thus reach the app whole; BODY_PRELOAD is nginx's client_body_buffer_size.
HEAD_TIMEOUT = 10
BODY_PRELOAD = 16 * 1024
# A body larger than that (an upload) streams to a thread, at a minimum rate: the time the thread
# spends waiting for the client may reach BODY_GRACE seconds plus one second per MIN_BODY_RATE bytes
# received (Apache's mod_reqtimeout rule); a client slower than that gets a 408 and the connection
# closes. Time spent on our side (exiftool, Pillow between two parts) does not count.
BODY_GRACE = 10.0
MIN_BODY_RATE = 1024


def make_server(config: Config) -> wsgi.Server:
    """A cheroot server for `config`, after the start-up checks (each failing with one clear line)."""
    check_exiftool(config.exiftool)
    library = open_library(config)
    return build_server(
        create_app(library), (config.host, config.port), config.threads, config.shutdown_timeout
    )


def build_server(
    app: Callable[..., Any], bind: tuple[str, int], threads: int, shutdown_timeout: float = 5
) -> wsgi.Server:
    """The cheroot server with Photoflow's limits around a WSGI app (also what the tests serve with).

    With the slow-client guard (`Server`) when this cheroot has every internal the guard needs; with
    plain cheroot, said in one line of the log, when it has not.
    """
    server: wsgi.Server = _server(Server, bind, app, threads)
    missing = guard_missing(server)
    if missing is not None:
        log.warning(
            "slow-client guard off: cheroot %s has no %s; serving with plain cheroot",
            cheroot.__version__,
            missing,
        )
        server = _server(wsgi.Server, bind, app, threads)
    # cheroot takes these limits as attributes, not constructor arguments; 0 (its default) is no limit.
    server.max_request_header_size = MAX_REQUEST_HEADER
    server.max_request_body_size = MAX_REQUEST_BODY
    # How long stop() lets requests in flight (an upload) finish before it closes their connections.
    server.shutdown_timeout = shutdown_timeout
    return server


def _server(
    kind: type[wsgi.Server], bind: tuple[str, int], app: Callable[..., Any], threads: int
) -> wsgi.Server:
    """A cheroot server of `kind` (not yet bound)."""
    return kind(
        bind,
        app,
        numthreads=threads,
        server_name="photoflow",
        # cheroot's timeout for each read and write, and for idle kept-alive connections (its default).
        timeout=HEAD_TIMEOUT,
    )


def run(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully; SIGHUP restarts in place (same process id,
    so systemd keeps tracking it; sessions live in the database, so nobody is logged out)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = make_server(config)
    restart = threading.Event()
    stopping: list[threading.Thread] = []

    def stop(signum: int, _frame: object) -> None:
        """The signal handler: stop serving, and restart after a SIGHUP."""
        log.info("received %s, stopping", signal.Signals(signum).name)
        if signum == signal.SIGHUP:
            restart.set()
        notify("RELOADING=1" if restart.is_set() else "STOPPING=1")
        if stopping:
            return
        # stop() waits for the requests in flight; run it off the signal handler's frame.
        stopping.append(threading.Thread(target=server.stop, daemon=True))
        stopping[0].start()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop)
    server.prepare()  # binds now: a port in use fails here, before systemd is told we are ready
    print(f"Photoflow serving on http://{config.host}:{config.port}/", file=sys.stderr, flush=True)
    notify("READY=1")
    try:
        server.serve()
    finally:
        # serve() returns as soon as stop() begins; the requests in flight (an upload) are still
        # running then, and must finish before this process starts to exit under them.
        if stopping:
            stopping[0].join()
        else:
            server.stop()
    if restart.is_set():
        log.info("restarting")
        sys.stderr.flush()
        # orig_argv keeps "-m photoflow" as it was typed (argv would name photoflow/__main__.py instead).
        os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def notify(state: str) -> None:
    """Tell systemd (Type=notify) how the service stands; nothing when not started by systemd.

    The protocol is one datagram on the socket named by NOTIFY_SOCKET (sd_notify(3)); no library needed.
    """
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as exc:
        log.warning("could not notify systemd (%s): %s", state, exc)


# -- slow clients ------------------------------------------------------------------------------------


class ClientTooSlow(HTTPError, TimeoutError):
    """A request body that came slower than the minimum rate: a 408 to whoever reads it.

    Bottle answers it as it answers abort(408) when the app is reading; it is also the socket timeout
    it stands for, which the app's and cheroot's own clean-up reads already expect (OSError).
    """

    def __init__(self) -> None:
        HTTPError.__init__(self, 408, "The request body came too slowly.")
        self.args = ("timed out",)  # how cheroot recognises a timeout


class _Socket(_pyio.RawIOBase):
    """A connection's reading side: first the bytes the selector thread read ahead (`early`), then the
    socket, metered against the minimum body rate."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.early = bytearray()
        self.waited = 0.0  # seconds spent waiting for the client since the request reached a thread
        self.received = 0
        self.too_slow = False

    def readable(self) -> bool:
        """A connection's reading side is readable."""
        return True

    def meter(self) -> None:
        """Start metering anew: the request has reached a thread."""
        self.waited = 0.0
        self.received = 0

    def readinto(self, buffer: memoryview | bytearray) -> int:
        """Fill `buffer` from the bytes read ahead, or else from the socket within the time left."""
        if self.early:
            n = min(len(buffer), len(self.early))
            buffer[:n] = self.early[:n]
            del self.early[:n]
            return n
        if self.too_slow:
            return 0  # what follows a 408 is not read: the connection closes
        budget = BODY_GRACE + self.received / MIN_BODY_RATE - self.waited
        if budget <= 0:
            raise self._cut()
        usual = self.sock.gettimeout()
        shorter = usual is None or budget < usual
        if shorter:
            self.sock.settimeout(budget)
        start = time.monotonic()
        try:
            n = self.sock.recv_into(buffer)
        except TimeoutError:
            raise self._cut() from None
        finally:
            self.waited += time.monotonic() - start
            if shorter:
                self.sock.settimeout(usual)
        self.received += n
        return n

    def _cut(self) -> ClientTooSlow:
        """The 408 for this body; nothing more is read from the connection after it."""
        self.too_slow = True
        return ClientTooSlow()


class _Reader(_pyio.BufferedReader):
    """A connection's buffered reader over `_Socket`.

    It does what cheroot's own (makefile.StreamReader) does, counting `bytes_read` and telling
    `has_data`, without being built on it: nothing of cheroot's internals is needed at import, only
    after the start-up check (`guard_missing`).
    """

    raw: _Socket

    def __init__(self, sock: socket.socket, bufsize: int) -> None:
        super().__init__(_Socket(sock), bufsize)
        self.bytes_read = 0  # cheroot's statistics add it up

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes, counted."""
        data = super().read(size)
        self.bytes_read += len(data)
        return data

    def buffered(self) -> bool:
        """Bytes read from the socket that are still in this reader's buffer."""
        return len(self._read_buf) > self._read_pos  # (_pyio's buffer, as cheroot's reader reads it)

    def has_data(self) -> bool:
        """Bytes waiting to be read, buffered here or read ahead (the next request's, pipelined)."""
        return self.buffered() or bool(self.raw.early)


class _Connection(cheroot_server.HTTPConnection):
    """cheroot's connection, reading through `_Reader`, closed after a 408 for a slow body."""

    rfile: _Reader

    def __init__(self, server: wsgi.Server, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(server, sock, *args, **kwargs)
        if server.ssl_adapter is None:  # under TLS the socket is another (see Server.process_conn)
            self.rfile = _Reader(sock, self.rbufsize)

    def communicate(self) -> bool:
        """Serve one request; whether to keep the connection (never after a 408 for a slow body)."""
        keep = super().communicate()
        return bool(keep) and not self.rfile.raw.too_slow


def _wanted(data: bytearray) -> int:
    """How many bytes of `data` must be there before a thread takes the request: its head, and its body
    when that is no larger than BODY_PRELOAD; 0 while the head is incomplete."""
    ends = [at for at in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if at >= 0]
    if not ends:
        return 0
    end = min(ends) + (4 if data[min(ends) : min(ends) + 2] == b"\r\n" else 2)
    length = 0
    for line in bytes(data[:end]).split(b"\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name in (b"transfer-encoding", b"expect"):
            # A chunked body has no length to wait for; a client expecting 100 Continue sends its body
            # only after cheroot's answer. Both go to a thread now, under the minimum body rate.
            return end
        if name == b"content-length":
            value = value.strip()
            if not value.isdigit():
                return end  # cheroot answers 400
            length = int(value)
    if length > BODY_PRELOAD:
        # An upload: it streams to a thread under the minimum body rate. Taken now, its head is
        # answered at once when the route refuses it (too large, not logged in) before reading it.
        return end
    return end + length


class Server(wsgi.Server):
    """cheroot's WSGI server, where a connection takes a request thread only once its request head
    (and the start of its body) has arrived; see HEAD_TIMEOUT above."""

    ConnectionClass = _Connection
    # cheroot's ConnectionManager, which prepare() sets (in no stub; guard_missing checks it is there).
    _connections: Any

    def process_conn(self, conn: cheroot_server.HTTPConnection) -> None:
        """Hand `conn` to a thread if its request is ready; otherwise read what has come, and park it."""
        if self.ssl_adapter is not None or not isinstance(conn, _Connection):
            super().process_conn(conn)  # (no TLS in Photoflow: nginx terminates it)
            return
        reader = conn.rfile
        early = reader.raw.early
        if reader.buffered():
            # Bytes buffered past the previous request (pipelined) go back in front of the socket's.
            early[:0] = reader.read(len(reader.peek(1)))
        room = MAX_REQUEST_HEADER + BODY_PRELOAD - len(early)
        chunk: bytes | None = None
        if room > 0:
            try:
                conn.socket.settimeout(0.0)  # this runs on the selector thread: never wait
                try:
                    chunk = conn.socket.recv(room)
                finally:
                    conn.socket.settimeout(self.timeout)
            except BlockingIOError:
                chunk = None
            except OSError:
                conn.close()
                return
        if chunk == b"" and not early:
            conn.close()  # the client went away between requests
            return
        if chunk:
            if not early:
                conn.last_used = time.time()  # a request begins: HEAD_TIMEOUT from now
            early += chunk
        wanted = _wanted(early)
        if chunk == b"" or len(early) >= MAX_REQUEST_HEADER or (wanted and len(early) >= wanted):
            # Ready (or the client has finished sending, or the head is over the limit: cheroot
            # answers that at once from what is here).
            reader.raw.meter()
            super().process_conn(conn)
            return
        if not self.ready:
            conn.close()
            return
        if conn.last_used is None:
            conn.last_used = time.time()  # a new connection: cheroot's idle timeout counts from now
        # Back to the selector until more bytes come; cheroot's expiry closes it once last_used is
        # HEAD_TIMEOUT old. (cheroot 11's ConnectionManager.put would count the time from now again.)
        self._connections._selector.register(conn.socket.fileno(), selectors.EVENT_READ, data=conn)


# -- what the guard needs of cheroot -----------------------------------------------------------------
# `Server` reaches into cheroot where cheroot offers no public way: it runs on cheroot's selector thread,
# parks connections in the ConnectionManager's selector itself, and leaves them to its expiry. A newer
# cheroot may move any of that, and a guard working by halves (connections parked and never closed,
# say) is worse than none; so each is checked before serving, and without them cheroot serves alone.


def guard_missing(server: wsgi.Server) -> str | None:
    """The first cheroot internal the slow-client guard relies on and `server`'s cheroot lacks (as
    "Class.name"), or None when all are there."""
    try:
        from cheroot import connections
    except ImportError:
        return "connections.ConnectionManager"
    manager: Any = getattr(connections, "ConnectionManager", None)  # its private methods are in no stub
    base = cheroot_server.HTTPServer
    needs: list[tuple[str, Callable[[], bool]]] = [
        (
            "HTTPServer.ConnectionClass",
            lambda: issubclass(base.ConnectionClass, cheroot_server.HTTPConnection),
        ),
        ("HTTPServer.process_conn(conn)", lambda: _takes(base.process_conn, server, None)),
        # The selector thread hands every new or readable connection to process_conn: there the
        # guard reads what has come without blocking.
        ("ConnectionManager._run() calling process_conn", lambda: "process_conn" in _names(manager._run)),
        (
            "HTTPServer.ready, .ssl_adapter and .timeout",
            lambda: _has(server, "ready", "ssl_adapter", "timeout"),
        ),
        # Where process_conn finds the ConnectionManager (set when the server binds) to park a
        # connection in its selector.
        ("HTTPServer._connections", lambda: "_connections" in _names(base.prepare)),
        ("ConnectionManager._selector.register(fileobj, events, data)", lambda: _registers(manager)),
        # A parked connection is closed by cheroot's expiry once its last_used is older than the
        # timeout; a new one has last_used None until then.
        ("ConnectionManager._expire() by .last_used", lambda: "last_used" in _names(manager._expire)),
        ("HTTPConnection.last_used", lambda: cheroot_server.HTTPConnection.last_used is None),
        ("HTTPConnection(server, sock, makefile) with .socket and .rfile", lambda: _connects(server)),
        # ClientTooSlow says "timed out", like a socket timeout: cheroot answers 408 to that when it
        # reads the rest of a body itself (for keep-alive), as it does to a timeout of its own.
        (
            "HTTPConnection.communicate() answering 'timed out' with 408",
            lambda: "timed out" in _constants(cheroot_server.HTTPConnection.communicate),
        ),
    ]
    for name, present in needs:
        try:
            if not present():
                return name
        except Exception:  # AttributeError, TypeError, ...: not there, or not what it was
            return name
    return None


def _takes(method: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Whether `method` can be called with these arguments (by its signature; it is not called)."""
    inspect.signature(method).bind(*args, **kwargs)
    return True


def _has(thing: object, *names: str) -> bool:
    """Whether `thing` has every one of these attributes."""
    return all(hasattr(thing, name) for name in names)


def _names(function: Callable[..., Any]) -> set[str]:
    """The attribute and global names `function`'s code uses (its comprehensions' too)."""
    return {name for code in _codes(function.__code__) for name in code.co_names}


def _constants(function: Callable[..., Any]) -> set[object]:
    """The constants in `function`'s code (its comprehensions' too), tuples of constants opened."""
    found: set[object] = set()
    for code in _codes(function.__code__):
        for constant in code.co_consts:
            found.update(constant if isinstance(constant, tuple) else (constant,))
    return found


def _codes(code: types.CodeType) -> list[types.CodeType]:
    """`code` and the code nested in it (Python 3.11 compiles a comprehension as a function of its own)."""
    nested = [c for c in code.co_consts if isinstance(c, types.CodeType)]
    return [code, *(inner for c in nested for inner in _codes(c))]


def _registers(manager: type) -> bool:
    """Whether a ConnectionManager, built as cheroot builds it (on a stand-in server), has a selector
    that takes registrations as process_conn makes them."""
    with socket.socket() as sock:
        built = manager(types.SimpleNamespace(socket=sock))
        try:
            return _takes(built._selector.register, sock.fileno(), selectors.EVENT_READ, data=None)
        finally:
            built.close()


def _connects(server: wsgi.Server) -> bool:
    """Whether a `_Connection` builds on cheroot's, over a socket pair, with the socket and reader wanted."""
    one, other = socket.socketpair()
    with one, other:
        # cheroot's ConnectionManager passes a third argument, the makefile (its default here).
        _takes(cheroot_server.HTTPConnection, server, one, None)
        conn = server.ConnectionClass(server, one)
        return conn.socket is one and isinstance(conn.rfile, _Reader) and not conn.rfile.has_data()
