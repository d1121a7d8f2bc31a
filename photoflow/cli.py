"""The `photoflow` command: parse, call a service, print. No logic of its own."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from photoflow import db as database
from photoflow import services
from photoflow.config import Config, load_config
from photoflow.errors import PhotoflowError
from photoflow.library import Library, open_library

app = typer.Typer(
    help="Photoflow: a self-hosted photo host for pictures and their camera RAW files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Create and upgrade the database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")

# soft_wrap: a long line (a file name and its reason) stays one line when the output is piped.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(reason: str, code: int = 1) -> NoReturn:
    """Print one clear line to stderr and exit: no tracebacks for things a person can fix."""
    err.print(f"photoflow: {escape(reason)}", soft_wrap=True)
    raise typer.Exit(code)


def _config() -> Config:
    try:
        return load_config()
    except PhotoflowError as exc:
        fail(exc.reason)


def _library(config: Config | None = None) -> Library:
    try:
        return open_library(config or _config())
    except PhotoflowError as exc:
        fail(exc.reason)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply pending migrations (safe to run again)."""
    config = _config()
    try:
        database.open_database(config.database)
        applied = database.upgrade()
    except PhotoflowError as exc:
        fail(exc.reason)
    if applied:
        for name in applied:
            out.print(f"applied {name}")
    else:
        out.print("database is up to date")


@db_app.command("status")
def db_status() -> None:
    """Show which migrations are applied."""
    config = _config()
    try:
        database.open_database(config.database)
        status = database.migration_status()
    except PhotoflowError as exc:
        fail(exc.reason)
    for name, done in status:
        out.print(f"[{'x' if done else ' '}] {name}", markup=False)
    pending = sum(1 for _, done in status if not done)
    out.print("up to date" if not pending else f"{pending} pending: run `photoflow db upgrade`", markup=False)


@db_app.command("backup")
def db_backup(
    dest: Annotated[Path, typer.Argument(help="The new file to write the copy to.")],
) -> None:
    """Copy the SQLite database consistently while Photoflow runs (PostgreSQL: use pg_dump)."""
    config = _config()
    if config.is_postgres:
        fail("the database is PostgreSQL: back it up with pg_dump")
    try:
        size = database.backup_sqlite(config.database, dest.expanduser().absolute())
    except PhotoflowError as exc:
        fail(exc.reason)
    out.print(f"backed up {config.database} to {dest} ({size:,} bytes)", markup=False)


@app.command("create-user")
def create_user(
    name: Annotated[str, typer.Argument(help="The new account's name.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the account an administrator.")] = False,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of standard input."),
    ] = False,
) -> None:
    """Create an account; asks for the password twice."""
    _library()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = services.create_user(name, password, admin=admin)
    except PhotoflowError as exc:
        fail(exc.reason)
    out.print(f"created {'admin ' if user.is_admin else ''}user {escape(user.name)}")


@app.command("import-image")
def import_image(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders on this server.")],
    album: Annotated[
        str | None, typer.Option(help="Add the photos to this album (created if missing).")
    ] = None,
    public: Annotated[bool, typer.Option("--public", help="Make the album public.")] = False,
    user: Annotated[str | None, typer.Option(help="Owner of the photos (default: the first admin).")] = None,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")] = False,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: one per core).")] = None,
) -> None:
    """Import pictures, RAW files and XMP sidecars; files sharing a base name become one photo."""
    if public and not album:
        fail("--public makes an album public: give the album with --album NAME")
    config = _config()
    bar = Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task = bar.add_task("import", total=None)

    def progress(done: int, total: int, result: object) -> None:
        if done == 0:  # the checks passed: the import starts
            bar.start()
        bar.update(task, completed=done, total=total)

    try:
        # Given the configuration, the service starts the workers before it opens the library, so
        # that their start-up overlaps the checks.
        report = services.import_paths(
            config,
            paths,
            album=album,
            public=public,
            owner=user,
            recursive=recursive,
            workers=workers,
            progress=progress,
        )
    except PhotoflowError as exc:
        fail(exc.reason)
    except KeyboardInterrupt:
        err.print("interrupted: every finished photo is saved; run the same command again to finish")
        raise typer.Exit(130) from None
    finally:
        if bar.live.is_started:  # (stopping one that never started prints an empty line)
            bar.stop()
    out.print(escape(report.describe()))
    for line in report.failures():
        out.print(f"failed: {escape(line)}")
    if report.failed:
        raise typer.Exit(1)


@app.command("regenerate-thumbnails")
def regenerate_thumbnails(
    missing_only: Annotated[
        bool, typer.Option("--missing-only", help="Only photos with a missing derivative.")
    ] = False,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: one per core).")] = None,
) -> None:
    """Make the grid thumbnails and large previews again from the stored files."""
    library = _library()
    with Progress(
        TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task("render", total=None)
        try:
            report = services.regenerate_thumbnails(
                library,
                missing_only=missing_only,
                workers=workers,
                progress=lambda done, total, job, error: bar.update(task, completed=done, total=total),
            )
        finally:
            library.close()
    out.print(escape(report.describe()))
    for line in report.failure_lines():
        out.print(f"failed: {escape(line)}")
    if report.failures:
        raise typer.Exit(1)


@app.command("check")
def check(
    sweep_leftovers: Annotated[
        bool, typer.Option("--sweep", help="Remove leftovers of interrupted writes.")
    ] = False,
    orphans: Annotated[
        bool,
        typer.Option(
            "--orphans", help="With --sweep, also remove files no row refers to (older than an hour)."
        ),
    ] = False,
) -> None:
    """Compare the database with the datastore: rows without files, files without rows, leftovers."""
    library = _library()
    checked = services.check_library(library)
    for line in checked.lines():
        out.print(escape(line))
    if sweep_leftovers:
        swept = services.sweep_library(library, checked, orphans=orphans)
        out.print(escape(swept.describe()))
        ok = swept.ok
    else:
        out.print(escape(checked.describe()))
        ok = checked.ok
    library.close()
    if not ok:
        raise typer.Exit(1)


@app.command("admin")
def admin() -> None:
    """Open the admin console (a terminal UI, fine over SSH): users, albums, photos, import, maintenance."""
    # Imported here: the other commands should not pay for loading Textual.
    from admin_tui.app import AdminApp

    try:
        console = AdminApp(_config())
    except PhotoflowError as exc:
        fail(exc.reason)
    console.run()


@app.command("serve")
def serve() -> None:
    """Serve Photoflow over HTTP with cheroot on HOST:PORT (same as `python serve.py run`)."""
    from photoflow.server import run

    try:
        run(_config())
    except PhotoflowError as exc:
        fail(exc.reason)


def main() -> None:
    """Entry point of the `photoflow` command."""
    app()
