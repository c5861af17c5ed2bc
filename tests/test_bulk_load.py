"""Ingest and launch skip Postgres' per-row foreign-key checks only where the role may, only
for their own statement, and give the same rows either way (``enrichflow.db.bulk``).
Postgres only: SQLite checks a foreign key as part of the row write."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from enrichflow.db.bulk import LARGE_LOAD_ROWS, may_skip_foreign_key_checks, new_parents_only
from enrichflow.db.engine import make_engine
from enrichflow.doctor import check_bulk_loads
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.seed import APOLLO
from statements_sent import statements_sent

PLAIN_ROLE = "ef_plain_loader"
LEADS = "First Name,Last Name,Email,Company\nAnn,Lee,ann@acme.com,Acme\nBob,Ray,bob@beta.io,Beta\n"


@pytest.fixture
def pg_engine(pg_only_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_only_url)
    yield engine
    engine.dispose()


@pytest.fixture
def plain_engine(pg_engine: Engine, pg_only_url: str) -> Iterator[Engine]:
    """The same database as a role that is neither superuser nor granted the setting."""
    with pg_engine.begin() as conn:
        conn.execute(
            text(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PLAIN_ROLE}')"
                f" THEN CREATE ROLE {PLAIN_ROLE} LOGIN; END IF; END $$"
            )
        )
        conn.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {PLAIN_ROLE}"))
        conn.execute(text(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {PLAIN_ROLE}"))
    user, rest = pg_only_url.split("://", 1)[1].split("@", 1)
    engine = make_engine(pg_only_url.replace(f"{user}@{rest}", f"{PLAIN_ROLE}@{rest}"))
    yield engine
    engine.dispose()
    with pg_engine.begin() as conn:
        conn.execute(text(f"DROP OWNED BY {PLAIN_ROLE}"))


def _role_setting(conn: Connection) -> str:
    return str(conn.exec_driver_sql("SHOW session_replication_role").scalar_one())


def test_checks_are_skipped_inside_the_block_only(pg_engine: Engine) -> None:
    with pg_engine.begin() as conn:
        assert may_skip_foreign_key_checks(conn)  # the suite's server user is a superuser
        with new_parents_only(conn, LARGE_LOAD_ROWS - 1) as skipped:
            assert not skipped  # a small load keeps its checks (and the cached plans)
            assert _role_setting(conn) == "origin"
        with new_parents_only(conn, LARGE_LOAD_ROWS) as skipped:
            assert skipped
            assert _role_setting(conn) == "replica"
        assert _role_setting(conn) == "origin"
    # and nothing leaks past the transaction: an orphan item is refused again
    orphan = text("INSERT INTO batch_items (batch_id, original_data) VALUES (999999, '[]')")
    with (
        pytest.raises(IntegrityError, match="fk_batch_items_batch_id_batches"),
        pg_engine.begin() as conn,
    ):
        conn.execute(orphan)


def _load(engine: Engine, path: Path) -> tuple[list[tuple[object, ...]], int]:
    """Ingest and launch ``path``; the items with their first states, and how many times the
    checks were switched off on the way."""
    with statements_sent(engine) as sent:
        report = ingest_csv(engine, path)
        batch_id = launch(
            engine, "acme", APOLLO, report.upload_id, steps=["noop"], create_client=True
        )
    switched = [sql for sql, _ in sent if "'session_replication_role', 'replica'" in sql]
    with engine.connect() as conn:
        rows = [
            tuple(row)
            for row in conn.execute(
                text(
                    "SELECT i.row_number, i.person_name, i.email, i.original_data, s.status "
                    "FROM batch_items i JOIN workflow_states s ON s.item_id = i.id "
                    "WHERE i.batch_id = :b ORDER BY i.row_number"
                ),
                {"b": batch_id},
            )
        ]
    return rows, len(switched)


def test_large_loads_skip_the_checks_only_where_the_role_may_and_give_the_same_rows(
    pg_engine: Engine, plain_engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "leads.csv"
    lines = [f"First{i},Last{i},p{i}@acme.com,Acme {i % 7}" for i in range(LARGE_LOAD_ROWS)]
    path.write_text(LEADS.splitlines()[0] + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    with plain_engine.connect() as conn:
        assert not may_skip_foreign_key_checks(conn)
        assert check_bulk_loads(conn).detail.startswith("checked row by row")
    with plain_engine.begin() as conn, new_parents_only(conn, LARGE_LOAD_ROWS) as skipped:
        assert not skipped
        assert _role_setting(conn) == "origin"

    checked, checked_switches = _load(plain_engine, path)
    skipped, skipped_switches = _load(pg_engine, path)
    assert (checked_switches, skipped_switches) == (0, 2)  # ingest's COPY, launch's insert
    assert checked == skipped
    assert len(checked) == LARGE_LOAD_ROWS
    assert checked[1] == (3, "First1 Last1", "p1@acme.com", ["First1", "Last1", "p1@acme.com", "Acme 1"], "PENDING")  # fmt: skip


def test_small_loads_keep_their_checks(pg_engine: Engine, tmp_path: Path) -> None:
    """Switching the checks off flushes the session's cached plans, which costs a small load
    more than its few checks."""
    path = tmp_path / "leads.csv"
    path.write_text(LEADS, encoding="utf-8")
    rows, switches = _load(pg_engine, path)
    assert switches == 0
    assert rows == [
        (2, "Ann Lee", "ann@acme.com", ["Ann", "Lee", "ann@acme.com", "Acme"], "PENDING"),
        (3, "Bob Ray", "bob@beta.io", ["Bob", "Ray", "bob@beta.io", "Beta"], "PENDING"),
    ]
