"""What a batch has done so far for ``enrichflow run/status``: counts per step and status and its
first failed states (the dashboard and the REST API read :mod:`~enrichflow.catalog.batch_view`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypedDict

from sqlalchemy import Connection, select

from enrichflow.catalog.batch_controls import BatchControls, batch_controls_read
from enrichflow.catalog.batches import batch_get, batch_steps_list
from enrichflow.catalog.credits import Credits, batch_credits
from enrichflow.db.engine import now_ms
from enrichflow.db.models import WorkflowState
from enrichflow.db.states import batch_counts, status_in
from enrichflow.db.states.triage import AsyncWaits, async_waits
from enrichflow.errors import NotFoundError
from enrichflow.states import Status

__all__ = [
    "STUCK_PENDING_MS",
    "BatchSummary",
    "FailedState",
    "WaitingStep",
    "batch_summary",
    "waiting_steps",
]

STUCK_PENDING_MS = 5 * 60 * 1000
"""A PENDING state this long past its ``not_before`` counts as stuck: no conductor is running."""

SUMMARY_FAILED = 50


class FailedState(TypedDict):
    item_id: int
    step: str
    error: str | None


class WaitingStep(TypedDict):
    """One ASYNC step's states waiting on an external service (Clay) for their callback."""

    step: str
    waiting: int
    oldest_sent_at: str | None
    """When the longest-waiting one was sent (ISO 8601, UTC)."""
    oldest_wait_seconds: float | None
    next_deadline_at: str | None
    """The nearest callback deadline, after which the reaper re-sends or fails that state."""
    next_deadline_in_seconds: float | None
    """Negative when that deadline has passed and no conductor has acted on it yet."""


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def waiting_steps(waits: AsyncWaits, now: int) -> list[WaitingStep]:
    """The waits of :func:`~enrichflow.db.states.triage.async_waits` as ``status`` and the batch
    API report them (``now``: epoch milliseconds)."""
    return [
        WaitingStep(
            step=w.step_name,
            waiting=w.count,
            oldest_sent_at=_iso(w.oldest_sent_ms),
            oldest_wait_seconds=None
            if w.oldest_sent_ms is None
            else round((now - w.oldest_sent_ms) / 1000, 1),
            next_deadline_at=_iso(w.next_deadline_ms),
            next_deadline_in_seconds=None
            if w.next_deadline_ms is None
            else round((w.next_deadline_ms - now) / 1000, 1),
        )
        for w in waits.steps
    ]


class BatchSummary(TypedDict):
    batch_id: int
    status: str
    items: int
    steps: dict[str, dict[str, int]]
    credits: dict[str, Credits]
    """Clay step -> items sent, de-duplicated and reused."""
    failed: list[FailedState]
    waiting: list[WaitingStep]
    """ASYNC steps with states waiting on their callback."""
    controls: BatchControls
    """Paused, the steps the circuit breaker paused, and the batch's control history."""


def batch_summary(conn: Connection, batch_id: int, now: int | None = None) -> BatchSummary:
    """Status, counts per step (in pipeline order), what waits on Clay and the first failed
    states of the batch; :class:`NotFoundError` when there is no such batch."""
    batch = batch_get(conn, batch_id)
    if batch is None:
        raise NotFoundError(f"batch {batch_id} does not exist")
    counts = batch_counts(conn, batch_id)
    failed = conn.execute(
        select(WorkflowState.item_id, WorkflowState.step_name, WorkflowState.error)
        .where(WorkflowState.batch_id == batch_id, status_in(Status.FAILED))
        .order_by(WorkflowState.item_id)
        .limit(SUMMARY_FAILED)
    ).all()
    return BatchSummary(
        batch_id=batch_id,
        status=batch["status"],
        items=batch["item_count"],
        steps={step.name: counts.get(step.name, {}) for step in batch_steps_list(conn, batch_id)},
        credits=batch_credits(conn, batch_id),
        failed=[FailedState(item_id=i, step=s, error=e) for i, s, e in failed],
        waiting=waiting_steps(async_waits(conn, batch_id), now_ms() if now is None else now),
        controls=batch_controls_read(conn, batch_id),
    )
