"""The state machine at the statement level, on SQLite and Postgres: every fenced statement
moves only what TRANSITIONS allows, leases expire into retries, stale attempts are refused,
and the sequencer never creates anything twice. Time is stepped through ``now``."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select, update

from enrichflow.db.engine import now_ms
from enrichflow.db.models import BatchStep, EnrichmentResult, WorkflowState
from enrichflow.db.states import (
    Claim,
    StepOutcome,
    callback_complete,
    outcomes_record,
    states_advance,
    states_claim,
    states_dispatch_failed,
    states_heartbeat,
    states_reap,
    states_retry_failed,
    states_start,
)
from enrichflow.db.states.transition import declared_moves
from enrichflow.states import TRANSITIONS, Status, can_transition, sources_of
from handlers_for_tests import (
    make_batch,
    register_steps,
)

ws = WorkflowState.__table__
results = EnrichmentResult.__table__

# Far enough after launch that every launched state is runnable at T.
T = now_ms() + 10_000_000


# --------------------------------------------------------------------------- helpers


def states(conn: Connection, batch_id: int, step: str | None = None) -> list[Any]:
    query = select(ws).where(ws.c.batch_id == batch_id).order_by(ws.c.item_id, ws.c.step_index)
    if step is not None:
        query = query.where(ws.c.step_name == step)
    return list(conn.execute(query))


def state(conn: Connection, state_id: int) -> Any:
    return conn.execute(select(ws).where(ws.c.id == state_id)).one()


def claim_of(row: Any, attempt: int | None = None) -> Claim:
    return Claim(
        row.id,
        row.batch_id,
        row.item_id,
        row.step_index,
        row.step_name,
        row.attempt if attempt is None else attempt,
    )


def result_count(conn: Connection, batch_id: int) -> int:
    return conn.execute(
        select(func.count()).select_from(results).where(results.c.batch_id == batch_id)
    ).scalar_one()


# --------------------------------------------------------------------------- pure data


ALL_PAIRS = list(itertools.product(Status, Status))


@pytest.mark.parametrize(("old", "new"), ALL_PAIRS, ids=[f"{o}->{n}" for o, n in ALL_PAIRS])
def test_can_transition_agrees_with_transitions(old: Status, new: Status) -> None:
    assert can_transition(old, new) is (new in TRANSITIONS[old])
    assert (old in sources_of(new)) is (new in TRANSITIONS[old])


def test_transitions_table_shape() -> None:
    assert set(TRANSITIONS) == set(Status)
    assert TRANSITIONS[Status.COMPLETED] == frozenset()
    assert TRANSITIONS[Status.SKIPPED] == frozenset()
    assert TRANSITIONS[Status.CANCELLED] == frozenset()
    legal = sorted(f"{o}->{n}" for o, n in ALL_PAIRS if can_transition(o, n))
    assert legal == sorted(
        [
            "PENDING->QUEUED",
            "PENDING->IN_PROGRESS",
            "PENDING->COMPLETED",
            "PENDING->CANCELLED",
            "QUEUED->IN_PROGRESS",
            "QUEUED->COMPLETED",
            "QUEUED->PENDING",
            "QUEUED->FAILED",
            "QUEUED->CANCELLED",
            "IN_PROGRESS->IN_PROGRESS",
            "IN_PROGRESS->COMPLETED",
            "IN_PROGRESS->SKIPPED",
            "IN_PROGRESS->PENDING",
            "IN_PROGRESS->FAILED",
            "IN_PROGRESS->CANCELLED",
            "FAILED->PENDING",
            "FAILED->COMPLETED",
        ]
    )


# --------------------------------------------------------------------------- every statement
# One state per status, all with attempt 1, an expired lease and not_before in the past; each
# statement is applied to all six at once and may move only what TRANSITIONS allows.

Op = Callable[[Connection, list[Claim], int], Any]


def _record(kind: Status) -> Op:
    def op(conn: Connection, claims: list[Claim], now: int) -> Any:
        outcomes = [
            StepOutcome(
                c,
                kind,
                payload={"from": "test"},
                error="e" if kind in (Status.PENDING, Status.FAILED, Status.SKIPPED) else None,
                deadline_ms=now + 60_000,
                meta={"sent": True},
            )
            for c in claims
        ]
        return outcomes_record(conn, outcomes, now)

    return op


OPS: dict[str, tuple[Op, dict[Status, Status]]] = {
    "claim": (
        lambda conn, claims, now: states_claim(conn, claims[0].batch_id, 0, 100, 60_000, now),
        {Status.PENDING: Status.QUEUED},
    ),
    "start": (
        lambda conn, claims, now: states_start(conn, claims, 60_000, now),
        {Status.QUEUED: Status.IN_PROGRESS},
    ),
    "heartbeat": (
        lambda conn, claims, now: states_heartbeat(conn, claims, 60_000, now),
        {Status.IN_PROGRESS: Status.IN_PROGRESS},
    ),
    "record_completed": (_record(Status.COMPLETED), {Status.IN_PROGRESS: Status.COMPLETED}),
    "record_skipped": (_record(Status.SKIPPED), {Status.IN_PROGRESS: Status.SKIPPED}),
    "record_deferred": (_record(Status.IN_PROGRESS), {Status.IN_PROGRESS: Status.IN_PROGRESS}),
    "record_retry": (_record(Status.PENDING), {Status.IN_PROGRESS: Status.PENDING}),
    "record_failed": (_record(Status.FAILED), {Status.IN_PROGRESS: Status.FAILED}),
    "reap": (
        lambda conn, claims, now: states_reap(conn, now),
        {Status.QUEUED: Status.PENDING, Status.IN_PROGRESS: Status.PENDING},
    ),
    "retry_failed": (
        lambda conn, claims, now: states_retry_failed(conn, claims[0].batch_id, now),
        {Status.FAILED: Status.PENDING},
    ),
    "dispatch_failed": (
        lambda conn, claims, now: states_dispatch_failed(conn, claims, "spawn failed", now),
        {Status.QUEUED: Status.PENDING},
    ),
    "callback": (
        lambda conn, claims, now: _callbacks(conn, claims, now),
        {
            Status.PENDING: Status.COMPLETED,
            Status.QUEUED: Status.COMPLETED,
            Status.IN_PROGRESS: Status.COMPLETED,
            Status.FAILED: Status.COMPLETED,
        },
    ),
}

STATEMENT_OF: dict[str, Callable[..., Any]] = {
    "claim": states_claim,
    "start": states_start,
    "heartbeat": states_heartbeat,
    "reap": states_reap,
    "retry_failed": states_retry_failed,
    "dispatch_failed": states_dispatch_failed,
    "callback": callback_complete,
} | {name: outcomes_record for name in OPS if name.startswith("record_")}
"""The statement each operation calls: what it is seen to move, it must have declared."""


def _callbacks(conn: Connection, claims: list[Claim], now: int) -> None:
    """A callback for every state, its step made ASYNC first (only ASYNC states take one)."""
    bs = BatchStep.__table__
    conn.execute(update(bs).where(bs.c.batch_id == claims[0].batch_id).values(type="ASYNC"))
    for claim in claims:
        callback_complete(conn, claim.state_id, claim.attempt, {"from": "callback"}, now)


STATUS_ORDER = list(Status)
# columns a statement that moves nothing must leave exactly as they were
COMPARED = ("status", "attempt", "not_before", "lease_until", "error", "meta", "updated_at")


def _one_state_per_status(engine: Engine, tmp_path: Path) -> tuple[int, list[Claim]]:
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=len(STATUS_ORDER))
    with engine.begin() as conn:
        rows = states(conn, batch_id)
        for row, status in zip(rows, STATUS_ORDER, strict=True):
            conn.execute(
                update(ws)
                .where(ws.c.id == row.id)
                .values(
                    status=status.value,
                    attempt=1,
                    not_before=T - 5_000,
                    lease_until=T - 1_000,
                    advanced_at=None,
                    error="old error" if status is Status.FAILED else None,
                    updated_at=T - 5_000,
                )
            )
        rows = states(conn, batch_id)
    return batch_id, [claim_of(r) for r in rows]


@pytest.mark.parametrize("op_name", list(OPS))
def test_statements_move_only_legal_transitions(
    engine: Engine, tmp_path: Path, op_name: str
) -> None:
    op, expected = OPS[op_name]
    batch_id, claims = _one_state_per_status(engine, tmp_path)
    with engine.connect() as conn:
        before = {r.id: r for r in states(conn, batch_id)}
    with engine.begin() as conn:
        op(conn, claims, T)
    with engine.connect() as conn:
        after = {r.id: r for r in states(conn, batch_id)}

    for claim, old in zip(claims, STATUS_ORDER, strict=True):
        b, a = before[claim.state_id], after[claim.state_id]
        new = Status(a.status)
        if old in expected:
            assert new is expected[old], f"{op_name}: {old} became {new}"
            assert can_transition(old, new), f"{op_name}: illegal {old} -> {new}"
            assert (old, new) in (declared_moves(STATEMENT_OF[op_name]) or ()), (
                f"{op_name}: {old} -> {new} is not declared"
            )
            assert a.updated_at == T
        else:
            assert tuple(getattr(a, c) for c in COMPARED) == tuple(
                getattr(b, c) for c in COMPARED
            ), f"{op_name} touched a {old} state"
    with engine.connect() as conn:
        written = result_count(conn, batch_id)
    assert written == sum(1 for new in expected.values() if new is Status.COMPLETED)


@pytest.mark.parametrize(
    "kind", [Status.COMPLETED, Status.SKIPPED, Status.IN_PROGRESS, Status.PENDING, Status.FAILED]
)
def test_outcomes_for_non_running_states_are_stale(
    engine: Engine, tmp_path: Path, kind: Status
) -> None:
    batch_id, claims = _one_state_per_status(engine, tmp_path)
    not_running = [
        c for c, s in zip(claims, STATUS_ORDER, strict=True) if s is not Status.IN_PROGRESS
    ]
    with engine.connect() as conn:
        before = {r.id: tuple(getattr(r, c) for c in COMPARED) for r in states(conn, batch_id)}
    with engine.begin() as conn:
        report = _record(kind)(conn, not_running, T)
    # A send whose state is already COMPLETED at its own attempt was answered by a fast
    # callback: not written either, but counted apart from the stale ones.
    answered = [
        c
        for c, s in zip(claims, STATUS_ORDER, strict=True)
        if kind is Status.IN_PROGRESS and s is Status.COMPLETED
    ]
    assert len(not_running) == len(Status) - 1 and report.answered == len(answered)
    assert sorted(report.stale_ids) == sorted(c.state_id for c in not_running if c not in answered)
    assert report.stale == len(not_running) - len(answered)
    assert (report.completed, report.skipped, report.deferred, report.retried, report.failed) == (
        0,
        0,
        0,
        0,
        0,
    )
    with engine.connect() as conn:
        after = {r.id: tuple(getattr(r, c) for c in COMPARED) for r in states(conn, batch_id)}
        assert result_count(conn, batch_id) == 0
    assert after == before


def test_claim_with_start_is_a_declared_transition(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=1)
    with engine.begin() as conn:
        (claim,) = states_claim(conn, batch_id, 0, 10, 60_000, T, start=True)
        row = state(conn, claim.state_id)
    assert row.status == Status.IN_PROGRESS.value
    assert can_transition(Status.PENDING, Status(row.status))


def test_claim_takes_only_runnable_pending_rows(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=4)
    with engine.begin() as conn:
        rows = states(conn, batch_id)
        due, future, at_now, failed = (r.id for r in rows)
        conn.execute(update(ws).where(ws.c.id == due).values(not_before=T - 1))
        conn.execute(update(ws).where(ws.c.id == future).values(not_before=T + 1))
        conn.execute(update(ws).where(ws.c.id == at_now).values(not_before=T))
        conn.execute(update(ws).where(ws.c.id == failed).values(status="FAILED", not_before=0))
    with engine.begin() as conn:
        claims = states_claim(conn, batch_id, 0, 100, 5_000, T)
    assert sorted(c.state_id for c in claims) == sorted([due, at_now])
    assert all(c.attempt == 1 and c.step_name == "test_count" for c in claims)
    with engine.begin() as conn:
        for c in claims:
            row = state(conn, c.state_id)
            assert (row.status, row.attempt, row.lease_until) == ("QUEUED", 1, T + 5_000)
        assert state(conn, future).status == "PENDING"
        assert state(conn, failed).status == "FAILED"
        # nothing left to take now; the future one becomes claimable once its time comes
        assert states_claim(conn, batch_id, 0, 100, 5_000, T) == []
        (later,) = states_claim(conn, batch_id, 0, 100, 5_000, T + 1)
    assert later.state_id == future


def test_claim_respects_limit_and_step(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_count_b"], n=5)
    with engine.begin() as conn:
        assert states_claim(conn, batch_id, 1, 100, 5_000, T) == []
        first = states_claim(conn, batch_id, 0, 2, 5_000, T)
        rest = states_claim(conn, batch_id, 0, 100, 5_000, T)
    assert len(first) == 2
    assert len(rest) == 3
    assert not {c.state_id for c in first} & {c.state_id for c in rest}


def test_start_only_queued_and_only_the_current_attempt(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=2)
    with engine.begin() as conn:
        a, b = states_claim(conn, batch_id, 0, 10, 5_000, T)
        started = states_start(conn, [a], 9_000, T + 10)
        assert started == {a.state_id}
        assert states_start(conn, [a], 9_000, T + 20) == set()  # already IN_PROGRESS
        wrong_attempt = Claim(b.state_id, b.batch_id, b.item_id, 0, b.step_name, b.attempt + 1)
        assert states_start(conn, [wrong_attempt], 9_000, T + 20) == set()
        row_a, row_b = state(conn, a.state_id), state(conn, b.state_id)
    assert (row_a.status, row_a.lease_until) == ("IN_PROGRESS", T + 9_010)
    assert (row_b.status, row_b.lease_until) == ("QUEUED", T + 5_000)


# --------------------------------------------------------------------------- lease expiry

SLOW_BACKOFF = {"backoff_base_seconds": 10, "backoff_max_seconds": 60, "max_attempts": 3}


@pytest.mark.parametrize("start", [False, True], ids=["queued", "in_progress"])
def test_lease_expiry_retries_with_backoff_then_fails(
    engine: Engine, tmp_path: Path, start: bool
) -> None:
    register_steps(engine, {"test_count": SLOW_BACKOFF})
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=1)
    expected_text = (
        "lease expired: the runner stopped renewing it" if start else "lease expired: no runner"
    )
    now = T
    for attempt in (1, 2, 3):
        with engine.begin() as conn:
            (claim,) = states_claim(conn, batch_id, 0, 10, 1_000, now, start=start)
            assert claim.attempt == attempt
            assert state(conn, claim.state_id).status == ("IN_PROGRESS" if start else "QUEUED")
            # not yet expired: the reaper leaves it alone
            assert states_reap(conn, now + 1_000) == 0
            assert states_reap(conn, now + 1_001) == 1
            row = state(conn, claim.state_id)
        assert expected_text in row.error
        assert f"(attempt {attempt})" in row.error
        assert row.lease_until is None
        assert row.attempt == attempt
        reaped_at = now + 1_001
        if attempt < 3:
            assert row.status == "PENDING"
            nominal = min(10_000 * 2 ** (attempt - 1), 60_000)
            delay = row.not_before - reaped_at
            assert nominal // 2 <= delay <= nominal * 3 // 2, delay
            with engine.begin() as conn:  # backoff: not claimable before not_before
                assert states_claim(conn, batch_id, 0, 10, 1_000, row.not_before - 1) == []
            now = row.not_before
        else:
            assert row.status == "FAILED"
            assert row.not_before == now  # FAILED keeps the last not_before, no new backoff
            with engine.begin() as conn:
                assert states_reap(conn, now + 10**9) == 0
                assert states_claim(conn, batch_id, 0, 10, 1_000, now + 10**9) == []


def test_heartbeat_keeps_the_reaper_away(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=1)
    with engine.begin() as conn:
        (claim,) = states_claim(conn, batch_id, 0, 10, 1_000, T, start=True)
        assert states_heartbeat(conn, [claim], 1_000, T + 900) == 1
        assert states_reap(conn, T + 1_500) == 0
        assert states_reap(conn, T + 1_901) == 1
        assert states_heartbeat(conn, [claim], 1_000, T + 2_000) == 0  # no longer ours
        assert state(conn, claim.state_id).status == "PENDING"


# --------------------------------------------------------------------------- stale attempts


@pytest.mark.parametrize("stale_kind", [Status.COMPLETED, Status.PENDING, Status.FAILED])
def test_stale_attempt_write_is_rejected(
    engine: Engine, tmp_path: Path, stale_kind: Status
) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=1)
    with engine.begin() as conn:
        (first,) = states_claim(conn, batch_id, 0, 10, 1_000, T, start=True)
        assert states_reap(conn, T + 2_000) == 1
        not_before = state(conn, first.state_id).not_before
        (second,) = states_claim(conn, batch_id, 0, 10, 60_000, max(not_before, T + 2_000))
        states_start(conn, [second], 60_000, T + 3_000)
    assert (first.state_id, first.attempt, second.attempt) == (second.state_id, 1, 2)

    with engine.begin() as conn:
        report = outcomes_record(
            conn, [StepOutcome(first, stale_kind, payload={"attempt": 1}, error="late")], T + 4_000
        )
    assert report.stale == 1
    assert report.stale_ids == (first.state_id,)
    with engine.connect() as conn:
        row = state(conn, first.state_id)
        assert (row.status, row.attempt, row.updated_at) == ("IN_PROGRESS", 2, T + 3_000)
        assert result_count(conn, batch_id) == 0

    with engine.begin() as conn:
        report = outcomes_record(
            conn, [StepOutcome(second, Status.COMPLETED, payload={"attempt": 2})], T + 5_000
        )
    assert (report.completed, report.stale) == (1, 0)
    with engine.connect() as conn:
        row = state(conn, second.state_id)
        payloads = list(conn.execute(select(results.c.payload, results.c.item_id)))
    assert (row.status, row.attempt, row.advanced_at) == ("COMPLETED", 2, T + 5_000)
    assert payloads == [({"attempt": 2}, second.item_id)]


def test_a_group_with_one_stale_claim_records_only_the_current_ones(
    engine: Engine, tmp_path: Path
) -> None:
    """One group commit mixing current claims and one the reaper took back: the current ones
    complete (with results and next states), the stale one is reported and left as it is."""
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_count_b"], n=3)
    with engine.begin() as conn:
        claims = states_claim(conn, batch_id, 0, 10, 60_000, T, start=True)
        taken = claims[1]
        conn.execute(
            update(WorkflowState)
            .where(WorkflowState.id == taken.state_id)
            .values(status="PENDING", lease_until=None, not_before=T)
        )
    with engine.begin() as conn:
        report = outcomes_record(
            conn,
            [StepOutcome(c, Status.COMPLETED, payload={"n": c.item_id}) for c in claims],
            T + 1,
        )
    assert (report.completed, report.stale, report.stale_ids) == (2, 1, (taken.state_id,))
    with engine.connect() as conn:
        rows = {r.id: r for r in states(conn, batch_id, "test_count")}
        nexts = {r.item_id for r in states(conn, batch_id, "test_count_b")}
        assert result_count(conn, batch_id) == 2
    assert [rows[c.state_id].status for c in claims] == ["COMPLETED", "PENDING", "COMPLETED"]
    assert rows[taken.state_id].advanced_at is None
    assert nexts == {claims[0].item_id, claims[2].item_id}


def test_result_written_once_even_if_recorded_twice(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=1)
    with engine.begin() as conn:
        (claim,) = states_claim(conn, batch_id, 0, 10, 60_000, T, start=True)
    outcome = StepOutcome(claim, Status.COMPLETED, payload={"n": 1})
    with engine.begin() as conn:
        first = outcomes_record(conn, [outcome], T + 1)
    with engine.begin() as conn:
        second = outcomes_record(conn, [outcome], T + 2)
    assert (first.completed, first.stale) == (1, 0)
    assert (second.completed, second.stale) == (0, 1)
    with engine.connect() as conn:
        assert result_count(conn, batch_id) == 1


def test_retry_outcome_uses_retry_after_and_exhausts(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=1)  # max_attempts 3, backoff 1 ms
    now = T
    for attempt in (1, 2, 3):
        with engine.begin() as conn:
            (claim,) = states_claim(conn, batch_id, 0, 10, 60_000, now, start=True)
            report = outcomes_record(
                conn,
                [StepOutcome(claim, Status.PENDING, error=f"err {attempt}", retry_after_ms=7_000)],
                now,
            )
            row = state(conn, claim.state_id)
        assert claim.attempt == attempt
        assert row.error == f"err {attempt}"
        if attempt < 3:
            assert (report.retried, report.failed) == (1, 0)
            assert (row.status, row.not_before) == ("PENDING", now + 7_000)
            now = row.not_before
        else:
            assert (report.retried, report.failed) == (0, 1)
            assert row.status == "FAILED"


# --------------------------------------------------------------------------- sequencer


def test_sequencer_twice_creates_nothing_twice(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_count_b"], n=3)
    with engine.begin() as conn:
        conn.execute(
            update(ws)
            .where(ws.c.batch_id == batch_id, ws.c.step_index == 0)
            .values(status="COMPLETED", advanced_at=None, attempt=1)
        )
    with engine.begin() as conn:
        assert states_advance(conn, T) == 3
    with engine.begin() as conn:
        assert states_advance(conn, T + 1) == 0
    with engine.connect() as conn:
        second = states(conn, batch_id, "test_count_b")
        firsts = states(conn, batch_id, "test_count")
    assert len(second) == 3
    assert all(
        (r.status, r.attempt, r.step_index, r.not_before) == ("PENDING", 0, 1, T) for r in second
    )
    assert all(r.advanced_at == T for r in firsts)

    # a replay (advanced_at lost) is absorbed by the unique key
    with engine.begin() as conn:
        conn.execute(update(ws).where(ws.c.step_index == 0).values(advanced_at=None))
    with engine.begin() as conn:
        assert states_advance(conn, T + 2) == 3
    with engine.connect() as conn:
        assert len(states(conn, batch_id)) == 6

    # the last step advances into nothing
    with engine.begin() as conn:
        conn.execute(
            update(ws).where(ws.c.step_index == 1).values(status="SKIPPED", advanced_at=None)
        )
    with engine.begin() as conn:
        assert states_advance(conn, T + 3) == 3
        assert states_advance(conn, T + 4) == 0
    with engine.connect() as conn:
        assert len(states(conn, batch_id)) == 6


def test_sequencer_pages(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_count_b"], n=5)
    with engine.begin() as conn:
        conn.execute(
            update(ws).where(ws.c.step_index == 0).values(status="COMPLETED", advanced_at=None)
        )
    moved = []
    for i in range(4):
        with engine.begin() as conn:
            moved.append(states_advance(conn, T + i, limit=2))
    assert moved == [2, 2, 1, 0]
    with engine.connect() as conn:
        assert len(states(conn, batch_id, "test_count_b")) == 5


# --------------------------------------------------------------------------- manual retry


def test_retry_failed_gives_a_fresh_budget(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=2)
    with engine.begin() as conn:
        claims = states_claim(conn, batch_id, 0, 10, 60_000, T, start=True)
        outcomes_record(
            conn,
            [
                StepOutcome(claims[0], Status.FAILED, error="permanent"),
                StepOutcome(claims[1], Status.COMPLETED, payload={}),
            ],
            T,
        )
        conn.execute(update(ws.metadata.tables["batches"]).values(status="COMPLETED_WITH_ERRORS"))
    with engine.begin() as conn:
        assert states_retry_failed(conn, batch_id, T + 10, step_name="other") == 0
        assert states_retry_failed(conn, batch_id, T + 10, item_id=claims[1].item_id) == 0
        assert states_retry_failed(conn, batch_id, T + 10) == 1
        row = state(conn, claims[0].state_id)
        batch = conn.execute(
            select(ws.metadata.tables["batches"]).where(
                ws.metadata.tables["batches"].c.id == batch_id
            )
        ).one()
        assert states_retry_failed(conn, batch_id, T + 11) == 0
    assert (row.status, row.attempt, row.retry_floor, row.not_before, row.error) == (
        "PENDING",
        1,
        1,
        T + 10,
        None,
    )
    assert (batch.status, batch.finished_at) == ("RUNNING", None)
    with engine.begin() as conn:
        (again,) = states_claim(conn, batch_id, 0, 10, 60_000, T + 10, start=True)
    assert again.attempt == 2
