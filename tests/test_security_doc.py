"""SECURITY.md names the test of each case; a renamed or removed test must not leave it pointing at
nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


def test_every_test_security_md_names_exists() -> None:
    text = (REPO / "SECURITY.md").read_text()
    named = re.findall(r"`(?:tests/)?(test_\w+\.py)(?:::(test_\w+?)(\*)?)?`", text)
    # "file.py::test_x" and a following "`test_y`" in the same cell name tests of that file.
    assert len(named) > 40
    missing = []
    for file_name, test, wildcard in named:
        path = REPO / "tests" / file_name
        if not path.exists():
            missing.append(file_name)
            continue
        if test:
            names = _tests_in(path)
            if not (test in names or (wildcard and any(n.startswith(test) for n in names))):
                missing.append(f"{file_name}::{test}")
    for cell in re.findall(r"`(test_\w+\.py)::test_\w+`((?:, `test_\w+`)+)", text):
        file_name, rest = cell
        names = _tests_in(REPO / "tests" / file_name)
        missing += [f"{file_name}::{n}" for n in re.findall(r"`(test_\w+)`", rest) if n not in names]
    assert not missing, missing
