"""The admin console: `AdminApp(config)`, six sections in tabs, on the same services as the web and CLI."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, TabbedContent, TabPane

from admin_tui.panes.albums import AlbumsPane
from admin_tui.panes.importer import ImportPane
from admin_tui.panes.maintenance import MaintenancePane
from admin_tui.panes.overview import OverviewPane
from admin_tui.panes.photos import PhotosPane
from admin_tui.panes.users import UsersPane
from admin_tui.widgets import Confirm, Pane
from photoflow.batch import keep_workers_off_the_screen
from photoflow.config import Config
from photoflow.library import Library, open_library

SECTIONS = ("overview", "users", "albums", "photos", "import", "maintenance")


JOB_GROUPS = {"import", "maintenance"}  # the long workers a quit waits for


class AdminApp(App[None]):
    """Photoflow's console; runs beside the web server on the same database."""

    TITLE = "Photoflow admin"
    CSS_PATH = "admin.tcss"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        # One footer entry for the six section keys; the tab labels carry the numbers too.
        Binding("1", "section('overview')", "Tabs", key_display="1-6"),
        *(
            Binding(str(n), f"section('{name}')", name.title(), show=False)
            for n, name in enumerate(SECTIONS, 1)
        ),
        Binding("r", "reload", "Reload"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, config: Config, library: Library | None = None) -> None:
        """Open the library now, so that a missing or old database is refused before the screen starts."""
        super().__init__()
        self.config = config
        # A library handed in belongs to the caller (a test, say), which closes it.
        self.owns_library = library is None
        self.library = library or open_library(config)
        keep_workers_off_the_screen()

    def compose(self) -> ComposeResult:
        panes: list[tuple[str, Pane]] = [
            ("Overview", OverviewPane(id="overview-pane")),
            ("Users", UsersPane(id="users-pane")),
            ("Albums", AlbumsPane(id="albums-pane")),
            ("Photos", PhotosPane(id="photos-pane")),
            ("Import", ImportPane(id="import-pane")),
            ("Maintenance", MaintenancePane(id="maintenance-pane")),
        ]
        with TabbedContent(initial="overview"):
            for n, ((label, pane), name) in enumerate(zip(panes, SECTIONS, strict=True), 1):
                with TabPane(f"{n} {label}", id=name):
                    yield pane
        yield Footer(compact=True)

    @property
    def pane(self) -> Pane:
        """The section on screen."""
        tabs = self.query_one(TabbedContent)
        return tabs.get_pane(tabs.active).query_one(Pane)

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        pane = event.pane.query_one(Pane)
        pane.reload()
        pane.focus_main()

    def action_section(self, name: str) -> None:
        # Let go of the keyboard first: focus left in the section being hidden would pull its tab back
        # (the Overview has nothing to focus, so 1 from Photos did not leave Photos).
        tabs = self.query_one(TabbedContent)
        if tabs.active == name:
            self.pane.focus_main()
            return
        self.set_focus(None)
        tabs.active = name

    def action_reload(self) -> None:
        self.pane.reload()

    def refresh_panes(self) -> None:
        """After a long job: show its effects (other sections read again when they are shown)."""
        self.pane.reload()

    async def action_quit(self) -> None:
        busy = [p for p in self.query(Pane) if getattr(p, "running", False)]
        if not busy:
            self.exit()
            return

        async def stop(yes: bool | None) -> None:
            if not yes:
                return
            for pane in busy:
                pane.action_cancel()  # type: ignore[attr-defined]
            self.notify("Stopping after the files under way…", markup=False)
            # Only the jobs: the directory tree's loader never completes by itself.
            jobs = [w for w in self.workers if w.group in JOB_GROUPS]
            if jobs:
                await self.workers.wait_for_complete(jobs)
            self.exit()

        question = "A job is running. Cancel it and quit? Everything finished so far is kept."
        self.push_screen(Confirm(question), stop)

    def on_unmount(self) -> None:
        if self.owns_library:
            self.library.close()
