"""The migration tree builds exactly the models' schema, from an empty database, on both dialects."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from enrichflow.db.engine import make_engine
from enrichflow.db.migrate import (
    MIGRATIONS,
    alembic_config,
    at_head,
    head_of,
    head_revision,
    upgrade,
)
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


def test_company_name_index_comes_and_goes(empty_engine: Engine) -> None:
    """0007 indexes companies by (batch, name) for the split's per-chunk look-up by name, and
    its downgrade removes the index again."""

    def indexes() -> dict[str, list[str | None]]:
        with empty_engine.connect() as conn:
            return {ix["name"]: ix["column_names"] for ix in inspect(conn).get_indexes("companies")}

    upgrade(empty_engine)
    assert indexes()["ix_companies_batch_id_name"] == ["batch_id", "name"]
    cfg = alembic_config(empty_engine)
    with empty_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    assert "ix_companies_batch_id_name" not in indexes()


def test_rows_become_cell_arrays_and_back(empty_engine: Engine) -> None:
    """0005 rewrites stored rows (JSON objects until 0004) as cell arrays in header order and
    snapshots the headers on each batch; a batch whose upload is gone takes its items' keys.
    The downgrade gives the objects back."""
    upgrade(empty_engine, "0004")
    rows = [
        "INSERT INTO clients (id, name, created_at) VALUES (1, 'acme', '2026-01-01')",
        "INSERT INTO raw_uploads (id, filename, encoding, delimiter, headers, column_map, "
        "unmapped_columns, row_count, bad_row_count, created_at) VALUES (1, 'a.csv', 'utf-8', "
        """',', '["Name", "Email"]', '{}', '[]', 2, 0, '2026-01-01')""",
        "INSERT INTO raw_upload_rows (id, upload_id, line_number, data) VALUES "
        """(1, 1, 2, '{"Email": "ann@acme.com", "Name": "Ann"}'), """
        """(2, 1, 3, '{"Name": "Bob", "Email": ""}')""",
        "INSERT INTO batches (id, client_id, workstream_slug, upload_id, blueprint, column_map, "
        "status, item_count, created_at) VALUES "
        "(1, 1, 'apollo_scrape', 1, '[]', '{}', 'RUNNING', 1, '2026-01-01'), "
        "(2, 1, 'apollo_scrape', NULL, '[]', '{}', 'RUNNING', 2, '2026-01-01')",
        "INSERT INTO batch_items (id, batch_id, row_number, original_data) VALUES "
        """(1, 1, 2, '{"Email": "ann@acme.com", "Name": "Ann"}'), """
        """(2, 2, 2, '{"Title": "CEO"}'), (3, 2, 3, '{"Title": "CTO", "City": "Oslo"}')""",
    ]
    with empty_engine.begin() as conn:
        for sql in rows:
            conn.execute(text(sql))
    upgrade(empty_engine)

    def stored(sql: str) -> list[object]:
        with empty_engine.connect() as conn:
            return [
                json.loads(v) if isinstance(v, str) else v
                for v in conn.execute(text(sql)).scalars()
            ]

    assert stored("SELECT data FROM raw_upload_rows ORDER BY id") == [
        ["Ann", "ann@acme.com"],
        ["Bob", ""],
    ]
    assert stored("SELECT headers FROM batches ORDER BY id") == [
        ["Name", "Email"],
        ["Title", "City"],
    ]
    assert stored("SELECT original_data FROM batch_items ORDER BY id") == [
        ["Ann", "ann@acme.com"],
        ["CEO", ""],
        ["CTO", "Oslo"],
    ]
    assert diff(empty_engine) == []

    cfg = alembic_config(empty_engine)
    with empty_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    assert stored("SELECT data FROM raw_upload_rows ORDER BY id") == [
        {"Name": "Ann", "Email": "ann@acme.com"},
        {"Name": "Bob", "Email": ""},
    ]
    assert stored("SELECT original_data FROM batch_items ORDER BY id")[2] == {
        "Title": "CTO",
        "City": "Oslo",
    }


def test_waiting_followers_get_their_leader_column(empty_engine: Engine) -> None:
    """0008 copies ``meta.waiting_on`` of states still waiting (or failed, which a retried
    leader may yet complete) into the indexed ``waiting_on`` column; finished states and
    states without a leader stay NULL. The downgrade drops the column and its index."""
    upgrade(empty_engine, "0007")
    state = (
        "INSERT INTO workflow_states (id, batch_id, item_id, step_name, step_index, status, "
        "attempt, retry_floor, not_before, meta, created_at, updated_at) VALUES "
    )
    rows = [
        "INSERT INTO clients (id, name, created_at) VALUES (1, 'acme', '2026-01-01')",
        "INSERT INTO batches (id, client_id, workstream_slug, blueprint, column_map, headers, "
        "status, item_count, created_at) VALUES "
        "(1, 1, 'apollo_scrape', '[]', '{}', '[\"Name\"]', 'RUNNING', 4, '2026-01-01')",
        "INSERT INTO batch_items (id, batch_id, row_number, original_data) VALUES "
        """(1, 1, 2, '["a"]'), (2, 1, 3, '["b"]'), (3, 1, 4, '["c"]'), (4, 1, 5, '["d"]')""",
        state + """(1, 1, 1, 'clay', 0, 'IN_PROGRESS', 1, 0, 0, '{"sent": true}', 0, 0), """
        """(2, 1, 2, 'clay', 0, 'IN_PROGRESS', 1, 0, 0, '{"waiting_on": 1}', 0, 0), """
        """(3, 1, 3, 'clay', 0, 'FAILED', 1, 0, 0, '{"waiting_on": 1}', 0, 0), """
        """(4, 1, 4, 'clay', 0, 'COMPLETED', 1, 0, 0, '{"waiting_on": 1}', 0, 0)""",
    ]
    with empty_engine.begin() as conn:
        for sql in rows:
            conn.execute(text(sql))
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        waiting = conn.execute(text("SELECT waiting_on FROM workflow_states ORDER BY id")).all()
        indexes = {ix["name"] for ix in inspect(conn).get_indexes("workflow_states")}
    assert [w for (w,) in waiting] == [None, 1, 1, None]
    assert "ix_workflow_states_waiting" in indexes
    assert diff(empty_engine) == []

    cfg = alembic_config(empty_engine)
    with empty_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    with empty_engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("workflow_states")}
        indexes = {ix["name"] for ix in inspect(conn).get_indexes("workflow_states")}
    assert "waiting_on" not in columns and "ix_workflow_states_waiting" not in indexes


def test_the_head_read_from_the_files_is_alembics() -> None:
    assert head_of(MIGRATIONS / "versions") == head_revision() == HEAD


def test_a_tree_that_is_not_plain_leaves_the_head_to_alembic(tmp_path: Path) -> None:
    def tree(*files: str) -> Path:
        versions = tmp_path / f"tree{len(list(tmp_path.iterdir()))}"
        versions.mkdir()
        for n, body in enumerate(files):
            (versions / f"{n:04d}.py").write_text(body, encoding="utf-8")
        return versions

    first = 'revision = "a"\ndown_revision = None\n'
    assert head_of(tree(first, 'revision: str = "b"\ndown_revision: str | None = "a"\n')) == "b"
    assert head_of(tree(first, 'revision = "b"\ndown_revision = ("a", "c")\n')) is None  # merge
    assert (
        head_of(
            tree(
                first,
                'revision = "b"\ndown_revision = "a"\n',
                'revision = "c"\ndown_revision = "a"\n',
            )
        )
        is None
    )  # two heads
    assert head_of(tree(first, "down_revision = None\n")) is None  # no revision line


def test_an_older_database_is_migrated_and_a_current_one_left_alone(empty_engine: Engine) -> None:
    assert not at_head(empty_engine)
    upgrade(empty_engine, "0007")
    assert not at_head(empty_engine)
    upgrade(empty_engine)
    assert at_head(empty_engine)
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == HEAD


def test_company_workflow_gets_dedupe_and_states_a_key_column(empty_engine: Engine) -> None:
    """0010 turns de-duplication on (``dedupe_by: company``) for the company-level Clay
    workflow where it was unset, leaves a set value (even ``off``) and other workflows alone,
    and adds the indexed ``dedupe_key`` column; the downgrade drops the column and index."""
    upgrade(empty_engine, "0009")
    registry = (
        "INSERT INTO enrichment_registry (id, slug, workstream_slug, name, type, handler, "
        "config, created_at) VALUES "
    )
    with empty_engine.begin() as conn:
        conn.execute(
            text("INSERT INTO workstreams (id, slug, name) VALUES (1, 'w1', 'W1'), (2, 'w2', 'W2')")
        )
        conn.execute(
            text(
                registry + "(1, 'enrich_company_via_waterfall_in_clay', 'w1', 'C', 'ASYNC', "
                """'webhook', '{"burst": 20}', '2026-01-01'), """
                "(2, 'enrich_company_via_waterfall_in_clay', 'w2', 'C', 'ASYNC', 'webhook', "
                """'{"dedupe_by": "off"}', '2026-01-01'), """
                "(3, 'enrich_person_via_waterfall_in_clay', 'w1', 'P', 'ASYNC', 'webhook', "
                """'{}', '2026-01-01')"""
            )
        )
    upgrade(empty_engine, "0010")
    with empty_engine.connect() as conn:
        configs = conn.execute(text("SELECT config FROM enrichment_registry ORDER BY id")).all()
        indexes = {ix["name"] for ix in inspect(conn).get_indexes("workflow_states")}
    loaded = [c if isinstance(c, dict) else json.loads(c) for (c,) in configs]
    assert loaded == [{"burst": 20, "dedupe_by": "company"}, {"dedupe_by": "off"}, {}]
    assert "ix_workflow_states_reuse" in indexes

    cfg = alembic_config(empty_engine)
    with empty_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0009")
    with empty_engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("workflow_states")}
    assert "dedupe_key" not in columns


def test_failed_states_get_their_class_and_states_are_tallied(empty_engine: Engine) -> None:
    """0014 stores the error class of every FAILED state (ids and numbers masked, an HTTP
    status kept; none for other states) and, on Postgres, tallies the existing states, so a
    page sums to what counting says; the downgrade drops the column, the table and the
    trigger."""
    upgrade(empty_engine, "0013")
    state = (
        "INSERT INTO workflow_states (id, batch_id, item_id, step_name, step_index, status, "
        "attempt, retry_floor, not_before, error, created_at, updated_at) VALUES "
    )
    rows = [
        "INSERT INTO clients (id, name, created_at) VALUES (1, 'acme', '2026-01-01')",
        "INSERT INTO batches (id, client_id, workstream_slug, blueprint, column_map, headers, "
        "status, item_count, created_at) VALUES "
        "(1, 1, 'apollo_scrape', '[]', '{}', '[\"Name\"]', 'RUNNING', 4, '2026-01-01')",
        "INSERT INTO batch_items (id, batch_id, row_number, original_data) VALUES "
        """(1, 1, 2, '["a"]'), (2, 1, 3, '["b"]'), (3, 1, 4, '["c"]'), (4, 1, 5, '["d"]')""",
        state + "(1, 1, 1, 'clay', 0, 'FAILED', 3, 0, 0, 'HTTP 404 for row 1234', 0, 0), "
        "(2, 1, 2, 'clay', 0, 'FAILED', 3, 0, 0, 'HTTP 404 for row 99', 0, 0), "
        "(3, 1, 3, 'clay', 0, 'FAILED', 3, 2, 0, NULL, 0, 0), "
        "(4, 1, 4, 'clay', 0, 'PENDING', 1, 0, 0, 'timeout 30 s', 0, 0)",
    ]
    with empty_engine.begin() as conn:
        for sql in rows:
            conn.execute(text(sql))
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        classes = conn.execute(text("SELECT error_class FROM workflow_states ORDER BY id")).all()
        tallied = conn.execute(
            text(
                "SELECT status, error_class, sum(states), sum(retried) FROM state_tallies "
                "GROUP BY status, error_class ORDER BY status, error_class"
            )
        ).all()
    assert [c for (c,) in classes] == [
        "HTTP 404 for row <n>",
        "HTTP 404 for row <n>",
        "(no error text)",
        None,
    ]
    if empty_engine.dialect.name == "postgresql":
        assert [tuple(r) for r in tallied] == [
            ("FAILED", "(no error text)", 1, 1),
            ("FAILED", "HTTP 404 for row <n>", 2, 0),
            ("PENDING", None, 1, 0),
        ]
        with empty_engine.begin() as conn:  # the trigger follows every later change
            conn.execute(text("UPDATE workflow_states SET status = 'PENDING' WHERE id = 3"))
            pending = conn.execute(
                text("SELECT sum(states) FROM state_tallies WHERE status = 'PENDING'")
            ).scalar_one()
        assert pending == 2
    else:
        assert tallied == []
    assert diff(empty_engine) == []

    cfg = alembic_config(empty_engine)
    with empty_engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013")
    with empty_engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("workflow_states")}
        tables = set(inspect(conn).get_table_names())
        conn.execute(text("UPDATE workflow_states SET status = 'FAILED' WHERE id = 3"))
    assert "error_class" not in columns and "state_tallies" not in tables
