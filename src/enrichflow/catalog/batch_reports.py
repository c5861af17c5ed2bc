"""What a batch has done so far for ``enrichflow run/status``: counts per step and status and its
first failed states (the dashboard and the REST API read :mod:`~enrichflow.catalog.batch_view`)."""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import Connection, select

from enrichflow.catalog.batch_controls import BatchControls, batch_controls_read
from enrichflow.catalog.batches import batch_get, batch_steps_list
from enrichflow.catalog.credits import Credits, batch_credits
from enrichflow.db.models import WorkflowState
from enrichflow.db.states import batch_counts, status_in
from enrichflow.errors import NotFoundError
from enrichflow.states import Status

__all__ = [
    "STUCK_PENDING_MS",
    "BatchSummary",
    "FailedState",
    "batch_summary",
]

STUCK_PENDING_MS = 5 * 60 * 1000
"""A PENDING state this long past its ``not_before`` counts as stuck: no conductor is running."""

SUMMARY_FAILED = 50


class FailedState(TypedDict):
    item_id: int
    step: str
    error: str | None


class BatchSummary(TypedDict):
    batch_id: int
    status: str
    items: int
    steps: dict[str, dict[str, int]]
    credits: dict[str, Credits]
    """Clay step -> items sent, de-duplicated and reused."""
    failed: list[FailedState]
    controls: BatchControls
    """Paused, the steps the circuit breaker paused, and the batch's control history."""


def batch_summary(conn: Connection, batch_id: int) -> BatchSummary:
    """Status, counts per step (in pipeline order) and the first failed states of the batch;
    :class:`NotFoundError` when there is no such batch."""
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
        controls=batch_controls_read(conn, batch_id),
    )
