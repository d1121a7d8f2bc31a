"""Albums: create, rename, describe, public or private, share link, delete (the photos stay)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from admin_tui.widgets import Confirm, Form, TablePane, plain
from photoflow import services
from photoflow.services import AlbumListing

if TYPE_CHECKING:  # the console reads and writes through services; the models only name types here
    from photoflow.models import Album


class AlbumsPane(TablePane):
    """Every album with its count and visibility."""

    COLUMNS = (("Title", None), ("Photos", 9), ("Visibility", 10), ("Link", 6))
    BINDINGS = [
        Binding("n", "new", "New"),
        Binding("e", "rename", "Rename"),
        Binding("c", "describe", "Describe"),
        Binding("v", "visibility", "Public"),
        Binding("s", "share", "Share"),
        Binding("d", "delete", "Delete"),
    ]

    def compose(self) -> ComposeResult:
        yield DataTable(cursor_type="row", id="albums-table")
        yield Static("", id="album-detail")

    def reload(self) -> None:
        self.load(services.albums_with_counts, self.show)

    def show(self, rows: list[AlbumListing]) -> None:
        self.rows_by_id = {row.album.id: row.album for row in rows}
        self.fill([(_cells(row.album, row.photos), str(row.album.id)) for row in rows])
        self.show_detail()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def show_detail(self) -> None:
        album = self._album()
        detail = self.query_one("#album-detail", Static)
        if album is None:
            detail.update(plain("No albums yet: n makes one."))
            return
        text = plain(album.description or "(no description)")
        if album.share_token:
            text.append("\nShare link: ")
            text.append_text(plain(f"{self.library.config.base_url}/s/{album.share_token}"))
        detail.update(text)

    def _album(self) -> Album | None:
        key = self.selected()
        return getattr(self, "rows_by_id", {}).get(int(key)) if key else None

    def action_new(self) -> None:
        def create(values: dict[str, Any] | None) -> None:
            if values is None:
                return

            def run() -> Album:
                owner = services.first_admin()
                return services.create_album(
                    values["title"], owner.id if owner else None, public=values["public"]
                )

            self.act(run, lambda album: f"Created the album {album.title}.")

        self.app.push_screen(
            Form("New album", [("title", "Title", "")], [("public", "Public", False)]), create
        )

    def action_rename(self) -> None:
        album = self._album()
        if album is None:
            return

        def rename(values: dict[str, Any] | None) -> None:
            if values is not None:
                self.act(lambda: services.edit_album(album.id, title=values["title"]), "Renamed.")

        self.app.push_screen(Form("Rename the album", [("title", "Title", album.title)]), rename)

    def action_describe(self) -> None:
        album = self._album()
        if album is None:
            return

        def describe(values: dict[str, Any] | None) -> None:
            if values is not None:
                self.act(
                    lambda: services.edit_album(album.id, description=values["text"]), "Description saved."
                )

        self.app.push_screen(
            Form("Describe the album", [("text", "Description", album.description)]), describe
        )

    def action_visibility(self) -> None:
        album = self._album()
        if album is not None:
            public = not album.is_public
            done = f"{album.title} is now {'public: anyone can see it' if public else 'private'}."
            self.act(lambda: services.set_album_visibility(album.id, public), done)

    def action_share(self) -> None:
        album = self._album()
        if album is None:
            return
        if album.share_token:
            question = f"Revoke the share link of {album.title}? Whoever has it can no longer open the album."

            def revoke(yes: bool | None) -> None:
                if yes:
                    self.act(lambda: services.unshare_album(album.id), "Share link revoked.")

            self.app.push_screen(Confirm(question), revoke)
            return
        base = self.library.config.base_url
        self.act(lambda: services.share_album(album.id), lambda token: f"Share link: {base}/s/{token}")

    def action_delete(self) -> None:
        album = self._album()
        if album is None:
            return

        def delete(yes: bool | None) -> None:
            if yes:
                self.act(lambda: services.delete_album(album.id), f"Deleted {album.title}; its photos stay.")

        self.app.push_screen(
            Confirm(f"Delete the album {album.title}? Its photos stay in the library."), delete
        )


def _cells(album: Album, count: int) -> tuple[Text, str, str, str]:
    visibility = "public" if album.is_public else "private"
    return plain(album.title), f"{count:>9,}", visibility, "shared" if album.share_token else ""
