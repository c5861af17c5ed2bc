"""Retries: the backoff schedule, the automatic retry-or-give-up update, and the manual retry of
FAILED states."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, case, cast, literal_column, update

from enrichflow.db.states.base import batch_cancelled, batches, bs, status_in, ws
from enrichflow.db.states.transition import status_unchanged, transition
from enrichflow.states import BatchStatus, Status


@status_unchanged
def backoff_ms_sql(attempt: Any, retry_floor: Any, base: Any, cap: Any, state_id: Any) -> Any:
    """Exponential backoff with jitter, as SQL, so a whole page of retries is one statement.

    delay = min(base * 2^(n-1), cap) * (0.5 .. 1.5), with n the attempt within the current
    budget; the jitter is a hash of (state, attempt), spreading retries without random().
    """
    n = attempt - retry_floor
    exponent = case((n > 20, 20), (n < 1, 0), else_=n - 1)
    raw = base * literal_column("1").op("<<")(exponent)
    capped = case((raw > cap, cap), else_=raw)
    jitter = 500 + (state_id * 7919 + attempt * 104729) % 1000
    return capped * jitter / 1000


@transition((Status.QUEUED, Status.IN_PROGRESS), (Status.PENDING, Status.FAILED))
def retry_update(
    now: int, error: Any, klass: Any, guard: ColumnElement[bool], extra_delay: Any
) -> Any:
    """QUEUED / IN_PROGRESS -> PENDING with backoff while the attempt budget lasts, FAILED
    after; the error stored either way, its class ``klass`` on FAILED. ``guard`` picks the
    states (and must fence them)."""
    exhausted = (ws.c.attempt - ws.c.retry_floor) >= bs.c.max_attempts
    delay = backoff_ms_sql(
        ws.c.attempt, ws.c.retry_floor, bs.c.backoff_base_ms, bs.c.backoff_max_ms, ws.c.id
    )
    delay = case((extra_delay > delay, extra_delay), else_=delay)
    return (
        update(ws)
        .where(guard, bs.c.batch_id == ws.c.batch_id, bs.c.position == ws.c.step_index)
        .values(
            status=case((exhausted, Status.FAILED.value), else_=Status.PENDING.value),
            not_before=case((exhausted, ws.c.not_before), else_=cast(now + delay, BigInteger)),
            lease_until=None,
            error=error,
            error_class=case((exhausted, klass), else_=None),
            updated_at=now,
        )
    )


@transition(Status.FAILED, Status.PENDING)
def states_retry_failed(
    conn: Connection,
    batch_id: int,
    now: int,
    step_name: str | None = None,
    item_id: int | None = None,
) -> int:
    """FAILED -> PENDING with a fresh attempt budget; re-opens the batch (never a cancelled
    one, which retries nothing)."""
    guard: list[ColumnElement[bool]] = []
    if step_name is not None:
        guard.append(ws.c.step_name == step_name)
    if item_id is not None:
        guard.append(ws.c.item_id == item_id)
    return states_reopen_failed(conn, batch_id, now, *guard)


@transition(Status.FAILED, Status.PENDING)
def states_reopen_failed(
    conn: Connection, batch_id: int, now: int, *where: ColumnElement[bool]
) -> int:
    """The batch's FAILED states matching ``where`` -> PENDING with a fresh attempt budget;
    re-opens the batch when any moved (never a cancelled one, which retries nothing)."""
    moved = conn.execute(
        update(ws)
        .where(ws.c.batch_id == batch_id, status_in(Status.FAILED), ~batch_cancelled(), *where)
        .values(
            status=Status.PENDING.value,
            retry_floor=ws.c.attempt,
            not_before=now,
            lease_until=None,
            error=None,
            error_class=None,
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
