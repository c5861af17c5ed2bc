"""Planner statistics of the tables a running batch fills (``db.statistics``): analyzed by the
conductor's housekeeping and before an export on Postgres, untouched on SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from enrichflow.conductor.loop import Conductor
from enrichflow.db import statistics
from enrichflow.db.engine import make_engine
from enrichflow.db.statistics import TABLES, stale_tables, statistics_refresh
from enrichflow.executors.local import LocalExecutor
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.seed import APOLLO

CSV_TEXT = "First Name,Last Name,Email,Company Name,Website\n" + "".join(
    f"P{i},L{i},p{i}@acme{i % 3}.com,Acme {i % 3},acme{i % 3}.com\n" for i in range(12)
)
STEPS = ["split_raw_apollo_scrape_data_into_two_tables", "consolidate_final_leads"]


def run_batch(engine: Engine, tmp_path: Path, conductor: Conductor | None = None) -> int:
    path = tmp_path / "in.csv"
    path.write_text(CSV_TEXT, encoding="utf-8")
    report = ingest_csv(engine, path)
    batch_id = launch(engine, "acme", APOLLO, report.upload_id, steps=STEPS, create_client=True)
    executor = LocalExecutor(engine, 2)
    try:
        (conductor or Conductor(engine, executor, poll_interval=0.01)).run_until_finished(
            [batch_id]
        )
    finally:
        executor.close()
    return batch_id


def analyzed(url: str) -> dict[str, bool]:
    """table -> analyzed at least once, read by a new connection (a fresh stats snapshot)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
                "WHERE relname IN ('workflow_states', 'enrichment_results', 'final_leads', "
                "'people', 'companies')"
            )
        ).all()
    engine.dispose()
    return dict(rows)  # type: ignore[arg-type]


def flush_statistics(engine: Engine) -> None:
    """Closing its connections makes each backend report its row counts to the server."""
    engine.dispose()


def test_stale_tables_are_analyzed_once(
    pg_only_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statistics, "STALE_ROWS", 5)
    engine = make_engine(pg_only_url)
    run_batch(engine, tmp_path)
    flush_statistics(engine)
    with engine.connect() as conn:
        stale = stale_tables(conn)
    # 12 states per step, results and leads, 12 people; 3 companies stay under 5 rows
    assert stale == ["workflow_states", "enrichment_results", "final_leads", "people"]
    assert statistics_refresh(engine) == stale
    assert analyzed(pg_only_url) == {name: name != "companies" for name in TABLES}
    assert statistics_refresh(engine) == []  # nothing changed since
    engine.dispose()


def test_conductor_housekeeping_analyzes_stale_tables(
    pg_only_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statistics, "STALE_ROWS", 5)
    engine = make_engine(pg_only_url)
    run_batch(engine, tmp_path)
    flush_statistics(engine)
    executor = LocalExecutor(engine, 1)
    try:
        Conductor(engine, executor, listen=False).tick(housekeeping=True)
    finally:
        executor.close()
    assert analyzed(pg_only_url)["people"]
    engine.dispose()


def test_sqlite_is_left_alone(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert statistics_refresh(engine) == []
    engine.dispose()
