"""Photos: a searchable, paged table that stays fast at 100,000 photos; details, albums, level, delete."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Input, Label, Static

from admin_tui.widgets import Confirm, Pick, TablePane, plain
from photoflow import describe, gallery, services
from photoflow.services import PhotoDetails

PAGE = 100
PAGES = Binding.Group("Page")


class PhotosPane(TablePane):
    """Every photo, newest first; / searches names, titles and cameras."""

    FOCUS = "#photos-table"
    COLUMNS = (("File", None), ("Taken", 10), ("Camera", 14), ("Albums", 10), ("Level", 5))
    BINDINGS = [
        Binding("/", "search", "Find"),
        # Grouped: the footer shows "[] Page" for the two.
        Binding("[", "page(-1)", "Previous page", group=PAGES),
        Binding("]", "page(1)", "Next page", group=PAGES),
        Binding("enter", "details", "Details", show=False),
        Binding("i", "details", "Info"),
        Binding("a", "add_album", "Add"),
        Binding("x", "remove_album", "Remove"),
        Binding("l", "level", "Level"),
        Binding("d", "delete", "Delete"),
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start = 0
        self.query_text = ""
        self.found = 0

    def compose(self) -> ComposeResult:
        yield Input(placeholder="/ search names, titles, cameras; Enter", id="photo-search", compact=True)
        yield DataTable(cursor_type="row", id="photos-table")
        yield Static("", id="photos-status")

    def reload(self) -> None:
        search, offset = self.query_text, self.start
        self.load(lambda: gallery.photo_rows(search, offset, PAGE), self.show)

    def show(self, page: tuple[list[gallery.PhotoRow], int]) -> None:
        rows, self.found = page
        if not rows and self.start > 0:  # the last page emptied (a delete, or an import elsewhere)
            self.start = max(0, (self.found - 1) // PAGE * PAGE)
            self.reload()
            return
        self.fill([(_cells(row), str(row.id)) for row in rows])
        if rows:
            status = f"{self.start + 1:,}–{self.start + len(rows):,} of {self.found:,} photos"
        else:
            status = "No photos"
        if self.query_text:
            status += f' matching "{self.query_text}"'
        self.query_one("#photos-status", Static).update(plain(status))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_text = event.value.strip()
        self.start = 0
        self.table.focus()
        self.reload()

    def action_search(self) -> None:
        self.query_one("#photo-search", Input).focus()

    def action_page(self, step: int) -> None:
        offset = self.start + step * PAGE
        if 0 <= offset < max(self.found, 1):
            self.start = offset
            self.reload()

    def _photo_id(self) -> int | None:
        key = self.selected()
        return int(key) if key else None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_details()

    def action_details(self) -> None:
        photo_id = self._photo_id()
        if photo_id is None:
            return

        def show(details: PhotoDetails) -> None:
            self.app.push_screen(Details(details))

        self.load(lambda: services.photo_details(photo_id), show, key="details")

    def action_add_album(self) -> None:
        photo_id = self._photo_id()
        if photo_id is None:
            return

        def chosen(album_id: int | None) -> None:
            if album_id is not None:
                self.act(
                    lambda: services.add_to_album(album_id, [photo_id]),
                    lambda added: "Added to the album." if added else "It was already in that album.",
                )

        def pick(albums: list[tuple[int, str]]) -> None:
            if not albums:
                self.app.notify(
                    "There are no albums yet: make one in Albums.", severity="warning", markup=False
                )
                return
            self.app.push_screen(Pick("Add to which album?", albums), chosen)

        self.load(lambda: [(a.id, a.title) for a in services.albums()], pick, key="albums")

    def action_remove_album(self) -> None:
        photo_id = self._photo_id()
        if photo_id is None:
            return

        def chosen(album_id: int | None) -> None:
            if album_id is not None:
                self.act(lambda: services.remove_from_album(album_id, [photo_id]), "Removed from the album.")

        def pick(albums: list[tuple[int, str]]) -> None:
            if not albums:
                self.app.notify("This photo is in no album.", severity="warning", markup=False)
                return
            self.app.push_screen(Pick("Remove from which album?", albums), chosen)

        self.load(lambda: services.photo_albums(photo_id), pick, key="albums")

    def action_level(self) -> None:
        photo_id = self._photo_id()
        if photo_id is None:
            return

        def chosen(level: int | None) -> None:
            if level is not None:
                self.act(lambda: services.set_level(photo_id, level), f"Level set to {level}.")

        choices = [(0, "0  everyone who can see its albums")] + [
            (level, f"{level}  members only") for level in services.LEVELS if level
        ]
        self.app.push_screen(Pick("Who may see this photo?", choices), chosen)

    def action_delete(self) -> None:
        photo_id = self._photo_id()
        if photo_id is None:
            return
        name = self.table.get_row_at(self.table.cursor_row)[0]

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.act(lambda: services.delete_photo(photo_id, self.library.store), "Photo deleted.")

        self.app.push_screen(Confirm(f"Delete {name} and all its files for good?"), confirmed)


def _cells(row: gallery.PhotoRow) -> tuple[Text, str, Text, Text, str]:
    taken = f"{row.taken_at:%Y-%m-%d}" if row.taken_at else ""
    return plain(row.file_name), taken, plain(row.camera), plain(row.albums), f"{row.level:>5}"


class Details(ModalScreen[None]):
    """One photo's normalised metadata, albums and files."""

    BINDINGS = [Binding("escape,q,i", "close", "Close")]

    def __init__(self, details: PhotoDetails) -> None:
        """`details` are read in a worker: composing the screen asks the database nothing."""
        super().__init__()
        self.details = details
        self.photo, self.albums, self.files = details.photo, details.albums, details.files

    def compose(self) -> ComposeResult:
        size = sum(f.size for f in self.files if f.role == "original") or sum(f.size for f in self.files)
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_row("Title", plain(self.photo.title or self.photo.file_name))
        for fact in describe.facts(self.photo, size):
            table.add_row(fact.label, plain(fact.value))
        table.add_row("Level", str(self.photo.level))
        table.add_row("Keywords", plain(", ".join(self.details.keywords) or "—"))
        table.add_row("Albums", plain(", ".join(self.albums) or "—"))
        for f in self.files:
            line = plain(f"{f.original_name} ")
            line.append(Text(f"({f.role}, {describe.file_size(f.size)})", style="dim"))
            table.add_row("File", line)
        with Vertical(classes="dialog wide"):
            yield Label(plain(self.photo.file_name), classes="dialog-title")
            with VerticalScroll():
                yield Static(table)
        yield Footer(compact=True)

    def action_close(self) -> None:
        self.dismiss(None)
