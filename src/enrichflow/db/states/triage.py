"""The batch page's reads of states, and the retry of one class of failures.

Counts come from the state table itself (never from a capped list), through its tallies
(:mod:`~enrichflow.db.states.tallies`); failures are grouped by step and by the *error class*
stored when each state failed (:mod:`~enrichflow.db.states.errors`), so two hundred
``HTTP 404 for item 81234`` rows are one group with one retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, literal, select, union_all

from enrichflow.db.engine import is_postgres
from enrichflow.db.states.base import LEASED, bs, status_in, ws
from enrichflow.db.states.errors import NO_ERROR
from enrichflow.db.states.retry import states_reopen_failed
from enrichflow.db.states.tallies import ACTIVE, Tally, states_tally
from enrichflow.db.states.transition import status_unchanged, transition
from enrichflow.states import Status, StepType

__all__ = [
    "AsyncWaits",
    "FailureGroup",
    "StepTally",
    "StepWaits",
    "async_waits",
    "class_condition",
    "failure_groups",
    "states_overdue",
    "states_overdue_count",
    "states_retry_failed_class",
    "step_tallies",
]

OVERDUE_COUNTED = 1000
"""The overdue count stops here: past it the page says "over a thousand", not how many."""


@dataclass(frozen=True, slots=True)
class StepTally:
    """One step's states by status; ``retried`` of them are active again after a manual retry."""

    step_index: int
    counts: dict[str, int]
    retried: int


@status_unchanged
def step_tallies(
    conn: Connection, batch_id: int, tally: Sequence[Tally] | None = None
) -> dict[int, StepTally]:
    """step position -> its states by status (from ``tally`` when the caller has read it)."""
    out: dict[int, StepTally] = {}
    for t in states_tally(conn, batch_id) if tally is None else tally:
        step = out.setdefault(t.step_index, StepTally(t.step_index, {}, 0))
        step.counts[t.status] = step.counts.get(t.status, 0) + t.states
        retried = t.retried if t.status in ACTIVE else 0
        out[t.step_index] = StepTally(t.step_index, step.counts, step.retried + retried)
    return out


@dataclass(frozen=True, slots=True)
class StepWaits:
    """One ASYNC step's states sent and waiting for their callback (epoch ms)."""

    step_name: str
    count: int
    oldest_sent_ms: int | None
    next_deadline_ms: int | None


@dataclass(frozen=True, slots=True)
class AsyncWaits:
    """A batch's ASYNC states waiting for their callback, per step in pipeline order."""

    steps: tuple[StepWaits, ...]

    @property
    def count(self) -> int:
        return sum(s.count for s in self.steps)

    @property
    def oldest_sent_ms(self) -> int | None:
        return min(
            (s.oldest_sent_ms for s in self.steps if s.oldest_sent_ms is not None), default=None
        )

    @property
    def next_deadline_ms(self) -> int | None:
        return min(
            (s.next_deadline_ms for s in self.steps if s.next_deadline_ms is not None), default=None
        )


@status_unchanged
def async_waits(
    conn: Connection, batch_id: int, tallies: dict[int, StepTally] | None = None
) -> AsyncWaits:
    """Per ASYNC step: how many states wait on an external callback, since when (the deadline
    less the step's callback timeout), and the nearest deadline.

    The counts are the tallies' (``tallies``, when the caller has read them); each step's
    nearest deadline is the first entry of its range of ``ix_workflow_states_leased_batch``."""
    steps = conn.execute(
        select(bs.c.position, bs.c.step_name, bs.c.callback_timeout_ms)
        .where(bs.c.batch_id == batch_id, bs.c.type == StepType.ASYNC.value)
        .order_by(bs.c.position)
    ).all()
    if not steps:
        return AsyncWaits(())
    tallies = step_tallies(conn, batch_id) if tallies is None else tallies
    firsts = union_all(
        *(
            select(literal(position).label("position"), func.min(ws.c.lease_until)).where(
                ws.c.batch_id == batch_id,
                ws.c.step_index == position,
                status_in(*LEASED),
                ws.c.status == Status.IN_PROGRESS.value,
            )
            for position, _, _ in steps
        )
    )
    deadlines: dict[int, int | None] = {p: d for p, d in conn.execute(firsts)}
    waits = []
    for position, name, timeout in steps:
        tally = tallies.get(position)
        count = tally.counts.get(Status.IN_PROGRESS.value, 0) if tally else 0
        deadline = deadlines.get(position)
        oldest = None if deadline is None else deadline - timeout
        if count:
            waits.append(StepWaits(name, count, oldest, deadline))
    return AsyncWaits(tuple(waits))


def _overdue(
    conn: Connection,
    batch_id: int,
    now: int,
    pending_grace_ms: int,
    limit: int,
    columns: tuple[Any, ...] = (ws.c.id,),
) -> Any:
    """The overdue states' ``columns`` (up to ``limit`` rows; the id alone lets the claimable
    index answer without the table), one index range per step and status (leased and
    claimable indexes), so a batch with nothing overdue costs a probe per step, not a walk
    through its waiting states. Each range is ordered as its index is: with a bare
    ``LIMIT``, a planner that expects many matches would rather scan the table."""
    positions = list(conn.execute(select(bs.c.position).where(bs.c.batch_id == batch_id)).scalars())
    ranges = []
    for position in positions:
        this_step = (ws.c.batch_id == batch_id, ws.c.step_index == position)
        for status in LEASED:
            ranges.append(
                select(*columns)
                .where(
                    *this_step,
                    status_in(*LEASED),
                    ws.c.status == status.value,
                    ws.c.lease_until < now,
                )
                .order_by(ws.c.lease_until)
                .limit(limit)
            )
        ranges.append(
            select(*columns)
            .where(*this_step, status_in(Status.PENDING), ws.c.not_before < now - pending_grace_ms)
            .order_by(ws.c.not_before)
            .limit(limit)
        )
    if not ranges:
        return None
    return union_all(*(r.subquery().select() for r in ranges)).limit(limit).subquery()


@status_unchanged
def states_overdue_count(conn: Connection, batch_id: int, now: int, pending_grace_ms: int) -> int:
    """States no conductor has picked up: a lease or callback deadline that ran out, or a
    PENDING state ``pending_grace_ms`` past its time (at most :data:`OVERDUE_COUNTED`)."""
    found = _overdue(conn, batch_id, now, pending_grace_ms, OVERDUE_COUNTED)
    if found is None:
        return 0
    return int(conn.execute(select(func.count()).select_from(found)).scalar_one())


@status_unchanged
def states_overdue(
    conn: Connection, batch_id: int, now: int, pending_grace_ms: int, limit: int
) -> list[Any]:
    """Up to ``limit`` overdue states (as :func:`states_overdue_count` counts them), in id
    order: id, item id, step, status, attempt, lease_until, not_before."""
    columns = (
        ws.c.id,
        ws.c.item_id,
        ws.c.step_name,
        ws.c.status,
        ws.c.attempt,
        ws.c.lease_until,
        ws.c.not_before,
    )
    found = _overdue(conn, batch_id, now, pending_grace_ms, limit, columns)
    if found is None:
        return []
    return list(conn.execute(select(found).order_by(found.c.id)))


@dataclass(frozen=True, slots=True)
class FailureGroup:
    step_name: str
    step_index: int
    error_class: str
    count: int


@status_unchanged
def failure_groups(
    conn: Connection, batch_id: int, tally: Sequence[Tally] | None = None
) -> list[FailureGroup]:
    """The batch's FAILED states by step and error class, largest group first per step (the
    tallies on Postgres, ``tally`` when the caller has read them; SQLite reads
    ``ix_workflow_states_failed`` alone)."""
    if is_postgres(conn):
        groups = [
            (t.step_index, t.error_class, t.states)
            for t in (states_tally(conn, batch_id) if tally is None else tally)
            if t.status == Status.FAILED.value
        ]
    else:
        groups = [
            (int(i), k, int(n))
            for i, k, n in conn.execute(
                select(ws.c.step_index, ws.c.error_class, func.count())
                .where(ws.c.batch_id == batch_id, status_in(Status.FAILED))
                .group_by(ws.c.step_index, ws.c.error_class)
            )
        ]
    names = dict(
        conn.execute(select(bs.c.position, bs.c.step_name).where(bs.c.batch_id == batch_id)).all()
    )
    return sorted(
        (FailureGroup(names.get(i, f"step {i}"), i, k or NO_ERROR, n) for i, k, n in groups),
        key=lambda g: (g.step_index, -g.count, g.error_class),
    )


@status_unchanged
def class_condition(klass: str) -> Any:
    """SQL picking the FAILED states whose error is of class ``klass``."""
    if klass == NO_ERROR:
        return ws.c.error_class.is_(None) | (ws.c.error_class == klass)
    return ws.c.error_class == klass


@transition(Status.FAILED, Status.PENDING)
def states_retry_failed_class(
    conn: Connection, batch_id: int, now: int, step_name: str, klass: str
) -> int:
    """FAILED -> PENDING, fresh attempt budget, for one step's failures of one error class;
    re-opens the batch. The number of states moved."""
    return states_reopen_failed(
        conn, batch_id, now, ws.c.step_name == step_name, class_condition(klass)
    )
