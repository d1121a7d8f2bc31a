"""The doors do not touch the models: every write and every transaction is the core's (design.md).

The front ends — photoflow/web/, photoflow/piwigo/, photoflow/cli.py and admin_tui/ — are read as
source: none of them may call a model's writing methods, save or delete a row, or open a transaction.
Reading for display is allowed. The core never imports a front end's framework.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import peewee
import pytest

from photoflow import models

REPO = Path(__file__).resolve().parents[1]
DOORS = [
    REPO / "photoflow" / "web",
    REPO / "photoflow" / "piwigo",
    REPO / "photoflow" / "cli.py",
    REPO / "admin_tui",
]
MODELS = {
    name for name, value in vars(models).items() if inspect.isclass(value) and issubclass(value, peewee.Model)
}
# Class-level writes of peewee models, and what opens or runs a transaction or raw SQL.
MODEL_WRITES = {"create", "update", "delete", "insert", "insert_many", "insert_from", "replace",
                "replace_many", "bulk_create", "bulk_update", "get_or_create", "delete_by_id",
                "set_by_id"}  # fmt: skip
DATABASE_CALLS = {"atomic", "transaction", "savepoint", "manual_commit", "execute_sql", "begin", "commit"}


def door_files() -> list[Path]:
    """Every Python file of the front ends."""
    files: list[Path] = []
    for door in DOORS:
        files.extend([door] if door.is_file() else sorted(door.rglob("*.py")))
    return files


def writes(source: str) -> list[str]:
    """What a module does that only the core may: model writes, row saves and deletes, transactions."""
    tree = ast.parse(source)
    model_names = set()
    database_names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "photoflow.models":
            model_names |= {alias.asname or alias.name for alias in node.names if alias.name in MODELS}
        if isinstance(node, ast.ImportFrom) and node.module == "photoflow.db":
            database_names |= {alias.asname or alias.name for alias in node.names if alias.name == "db"}
        if isinstance(node, ast.ImportFrom) and node.module == "photoflow":
            database_names |= {
                f"{alias.asname or alias.name}.db" for alias in node.names if alias.name == "db"
            }
            model_names |= {f"{alias.asname or alias.name}.{m}" for alias in node.names
                            if alias.name == "models" for m in MODELS}  # fmt: skip
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        attr, receiver = node.func.attr, ast.unparse(node.func.value)
        where = f"line {node.lineno}: {ast.unparse(node.func)}"
        model_write = attr in MODEL_WRITES and receiver in model_names
        transaction = attr in DATABASE_CALLS and receiver in database_names
        row_write = attr == "delete_instance" or (attr == "save" and not node.args and not node.keywords)
        if model_write or transaction or row_write:
            found.append(where)
    return found


@pytest.mark.parametrize("path", door_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_door_writes_a_model_or_opens_a_transaction(path: Path) -> None:
    assert writes(path.read_text()) == [], f"{path.relative_to(REPO)} writes through the models itself"


@pytest.mark.parametrize("path", door_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_doors_check_passwords_only_within_the_rate_limit(path: Path) -> None:
    """sessions.login and sessions.recheck count failures; services.authenticate alone does not."""
    calls = [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute | ast.Name)
        and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "authenticate"
    ]
    assert calls == [], f"{path.relative_to(REPO)} checks a password without the rate limit (lines {calls})"


def test_the_doors_are_all_read() -> None:
    names = {str(p.relative_to(REPO)) for p in door_files()}
    for expected in ("photoflow/cli.py", "photoflow/web/pages.py", "photoflow/piwigo/images.py",
                     "admin_tui/panes/albums.py"):  # fmt: skip
        assert expected in names


@pytest.mark.parametrize(
    "source",
    [
        "from photoflow.models import Photo\nPhoto.update(title='x').where(Photo.id == 1).execute()",
        "from photoflow.models import Tag as T\nT.insert(name='x').on_conflict_ignore().execute()",
        "from photoflow.models import Session\nSession.delete().execute()",
        "from photoflow.db import db\nwith db.atomic():\n    pass",
        "from photoflow import db as database\nwith database.db.atomic():\n    pass",
        "from photoflow.models import Photo\nphoto = Photo.get_by_id(1)\nphoto.title = 'x'\nphoto.save()",
        "from photoflow.models import Album\nAlbum.get_by_id(1).delete_instance()",
        "from photoflow import models\nmodels.User.create(name='x')",
    ],
)
def test_the_reader_sees_each_kind_of_write(source: str) -> None:
    assert writes(source), source


def test_reading_for_display_is_allowed() -> None:
    source = (
        "from photoflow.models import Photo, File\n"
        "rows = Photo.select().where(Photo.id == 1)\n"
        "first = File.get_or_none(File.photo == 1)\n"
        "image.save(buffer, 'JPEG')\n"
    )
    assert writes(source) == []
