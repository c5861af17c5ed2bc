"""Claiming: the dispatcher leases runnable states to an executor, the runner starts them and
keeps their leases alive."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select, update

from enrichflow.db.engine import is_postgres
from enrichflow.db.states import postgres, sqlite
from enrichflow.db.states.base import CLAIM_COLUMNS, Claim, ws
from enrichflow.db.states.fence import claims_match
from enrichflow.db.states.transition import status_unchanged, transition
from enrichflow.states import Status


@transition(Status.PENDING, (Status.QUEUED, Status.IN_PROGRESS))
def states_claim(
    conn: Connection,
    batch_id: int,
    step_index: int,
    limit: int,
    lease_ms: int,
    now: int,
    start: bool = False,
) -> list[Claim]:
    """PENDING -> QUEUED for up to ``limit`` runnable states of one step; attempt + 1.

    ``start=True`` is for an executor that runs a chunk the moment it is claimed (the local
    one): the states go straight to IN_PROGRESS, saving a second write per state.
    """
    status = Status.IN_PROGRESS if start else Status.QUEUED
    if is_postgres(conn):
        return postgres.states_claim(conn, batch_id, step_index, limit, lease_ms, now, status)
    return sqlite.states_claim(conn, batch_id, step_index, limit, lease_ms, now, status)


@transition(Status.QUEUED, Status.IN_PROGRESS)
def states_start(conn: Connection, claims: Sequence[Claim], lease_ms: int, now: int) -> set[int]:
    """QUEUED -> IN_PROGRESS for the claims still ours; returns their state ids."""
    if not claims:
        return set()
    stmt = (
        update(ws)
        .where(
            claims_match(conn, claims),
            ws.c.status == Status.QUEUED.value,
        )
        .values(status=Status.IN_PROGRESS.value, lease_until=now + lease_ms, updated_at=now)
        .returning(ws.c.id)
    )
    return set(conn.execute(stmt).scalars().all())


@transition(Status.IN_PROGRESS, Status.IN_PROGRESS)
def states_heartbeat(conn: Connection, claims: Sequence[Claim], lease_ms: int, now: int) -> int:
    """IN_PROGRESS -> IN_PROGRESS with a renewed lease, so the reaper leaves a live runner alone."""
    if not claims:
        return 0
    stmt = (
        update(ws)
        .where(
            claims_match(conn, claims),
            ws.c.status == Status.IN_PROGRESS.value,
        )
        .values(lease_until=now + lease_ms, updated_at=now)
    )
    return conn.execute(stmt).rowcount


@status_unchanged
def claims_load(conn: Connection, state_ids: Sequence[int]) -> list[Claim]:
    """The claims of ``state_ids`` still QUEUED, at their current attempt: what a remote worker
    was handed (the states stay QUEUED until :func:`states_start`)."""
    rows = conn.execute(
        select(*CLAIM_COLUMNS)
        .where(ws.c.id.in_(list(state_ids)), ws.c.status == Status.QUEUED.value)
        .order_by(ws.c.id)
    ).all()
    return [Claim(*row) for row in rows]
