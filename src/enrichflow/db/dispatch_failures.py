"""A chunk that could not be handed to a remote executor: its states go back, set-based.

When ``spawn`` raises (no credentials, function not deployed, network), the chunk's claims are
still QUEUED with the attempt the dispatcher gave them. One statement moves them, fenced by
(id, attempt, QUEUED) so a state the reaper or a runner already moved is left alone, to
PENDING with the reaper's backoff (:func:`enrichflow.db.queries.backoff_ms_sql`) while the
attempt budget lasts and to FAILED after, storing the error either way.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Connection, Table, and_, case, cast, tuple_, update

from enrichflow.db.models import BatchStep, WorkflowState
from enrichflow.db.queries import Claim, backoff_ms_sql
from enrichflow.states import Status

__all__ = ["DispatchFailure", "states_dispatch_failed"]

ws = typing.cast(Table, WorkflowState.__table__)
bs = typing.cast(Table, BatchStep.__table__)


@dataclass(frozen=True, slots=True)
class DispatchFailure:
    retried: int
    failed: int
    stale: int
    """Claims no longer QUEUED at their attempt (someone else moved them): untouched."""


def states_dispatch_failed(
    conn: Connection, claims: Sequence[Claim], error: str, now: int
) -> DispatchFailure:
    """QUEUED -> PENDING (backoff) or FAILED (attempts used up) for ``claims``, with ``error``."""
    if not claims:
        return DispatchFailure(0, 0, 0)
    exhausted = (ws.c.attempt - ws.c.retry_floor) >= bs.c.max_attempts
    delay = backoff_ms_sql(
        ws.c.attempt, ws.c.retry_floor, bs.c.backoff_base_ms, bs.c.backoff_max_ms, ws.c.id
    )
    fence = and_(
        ws.c.id.in_([c.state_id for c in claims]),
        tuple_(ws.c.id, ws.c.attempt).in_([(c.state_id, c.attempt) for c in claims]),
        ws.c.status == Status.QUEUED.value,
        bs.c.batch_id == ws.c.batch_id,
        bs.c.position == ws.c.step_index,
    )
    stmt = (
        update(ws)
        .where(fence)
        .values(
            status=case((exhausted, Status.FAILED.value), else_=Status.PENDING.value),
            not_before=case((exhausted, ws.c.not_before), else_=cast(now + delay, BigInteger)),
            lease_until=None,
            error=error,
            updated_at=now,
        )
        .returning(ws.c.status)
    )
    statuses = list(conn.execute(stmt).scalars().all())
    failed = sum(1 for s in statuses if s == Status.FAILED.value)
    return DispatchFailure(len(statuses) - failed, failed, len(claims) - len(statuses))
