"""Chaining: a local runner that finishes items runs their next step itself, at once.

The next step's states are created already claimed (IN_PROGRESS, attempt 1, leased) in the
transaction that records the finished ones, so they need no claim and no conductor tick; the
executor grants this only while it has a free slot for that step.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import OperationalError

from enrichflow.conductor import dispatcher
from enrichflow.conductor.dispatcher import Dispatcher, DispatcherSettings
from enrichflow.conductor.loop import Conductor
from enrichflow.db.engine import now_ms
from enrichflow.db.models import EnrichmentRegistry, WorkflowState
from enrichflow.db.states import (
    BatchStepInfo,
    StepOutcome,
    batch_steps_with_work,
    outcomes_record,
    states_claim,
    states_reap,
)
from enrichflow.executors.local import LocalExecutor
from enrichflow.runner import RunnerOptions, run_claims
from enrichflow.seed import APOLLO
from enrichflow.states import Status
from enrichflow.steps.base import JSON, StepContext
from enrichflow.steps.registry import handler
from handlers_for_tests import COUNTER, make_batch, register_steps


class InFlight:
    """The most calls of a handler that were ever running at the same time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


SERIAL = InFlight()


@handler("test_chain_serial")
def serial(ctx: StepContext) -> JSON:
    """Slow enough that chunks overlap; its registry row allows one chunk at a time."""
    with SERIAL:
        time.sleep(0.02)
    return {"item": ctx.item_id}


def _states(engine: Engine, batch_id: int, step_index: int) -> list[WorkflowState]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(WorkflowState).where(
                    WorkflowState.batch_id == batch_id, WorkflowState.step_index == step_index
                )
            ).all()
        )


def _register_serial(engine: Engine) -> None:
    """The registry row of ``test_chain_serial``: one chunk at a time."""
    with engine.begin() as conn:
        conn.execute(
            EnrichmentRegistry.__table__.insert().values(
                slug="test_chain_serial",
                workstream_slug=APOLLO,
                name="serial",
                type="SYNC",
                handler="test_chain_serial",
                config={"concurrency": 1},
            )
        )


def _claim_first_step(engine: Engine, batch_id: int) -> list:  # type: ignore[type-arg]
    with engine.begin() as conn:
        return states_claim(conn, batch_id, 0, 100, 60_000, now_ms(), start=True)


def test_chained_states_are_claimed_and_survive_a_dead_runner(
    engine: Engine, tmp_path: Path
) -> None:
    COUNTER.reset()
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_count_b"], n=5)
    asked: list[BatchStepInfo] = []

    def chain(step: BatchStepInfo) -> bool:
        asked.append(step)
        return True

    report = run_claims(engine, _claim_first_step(engine, batch_id), {}, started=True, chain=chain)
    assert [s.step_name for s in asked] == ["test_count_b"]
    assert report.completed == 5 and len(report.chained) == 5
    assert {c.step_index for c in report.chained} == {1}
    nxt = _states(engine, batch_id, 1)
    assert {(s.status, s.attempt) for s in nxt} == {("IN_PROGRESS", 1)}
    assert all(s.lease_until is not None and s.lease_until > now_ms() for s in nxt)

    # the runner dies before running them; once their lease has run out (moved into the
    # past here instead of waiting for it), the reaper takes them back
    with engine.begin() as conn:
        conn.execute(
            update(WorkflowState)
            .where(WorkflowState.batch_id == batch_id, WorkflowState.step_index == 1)
            .values(lease_until=now_ms() - 1)
        )
        assert states_reap(conn, now_ms()) == 5
    assert {s.status for s in _states(engine, batch_id, 1)} == {"PENDING"}
    executor = LocalExecutor(engine, 2)
    try:
        Conductor(engine, executor, poll_interval=0.05).run_until_finished([batch_id])
    finally:
        executor.close()
    assert {(s.status, s.attempt) for s in _states(engine, batch_id, 1)} == {("COMPLETED", 2)}
    assert set(COUNTER.snapshot().values()) == {1}  # each (item, step) ran once


def test_a_refused_chain_leaves_the_next_states_to_the_dispatcher(
    engine: Engine, tmp_path: Path
) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_count_b"], n=4)
    report = run_claims(
        engine, _claim_first_step(engine, batch_id), {}, started=True, chain=lambda step: False
    )
    assert report.completed == 4 and report.chained == ()
    assert {(s.status, s.attempt) for s in _states(engine, batch_id, 1)} == {("PENDING", 0)}


def test_no_chain_into_a_step_whose_batch_size_is_smaller_than_the_chunk(
    engine: Engine, tmp_path: Path
) -> None:
    register_steps(engine, {"test_count_b": {"batch_size": 2}})
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_count_b"], n=5)
    asked: list[BatchStepInfo] = []
    report = run_claims(
        engine,
        _claim_first_step(engine, batch_id),
        {},
        started=True,
        chain=lambda step: asked.append(step) is None,
    )
    assert asked == [] and report.chained == ()
    assert {s.status for s in _states(engine, batch_id, 1)} == {"PENDING"}


def test_chained_chunks_keep_the_next_steps_concurrency_limit(
    engine: Engine, tmp_path: Path
) -> None:
    """Eight one-item chunks of step 0 run four at a time and finish together; step 1 allows
    one chunk at a time, so at most one of them may chain into it at once."""
    _register_serial(engine)
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_chain_serial"], n=8)
    executor = LocalExecutor(engine, 4)
    try:
        Conductor(engine, executor, chunk_size=1, poll_interval=0.05).run_until_finished([batch_id])
    finally:
        executor.close()
    assert {s.status for s in _states(engine, batch_id, 1)} == {"COMPLETED"}
    assert SERIAL.most == 1


def test_a_chained_chunk_cannot_take_the_slot_the_dispatcher_is_claiming_for(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner thread may chain into a step while the dispatcher claims a chunk of it. The
    dispatcher's slot is held from before its claim, so the chained chunk is refused and the
    step's limit of one holds (it was asked whether a slot was free, then claimed, then
    submitted: both chunks ran)."""
    _register_serial(engine)
    batch_id = make_batch(engine, tmp_path, ["test_chain_serial"], n=2)
    executor = LocalExecutor(engine, 4)
    chain_granted: list[bool] = []
    real_claim = dispatcher.states_claim

    def claim_while_a_runner_chains(conn: Connection, *args: Any, **kwargs: Any) -> Any:
        (step,) = [s for s in batch_steps_with_work(conn, now_ms()) if s.batch_id == batch_id]
        granted = executor._take(step)
        chain_granted.append(granted)
        if granted:
            executor._give_back(step.key)
        return real_claim(conn, *args, **kwargs)

    monkeypatch.setattr(dispatcher, "states_claim", claim_while_a_runner_chains)
    try:
        report = Dispatcher(engine, executor, DispatcherSettings(chunk_size=1)).run_once()
    finally:
        executor.close()
    assert (report.dispatched, report.chunks) == (1, 1)
    assert chain_granted == [False]
    assert executor._inflight == {(batch_id, 0): 0} and executor._total == 0


@pytest.mark.parametrize("claim", ["finds nothing", "fails"])
def test_a_slot_reserved_for_a_claim_that_brings_no_chunk_is_given_back(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, claim: str
) -> None:
    """Another conductor claimed the states first, or the claim's transaction failed: either
    way the slot the dispatcher reserved is free again, not lost for the executor's life."""
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=2)

    def claim_nothing(*args: Any, **kwargs: Any) -> list[Any]:
        if claim == "fails":
            raise OperationalError("claim", {}, Exception("server closed the connection"))
        return []

    monkeypatch.setattr(dispatcher, "states_claim", claim_nothing)
    executor = LocalExecutor(engine, 2)
    part = Dispatcher(engine, executor, DispatcherSettings(chunk_size=1))
    try:
        if claim == "fails":
            with pytest.raises(OperationalError):
                part.run_once()
        else:
            assert part.run_once().dispatched == 0
    finally:
        executor.close()
    assert executor._inflight == {(batch_id, 0): 0} and executor._total == 0


def test_only_the_last_group_of_a_chunk_is_chained(engine: Engine, tmp_path: Path) -> None:
    """Groups recorded while the chunk still runs leave their next states PENDING: a claim
    made then would wait, unrenewed, for the rest of the chunk."""
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_count_b"], n=5)
    report = run_claims(
        engine,
        _claim_first_step(engine, batch_id),
        {},
        RunnerOptions(flush_every=2),
        started=True,
        chain=lambda step: True,
    )
    assert report.completed == 5 and len(report.chained) == 1
    statuses = sorted(s.status for s in _states(engine, batch_id, 1))
    assert statuses == ["IN_PROGRESS", "PENDING", "PENDING", "PENDING", "PENDING"]


@pytest.mark.parametrize("existing", [{1, 3}, {0, 1, 2, 3, 4}])
def test_chained_claims_are_exactly_the_states_this_record_created(
    engine: Engine, tmp_path: Path, existing: set[int]
) -> None:
    """Next states that exist already (the sequencer made them) are neither returned as
    claims nor touched; the ones created are returned with their own ids, none missing."""
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_count_b"], n=5)
    claims = sorted(_claim_first_step(engine, batch_id), key=lambda c: c.item_id)
    now = now_ms()
    with engine.begin() as conn:
        conn.execute(
            insert(WorkflowState),
            [
                {
                    "batch_id": batch_id,
                    "item_id": claims[i].item_id,
                    "step_name": "test_count_b",
                    "step_index": 1,
                    "status": "PENDING",
                    "attempt": 0,
                    "retry_floor": 0,
                    "not_before": now,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in sorted(existing)
            ],
        )
        outcomes = [StepOutcome(c, Status.COMPLETED, payload={"n": c.item_id}) for c in claims]
        report = outcomes_record(conn, outcomes, now_ms(), chain_lease_ms=60_000)
    assert report.completed == 5
    nxt = {s.item_id: s for s in _states(engine, batch_id, 1)}
    created = {claims[i].item_id for i in range(5) if i not in existing}
    assert {c.item_id for c in report.chained} == created
    for c in report.chained:
        state = nxt[c.item_id]
        assert (c.state_id, c.attempt, c.step_index, c.step_name) == (
            state.id,
            state.attempt,
            1,
            "test_count_b",
        )
        assert (state.status, state.attempt) == ("IN_PROGRESS", 1)
    untouched = {claims[i].item_id for i in existing}
    assert {(nxt[i].status, nxt[i].attempt) for i in untouched} == {("PENDING", 0)}
