"""Schema migrations: one Alembic tree serves both dialects.

Most commands start by making sure the database is migrated. When it already is, that check
reads the tree's head from the version files and the database's revision from
``alembic_version`` without importing Alembic, whose import and tree loading would dominate a
CLI command's start.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from enrichflow.db.engine import reading

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")

_REVISION_LINE = re.compile(
    r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(?:\"([^\"\n]*)\"|'([^'\n]*)'|(None))\s*$",
    re.MULTILINE,
)


@lru_cache(maxsize=1)
def head_revision() -> str | None:
    """The head of this package's migration tree: read from its files (``head_of``), and by
    Alembic only when they do not say it plainly."""
    head = head_of(MIGRATIONS / "versions")
    if head is None:
        from alembic.script import ScriptDirectory

        head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    return head


def head_of(versions: Path) -> str | None:
    """The single head of a tree of version files, from each file's ``revision`` and
    ``down_revision`` lines; None when the files do not say it plainly (a merge, a tuple, a
    branch), and then only Alembic decides."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        found = dict(
            (name, plain or quoted or None)
            for name, plain, quoted, _none in _REVISION_LINE.findall(path.read_text("utf-8"))
        )
        if "revision" not in found or "down_revision" not in found or not found["revision"]:
            return None
        revisions.add(found["revision"])
        if found["down_revision"]:
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def current_revision(conn: Connection) -> str | None:
    """The revision the database is migrated to; None before the first migration or when it
    has several (a branched history)."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def at_head(engine: Engine) -> bool:
    head = head_revision()
    if head is None:
        return False
    with reading(engine) as conn:
        return current_revision(conn) == head


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database at ``engine`` to ``revision`` (idempotent)."""
    if revision == "head" and at_head(engine):
        return
    from alembic import command

    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate the next numbered migration from the models, against a database at the
    head (a developer tool, see "Adding a migration" in docs/architecture.md)."""
    from alembic import command

    head = head_revision()
    if head is None or not head.isdigit():
        raise RuntimeError(f"the migration tree's head is not a plain number: {head!r}")
    cfg = alembic_config(engine)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True, rev_id=f"{int(head) + 1:04d}")
