"""Users: create, reset a password, make or unmake an admin, delete (asking first)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable

from admin_tui.widgets import Confirm, Form, TablePane, plain, refusal
from photoflow import passwords, services
from photoflow.errors import PhotoflowError
from photoflow.services import UserListing

if TYPE_CHECKING:  # the console reads and writes through services; the models only name types here
    from photoflow.models import User


class UsersPane(TablePane):
    """Accounts; the last admin stays one."""

    COLUMNS = (("Name", None), ("Role", 8), ("Photos", 9))
    BINDINGS = [
        Binding("n", "new", "New"),
        Binding("p", "password", "Password"),
        Binding("a", "toggle_admin", "Admin"),
        Binding("d", "delete", "Delete"),
    ]

    def compose(self) -> ComposeResult:
        yield DataTable(cursor_type="row", id="users-table")

    def reload(self) -> None:
        self.load(services.users_with_counts, self.show)

    def show(self, listings: list[UserListing]) -> None:
        rows = [(row.user, row.photos) for row in listings]
        self.rows_by_id = {user.id: (user, count) for user, count in rows}
        self.fill(
            [
                ((plain(user.name), "admin" if user.is_admin else "member", f"{count:>9,}"), str(user.id))
                for user, count in rows
            ]
        )

    def _user(self) -> User | None:
        key = self.selected()
        found = getattr(self, "rows_by_id", {}).get(int(key)) if key else None
        return found[0] if found else None

    def action_new(self) -> None:
        form = Form(
            "New user",
            [("name", "Name", ""), ("password", "Password*", ""), ("again", "Password again*", "")],
            [("admin", "Administrator", False)],
            validate=password_problem,
        )

        def create(values: dict[str, Any] | None) -> None:
            if values is None:
                return

            def run() -> User:
                return services.create_user(values["name"], values["password"], admin=values["admin"])

            self.act(run, lambda user: f"Created {user.name}{' (administrator)' if user.is_admin else ''}.")

        self.app.push_screen(form, create)

    def action_password(self) -> None:
        user = self._user()
        if user is None:
            return
        fields = [("password", "Password*", ""), ("again", "Password again*", "")]
        form = Form(f"New password for {user.name}", fields, validate=password_problem)

        def reset(values: dict[str, Any] | None) -> None:
            if values is None:
                return

            self.act(
                lambda: services.set_password(user.id, values["password"]),
                f"Password of {user.name} reset; their sessions are logged out.",
            )

        self.app.push_screen(form, reset)

    def action_toggle_admin(self) -> None:
        user = self._user()
        if user is not None:
            becomes = not user.is_admin
            what = "an administrator" if becomes else "a member"
            self.act(lambda: services.set_admin(user.id, becomes), f"{user.name} is now {what}.")

    def action_delete(self) -> None:
        user = self._user()
        if user is None:
            return
        admins = sorted(u.id for u, _count in self.rows_by_id.values() if u.is_admin and u.id != user.id)
        heir = self.rows_by_id[admins[0]][0] if admins else None
        if heir is None:
            self.app.notify(
                "This is the last administrator: make another one first.", severity="error", markup=False
            )
            return
        photos = self.rows_by_id[user.id][1]
        question = (
            f"Delete the account {user.name}? Its {services.plural(photos, 'photo')} and its albums pass to "
            f"{heir.name}; "
            "nothing is deleted but the account and its sessions."
        )

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.act(lambda: services.delete_user(user.id, heir.id), f"Deleted {user.name}.")

        self.app.push_screen(Confirm(question), confirmed)


def password_problem(values: dict[str, Any]) -> str | None:
    """What is wrong with a new password typed twice, said in the form before anything is sent."""
    if values["password"] != values["again"]:
        return "The two passwords differ."
    try:
        passwords.check_new(values["password"])
    except PhotoflowError as exc:
        return refusal(exc)
    return None
