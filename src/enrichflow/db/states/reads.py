"""Reads of states by status that drive decisions elsewhere: a batch's steps with work, the
blueprint of one step, a batch's counts, a step's leased states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exists, func, select

from enrichflow.db.models import Batch
from enrichflow.db.states.base import LEASED, bs, status_in, ws
from enrichflow.db.states.tallies import states_tally
from enrichflow.db.states.transition import status_unchanged
from enrichflow.states import BatchStatus, Status


@dataclass(frozen=True, slots=True)
class BatchStepInfo:
    batch_id: int
    position: int
    step_name: str
    type: str
    handler: str
    max_attempts: int
    lease_ms: int
    backoff_base_ms: int
    backoff_max_ms: int
    callback_timeout_ms: int
    concurrency: int
    config: dict[str, Any]
    paused_reason: str | None = None
    """Why the circuit breaker paused this step (``None``: it runs)."""

    @property
    def key(self) -> tuple[int, int]:
        return (self.batch_id, self.position)


@status_unchanged
def batch_steps_with_work(conn: Connection, now: int) -> list[BatchStepInfo]:
    """Steps of RUNNING batches that have a PENDING state runnable at ``now``, later steps
    first (items flow through the pipeline instead of queueing at step 0); none of a paused
    batch, nor a step the circuit breaker paused."""
    runnable = exists().where(
        ws.c.batch_id == bs.c.batch_id,
        ws.c.step_index == bs.c.position,
        status_in(Status.PENDING),
        ws.c.not_before <= now,
    )
    rows = conn.execute(
        select(bs)
        .join(Batch, Batch.id == bs.c.batch_id)
        .where(
            Batch.status == BatchStatus.RUNNING.value,
            Batch.paused_at.is_(None),
            bs.c.paused_reason.is_(None),
            runnable,
        )
        .order_by(bs.c.batch_id, bs.c.position.desc())
    ).mappings()
    return [BatchStepInfo(**dict(r)) for r in rows]


@status_unchanged
def batch_step_load(conn: Connection, batch_id: int, position: int) -> BatchStepInfo | None:
    """One step of a batch's blueprint; ``None`` past the last step."""
    row = (
        conn.execute(select(bs).where(bs.c.batch_id == batch_id, bs.c.position == position))
        .mappings()
        .first()
    )
    return BatchStepInfo(**dict(row)) if row is not None else None


@status_unchanged
def batch_counts(conn: Connection, batch_id: int) -> dict[str, dict[str, int]]:
    """step name -> status -> number of states (the batch's tallies)."""
    names = dict(
        conn.execute(select(bs.c.position, bs.c.step_name).where(bs.c.batch_id == batch_id)).all()
    )
    counts: dict[str, dict[str, int]] = {}
    for t in states_tally(conn, batch_id):
        step = counts.setdefault(names.get(t.step_index, f"step {t.step_index}"), {})
        step[t.status] = step.get(t.status, 0) + t.states
    return counts


@status_unchanged
def states_leased_count(conn: Connection, batch_id: int, step_index: int) -> int:
    """How many states of one step are QUEUED or IN_PROGRESS (a remote executor's chunks out)."""
    count: int = conn.execute(
        select(func.count()).where(
            ws.c.batch_id == batch_id,
            ws.c.step_index == step_index,
            status_in(*LEASED),
        )
    ).scalar_one()
    return count
