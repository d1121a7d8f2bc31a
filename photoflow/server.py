"""Serving the web application with cheroot: start-up checks, then the WSGI server until a signal."""

from __future__ import annotations

import logging
import signal
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
    return server


def run(config: Config) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = make_server(config)

    def stop(signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        # stop() waits for the worker threads; run it off the signal handler's frame.
        threading.Thread(target=server.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"Photoflow serving on http://{config.host}:{config.port}/", file=sys.stderr, flush=True)
    try:
        server.safe_start()
    finally:
        server.stop()
