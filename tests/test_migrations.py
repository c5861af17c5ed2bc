"""The migration tree builds exactly the models' schema, from an empty database, on both dialects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from enrichflow.db.engine import make_engine
from enrichflow.db.migrate import MIGRATIONS, upgrade
from enrichflow.db.models import Base

HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()
assert HEAD is not None and HEAD.isdigit(), "revisions are numbered 0001, 0002, ..."


@pytest.fixture
def empty_engine(empty_db_url: str) -> Iterator[Engine]:
    """An engine on a database with no tables at all."""
    engine = make_engine(empty_db_url)
    yield engine
    engine.dispose()


def diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def test_upgrade_from_empty_matches_models(empty_engine: Engine) -> None:
    with empty_engine.connect() as conn:
        assert inspect(conn).get_table_names() == []
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert version == HEAD
    assert diff(empty_engine) == []


def test_upgrade_is_idempotent(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        versions = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    assert versions == [HEAD]
    assert diff(empty_engine) == []


def test_partial_indexes_exist(empty_engine: Engine) -> None:
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        names = {ix["name"] for ix in inspect(conn).get_indexes("workflow_states")}
    assert {
        "ix_workflow_states_claimable",
        "ix_workflow_states_leased",
        "ix_workflow_states_unadvanced",
    } <= names
