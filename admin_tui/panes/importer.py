"""Import: files or folders on the server into the library, in a worker, with progress and cancel."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.widgets import Checkbox, DirectoryTree, Input, Label, ProgressBar, RichLog

from admin_tui.widgets import Pane, plain, refusal, sentence
from photoflow import db as database
from photoflow import services
from photoflow.importer import FileResult
from photoflow.services import ImportReport

STATUS_STYLE = {"imported": "green", "attached": "cyan", "duplicate": "yellow", "failed": "bold red"}


class VisibleTree(DirectoryTree):
    """The server's folders without hidden entries (.git, .cache): what a person would pick from."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [path for path in paths if not path.name.startswith(".")]


class ImportPane(Pane):
    """Pick a file or folder in the tree (or type its path), an album and its visibility; ctrl+s starts."""

    FOCUS = "#import-tree"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start import", priority=True),
        Binding("escape", "cancel", "Cancel import"),
    ]

    class Advanced(Message):
        """One more file is done."""

        def __init__(self, done: int, total: int, result: FileResult | None) -> None:
            super().__init__()
            self.done, self.total, self.result = done, total, result

    class Finished(Message):
        """The import ended: complete or cancelled (`report`), or refused (`error`)."""

        def __init__(self, report: ImportReport | None, error: str = "") -> None:
            super().__init__()
            self.report, self.error = report, error

    def __init__(self, start: Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_folder = start or Path.cwd()
        self.cancel_event: threading.Event | None = None

    @property
    def running(self) -> bool:
        """An import is under way."""
        return self.cancel_event is not None

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield VisibleTree(self.start_folder, id="import-tree")
            with Vertical(id="import-form"):
                yield Label("File or folder on this server")
                yield Input(str(self.start_folder), id="import-path", compact=True)
                yield Label("Album (new or existing; empty for none)")
                yield Input(id="import-album", compact=True)
                yield Label("Owner (empty: the first administrator)")
                yield Input(id="import-owner", compact=True)
                with Horizontal(classes="checks"):
                    yield Checkbox("Public album", id="import-public", compact=True)
                    yield Checkbox("Sub-folders", value=True, id="import-recursive", compact=True)
                yield ProgressBar(id="import-progress", show_eta=True)
                yield RichLog(id="import-log", markup=False, wrap=True, min_width=20, max_lines=5000)

    def on_mount(self) -> None:
        self.query_one("#import-progress", ProgressBar).update(total=None)
        self.query_one(RichLog).write(Text("ctrl+s imports the path above; Esc cancels.", style="dim"))

    def reload(self) -> None:
        """Offer the existing album titles and user names as suggestions."""

        def fetch() -> tuple[list[str], list[str]]:
            return [a.title for a in services.albums()], [u.name for u in services.users()]

        def show(names: tuple[list[str], list[str]]) -> None:
            albums, users = names
            self.query_one("#import-album", Input).suggester = SuggestFromList(albums, case_sensitive=False)
            self.query_one("#import-owner", Input).suggester = SuggestFromList(users, case_sensitive=False)

        self.load(fetch, show, key="suggestions")

    def on_directory_tree_file_selected(self, event: DirectoryTree.FileSelected) -> None:
        event.stop()
        self.query_one("#import-path", Input).value = str(event.path)

    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        event.stop()
        self.query_one("#import-path", Input).value = str(event.path)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "import-path":
            event.stop()
            self.action_start()

    def action_start(self) -> None:
        if self.running:
            self.app.notify("An import is already running.", severity="warning", markup=False)
            return
        raw = self.query_one("#import-path", Input).value.strip()
        if not raw:
            self.app.notify("Type a path, or pick one in the tree.", severity="error", markup=False)
            return
        path = Path(raw).expanduser()
        album = self.query_one("#import-album", Input).value.strip()
        public = self.query_one("#import-public", Checkbox).value
        self.cancel_event = threading.Event()
        log = self.query_one(RichLog)
        log.clear()
        line = Text("Importing ")
        line.append_text(plain(path))
        log.write(line)
        self.query_one("#import-progress", ProgressBar).update(total=None, progress=0)
        self.run_import(
            path,
            album,
            public,
            self.query_one("#import-owner", Input).value.strip(),
            self.query_one("#import-recursive", Checkbox).value,
            self.cancel_event,
        )
        # Out of the form: q, r and the section keys work again, and Esc cancels.
        self.focus_main()

    def action_cancel(self) -> None:
        if self.cancel_event is not None and not self.cancel_event.is_set():
            self.cancel_event.set()
            self.query_one(RichLog).write(
                Text("Cancelling: the files under way finish, the rest are not started…", style="yellow")
            )

    @work(thread=True, group="import")
    def run_import(
        self, path: Path, album: str, public: bool, owner: str, recursive: bool, cancel: threading.Event
    ) -> None:
        """Import over worker processes; every file reports back as a message."""

        def progress(done: int, total: int, result: FileResult | None) -> None:
            self.post_message(self.Advanced(done, total, result))

        try:
            report = services.import_paths(
                self.library,
                [path],
                album=album or None,
                public=public,
                owner=owner or None,
                recursive=recursive,
                progress=progress,
                cancel=cancel,
            )
        except Exception as exc:
            self.post_message(self.Finished(None, refusal(exc)))
            return
        finally:
            database.close_database()
        self.post_message(self.Finished(report))

    def on_import_pane_advanced(self, message: Advanced) -> None:
        self.query_one("#import-progress", ProgressBar).update(total=message.total, progress=message.done)
        result = message.result
        if result is None:
            return
        line = Text(f"{result.status:<9} ", style=STATUS_STYLE.get(result.status, ""))
        line.append_text(plain(result.name))
        if result.reason:
            line.append_text(plain(f": {result.reason}"))
        self.query_one(RichLog).write(line)

    def on_import_pane_finished(self, message: Finished) -> None:
        self.cancel_event = None
        log = self.query_one(RichLog)
        bar = self.query_one("#import-progress", ProgressBar)
        if bar.total is None:  # stop the "working" animation of a job that never started
            bar.update(total=1, progress=0)
        report = message.report
        if report is None:
            log.write(Text(message.error, style="bold red"))
            self.app.notify(message.error, severity="error", markup=False)
            return
        text = sentence(report.describe()) if report.cancelled else f"Done: {report.describe()}."
        log.write(Text(text, style="bold"))
        self.app.notify(
            text, severity="warning" if report.failed or report.cancelled else "information", markup=False
        )
        self.admin.refresh_panes()
