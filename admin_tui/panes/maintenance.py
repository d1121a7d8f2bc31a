"""Maintenance: make thumbnails again (all, or only missing), check the datastore and sweep it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.widgets import ProgressBar, RichLog, Static

from admin_tui.widgets import Confirm, Pane, plain, refusal, sentence
from photoflow import db as database
from photoflow import services
from photoflow.services import CheckResult, RenderJob

HELP = (
    "a  make every photo's thumbnails and previews again\n"
    "m  make only the missing ones\n"
    "c  check the datastore: rows without files, files without rows, leftovers\n"
    "s  sweep what the check found (asks first)        Esc  cancel"
)


class MaintenancePane(Pane):
    """Long jobs over the whole library, one at a time, with progress and cancel."""

    FOCUS = "RichLog"
    BINDINGS = [
        Binding("a", "regenerate(False)", "Regenerate"),
        Binding("m", "regenerate(True)", "Missing"),
        Binding("c", "check", "Check"),
        Binding("s", "sweep", "Sweep"),
        Binding("escape", "cancel", "Cancel"),
    ]

    class Advanced(Message):
        """One more photo rendered (or failed)."""

        def __init__(self, done: int, total: int, line: Text | None) -> None:
            super().__init__()
            self.done, self.total, self.line = done, total, line

    class Finished(Message):
        """A job ended; `line` says how."""

        def __init__(self, line: Text, checked: CheckResult | None = None) -> None:
            super().__init__()
            self.line, self.checked = line, checked

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cancel_event: threading.Event | None = None
        self.checked: CheckResult | None = None  # the last check, which a sweep acts on

    @property
    def running(self) -> bool:
        """A job is under way."""
        return self.cancel_event is not None

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="maintenance-help")
        yield ProgressBar(id="maintenance-progress", show_eta=True)
        yield RichLog(id="maintenance-log", markup=False, wrap=True, min_width=20, max_lines=5000)

    def _begin(self, title: str) -> threading.Event | None:
        if self.running:
            self.app.notify("A job is already running: Esc cancels it.", severity="warning", markup=False)
            return None
        self.cancel_event = threading.Event()
        log = self.query_one(RichLog)
        log.clear()
        log.write(Text(title, style="bold"))
        self.query_one(ProgressBar).update(total=None, progress=0)
        return self.cancel_event

    def action_regenerate(self, missing_only: bool) -> None:
        cancel = self._begin("Regenerating " + ("missing thumbnails" if missing_only else "every thumbnail"))
        if cancel is not None:
            self.run_regenerate(missing_only, cancel)

    def action_check(self) -> None:
        cancel = self._begin("Checking the datastore")
        if cancel is not None:
            self.run_check()

    def action_cancel(self) -> None:
        if self.cancel_event is not None and not self.cancel_event.is_set():
            self.cancel_event.set()
            self.query_one(RichLog).write(Text("Cancelling after the photos under way…", style="yellow"))

    def action_sweep(self) -> None:
        checked = self.checked
        if checked is None:
            self.app.notify("Run the check first (c).", severity="warning", markup=False)
            return
        if not checked.sweepable:
            self.app.notify("Nothing to sweep: no leftovers, no files without rows.", markup=False)
            return
        leftovers = services.plural(len(checked.report.leftovers), "leftover")
        orphans = services.plural(len(checked.report.orphans), "file")
        question = (
            f"Remove {leftovers} of interrupted writes and {orphans} no row refers to (those older than "
            "an hour)? Rows without files are only reported."
        )

        def confirmed(yes: bool | None) -> None:
            if yes and self._begin("Sweeping") is not None:
                self.run_sweep(checked)

        self.app.push_screen(Confirm(question), confirmed)

    # -- workers: every result comes back as a message ---------------------------------------------

    @work(thread=True, group="maintenance")
    def run_regenerate(self, missing_only: bool, cancel: threading.Event) -> None:
        """Render over worker processes; a failure is listed with its reason and the others go on."""

        def progress(done: int, total: int, job: RenderJob | None, error: str) -> None:
            line = None
            if job is not None and error:
                line = Text(f"photo {job.photo_id}: ", style="red")
                line.append_text(plain(error))
            self.post_message(self.Advanced(done, total, line))

        def run() -> Text:
            report = services.regenerate_thumbnails(
                self.library, missing_only=missing_only, progress=progress, cancel=cancel
            )
            style = "yellow" if report.cancelled else "bold red" if report.failures else "bold green"
            return Text(sentence(report.describe()), style=style)

        self._finish(run)

    @work(thread=True, group="maintenance")
    def run_check(self) -> None:
        """Compare the rows with the files."""

        def run() -> tuple[Text, CheckResult]:
            checked = services.check_library(self.library)
            for problem in checked.lines()[:2000]:
                self.post_message(self.Advanced(0, 0, plain(problem)))
            if checked.ok:
                return Text(sentence(checked.describe()), style="bold green"), checked
            line = Text(checked.describe(), style="bold yellow")
            sweepable = checked.sweepable
            line.append(f"; s sweeps {services.plural(sweepable, 'stray file')}." if sweepable else ".")
            return line, checked

        self._finish(run)

    @work(thread=True, group="maintenance")
    def run_sweep(self, checked: CheckResult) -> None:
        """Remove what the check found, then check again."""

        def run() -> tuple[Text, CheckResult]:
            swept = services.sweep_library(self.library, checked, orphans=True)
            return Text(sentence(swept.describe()), style="bold"), swept.after

        self._finish(run)

    def _finish(self, run: Callable[[], Text | tuple[Text, CheckResult]]) -> None:
        try:
            outcome = run()
        except Exception as exc:
            outcome = Text(refusal(exc), style="bold red")
        finally:
            database.close_database()
        if isinstance(outcome, tuple):
            self.post_message(self.Finished(*outcome))
        else:
            self.post_message(self.Finished(outcome))

    def on_maintenance_pane_advanced(self, message: Advanced) -> None:
        if message.total:
            self.query_one(ProgressBar).update(total=message.total, progress=message.done)
        if message.line is not None:
            self.query_one(RichLog).write(message.line)

    def on_maintenance_pane_finished(self, message: Finished) -> None:
        self.cancel_event = None
        if message.checked is not None:
            self.checked = message.checked
        bar = self.query_one(ProgressBar)
        if bar.total is None:
            bar.update(total=1, progress=1)
        self.query_one(RichLog).write(message.line)
        self.app.notify(message.line.plain, markup=False)
        self.admin.refresh_panes()
