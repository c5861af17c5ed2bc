"""The real Conductor + LocalExecutor driving batches to the end on SQLite and Postgres."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from enrichflow.conductor.loop import Conductor
from enrichflow.db.engine import make_engine, now_ms
from enrichflow.db.models import Batch, EnrichmentResult, WorkflowState
from enrichflow.db.states import batch_counts, states_retry_failed
from enrichflow.executors.local import LocalExecutor
from handlers_for_tests import (
    COUNTER,
    make_batch,
    register_steps,
)

ws = WorkflowState.__table__


def run_to_end(engine: Engine, batch_id: int, workers: int = 2, timeout: float = 60) -> None:
    """Drive ``batch_id`` to the end, failing (instead of hanging) past ``timeout``."""
    executor = LocalExecutor(engine, workers)
    conductor = Conductor(engine, executor, chunk_size=50, poll_interval=0.01)
    deadline = time.monotonic() + timeout
    outcome: list[BaseException] = []

    def target() -> None:
        try:
            conductor.run_until_finished([batch_id])
        except BaseException as exc:  # reported below
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    executor.close()
    assert not thread.is_alive(), f"batch {batch_id} did not finish within {timeout} s"
    assert outcome == []
    assert executor.failures == []


def batch_row(engine: Engine, batch_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(Batch.__table__).where(Batch.id == batch_id)).one()


def state_rows(engine: Engine, batch_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(ws).where(ws.c.batch_id == batch_id).order_by(ws.c.item_id, ws.c.step_index)
            )
        )


def payloads(engine: Engine, batch_id: int) -> dict[tuple[int, str], Any]:
    r = EnrichmentResult.__table__
    with engine.connect() as conn:
        return {
            (row.item_id, row.step_name): row.payload
            for row in conn.execute(select(r).where(r.c.batch_id == batch_id))
        }


@pytest.fixture(autouse=True)
def _fresh_counter() -> None:
    COUNTER.reset()


def test_always_failing_step_retries_with_backoff_then_fails(
    engine: Engine, tmp_path: Path
) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_always_fail", "test_count"], n=3)
    started = now_ms()
    run_to_end(engine, batch_id)

    batch = batch_row(engine, batch_id)
    assert batch.status == "COMPLETED_WITH_ERRORS"
    assert batch.finished_at is not None
    rows = state_rows(engine, batch_id)
    assert len(rows) == 3  # the second step was never created
    for row in rows:
        assert (row.status, row.attempt, row.step_name) == ("FAILED", 3, "test_always_fail")
        assert row.error == "ValueError: boom on attempt 3"
        assert row.lease_until is None
        assert row.updated_at >= started
    calls = COUNTER.snapshot()
    assert sorted(calls.values()) == [3, 3, 3]
    assert {step for _, step in calls} == {"test_always_fail"}
    assert payloads(engine, batch_id) == {}
    with engine.connect() as conn:
        assert batch_counts(conn, batch_id) == {"test_always_fail": {"FAILED": 3}}


def test_flaky_step_completes_on_third_attempt(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_flaky", "test_count"], n=4)
    run_to_end(engine, batch_id)

    assert batch_row(engine, batch_id).status == "COMPLETED"
    rows = state_rows(engine, batch_id)
    assert len(rows) == 8
    flaky = [r for r in rows if r.step_name == "test_flaky"]
    counted = [r for r in rows if r.step_name == "test_count"]
    assert {(r.status, r.attempt, r.error) for r in flaky} == {("COMPLETED", 3, None)}
    assert {(r.status, r.attempt) for r in counted} == {("COMPLETED", 1)}
    results = payloads(engine, batch_id)
    assert len(results) == 8
    for r in flaky:
        assert results[(r.item_id, "test_flaky")] == {"succeeded_on": 3}
        assert results[(r.item_id, "test_count")] == {"attempt": 1, "item": r.item_id}
    calls = COUNTER.snapshot()
    assert {k: v for k, v in calls.items() if k[1] == "test_flaky"} == {
        (r.item_id, "test_flaky"): 3 for r in flaky
    }
    assert {k: v for k, v in calls.items() if k[1] == "test_count"} == {
        (r.item_id, "test_count"): 1 for r in flaky
    }


def test_permanent_failure_and_skip(engine: Engine, tmp_path: Path) -> None:
    failing = make_batch(engine, tmp_path, ["test_permanent"], n=2)
    skipping = make_batch(engine, tmp_path, ["test_skip", "test_count"], n=2, client="other")
    run_to_end(engine, failing)
    run_to_end(engine, skipping)

    assert batch_row(engine, failing).status == "COMPLETED_WITH_ERRORS"
    for row in state_rows(engine, failing):
        assert (row.status, row.attempt) == ("FAILED", 1)
        assert row.error == f"permanently broken item {row.item_id}"

    assert batch_row(engine, skipping).status == "COMPLETED"
    rows = state_rows(engine, skipping)
    assert [(r.step_name, r.status) for r in rows] == [
        ("test_skip", "SKIPPED"),
        ("test_count", "COMPLETED"),
    ] * 2
    assert all(r.meta == {"skip_reason": "not applicable in tests"} for r in rows[::2])
    assert sorted(COUNTER.snapshot().values()) == [1] * 6


def test_manual_retry_finishes_the_batch(engine: Engine, tmp_path: Path) -> None:
    register_steps(engine, {"test_flaky": {"fail_times": 4}})
    batch_id = make_batch(engine, tmp_path, ["test_flaky"], n=3)
    run_to_end(engine, batch_id)
    assert batch_row(engine, batch_id).status == "COMPLETED_WITH_ERRORS"
    assert {(r.status, r.attempt, r.error) for r in state_rows(engine, batch_id)} == {
        ("FAILED", 3, "flaky failure on attempt 3")
    }

    with engine.begin() as conn:
        moved = states_retry_failed(conn, batch_id, now_ms())
    assert moved == 3
    batch = batch_row(engine, batch_id)
    assert (batch.status, batch.finished_at) == ("RUNNING", None)
    assert {(r.status, r.retry_floor, r.error) for r in state_rows(engine, batch_id)} == {
        ("PENDING", 3, None)
    }

    run_to_end(engine, batch_id)
    batch = batch_row(engine, batch_id)
    assert batch.status == "COMPLETED"
    assert batch.finished_at is not None
    assert {(r.status, r.attempt) for r in state_rows(engine, batch_id)} == {("COMPLETED", 5)}
    assert list(payloads(engine, batch_id).values()) == [{"succeeded_on": 5}] * 3
    assert sorted(COUNTER.snapshot().values()) == [5, 5, 5]


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_conductors_run_every_pair_exactly_once(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    n = 5000
    steps = ["test_count", "test_count_b"]
    batch_id = make_batch(engine, tmp_path, steps, n=n)
    engines = [make_engine(db_url), make_engine(db_url)]
    executors = [LocalExecutor(e, 4) for e in engines]
    conductors = [
        Conductor(e, x, chunk_size=50, poll_interval=0.01)
        for e, x in zip(engines, executors, strict=True)
    ]
    errors: list[BaseException] = []
    ticks = [0, 0]
    dispatched = [0, 0]

    def drive(i: int) -> None:
        def on_tick(report: Any) -> None:
            ticks[i] += 1
            dispatched[i] += report.dispatched

        try:
            conductors[i].run_until_finished([batch_id], on_tick)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drive, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)
    for x in executors:
        x.close()
    for e in engines:
        e.dispose()
    assert not any(t.is_alive() for t in threads), "conductors did not finish"
    assert errors == []
    assert executors[0].failures == [] and executors[1].failures == []

    calls = COUNTER.snapshot()
    with engine.connect() as conn:
        items = list(
            conn.execute(select(WorkflowState.item_id).where(WorkflowState.step_index == 0))
            .scalars()
            .all()
        )
        counts = batch_counts(conn, batch_id)
    assert len(items) == n
    expected = {(item, step): 1 for item in items for step in steps}
    assert len(calls) == 2 * n
    assert dict(calls) == expected
    assert counts == {"test_count": {"COMPLETED": n}, "test_count_b": {"COMPLETED": n}}
    # every state was claimed exactly once: by a dispatcher, or by the runner that finished
    # the item's previous step (chaining); both conductors dispatched work
    with engine.connect() as conn:
        attempts = set(
            conn.execute(select(WorkflowState.attempt).where(WorkflowState.batch_id == batch_id))
            .scalars()
            .all()
        )
    assert attempts == {1}
    assert n <= sum(dispatched) <= 2 * n and all(dispatched), dispatched
    assert batch_row(engine, batch_id).status == "COMPLETED"
    assert len(payloads(engine, batch_id)) == 2 * n


class RecordingExecutor(LocalExecutor):
    """A LocalExecutor that remembers the size of every chunk it was handed."""

    def __init__(self, engine: Engine, workers: int) -> None:
        super().__init__(engine, workers)
        self.chunks: list[int] = []

    def submit(self, step: Any, claims: list[Any]) -> None:
        self.chunks.append(len(claims))
        super().submit(step, claims)


def test_dispatch_respects_chunk_size(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=120)
    executor = RecordingExecutor(engine, 2)
    conductor = Conductor(engine, executor, chunk_size=50, poll_interval=0.01)
    try:
        conductor.run_until_finished([batch_id])
    finally:
        executor.close()
    assert batch_row(engine, batch_id).status == "COMPLETED"
    assert sum(executor.chunks) == 120
    assert max(executor.chunks) <= 50, executor.chunks
