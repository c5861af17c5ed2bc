"""Creating states: the first step's at launch, the next step's when a state finishes (inline
by the runner, or by the sequencer for states finished elsewhere)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, Connection, String, insert, literal, select, update

from enrichflow.db.engine import is_postgres
from enrichflow.db.models import BatchItem
from enrichflow.db.states import postgres, sqlite
from enrichflow.db.states.base import FINISHED, NEW_STATE_COLUMNS, Claim, for_claim, status_in, ws
from enrichflow.db.states.transition import transition
from enrichflow.states import Status


@transition(None, Status.PENDING)
def states_create_first(
    conn: Connection, batch_id: int, step_name: str, now: int, item_ids: Any = None
) -> int:
    """-> PENDING: the first step's state of every item of the batch, in one statement; how many.

    ``item_ids``: a selectable whose ``id`` column gives the items (on Postgres, launch passes
    the items' own ``INSERT ... RETURNING``, so the new items are never read back); by default
    every item of the batch.
    """
    fixed = (
        literal(step_name, String),
        literal(0),
        literal(Status.PENDING.value, String),
        literal(0),
        literal(0),
        literal(now, BigInteger),
        literal(now, BigInteger),
        literal(now, BigInteger),
    )
    if item_ids is None:
        source = select(BatchItem.batch_id, BatchItem.id, *fixed).where(
            BatchItem.batch_id == batch_id
        )
    else:
        source = select(literal(batch_id, BigInteger), item_ids.c.id, *fixed)
    stmt = insert(ws).from_select(NEW_STATE_COLUMNS, source)
    return int(conn.execute(stmt, execution_options={"preserve_rowcount": True}).rowcount)


@transition(None, (Status.PENDING, Status.IN_PROGRESS))
def states_create_next(
    conn: Connection, state_ids: Sequence[int], now: int, claim_lease_ms: int | None = None
) -> list[Claim]:
    """-> PENDING: the next step's state of each finished state (none after the last step); with
    ``claim_lease_ms``, -> IN_PROGRESS already claimed by the caller, returned as claims."""
    if is_postgres(conn):
        return postgres.states_create_next(conn, state_ids, now, claim_lease_ms)
    return sqlite.states_create_next(conn, state_ids, now, claim_lease_ms)


@transition(None, Status.PENDING)
def states_advance(conn: Connection, now: int, limit: int = 5000) -> int:
    """-> PENDING: the sequencer creates the next step's state of finished states not yet advanced.

    Marking ``advanced_at`` and inserting happen in one transaction, so running it twice (or
    in two conductors at once) never creates anything twice; the unique key backs that up.
    """
    page = for_claim(
        conn,
        select(ws.c.id)
        .where(status_in(*FINISHED), ws.c.advanced_at.is_(None))
        .order_by(ws.c.batch_id, ws.c.id)  # the order of ix_workflow_states_unadvanced
        .limit(limit),
    )
    ids = list(conn.execute(page).scalars().all())
    if not ids:
        return 0
    marked = list(
        conn.execute(
            update(ws)
            .where(ws.c.id.in_(ids), ws.c.advanced_at.is_(None))
            .values(advanced_at=now)
            .returning(ws.c.id)
        )
        .scalars()
        .all()
    )
    if marked:
        states_create_next(conn, marked, now)
    return len(marked)
