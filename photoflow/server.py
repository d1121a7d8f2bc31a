"""Serving the web application with cheroot: start-up checks, then the WSGI server until a signal."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading

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


def make_server(config: Config) -> wsgi.Server:
    """A cheroot server for `config`, after the start-up checks (each failing with one clear line)."""
    check_exiftool(config.exiftool)
    library = open_library(config)
    app = create_app(library)
    server = wsgi.Server((config.host, config.port), app, numthreads=config.threads, server_name="photoflow")
    # cheroot takes these limits as attributes, not constructor arguments; 0 (its default) is no limit.
    server.max_request_header_size = MAX_REQUEST_HEADER
    server.max_request_body_size = MAX_REQUEST_BODY
    # How long stop() lets requests in flight (an upload) finish before it closes their connections.
    server.shutdown_timeout = config.shutdown_timeout
    return server


def run(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully; SIGHUP restarts in place (same process id,
    so systemd keeps tracking it; sessions live in the database, so nobody is logged out)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = make_server(config)
    restart = threading.Event()
    stopping: list[threading.Thread] = []

    def stop(signum: int, _frame: object) -> None:
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
