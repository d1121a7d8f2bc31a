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
from photoflow.batch import collect_files, import_files, regenerate, worker_pool
from photoflow.check import check_datastore, sweep
from photoflow.config import Config, load_config
from photoflow.errors import PhotoflowError
from photoflow.importer import ImportOptions
from photoflow.library import Library, open_library
from photoflow.metadata import check_exiftool

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
    config = _config()
    if public and not album:
        fail("--public makes an album public: give the album with --album NAME")
    files = collect_files(paths, recursive)
    # The workers start now, so that their start-up overlaps the checks below.
    with worker_pool(config, len(files), workers) as pool:
        try:
            check_exiftool(config.exiftool)
            library = open_library(config)
            owner = services.user_by_name(user) if user else services.default_owner()
            if not files:
                fail("no files to import")
            album_row = services.album_for_import(album, owner.id, public or None)[0] if album else None
        except PhotoflowError as exc:
            fail(exc.reason)
        options = ImportOptions(owner_id=owner.id, album_id=album_row.id if album_row else None)
        with Progress(
            TextColumn("importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("import", total=len(files))

            def progress(done: int, total: int, result: object) -> None:
                bar.update(task, completed=done)

            try:
                summary = import_files(library, files, options, workers=pool or workers, progress=progress)
            except KeyboardInterrupt:
                err.print("interrupted: every finished photo is saved; run the same command again to finish")
                raise typer.Exit(130) from None
            finally:
                library.close()
    attached = summary.count("attached")
    out.print(
        f"imported {summary.count('imported')}, duplicates {summary.count('duplicate')}, "
        f"attached RAWs/sidecars {attached}, failed {len(summary.failed)}"
    )
    for result in summary.failed:
        out.print(f"failed: {escape(result.name)}: {escape(result.reason)}")
    if summary.failed:
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
    jobs = list(services.render_jobs(library.store, missing_only))
    with Progress(
        TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as bar:
        task = bar.add_task("render", total=len(jobs))
        failures = regenerate(
            library, jobs, workers, progress=lambda done, total, job, error: bar.update(task, completed=done)
        )
    library.close()
    out.print(f"rendered {len(jobs) - len(failures)} of {len(jobs)} photos")
    for job, reason in failures:
        out.print(f"failed: photo {job.photo_id}: {escape(reason)}")
    if failures:
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
    report = check_datastore(library.store)
    for line in report.lines():
        out.print(escape(line))
    if sweep_leftovers:
        removed = sweep(library.store, report, orphans=orphans)
        out.print(f"swept {removed} files")
        report = check_datastore(library.store)
    out.print("datastore is consistent" if report.ok else f"{len(report.lines())} problems")
    if not report.ok:
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
