"""The batch page's reads of states, and the retry of one class of failures.

Counts come from the state table itself (never from a capped list); failures are grouped by
step and by *error class*, the error text with its ids and numbers masked, so two hundred
``HTTP 404 for item 81234`` rows are one group with one retry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, func, literal_column, select, update

from enrichflow.db.engine import is_postgres
from enrichflow.db.states.base import batch_cancelled, batches, bs, status_in, ws
from enrichflow.db.states.transition import status_unchanged, transition
from enrichflow.states import BatchStatus, Status, StepType

__all__ = [
    "AsyncWaits",
    "FailureGroup",
    "StepTally",
    "StepWaits",
    "async_waits",
    "error_class",
    "failure_groups",
    "states_overdue_count",
    "states_retry_failed_class",
    "step_tallies",
]

# The same three masks in Python and in Postgres' regexp_replace, applied in this order.
MASKS = (
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<id>"),
    (r"[0-9a-fA-F]{16,}", "<id>"),
    (r"(?<!HTTP )(?<!status )(?<![0-9])[0-9]+", "<n>"),
)
CLASS_CHARS = 160
NO_ERROR = "(no error text)"
_COMPILED = [(re.compile(pattern), mask) for pattern, mask in MASKS]


@status_unchanged
def error_class(error: str | None) -> str:
    """The error text with ids and numbers masked, except an HTTP status (``HTTP 404``)."""
    if not error:
        return NO_ERROR
    for pattern, mask in _COMPILED:
        error = pattern.sub(mask, error)
    return error[:CLASS_CHARS]


def _class_sql(column: Any) -> Any:
    expr = column
    for pattern, mask in MASKS:
        expr = func.regexp_replace(expr, pattern, mask, "g")
    return func.coalesce(func.nullif(func.left(expr, CLASS_CHARS), ""), NO_ERROR)


@dataclass(frozen=True, slots=True)
class StepTally:
    """One step's states by status; ``retried`` of them are active again after a manual retry."""

    step_name: str
    counts: dict[str, int]
    retried: int


@status_unchanged
def step_tallies(conn: Connection, batch_id: int) -> dict[str, StepTally]:
    """step name -> its states by status (one grouped read of the batch's states)."""
    active = ws.c.status.in_([s.value for s in (Status.PENDING, Status.QUEUED, Status.IN_PROGRESS)])
    rows = conn.execute(
        select(
            ws.c.step_name,
            ws.c.status,
            func.count(),
            func.sum(case(((ws.c.retry_floor > 0) & active, 1), else_=0)),
        )
        .where(ws.c.batch_id == batch_id)
        .group_by(ws.c.step_name, ws.c.status)
    )
    out: dict[str, StepTally] = {}
    for step, status, n, retried in rows:
        tally = out.setdefault(step, StepTally(step, {}, 0))
        tally.counts[status] = int(n)
        out[step] = StepTally(step, tally.counts, tally.retried + int(retried or 0))
    return out


@dataclass(frozen=True, slots=True)
class StepWaits:
    """One ASYNC step's states sent and waiting for their callback (epoch ms)."""

    step_name: str
    count: int
    following: int
    """Of them, de-duplicated followers waiting on their leader's callback (sent nothing)."""
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
def async_waits(conn: Connection, batch_id: int) -> AsyncWaits:
    """Per ASYNC step: how many states wait on an external callback, since when (the deadline
    less the step's callback timeout), and the nearest deadline; one grouped read of the
    batch's leased states (the partial index ``ix_workflow_states_leased_batch``)."""
    rows = conn.execute(
        select(
            bs.c.step_name,
            func.count(),
            func.sum(case((ws.c.waiting_on.is_not(None), 1), else_=0)),
            func.min(ws.c.lease_until - bs.c.callback_timeout_ms),
            func.min(ws.c.lease_until),
        )
        .select_from(
            ws.join(bs, (bs.c.batch_id == ws.c.batch_id) & (bs.c.position == ws.c.step_index))
        )
        .where(
            ws.c.batch_id == batch_id,
            status_in(Status.QUEUED, Status.IN_PROGRESS),
            ws.c.status == Status.IN_PROGRESS.value,
            bs.c.type == StepType.ASYNC.value,
        )
        .group_by(bs.c.position, bs.c.step_name)
        .order_by(bs.c.position)
    )
    return AsyncWaits(
        tuple(
            StepWaits(s, int(n), int(following or 0), oldest, deadline)
            for s, n, following, oldest, deadline in rows
        )
    )


@status_unchanged
def states_overdue_count(conn: Connection, batch_id: int, now: int, pending_grace_ms: int) -> int:
    """States no conductor has picked up: a lease or callback deadline that ran out, or a
    PENDING state ``pending_grace_ms`` past its time (at most a thousand are counted)."""
    leased = select(ws.c.id).where(
        ws.c.batch_id == batch_id,
        status_in(Status.QUEUED, Status.IN_PROGRESS),
        ws.c.lease_until < now,
    )
    pending = select(ws.c.id).where(
        ws.c.batch_id == batch_id,
        status_in(Status.PENDING),
        ws.c.not_before < now - pending_grace_ms,
    )
    found = select(func.count()).select_from(leased.union_all(pending).limit(1000).subquery())
    return int(conn.execute(found).scalar_one())


@dataclass(frozen=True, slots=True)
class FailureGroup:
    step_name: str
    step_index: int
    error_class: str
    count: int


@status_unchanged
def failure_groups(conn: Connection, batch_id: int) -> list[FailureGroup]:
    """The batch's FAILED states by step and error class, largest group first per step."""
    failed = [ws.c.batch_id == batch_id, status_in(Status.FAILED)]
    if is_postgres(conn):
        klass = _class_sql(ws.c.error).label("klass")
        rows = conn.execute(
            select(ws.c.step_name, ws.c.step_index, klass, func.count())
            .where(*failed)
            .group_by(ws.c.step_name, ws.c.step_index, klass)
        ).all()
        groups = {(s, i, k): int(n) for s, i, k, n in rows}
    else:
        groups = {}
        for s, i, error, n in conn.execute(
            select(ws.c.step_name, ws.c.step_index, ws.c.error, func.count())
            .where(*failed)
            .group_by(ws.c.step_name, ws.c.step_index, ws.c.error)
        ):
            key = (s, i, error_class(error))
            groups[key] = groups.get(key, 0) + int(n)
    return sorted(
        (FailureGroup(s, i, k, n) for (s, i, k), n in groups.items()),
        key=lambda g: (g.step_index, -g.count, g.error_class),
    )


def _class_condition(conn: Connection, batch_id: int, step_name: str, klass: str) -> Any:
    """SQL picking the FAILED states of ``step_name`` whose error is of class ``klass``."""
    if is_postgres(conn):
        return _class_sql(ws.c.error) == klass
    errors = conn.execute(
        select(ws.c.error)
        .where(ws.c.batch_id == batch_id, status_in(Status.FAILED), ws.c.step_name == step_name)
        .distinct()
    ).scalars()
    matching = [e for e in errors if error_class(e) == klass]
    texts = [e for e in matching if e]
    condition = ws.c.error.in_(texts) if texts else literal_column("0") == 1
    return condition | ws.c.error.is_(None) if None in matching or "" in matching else condition


@transition(Status.FAILED, Status.PENDING)
def states_retry_failed_class(
    conn: Connection, batch_id: int, now: int, step_name: str, klass: str
) -> int:
    """FAILED -> PENDING, fresh attempt budget, for one step's failures of one error class;
    re-opens the batch. The number of states moved."""
    moved = conn.execute(
        update(ws)
        .where(
            ws.c.batch_id == batch_id,
            status_in(Status.FAILED),
            ws.c.step_name == step_name,
            _class_condition(conn, batch_id, step_name, klass),
            ~batch_cancelled(),
        )
        .values(
            status=Status.PENDING.value,
            retry_floor=ws.c.attempt,
            not_before=now,
            lease_until=None,
            error=None,
            updated_at=now,
        )
    ).rowcount
    if moved:
        conn.execute(
            update(batches)
            .where(batches.c.id == batch_id)
            .values(status=BatchStatus.RUNNING.value, finished_at=None)
        )
    return int(moved)
