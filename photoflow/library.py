"""The open core as every front end gets it: configuration, database and datastore together."""

from __future__ import annotations

import threading

from photoflow import db as database
from photoflow.config import Config
from photoflow.errors import Unavailable
from photoflow.importer import Pipeline
from photoflow.metadata import ExifReader
from photoflow.storage import Datastore


class Library:
    """Photoflow's state for one process; build it with `open_library`."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Datastore(config.datastore)
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()
        # Decoding a 24 MP picture takes a core and a few hundred MB: a server's request threads take
        # turns, no more at once than there are cores.
        self.rendering = threading.BoundedSemaphore(max(1, config.workers))

    def pipeline(self) -> Pipeline:
        """The import pipeline of this process, with its exiftool started on first use."""
        with self._lock:
            if self._pipeline is None:
                reader = ExifReader(self.config.exiftool, timeout=self.config.exiftool_timeout)
                self._pipeline = Pipeline(self.store, reader)
            return self._pipeline

    def close(self) -> None:
        """Stop exiftool and close this thread's database connection."""
        if self._pipeline is not None:
            self._pipeline.close()
            self._pipeline = None
        database.close_database()


def open_library(config: Config, require_current: bool = True) -> Library:
    """Connect to the database and prepare the datastore; with `require_current`, refuse an old schema."""
    database.open_database(config.database)
    if require_current and not database.is_current():
        raise Unavailable("the database needs upgrading: run `photoflow db upgrade`")
    library = Library(config)
    library.store.prepare()
    return library
