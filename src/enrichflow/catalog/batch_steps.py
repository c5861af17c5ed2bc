"""A batch's snapshot of its steps (``batch_steps`` and ``batches.blueprint``).

A launch copies each workflow's options into the batch, so editing the registry changes only
later batches. :func:`batch_step_options_refresh` copies a step's current options into one
batch, checked like any option change, so a corrected option serves that batch's retries.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from enrichflow.catalog.registry import registry_get
from enrichflow.catalog.validation import workflow_options_check
from enrichflow.db.models import Batch, BatchStep
from enrichflow.errors import ConfigError, NotFoundError

__all__ = ["batch_step_options_refresh"]


def batch_step_options_refresh(conn: Connection, batch_id: int, step: str) -> dict[str, Any]:
    """Replace the batch's snapshot of ``step``'s options (and the limits derived from them)
    with the registry's current ones; the options now in force. :class:`NotFoundError` for an
    unknown batch or step, :class:`ConfigError` naming the key when the options could not run
    (nothing is written then)."""
    batch = conn.execute(
        select(Batch.workstream_slug, Batch.blueprint).where(Batch.id == batch_id)
    ).first()
    if batch is None:
        raise NotFoundError(f"batch {batch_id} does not exist")
    workstream, blueprint = batch
    snapshot = conn.execute(
        select(BatchStep.position, BatchStep.handler, BatchStep.type).where(
            BatchStep.batch_id == batch_id, BatchStep.step_name == step
        )
    ).first()
    if snapshot is None:
        raise NotFoundError(f"batch {batch_id} has no step {step!r}")
    row = registry_get(conn, step, workstream)
    if (row.handler, row.type) != (snapshot.handler, snapshot.type):
        raise ConfigError(
            f"workflow {step!r} is now a {row.type} step of handler {row.handler!r}, not the "
            f"{snapshot.type} step of handler {snapshot.handler!r} batch {batch_id} was launched "
            "with; launch a new batch instead"
        )
    config = dict(row.config)
    limits = workflow_options_check(row.handler, config, step, workstream)
    conn.execute(
        update(BatchStep)
        .where(BatchStep.batch_id == batch_id, BatchStep.position == snapshot.position)
        .values(**limits, config=config)
    )
    steps = [dict(s) for s in blueprint or []]
    for entry in steps:
        if entry.get("step_name") == step:
            entry.update(limits, config=config)
    conn.execute(update(Batch).where(Batch.id == batch_id).values(blueprint=steps))
    return config
