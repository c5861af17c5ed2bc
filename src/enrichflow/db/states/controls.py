"""The operator's controls on a batch's states: cancel the unfinished ones, re-send the ones
waiting on an external service, and give back the claims a paused step did not run."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, exists, update

from enrichflow.db.states.base import FINISHED, LEASED, Claim, bs, status_in, ws
from enrichflow.db.states.fence import claims_running
from enrichflow.db.states.transition import transition
from enrichflow.states import Status, StepType


@transition((Status.PENDING, Status.QUEUED, Status.IN_PROGRESS), Status.CANCELLED)
def states_cancel(conn: Connection, batch_id: int, now: int) -> int:
    """PENDING / QUEUED / IN_PROGRESS -> CANCELLED for every unfinished state of the batch;
    how many. Its finished states are marked advanced, so no next step is created for them."""
    cancelled = 0
    # One statement per partial index, so each finds its states without a scan of the batch.
    for statuses in ((Status.PENDING,), LEASED):
        cancelled += conn.execute(
            update(ws)
            .where(ws.c.batch_id == batch_id, status_in(*statuses))
            .values(status=Status.CANCELLED.value, lease_until=None, updated_at=now)
        ).rowcount
    conn.execute(
        update(ws)
        .where(ws.c.batch_id == batch_id, status_in(*FINISHED), ws.c.advanced_at.is_(None))
        .values(advanced_at=now)
    )
    return cancelled


@transition(Status.IN_PROGRESS, Status.PENDING)
def states_resend(
    conn: Connection, batch_id: int, step_name: str, sent_before: int, now: int
) -> int:
    """IN_PROGRESS -> PENDING, runnable now with a fresh attempt budget, for the states of an
    ASYNC step that were sent (not de-duplication followers) at or before ``sent_before``;
    how many. The next claim is a new attempt: whichever attempt's callback lands first
    completes the state, the other is a duplicate."""
    is_async = exists().where(
        bs.c.batch_id == ws.c.batch_id,
        bs.c.position == ws.c.step_index,
        bs.c.type == StepType.ASYNC.value,
    )
    return conn.execute(
        update(ws)
        .where(
            ws.c.batch_id == batch_id,
            # the leased-batch partial index's predicate, then the one status wanted
            status_in(*LEASED),
            ws.c.status == Status.IN_PROGRESS.value,
            ws.c.step_name == step_name,
            ws.c.waiting_on.is_(None),
            ws.c.updated_at <= sent_before,
            is_async,
        )
        .values(
            status=Status.PENDING.value,
            retry_floor=ws.c.attempt,
            not_before=now,
            lease_until=None,
            updated_at=now,
        )
    ).rowcount


@transition(Status.IN_PROGRESS, Status.PENDING)
def states_release(conn: Connection, claims: Sequence[Claim], now: int) -> int:
    """IN_PROGRESS -> PENDING for claims a runner gives back unrun (their batch or step was
    paused), with the attempt the claim took taken back: nothing was sent under it, so no
    callback token names it, and its runner writes nothing more for these states."""
    if not claims:
        return 0
    return conn.execute(
        update(ws)
        .where(claims_running(conn, claims))
        .values(
            status=Status.PENDING.value,
            attempt=ws.c.attempt - 1,
            not_before=now,
            lease_until=None,
            updated_at=now,
        )
    ).rowcount
