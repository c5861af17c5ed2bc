"""Batches as the catalog lists them: who launched what over which upload, and its steps."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, TypedDict

from sqlalchemy import Connection, select

from enrichflow.db.models import Batch, BatchStep, Client

__all__ = [
    "BatchRow",
    "BatchStepRow",
    "batch_exists",
    "batch_get",
    "batch_steps_list",
    "batches_list",
]

LISTED = 200
"""How many batches a listing shows, newest first."""


class BatchRow(TypedDict):
    id: int
    client_id: int
    client_name: str
    workstream: str
    upload_id: int | None
    pipeline_name: str | None
    status: str
    item_count: int
    created_at: datetime | None
    finished_at: datetime | None


class BatchStepRow(NamedTuple):
    name: str
    type: str


def _query() -> Any:
    return select(
        Batch.id,
        Batch.client_id,
        Client.name.label("client_name"),
        Batch.workstream_slug,
        Batch.upload_id,
        Batch.pipeline_name,
        Batch.status,
        Batch.item_count,
        Batch.created_at,
        Batch.finished_at,
    ).join(Client, Client.id == Batch.client_id)


def _row(r: Any) -> BatchRow:
    return BatchRow(
        id=r.id,
        client_id=r.client_id,
        client_name=r.client_name,
        workstream=r.workstream_slug,
        upload_id=r.upload_id,
        pipeline_name=r.pipeline_name,
        status=r.status,
        item_count=r.item_count,
        created_at=r.created_at,
        finished_at=r.finished_at,
    )


def batches_list(conn: Connection, client_id: int | None = None) -> list[BatchRow]:
    """The newest batches (of the client), newest first."""
    query = _query().order_by(Batch.id.desc()).limit(LISTED)
    if client_id is not None:
        query = query.where(Batch.client_id == client_id)
    return [_row(r) for r in conn.execute(query)]


def batch_get(conn: Connection, batch_id: int) -> BatchRow | None:
    """The batch ``batch_id``, or None."""
    r = conn.execute(_query().where(Batch.id == batch_id)).first()
    return None if r is None else _row(r)


def batch_exists(conn: Connection, batch_id: int) -> bool:
    return conn.execute(select(Batch.id).where(Batch.id == batch_id)).first() is not None


def batch_steps_list(conn: Connection, batch_id: int) -> list[BatchStepRow]:
    """The batch's steps in pipeline order (its snapshot, not today's registry)."""
    return [
        BatchStepRow(name, kind)
        for name, kind in conn.execute(
            select(BatchStep.step_name, BatchStep.type)
            .where(BatchStep.batch_id == batch_id)
            .order_by(BatchStep.position)
        )
    ]
