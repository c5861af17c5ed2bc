"""The SQLite forms of the state statements whose two dialects differ.

The runner's per-chunk statements are written out as text: building and caching a SQLAlchemy
expression costs more per state than the statement itself. SQLite has no multi-row
``RETURNING`` worth using here either: Python's sqlite3 steps such a result one row per C call,
each giving up and re-taking the GIL the runner threads compete for, all inside the writer
lock. So claims are read as one aggregated JSON row and then updated by id; ``BEGIN
IMMEDIATE`` keeps other writers out between the two. The status literals match the partial
indexes' predicates.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, select, tuple_, update

from enrichflow.db import jsoncodec
from enrichflow.db.dialect import id_in, json_each, sqlite_rows_per_statement
from enrichflow.db.states.base import NEW_STATE_COLUMNS, Claim, ws
from enrichflow.db.states.transition import status_unchanged, transition
from enrichflow.states import Status

CLAIM_READ = (
    "SELECT json_group_array(json_array(id, batch_id, item_id, step_index, step_name, "
    "attempt + 1)) FROM workflow_states WHERE id IN (SELECT id FROM workflow_states "
    "WHERE batch_id = ? AND step_index = ? AND status = 'PENDING' AND not_before <= ? "
    "ORDER BY not_before, id LIMIT ?)"
)
CLAIM_UPDATE = (
    "UPDATE workflow_states SET status = ?, attempt = attempt + 1, lease_until = ?, "
    "updated_at = ? WHERE id IN (SELECT value FROM json_each(?))"
)
FENCED = (
    "id IN (SELECT value ->> 0 FROM json_each(?1)) AND (id, attempt) IN "
    "(SELECT value ->> 0, value ->> 1 FROM json_each(?1)) AND status = 'IN_PROGRESS'"
)
"""The fence of a running claim, with the claims' ``[[state_id, attempt], ...]`` as
parameter 1."""
CREATE_NEXT = (
    f"INSERT INTO workflow_states ({', '.join(NEW_STATE_COLUMNS)}, lease_until) "
    "SELECT prev.batch_id, prev.item_id, s.step_name, s.position, ?1, ?2, 0, ?3, ?3, ?3, ?4 "
    "FROM workflow_states AS prev JOIN batch_steps AS s ON s.batch_id = prev.batch_id "
    "AND s.position = prev.step_index + 1 WHERE prev.id IN (SELECT value FROM json_each(?5)) "
    "ON CONFLICT DO NOTHING"
)
CLAIMS_ABOVE = (
    "SELECT json_group_array(json_array(id, batch_id, item_id, step_index, step_name, attempt)) "
    "FROM workflow_states WHERE id > ?"
)


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
    """PENDING -> ``status`` (QUEUED or IN_PROGRESS) for up to ``limit`` runnable states.

    ``IN`` looks rows up by rowid; the attempt is read as it will be once the update has run.
    """
    found = conn.exec_driver_sql(CLAIM_READ, (batch_id, step_index, now, limit)).scalar_one()
    rows: list[list[Any]] = jsoncodec.loads(found)
    if rows:
        ids = jsoncodec.dumps([r[0] for r in rows])
        conn.exec_driver_sql(CLAIM_UPDATE, (status.value, now + lease_ms, now, ids))
    return list(map(Claim._make, rows))


@status_unchanged
def claims_match(claims: Sequence[Claim]) -> ColumnElement[bool]:
    """``(id, attempt)`` matches one of the claims: the pairs travel as one JSON parameter;
    the scalar IN lets SQLite look rows up by rowid (the row-value IN alone scans the table)."""
    pairs = json_each([[c.state_id, c.attempt] for c in claims])
    first, second = (
        func.json_extract(pairs.c.value, "$[0]"),
        func.json_extract(pairs.c.value, "$[1]"),
    )
    return and_(
        ws.c.id.in_(select(first)),
        tuple_(ws.c.id, ws.c.attempt).in_(select(first, second)),
    )


@transition(Status.IN_PROGRESS, (Status.IN_PROGRESS, Status.COMPLETED, Status.SKIPPED))
def states_update_fenced(
    conn: Connection, claims: Sequence[Claim], values: dict[str, Any]
) -> set[int]:
    """IN_PROGRESS -> ``values`` for the claims whose attempt still runs; the ids it changed.

    Usually every claim is still ours, so the update runs at once under a savepoint and only
    a count tells which case it is; when some claim was taken back meanwhile, the savepoint is
    rolled back and the winners are read first, then updated by id. Exact either way: ``BEGIN
    IMMEDIATE`` keeps other writers out until commit.
    """
    pairs = jsoncodec.dumps([[c.state_id, c.attempt] for c in claims])
    sets = ", ".join(f"{name} = ?{at}" for at, name in enumerate(values, 2))
    update_sql = f"UPDATE workflow_states SET {sets} WHERE {FENCED}"
    savepoint = conn.begin_nested()
    if conn.exec_driver_sql(update_sql, (pairs, *values.values())).rowcount == len(claims):
        savepoint.commit()
        return {c.state_id for c in claims}
    savepoint.rollback()
    found = conn.exec_driver_sql(
        f"SELECT json_group_array(id) FROM workflow_states WHERE {FENCED}", (pairs,)
    ).scalar_one()
    ids: list[int] = jsoncodec.loads(found)
    if ids:
        conn.execute(update(ws).where(id_in(conn, ws.c.id, ids)).values(**values))
    return set(ids)


@transition(None, (Status.PENDING, Status.IN_PROGRESS))
def states_create_next(
    conn: Connection, state_ids: Sequence[int], now: int, claim_lease_ms: int | None
) -> list[Claim]:
    """-> PENDING (or IN_PROGRESS, claimed by the caller): the next step's state of each
    finished state."""
    ids = jsoncodec.dumps(list(state_ids))
    if claim_lease_ms is None:
        conn.exec_driver_sql(CREATE_NEXT, (Status.PENDING.value, 0, now, None, ids))
        return []
    # The new rows are the ids above the largest before the insert: SQLite gives an INTEGER
    # PRIMARY KEY max(rowid) + 1, and the write transaction keeps other writers out.
    largest = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM workflow_states").scalar()
    params = (Status.IN_PROGRESS.value, 1, now, now + claim_lease_ms, ids)
    conn.exec_driver_sql(CREATE_NEXT, params)
    found = conn.exec_driver_sql(CLAIMS_ABOVE, (largest,)).scalar_one()
    return list(map(Claim._make, jsoncodec.loads(found)))


@lru_cache(maxsize=16)
def _results_insert_sql(rows: int) -> str:
    return (
        "INSERT INTO enrichment_results (batch_id, item_id, step_name, payload, created_at) "
        f"VALUES {', '.join(['(?, ?, ?, ?, ?)'] * rows)} ON CONFLICT DO NOTHING"
    )


@status_unchanged
def results_insert(
    conn: Connection, rows: Sequence[tuple[int, int, str, dict[str, Any]]], now: int
) -> None:
    """Store results as multi-row ``VALUES`` statements, each payload written to JSON text here
    and bound as it is (cheaper than having SQLite unpack and re-parse one JSON array)."""
    dumps = jsoncodec.dumps
    size = min(len(rows), sqlite_rows_per_statement(conn, 5))
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        params: list[Any] = []
        for batch_id, item_id, step_name, payload in part:
            params += (batch_id, item_id, step_name, dumps(payload), now)
        conn.exec_driver_sql(_results_insert_sql(len(part)), tuple(params))
