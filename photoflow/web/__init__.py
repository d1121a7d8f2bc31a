"""The web front end: pages, files and uploads over Bottle. `create_app(library)` builds it."""

from photoflow.web.app import create_app

__all__ = ["create_app"]
