"""The web front end: `create_app(library)` builds the Bottle application.

For now it serves a health page only; the gallery, photo pages and uploads come with the web issue.
Nothing here reveals a photo, an album or a user.
"""

from __future__ import annotations

import json

from bottle import Bottle, HTTPResponse, response

from photoflow import db as database
from photoflow.library import Library

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def create_app(library: Library) -> Bottle:
    """A Bottle application serving `library`."""
    app = Bottle()
    app.config["photoflow.library"] = library

    @app.hook("after_request")
    def _headers() -> None:
        for name, value in SECURITY_HEADERS.items():
            response.set_header(name, value)
        if library.config.url_scheme == "https":
            response.set_header("Strict-Transport-Security", "max-age=31536000")

    @app.get("/healthz")
    def healthz() -> HTTPResponse:
        # Says whether this instance can serve, and nothing about what it holds.
        try:
            database.db.execute_sql("SELECT 1")
            ok = True
        except Exception:
            ok = False
        body = json.dumps({"status": "ok" if ok else "database unavailable"})
        return HTTPResponse(body, status=200 if ok else 503, headers={"Content-Type": "application/json"})

    @app.get("/")
    def index() -> str:
        response.content_type = "text/html; charset=utf-8"
        return (
            "<!doctype html><meta charset=utf-8><title>Photoflow</title>"
            "<h1>Photoflow</h1><p>The server is running. The gallery is not built yet.</p>"
        )

    @app.hook("after_request")
    def _close_db() -> None:
        # cheroot serves each request on a pool thread; give the connection back when done.
        database.close_database()

    return app
