"""Planner statistics of the tables a running batch fills (``db.statistics``): analyzed by the
conductor's housekeeping and before an export on Postgres, untouched on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from enrichflow.conductor.loop import Conductor
from enrichflow.db import statistics
from enrichflow.db.engine import make_engine
from enrichflow.db.statistics import TABLES, stale_tables, statistics_refresh
from enrichflow.executors.local import LocalExecutor
from handlers_for_tests import make_batch

STEPS = ["split_raw_apollo_scrape_data_into_two_tables", "consolidate_final_leads"]


@pytest.fixture
def finished_batch(
    pg_only_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """A finished 4-item batch on Postgres with its row counts reported to the server, and
    tables counted stale from 5 changed rows."""
    monkeypatch.setattr(statistics, "STALE_ROWS", 5)
    engine = make_engine(pg_only_url)
    batch_id = make_batch(engine, tmp_path, STEPS, n=4)
    executor = LocalExecutor(engine, 2)
    try:
        Conductor(engine, executor, poll_interval=0.01).run_until_finished([batch_id])
    finally:
        executor.close()
    engine.dispose()  # closing its connections makes each backend report its row counts
    yield engine
    engine.dispose()


def analyzed(engine: Engine) -> dict[str, bool]:
    """table -> analyzed at least once (a new transaction reads a fresh stats snapshot)."""
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
                "WHERE relname = ANY(:names)"
            ),
            {"names": list(TABLES)},
        ).all()
    return dict(rows)  # type: ignore[arg-type]


def test_stale_tables_are_analyzed_once(finished_batch: Engine) -> None:
    engine = finished_batch
    with engine.connect() as conn:
        stale = stale_tables(conn)
    # 8 states and results, 4 people written then refreshed; 4 leads and companies stay under 5
    assert stale == ["workflow_states", "enrichment_results", "people"]
    assert statistics_refresh(engine) == stale
    assert analyzed(engine) == {name: name in stale for name in TABLES}
    assert statistics_refresh(engine) == []  # nothing changed since


def test_conductor_housekeeping_analyzes_stale_tables(finished_batch: Engine) -> None:
    executor = LocalExecutor(finished_batch, 1)
    try:
        Conductor(finished_batch, executor, listen=False).tick(housekeeping=True)
    finally:
        executor.close()
    assert analyzed(finished_batch)["people"]


def test_sqlite_is_left_alone(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert statistics_refresh(engine) == []
    engine.dispose()


def test_dedupe_leaders_are_analyzed_from_fewer_rows(pg_only_url: str, tmp_path: Path) -> None:
    """``step_dedupe``, read by a chunk's list of keys, is stale from 1,000 new leaders (the
    other tables from 10,000): without statistics a key look-up reads every leader of the
    batch and filters them."""
    engine = make_engine(pg_only_url)
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=1)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO step_dedupe (batch_id, step_name, dedupe_key, leader_state_id) "
                "SELECT :b, 'clay', 'domain:acme' || g || '.com', g "
                "FROM generate_series(1, :n) AS g"
            ),
            {"b": batch_id, "n": 999},
        )
    engine.dispose()  # its backends report their row counts
    with engine.connect() as conn:
        assert "step_dedupe" not in stale_tables(conn)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO step_dedupe (batch_id, step_name, dedupe_key, leader_state_id) "
                "VALUES (:b, 'clay', 'domain:initech.com', 1000)"
            ),
            {"b": batch_id},
        )
    engine.dispose()
    assert "step_dedupe" in statistics_refresh(engine)
    assert analyzed(engine)["step_dedupe"]
    engine.dispose()
