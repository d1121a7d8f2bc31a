"""What every pane shares: plain text for user strings, a pane base with thread workers, and modals."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, DataTable, Footer, Input, Label, Static, TabbedContent, Tabs

from photoflow import db as database
from photoflow.errors import PhotoflowError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from admin_tui.app import AdminApp
    from photoflow.library import Library


def plain(value: object) -> Text:
    """Any user-supplied string as plain text: Rich markup in it ("[@click=app.quit]") is shown, never run."""
    return Text("" if value is None else str(value))


def _ellipsis(cell: object) -> object:
    """A text cell wider than its column ends in "…" (the cell keeps its whole text)."""
    if isinstance(cell, Text):
        cell.no_wrap, cell.overflow = True, "ellipsis"
    return cell


class Pane(Vertical):
    """One section of the console. Blocking work runs in thread workers; results come back as messages."""

    can_focus = False
    # The widget that takes the keyboard when the section is shown.
    FOCUS = "DataTable"

    class Loaded(Message):
        """A worker read something; `show` puts it on the screen."""

        def __init__(self, key: str, token: int, show: Callable[[Any], None], result: Any) -> None:
            super().__init__()
            self.key, self.token, self.show, self.result = key, token, show, result

    class Said(Message):
        """A worker finished a change (or was refused): one line for the person at the keyboard."""

        def __init__(self, text: str, error: bool = False, reload: bool = False) -> None:
            super().__init__()
            self.text, self.error, self.reload = text, error, reload

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._latest: dict[str, int] = {}

    @property
    def admin(self) -> AdminApp:
        """The console app itself (Textual types `self.app` as any App)."""
        return self.app  # type: ignore[return-value]

    @property
    def library(self) -> Library:
        """The open library of the app."""
        return self.admin.library

    def reload(self) -> None:
        """Read the data again (after every action, and on the refresh key)."""

    def focus_main(self) -> None:
        """Give the keyboard to the section's main widget, so that its keys work at once."""
        found = self.query(self.FOCUS)
        if found:
            found.first().focus()
        else:  # nothing to type into (the Overview): the tab bar, as when the console starts
            self.app.query_one(TabbedContent).query_one(Tabs).focus()

    def load(self, fetch: Callable[[], Any], show: Callable[[Any], None], key: str = "table") -> None:
        """Run `fetch` in a thread, then `show` its result; of two loads for one `key`, the later wins."""
        token = self._latest.get(key, 0) + 1
        self._latest[key] = token
        self._load(key, token, fetch, show)

    @work(thread=True, group="load")
    def _load(self, key: str, token: int, fetch: Callable[[], Any], show: Callable[[Any], None]) -> None:
        try:
            result = fetch()
        except Exception as exc:
            self.post_message(self.Said(refusal(exc), error=True))
            return
        finally:
            database.close_database()
        self.post_message(self.Loaded(key, token, show, result))

    @work(thread=True, group="action")
    def act(self, action: Callable[[], Any], done: str | Callable[[Any], str]) -> None:
        """Run a change in a thread; say what happened (or why not, in one line), then reload."""
        try:
            result = action()
        except Exception as exc:
            self.post_message(self.Said(refusal(exc), error=True))
            return
        finally:
            database.close_database()
        self.post_message(self.Said(done(result) if callable(done) else done, reload=True))

    def on_pane_loaded(self, message: Loaded) -> None:
        message.stop()
        if self._latest.get(message.key) == message.token:  # an older read finishing late is dropped
            message.show(message.result)

    def on_pane_said(self, message: Said) -> None:
        message.stop()
        self.app.notify(message.text, severity="error" if message.error else "information", markup=False)
        if message.reload:
            self.reload()


Column = tuple[str, int | None]  # a label and a width; None shares the width that is left
Row = tuple[tuple[Any, ...], str]  # the cells and the row key


class TablePane(Pane):
    """A section around one DataTable whose columns fit the terminal's width (80 columns and up)."""

    COLUMNS: tuple[Column, ...] = ()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shown: list[Row] = []

    @property
    def table(self) -> DataTable:
        """The section's table."""
        return self.query_one(DataTable)

    def fill(self, rows: list[Row]) -> None:
        """Replace the rows, keeping the cursor where it was (or on the last row)."""
        self.shown = rows
        table = self.table
        keep = table.cursor_row
        table.clear(columns=True)
        # Each cell has a column of padding either side; two more for the scroll bar.
        room = (table.size.width or self.app.size.width) - 2 * len(self.COLUMNS) - 2
        fixed = sum(width or 0 for _label, width in self.COLUMNS)
        flexible = sum(1 for _label, width in self.COLUMNS if width is None) or 1
        share = max(12, (room - fixed) // flexible)
        for label, width in self.COLUMNS:
            table.add_column(label, width=width or share)
        for cells, key in rows:
            table.add_row(*map(_ellipsis, cells), key=key)
        if rows:
            table.move_cursor(row=min(max(keep, 0), len(rows) - 1))

    def on_resize(self) -> None:
        self.fill(self.shown)

    def selected(self) -> str | None:
        """The key of the row under the cursor, or None in an empty table."""
        table = self.table
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value


def refusal(exc: BaseException) -> str:
    """One sentence for a refused action; anything unexpected is named rather than shown as a traceback."""
    if isinstance(exc, PhotoflowError):
        return sentence(exc.reason)
    log.exception("unexpected error in the console", exc_info=exc)
    return f"Unexpected error: {type(exc).__name__}: {exc}"


def sentence(reason: str) -> str:
    """A reason or summary from the core as a sentence: a capital first, a full stop last."""
    return reason[:1].upper() + reason[1:] + ("" if reason.endswith(".") else ".")


# -- modals ----------------------------------------------------------------------------------------------


class Confirm(ModalScreen[bool]):
    """A yes/no question: y confirms; n or Escape cancels (and Enter, since No has the focus)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(plain(self.question), classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class Tick(Checkbox, inherit_bindings=False):
    """A checkbox that space toggles, leaving Enter to submit the form it is in."""

    BINDINGS = [Binding("space", "toggle_button", "Toggle", show=False)]


class Form(ModalScreen[dict[str, Any] | None]):
    """A small form: text fields (some secret) and checkboxes; Enter submits, Escape cancels."""

    BINDINGS = [
        Binding("enter", "submit", "OK"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(
        self,
        title: str,
        fields: list[tuple[str, str, str]],
        checks: list[tuple[str, str, bool]] | None = None,
        validate: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> None:
        """`fields`: (name, label, initial value; a label ending in "*" is a password).

        `validate` returns what is wrong with the values, shown in the form, which stays open.
        """
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.checks = checks or []
        self.validate = validate

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(plain(self.title_text), classes="dialog-title")
            for name, label, value in self.fields:
                secret = label.endswith("*")
                yield Label(plain(label.rstrip("*")))
                yield Input(value=value, password=secret, id=f"field-{name}", compact=True)
            for name, label, ticked in self.checks:
                yield Tick(plain(label), value=ticked, id=f"check-{name}", compact=True)
            yield Static("", id="form-error")
            with Horizontal(classes="buttons"):
                yield Button("OK (Enter)", id="ok", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        # Focus the first field now, not when the screen resumes (Textual's AUTO_FOCUS): the form can
        # be drawn before that, and a key typed at once over a slow SSH link would go nowhere.
        if self.fields:
            self.query_one(f"#field-{self.fields[0][0]}", Input).focus()

    def _values(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            name: self.query_one(f"#field-{name}", Input).value for name, _, _ in self.fields
        }
        for name, _, _ in self.checks:
            values[name] = self.query_one(f"#check-{name}", Checkbox).value
        return values

    def action_submit(self) -> None:
        values = self._values()
        problem = self.validate(values) if self.validate else None
        if problem:
            self.query_one("#form-error", Static).update(plain(problem))
            return
        self.dismiss(values)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.action_submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Pick(ModalScreen[int | None]):
    """Choose one item of a list (an album); Enter chooses, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, items: list[tuple[int, str]]) -> None:
        super().__init__()
        self.title_text = title
        self.items = items

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(plain(f"{self.title_text} (Enter chooses)"), classes="dialog-title")
            yield DataTable(cursor_type="row", show_header=False, id="pick")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#pick", DataTable)
        table.add_column("")
        for key, label in self.items:
            table.add_row(plain(label), key=str(key))
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.dismiss(int(event.row_key.value) if event.row_key.value else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
