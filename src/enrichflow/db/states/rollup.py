"""Rolling batches up: a RUNNING batch whose states have nothing left to move is finished."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, case, exists, select, update

from enrichflow.db.states.base import FINISHED, LEASED, batches, status_in, ws
from enrichflow.db.states.transition import status_unchanged
from enrichflow.states import BatchStatus, Status


def _batch_finishable() -> ColumnElement[bool]:
    """A RUNNING batch with nothing left to move: no active state, none waiting to advance.

    One test per partial index (claimable, leased_batch, unadvanced): a single ``status IN``
    over all three would match none of their predicates."""
    this_batch = ws.c.batch_id == batches.c.id
    pending = exists().where(this_batch, status_in(Status.PENDING))
    leased = exists().where(this_batch, status_in(*LEASED))
    unadvanced = exists().where(this_batch, status_in(*FINISHED), ws.c.advanced_at.is_(None))
    return and_(batches.c.status == BatchStatus.RUNNING.value, ~pending, ~leased, ~unadvanced)


@status_unchanged
def batches_rollup(conn: Connection, now_dt: Any) -> int:
    """RUNNING batches with nothing left to move become COMPLETED or COMPLETED_WITH_ERRORS
    (a batch's status; no state's changes)."""
    failed = exists().where(ws.c.batch_id == batches.c.id, status_in(Status.FAILED))
    stmt = (
        update(batches)
        .where(_batch_finishable())
        .values(
            status=case(
                (failed, BatchStatus.COMPLETED_WITH_ERRORS.value), else_=BatchStatus.COMPLETED.value
            ),
            finished_at=now_dt,
        )
    )
    return conn.execute(stmt).rowcount


@status_unchanged
def conductor_work_pending(conn: Connection) -> tuple[bool, bool]:
    """(some state waits to be advanced, some batch can be rolled up): a cheap read that lets
    the conductor skip write transactions that would change nothing, which on SQLite would
    each queue for the single writer behind the runners' group commits."""
    unadvanced = conn.execute(
        select(ws.c.id).where(status_in(*FINISHED), ws.c.advanced_at.is_(None)).limit(1)
    ).first()
    finishable = conn.execute(select(batches.c.id).where(_batch_finishable()).limit(1)).first()
    return unadvanced is not None, finishable is not None
