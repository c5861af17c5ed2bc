"""The command line and the HTTP layer hold no SQL: they read and write clients, pipelines,
configs, uploads and batches through ``enrichflow.catalog`` (and states through ``db``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import enrichflow

SOURCE = Path(enrichflow.__file__).parent
FRONT_ENDS = sorted([*(SOURCE / "cli").rglob("*.py"), *(SOURCE / "api").rglob("*.py")])

ALLOWED = {"sqlalchemy": {"Connection", "Engine"}}
"""What a front end may import from SQLAlchemy itself: the types it passes on (its errors,
from ``sqlalchemy.exc``, are allowed as well)."""


def _sql_imports(path: Path) -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "sqlalchemy"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            if node.module == "sqlalchemy.exc":
                continue
            allowed = ALLOWED.get(node.module or "", set())
            found += [f"{node.module}.{a.name}" for a in node.names if a.name not in allowed]
    return found


@pytest.mark.parametrize("path", FRONT_ENDS, ids=lambda p: str(p.relative_to(SOURCE)))
def test_front_end_modules_build_no_sql(path: Path) -> None:
    assert _sql_imports(path) == []


def test_the_check_sees_sql_builders(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("from sqlalchemy import Engine, select\nimport sqlalchemy.sql\n")
    assert _sql_imports(sample) == ["sqlalchemy.select", "sqlalchemy.sql"]
