"""Batches as the catalog lists them: who launched what over which upload, and its steps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

from sqlalchemy import Connection, func, select
from sqlalchemy.sql.elements import ColumnElement

from enrichflow.catalog.uploads import same_file_uploads
from enrichflow.db.models import Batch, BatchStep, Client, RawUpload, WorkflowState
from enrichflow.db.states import status_in
from enrichflow.states import BatchStatus, Status

__all__ = [
    "BatchListRow",
    "BatchPage",
    "BatchRow",
    "BatchStepRow",
    "batch_exists",
    "batch_get",
    "batch_steps_list",
    "batches_list",
    "batches_of_upload",
    "batches_page",
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
    paused: str | None
    """Why a running batch sends nothing: ``paused`` (by an operator), ``step paused`` (the
    circuit breaker stopped one of its steps), or None."""


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
        Batch.paused_at,
        select(BatchStep.batch_id)
        .where(BatchStep.batch_id == Batch.id, BatchStep.paused_reason.is_not(None))
        .exists()
        .label("step_paused"),
    ).join(Client, Client.id == Batch.client_id)


def _paused(r: Any) -> str | None:
    if r.status != BatchStatus.RUNNING.value:
        return None
    if r.paused_at is not None:
        return "paused"
    return "step paused" if r.step_paused else None


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
        paused=_paused(r),
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


class BatchListRow(BatchRow):
    """A batch as the batches list shows it: its file, size of its pipeline and its counts."""

    filename: str | None
    step_count: int
    failed: int
    finished_states: int
    """Completed and skipped states; counted only while the batch runs (a finished batch has
    no state left to do)."""


@dataclass(frozen=True, slots=True)
class BatchPage:
    """One page of batches, newest first, and the keys of the pages around it (None: none)."""

    rows: list[BatchListRow]
    older: int | None
    """Pass as ``before`` for the next (older) page."""
    newer: int | None
    """Pass as ``after`` for the previous (newer) page."""


def _counts(conn: Connection, ids: list[int], statuses: tuple[Status, ...]) -> dict[int, int]:
    """States of each batch in ``statuses``, for a page of batches (one grouped statement)."""
    if not ids:
        return {}
    rows = conn.execute(
        select(WorkflowState.batch_id, func.count())
        .where(
            WorkflowState.batch_id.in_(ids),
            status_in(*statuses),
        )
        .group_by(WorkflowState.batch_id)
    )
    return {int(batch_id): int(n) for batch_id, n in rows}


def batches_page(
    conn: Connection,
    *,
    status: str | None = None,
    client_id: int | None = None,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> BatchPage:
    """A page of batches newest first, by keyset on the id (``before``: older than it;
    ``after``: newer than it), filtered by status and client; each with its upload's file
    name, its failed states and, while it runs, its finished states."""
    query = (
        _query()
        .add_columns(RawUpload.filename)
        .outerjoin(RawUpload, RawUpload.id == Batch.upload_id)
    )
    if status is not None:
        query = query.where(Batch.status == status)
    if client_id is not None:
        query = query.where(Batch.client_id == client_id)
    if after is not None:
        query = query.where(Batch.id > after).order_by(Batch.id.asc())
    else:
        if before is not None:
            query = query.where(Batch.id < before)
        query = query.order_by(Batch.id.desc())
    found = list(conn.execute(query.limit(limit + 1)))
    more = len(found) > limit
    found = found[:limit]
    if after is not None:
        found.reverse()
    ids = [int(r.id) for r in found]
    steps = (
        dict(
            conn.execute(
                select(BatchStep.batch_id, func.count())
                .where(BatchStep.batch_id.in_(ids))
                .group_by(BatchStep.batch_id)
            ).all()
        )
        if ids
        else {}
    )
    failed = _counts(conn, ids, (Status.FAILED,))
    running = [int(r.id) for r in found if r.status == BatchStatus.RUNNING.value]
    finished = _counts(conn, running, (Status.COMPLETED, Status.SKIPPED))
    rows = [
        BatchListRow(
            **_row(r),
            filename=r.filename,
            step_count=int(steps.get(r.id, 0)),
            failed=failed.get(int(r.id), 0),
            finished_states=finished.get(int(r.id), 0),
        )
        for r in found
    ]
    if after is None:
        has_older = more
        has_newer = bool(ids) and _exists(conn, Batch.id > max(ids), status, client_id)
    else:
        has_newer = more
        has_older = bool(ids) and _exists(conn, Batch.id < min(ids), status, client_id)
    return BatchPage(
        rows,
        older=min(ids) if has_older else None,
        newer=max(ids) if has_newer else None,
    )


def _exists(
    conn: Connection, where: ColumnElement[bool], status: str | None, client_id: int | None
) -> bool:
    query = select(Batch.id).where(where)
    if status is not None:
        query = query.where(Batch.status == status)
    if client_id is not None:
        query = query.where(Batch.client_id == client_id)
    return conn.execute(query.limit(1)).first() is not None


def batches_of_upload(conn: Connection, upload_id: int) -> list[BatchRow]:
    """Every batch launched over the upload or over another upload of the same file, oldest
    first: launching it again is told of them (reuse spares what they paid Clay for, not
    ``--fresh``, and not for another client)."""
    query = _query().where(Batch.upload_id.in_(same_file_uploads(upload_id))).order_by(Batch.id)
    return [_row(r) for r in conn.execute(query)]
