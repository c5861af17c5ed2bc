"""The Postgres forms of the state statements whose two dialects differ.

Lists travel as one parameter each (an array literal, or one JSON array), since psycopg's
per-element adaptation of a Python list costs more than the statement; several conductors may
claim side by side (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    Row,
    String,
    and_,
    func,
    literal,
    select,
    text,
    update,
)

from enrichflow.db import jsoncodec
from enrichflow.db.dialect import id_in, insert_ignore, pg_array
from enrichflow.db.states.base import (
    CLAIM_COLUMNS,
    NEW_STATE_COLUMNS,
    Claim,
    bs,
    for_claim,
    status_in,
    ws,
)
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
    status: Status,
) -> list[Claim]:
    """PENDING -> ``status`` (QUEUED or IN_PROGRESS) for up to ``limit`` runnable states."""
    candidates = for_claim(
        conn,
        select(ws.c.id)
        .where(
            ws.c.batch_id == batch_id,
            ws.c.step_index == step_index,
            status_in(Status.PENDING),
            ws.c.not_before <= now,
        )
        .order_by(ws.c.not_before, ws.c.id)
        .limit(limit),
    )
    # A CTE: inside ``id IN (subquery)`` Postgres may re-run a LIMIT ... SKIP LOCKED subquery
    # per row and claim more than ``limit`` states.
    chosen = candidates.cte("candidates")
    stmt = (
        update(ws)
        .where(ws.c.id == chosen.c.id, ws.c.status == Status.PENDING.value)
        .values(
            status=status.value,
            attempt=ws.c.attempt + 1,
            lease_until=now + lease_ms,
            updated_at=now,
        )
        .returning(*CLAIM_COLUMNS)
    )
    return list(map(Claim._make, conn.execute(stmt).all()))


@status_unchanged
def claims_match(claims: Sequence[Claim]) -> ColumnElement[bool]:
    """``(id, attempt)`` matches one of the claims, joined from two unnested arrays: Postgres
    plans a long row-value IN list as a chain of ORs."""
    pairs = (
        func.unnest(
            pg_array([c.state_id for c in claims], BigInteger),
            pg_array([c.attempt for c in claims], Integer),
        )
        .table_valued("sid", "att")
        .render_derived()
    )
    return and_(ws.c.id == pairs.c.sid, ws.c.attempt == pairs.c.att)


@transition(Status.IN_PROGRESS, (Status.IN_PROGRESS, Status.COMPLETED, Status.SKIPPED))
def states_update_fenced(
    conn: Connection, claims: Sequence[Claim], values: dict[str, Any]
) -> set[int]:
    """IN_PROGRESS -> ``values`` for the claims whose attempt still runs; the ids it changed."""
    fence = and_(claims_match(claims), ws.c.status == Status.IN_PROGRESS.value)
    stmt = update(ws).where(fence).values(**values).returning(ws.c.id)
    return set(conn.execute(stmt).scalars().all())


@transition(None, (Status.PENDING, Status.IN_PROGRESS))
def states_create_next(
    conn: Connection, state_ids: Sequence[int], now: int, claim_lease_ms: int | None
) -> list[Claim]:
    """-> PENDING (or IN_PROGRESS, claimed by the caller): the next step's state of each
    finished state."""
    prev = ws.alias("prev")
    claimed = claim_lease_ms is not None
    columns = NEW_STATE_COLUMNS + (["lease_until"] if claimed else [])
    lease = [literal(now + claim_lease_ms, BigInteger)] if claim_lease_ms is not None else []
    source = (
        select(
            prev.c.batch_id,
            prev.c.item_id,
            bs.c.step_name,
            bs.c.position,
            literal((Status.IN_PROGRESS if claimed else Status.PENDING).value, String),
            literal(1 if claimed else 0),
            literal(0),
            literal(now, BigInteger),
            literal(now, BigInteger),
            literal(now, BigInteger),
            *lease,
        )
        .select_from(
            prev.join(
                bs, and_(bs.c.batch_id == prev.c.batch_id, bs.c.position == prev.c.step_index + 1)
            )
        )
        .where(id_in(conn, prev.c.id, state_ids))
    )
    stmt = insert_ignore(conn, ws).from_select(columns, source)
    if not claimed:
        conn.execute(stmt)
        return []
    return list(map(Claim._make, conn.execute(stmt.returning(*CLAIM_COLUMNS)).all()))


_RESULTS_INSERT = text(
    "INSERT INTO enrichment_results (batch_id, item_id, step_name, payload, created_at) "
    "SELECT (r->>0)::bigint, (r->>1)::bigint, r->>2, r->3, :now "
    "FROM jsonb_array_elements(CAST(:rows AS JSONB)) AS r "
    "ON CONFLICT (item_id, step_name) DO NOTHING"
)


@status_unchanged
def results_insert(
    conn: Connection, rows: Sequence[tuple[int, int, str, dict[str, Any]]], now: int
) -> None:
    """Store results from one JSON parameter unpacked by ``jsonb_array_elements``, which costs
    less Python than any per-row form."""
    conn.execute(_RESULTS_INSERT, {"rows": jsoncodec.dumps(rows), "now": now})


_CALLBACKS_LAND = text(
    # The rows are looked up by primary key (id = ANY), each callback's attempt and payload
    # found by its position in the arrays. Nothing else may drive the plan: with the stale
    # statistics of a freshly created batch, the planner otherwise scans the batch's states by
    # status (a join to the arrays, the status indexes), which grows with the batch. So the
    # status test is written "IS TRUE" (not indexable) and the step-type check is a scalar
    # subquery (not pulled up into a join).
    """
WITH won AS (
    UPDATE workflow_states AS w
    SET status = 'COMPLETED', lease_until = NULL, error = NULL, error_class = NULL,
        updated_at = :now
    WHERE w.id = ANY(CAST(:ids AS BIGINT[]))
      AND w.attempt >= (CAST(:atts AS INTEGER[]))[array_position(CAST(:ids AS BIGINT[]), w.id)]
      AND (w.status = ANY(CAST(:completable AS VARCHAR[]))) IS TRUE
      AND (SELECT b.type FROM batch_steps AS b
           WHERE b.batch_id = w.batch_id AND b.position = w.step_index) = 'ASYNC'
      AND (SELECT bt.status FROM batches AS bt WHERE bt.id = w.batch_id) <> 'CANCELLED'
    RETURNING w.id, w.batch_id, w.item_id, w.step_name, w.step_index
), stored AS (
    INSERT INTO enrichment_results (batch_id, item_id, step_name, payload, created_at)
    SELECT batch_id, item_id, step_name,
           CAST(:payloads AS JSONB) -> (array_position(CAST(:ids AS BIGINT[]), won.id) - 1), :now
    FROM won
    ON CONFLICT (item_id, step_name) DO NOTHING
), reopened AS (
    UPDATE batches SET status = 'RUNNING', finished_at = NULL
    WHERE id IN (SELECT batch_id FROM won) AND status <> 'RUNNING'
)
SELECT won.id, won.batch_id, won.step_index,
       EXISTS (SELECT 1 FROM workflow_states AS f
               WHERE f.batch_id = won.batch_id AND f.waiting_on = won.id) AS leads
FROM won
"""
)

_WHY_NOT = text(
    """
SELECT w.id, w.status, w.attempt, b.type, bt.status
FROM workflow_states AS w
JOIN batch_steps AS b ON b.batch_id = w.batch_id AND b.position = w.step_index
JOIN batches AS bt ON bt.id = w.batch_id
WHERE w.id = ANY(CAST(:ids AS BIGINT[]))
"""
)


def _id_array(ids: Sequence[int]) -> str:
    return "{" + ",".join(str(int(i)) for i in ids) + "}"


@transition((Status.PENDING, Status.QUEUED, Status.IN_PROGRESS, Status.FAILED), Status.COMPLETED)
def callbacks_land(
    conn: Connection,
    callbacks: Sequence[tuple[int, int, dict[str, Any]]],
    completable: Sequence[str],
    now: int,
) -> Sequence[Row[Any]]:
    """``completable`` -> COMPLETED for callbacks of distinct states, fenced by attempt, with
    their result rows and their batches re-opened, in one statement; the rows it completed
    (``id, batch_id, step_index, leads``: whether followers wait on it)."""
    return conn.execute(
        _CALLBACKS_LAND,
        {
            "ids": _id_array([c[0] for c in callbacks]),
            "atts": _id_array([c[1] for c in callbacks]),
            "payloads": jsoncodec.dumps([c[2] for c in callbacks]),
            "completable": list(completable),
            "now": now,
        },
    ).all()


@status_unchanged
def states_why_not(
    conn: Connection, state_ids: Sequence[int]
) -> dict[int, tuple[str, int, str, str]]:
    """state id -> (status, attempt, step type, batch status) of the given states that exist."""
    return {
        int(sid): (status, attempt, step_type, batch_status)
        for sid, status, attempt, step_type, batch_status in conn.execute(
            _WHY_NOT, {"ids": _id_array(state_ids)}
        )
    }
