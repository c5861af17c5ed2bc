"""Every read and write of the state machine, in one place.

Names follow Noun+Verb (``states_claim``, ``states_reap``). Every status change is a
compare-and-set on ``status`` and ``attempt``; every time-dependent query takes ``now``
(epoch ms) so tests step time instead of sleeping. Statements are set-based: one statement
moves a whole chunk, never a Python loop of single-row updates.
"""

from __future__ import annotations

import sqlite3
import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Integer,
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from enrichflow.db import jsoncodec
from enrichflow.db.engine import is_postgres
from enrichflow.db.models import (
    Batch,
    BatchItem,
    BatchStep,
    EnrichmentResult,
    WorkflowState,
)
from enrichflow.states import BatchStatus, Status

ws = typing.cast(Table, WorkflowState.__table__)
bs = typing.cast(Table, BatchStep.__table__)
batches = typing.cast(Table, Batch.__table__)
results = typing.cast(Table, EnrichmentResult.__table__)

# In the order of the partial indexes' predicates in models.py: SQLite matches them literally.
FINISHED = (Status.COMPLETED, Status.SKIPPED)
LEASED = (Status.QUEUED, Status.IN_PROGRESS)


def status_in(*statuses: Status) -> ColumnElement[bool]:
    """``status = 'A'`` / ``status IN ('A', ...)`` with the values written into the SQL.

    The partial indexes the conductor relies on (``WHERE status = 'PENDING'`` ...) are usable
    only when the planner can see the constants: with bound parameters SQLite never picks
    them, and Postgres loses them once psycopg switches to prepared generic plans.
    """
    values: list[ColumnElement[str]] = [literal_column(f"'{s.value}'") for s in statuses]
    return ws.c.status == values[0] if len(values) == 1 else ws.c.status.in_(values)


class Claim(NamedTuple):
    """A state handed to an executor: the attempt number fences every later write.

    A named tuple: a chunk makes a thousand of these, and a frozen dataclass costs several
    times more to build."""

    state_id: int
    batch_id: int
    item_id: int
    step_index: int
    step_name: str
    attempt: int


CLAIM_COLUMNS = (
    ws.c.id,
    ws.c.batch_id,
    ws.c.item_id,
    ws.c.step_index,
    ws.c.step_name,
    ws.c.attempt,
)
"""The columns of a :class:`Claim`, in its order."""


@dataclass(slots=True)
class StepOutcome:
    """What running one claim produced; recorded in groups by :func:`outcomes_record`."""

    claim: Claim
    kind: Status
    """COMPLETED, SKIPPED, IN_PROGRESS (ASYNC sent), PENDING (retry) or FAILED (permanent)."""
    payload: dict[str, Any] | None = None
    error: str | None = None
    meta: dict[str, Any] | None = None
    waiting_on: int | None = None
    """IN_PROGRESS: the de-duplication leader's state this follower waits on."""
    deadline_ms: int | None = None
    retry_after_ms: int = 0


@dataclass(frozen=True, slots=True)
class RecordReport:
    completed: int = 0
    skipped: int = 0
    deferred: int = 0
    retried: int = 0
    failed: int = 0
    stale: int = 0
    answered: int = 0
    """Sends whose callback completed the state before the send itself was recorded (fast
    services): expected, and not stale, although nothing of the send is written either."""
    stale_ids: tuple[int, ...] = field(default=())
    chained: tuple[Claim, ...] = field(default=())
    """Next-step states created already claimed by the caller (see :func:`outcomes_record`)."""


def insert_ignore(conn: Connection, table: Any) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the connection's dialect."""
    if is_postgres(conn):
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def _for_claim(conn: Connection, stmt: Any) -> Any:
    """Postgres lets several conductors claim side by side; SQLite serialises writers anyway."""
    return stmt.with_for_update(skip_locked=True) if is_postgres(conn) else stmt


def backoff_ms_sql(attempt: Any, retry_floor: Any, base: Any, cap: Any, state_id: Any) -> Any:
    """Exponential backoff with jitter, as SQL, so a whole page of retries is one statement.

    delay = min(base * 2^(n-1), cap) * (0.5 .. 1.5), with n the attempt within the current
    budget; the jitter is a hash of (state, attempt), spreading retries without random().
    """
    n = attempt - retry_floor
    exponent = case((n > 20, 20), (n < 1, 0), else_=n - 1)
    raw = base * literal_column("1").op("<<")(exponent)
    capped = case((raw > cap, cap), else_=raw)
    jitter = 500 + (state_id * 7919 + attempt * 104729) % 1000
    return capped * jitter / 1000


# --------------------------------------------------------------------------- dispatcher


# The SQLite forms of the runner's per-chunk statements are written out: building and
# caching a SQLAlchemy expression cost 1-2 ms per statement, a few microseconds per state
# (measured on the fenced finish of 1,000 claims: 3.6-4.5 µs per state, 2.5 as text).
# ``status = 'PENDING'`` and the other status literals match the partial indexes' predicates.
_SQLITE_CLAIM_READ = (
    "SELECT json_group_array(json_array(id, batch_id, item_id, step_index, step_name, "
    "attempt + 1)) FROM workflow_states WHERE id IN (SELECT id FROM workflow_states "
    "WHERE batch_id = ? AND step_index = ? AND status = 'PENDING' AND not_before <= ? "
    "ORDER BY not_before, id LIMIT ?)"
)
_SQLITE_CLAIM_UPDATE = (
    "UPDATE workflow_states SET status = ?, attempt = attempt + 1, lease_until = ?, "
    "updated_at = ? WHERE id IN (SELECT value FROM json_each(?))"
)
_SQLITE_FENCED = (
    "id IN (SELECT value ->> 0 FROM json_each(?1)) AND (id, attempt) IN "
    "(SELECT value ->> 0, value ->> 1 FROM json_each(?1)) AND status = 'IN_PROGRESS'"
)
"""``_fenced`` with the claims' ``[[state_id, attempt], ...]`` as parameter 1."""


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
    status = (Status.IN_PROGRESS if start else Status.QUEUED).value
    if not is_postgres(conn):
        # Read as one aggregated JSON row, then updated by id (departure 16): Python's sqlite3
        # steps a RETURNING result one row per C call, each giving up and re-taking the GIL
        # the runner threads compete for, all inside the writer lock; ``BEGIN IMMEDIATE``
        # keeps other writers out between the read and the update. ``IN`` looks rows up by
        # rowid. The attempt is read as it will be once the update below has run.
        found = conn.exec_driver_sql(
            _SQLITE_CLAIM_READ, (batch_id, step_index, now, limit)
        ).scalar_one()
        rows: list[list[Any]] = jsoncodec.loads(found)
        if rows:
            ids = jsoncodec.dumps([r[0] for r in rows])
            conn.exec_driver_sql(_SQLITE_CLAIM_UPDATE, (status, now + lease_ms, now, ids))
        return list(map(Claim._make, rows))
    candidates = _for_claim(
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
    # Postgres joins a CTE: inside ``id IN (subquery)`` it may re-run a LIMIT ... SKIP LOCKED
    # subquery per row and claim more than ``limit`` states.
    chosen = candidates.cte("candidates")
    stmt = (
        update(ws)
        .where(ws.c.id == chosen.c.id, ws.c.status == Status.PENDING.value)
        .values(status=status, attempt=ws.c.attempt + 1, lease_until=now + lease_ms, updated_at=now)
        .returning(*CLAIM_COLUMNS)
    )
    return list(map(Claim._make, conn.execute(stmt).all()))


def states_start(conn: Connection, claims: Sequence[Claim], lease_ms: int, now: int) -> set[int]:
    """QUEUED -> IN_PROGRESS for the claims still ours; returns their state ids."""
    if not claims:
        return set()
    stmt = (
        update(ws)
        .where(
            _pairs(conn, claims),
            ws.c.status == Status.QUEUED.value,
        )
        .values(status=Status.IN_PROGRESS.value, lease_until=now + lease_ms, updated_at=now)
        .returning(ws.c.id)
    )
    return set(conn.execute(stmt).scalars().all())


def states_heartbeat(conn: Connection, claims: Sequence[Claim], lease_ms: int, now: int) -> int:
    """Renew the lease of running claims, so the reaper leaves a live runner alone."""
    if not claims:
        return 0
    stmt = (
        update(ws)
        .where(
            _pairs(conn, claims),
            ws.c.status == Status.IN_PROGRESS.value,
        )
        .values(lease_until=now + lease_ms, updated_at=now)
    )
    return conn.execute(stmt).rowcount


# --------------------------------------------------------------------------- runner results


def _pairs(conn: Connection, claims: Iterable[Claim]) -> ColumnElement[bool]:
    """``(id, attempt)`` matches one of the claims.

    Postgres plans a long row-value IN list as a chain of ORs, so there the pairs are joined
    from two unnested arrays instead.
    """
    claims = list(claims)
    if is_postgres(conn):
        pairs = (
            func.unnest(
                _pg_array([c.state_id for c in claims], BigInteger),
                _pg_array([c.attempt for c in claims], Integer),
            )
            .table_valued("sid", "att")
            .render_derived()
        )
        return and_(ws.c.id == pairs.c.sid, ws.c.attempt == pairs.c.att)
    # SQLite: the pairs travel as one JSON parameter; the scalar IN lets it look rows up by
    # rowid (the row-value IN alone scans the table).
    pairs = _json_each(conn, [[c.state_id, c.attempt] for c in claims])
    first, second = (
        func.json_extract(pairs.c.value, "$[0]"),
        func.json_extract(pairs.c.value, "$[1]"),
    )
    return and_(
        ws.c.id.in_(select(first)),
        tuple_(ws.c.id, ws.c.attempt).in_(select(first, second)),
    )


def _fenced(conn: Connection, claims: Iterable[Claim]) -> ColumnElement[bool]:
    return and_(_pairs(conn, claims), ws.c.status == Status.IN_PROGRESS.value)


def _pg_array(values: Iterable[int], item_type: Any) -> Any:
    """An integer array sent as one text parameter (``'1,2,3'``): psycopg dumps a Python list
    element by element, with a regex test each, which cost more than the statement."""
    text_param = bindparam(None, ",".join(map(str, values)), type_=String)
    return cast(func.string_to_array(text_param, ","), postgresql.ARRAY(item_type))


def _json_each(conn: Connection, values: Sequence[Any]) -> Any:
    """SQLite's ``json_each`` over one JSON-encoded parameter: a list of any length costs one
    bind parameter, where an expanding IN costs SQLAlchemy a rendered placeholder per value."""
    return func.json_each(bindparam(None, jsoncodec.dumps(values), type_=String)).table_valued(
        "value"
    )


def _states_update_fenced(
    conn: Connection, claims: Sequence[Claim], values: dict[str, Any]
) -> set[int]:
    """``UPDATE`` the states of ``claims`` whose attempt is still running (fenced); the ids of
    those it changed.

    SQLite (no multi-row ``RETURNING``, departure 16): usually every claim is still ours, so
    the update runs at once under a savepoint and only a short count tells which case it is;
    when some claim was taken back meanwhile, the savepoint is rolled back and the winners are
    read first, then updated by id. Exact either way: ``BEGIN IMMEDIATE`` keeps other writers
    out until commit.
    """
    if is_postgres(conn):
        stmt = update(ws).where(_fenced(conn, claims)).values(**values).returning(ws.c.id)
        return set(conn.execute(stmt).scalars().all())
    pairs = jsoncodec.dumps([[c.state_id, c.attempt] for c in claims])
    sets = ", ".join(f"{name} = ?{at}" for at, name in enumerate(values, 2))
    update_sql = f"UPDATE workflow_states SET {sets} WHERE {_SQLITE_FENCED}"
    savepoint = conn.begin_nested()
    if conn.exec_driver_sql(update_sql, (pairs, *values.values())).rowcount == len(claims):
        savepoint.commit()
        return {c.state_id for c in claims}
    savepoint.rollback()
    found = conn.exec_driver_sql(
        f"SELECT json_group_array(id) FROM workflow_states WHERE {_SQLITE_FENCED}", (pairs,)
    ).scalar_one()
    ids: list[int] = jsoncodec.loads(found)
    if ids:
        conn.execute(update(ws).where(id_in(conn, ws.c.id, ids)).values(**values))
    return set(ids)


def id_in(conn: Connection, column: ColumnElement[Any], ids: Sequence[int]) -> ColumnElement[bool]:
    """``column IN ids`` with one parameter: an array on Postgres, a JSON list on SQLite."""
    if is_postgres(conn):
        return column == any_(_pg_array(ids, BigInteger))
    return column.in_(select(_json_each(conn, list(ids)).c.value))


ResultRow = tuple[int, int, str, dict[str, Any]]
"""(batch id, item id, step name, payload): a plain tuple, which orjson writes as an array
itself (a named tuple went through the encoder's fallback, once per row)."""


def sqlite_rows_per_statement(conn: Connection, columns: int) -> int:
    """How many rows of ``columns`` bound values one SQLite statement may carry (the
    connection's limit on bound values; 32,766 by default since SQLite 3.32)."""
    dbapi = typing.cast(sqlite3.Connection, conn.connection.dbapi_connection)
    return max(1, dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // columns)


@lru_cache(maxsize=16)
def _sqlite_results_insert_sql(rows: int) -> str:
    return (
        "INSERT INTO enrichment_results (batch_id, item_id, step_name, payload, created_at) "
        f"VALUES {', '.join(['(?, ?, ?, ?, ?)'] * rows)} ON CONFLICT DO NOTHING"
    )


def results_insert(conn: Connection, rows: Sequence[ResultRow], now: int) -> None:
    """Store results, ignoring any (item, step) that already has one.

    SQLite: multi-row ``VALUES`` statements, each payload written to JSON text here and bound
    as it is (measured on 1,000 results: 7 µs each for the core step's 800-byte payloads and
    1.6 µs for small ones, against 21 and 3.5 µs when SQLite unpacked one JSON array of the
    rows and re-parsed every payload). Postgres: the rows travel as one JSON parameter
    unpacked by ``jsonb_array_elements``, which costs less Python than any per-row form.
    """
    if not rows:
        return
    if not is_postgres(conn):
        dumps = jsoncodec.dumps
        size = min(len(rows), sqlite_rows_per_statement(conn, 5))
        for start in range(0, len(rows), size):
            part = rows[start : start + size]
            params: list[Any] = []
            for batch_id, item_id, step_name, payload in part:
                params += (batch_id, item_id, step_name, dumps(payload), now)
            conn.exec_driver_sql(_sqlite_results_insert_sql(len(part)), tuple(params))
        return
    conn.execute(
        text(
            "INSERT INTO enrichment_results (batch_id, item_id, step_name, payload, created_at) "
            "SELECT (r->>0)::bigint, (r->>1)::bigint, r->>2, r->3, :now "
            "FROM jsonb_array_elements(CAST(:rows AS JSONB)) AS r "
            "ON CONFLICT (item_id, step_name) DO NOTHING"
        ),
        {"rows": jsoncodec.dumps(rows), "now": now},
    )


def outcomes_record(
    conn: Connection,
    outcomes: Sequence[StepOutcome],
    now: int,
    chain_lease_ms: int | None = None,
) -> RecordReport:
    """Write a group of outcomes in the caller's transaction (group commit).

    Each write is fenced by (state, attempt, IN_PROGRESS): a claim the reaper took back, or
    that a callback already completed, is reported as stale and nothing of it is written.
    Finished states are advanced inline: the next step's state is created in the same
    transaction, so the sequencer only has to pick up states finished elsewhere (callbacks).

    ``chain_lease_ms``: the caller will run the next step of these items itself, at once, so
    their next states are created already claimed (IN_PROGRESS, attempt 1, leased) and
    returned in ``chained``, saving the claim and the trip through the dispatcher.
    """
    by_kind: dict[Status, list[StepOutcome]] = {}
    for outcome in outcomes:
        by_kind.setdefault(outcome.kind, []).append(outcome)
    counts: dict[str, int] = {}
    stale: list[int] = []

    chained: list[Claim] = []
    finished = by_kind.get(Status.COMPLETED, []) + by_kind.get(Status.SKIPPED, [])
    if finished:
        won, chained = _finish(
            conn,
            by_kind.get(Status.COMPLETED, []),
            by_kind.get(Status.SKIPPED, []),
            now,
            chain_lease_ms,
        )
        counts["completed"] = sum(
            1 for o in by_kind.get(Status.COMPLETED, []) if o.claim.state_id in won
        )
        counts["skipped"] = sum(
            1 for o in by_kind.get(Status.SKIPPED, []) if o.claim.state_id in won
        )
        stale += [o.claim.state_id for o in finished if o.claim.state_id not in won]

    deferred = by_kind.get(Status.IN_PROGRESS, [])
    if deferred:
        won = _states_update_fenced(conn, [o.claim for o in deferred], {"updated_at": now})
        rows = [
            {
                "sid": o.claim.state_id,
                "lease": o.deadline_ms,
                "meta": o.meta,
                "leader": o.waiting_on,
                "now": now,
            }
            for o in deferred
            if o.claim.state_id in won
        ]
        if rows:
            conn.execute(
                update(ws)
                .where(ws.c.id == bindparam("sid"), ws.c.status == Status.IN_PROGRESS.value)
                .values(
                    lease_until=bindparam("lease"),
                    meta=bindparam("meta"),
                    waiting_on=bindparam("leader"),
                    updated_at=bindparam("now"),
                ),
                rows,
            )
        counts["deferred"] = len(rows)
        overtaken = [o.claim for o in deferred if o.claim.state_id not in won]
        if overtaken:
            answered = _states_answered(conn, overtaken)
            counts["answered"] = len(answered)
            stale += [c.state_id for c in overtaken if c.state_id not in answered]

    failures = by_kind.get(Status.PENDING, []) + by_kind.get(Status.FAILED, [])
    if failures:
        retried, failed, lost = _fail(conn, failures, now)
        counts["retried"], counts["failed"] = retried, failed
        stale += lost
    return RecordReport(**counts, stale=len(stale), stale_ids=tuple(stale), chained=tuple(chained))


def _states_answered(conn: Connection, claims: Sequence[Claim]) -> set[int]:
    """The claims whose own attempt a callback already completed."""
    stmt = select(ws.c.id).where(_pairs(conn, claims), ws.c.status == Status.COMPLETED.value)
    return set(conn.execute(stmt).scalars().all())


def _finish(
    conn: Connection,
    completed: list[StepOutcome],
    skipped: list[StepOutcome],
    now: int,
    chain_lease_ms: int | None,
) -> tuple[set[int], list[Claim]]:
    won: set[int] = set()
    for status, group in ((Status.COMPLETED, completed), (Status.SKIPPED, skipped)):
        if not group:
            continue
        won |= _states_update_fenced(
            conn,
            [o.claim for o in group],
            {
                "status": status.value,
                "lease_until": None,
                "advanced_at": now,
                "updated_at": now,
                "error": None,
            },
        )
    if not won:
        return won, []
    result_rows: list[ResultRow] = [
        (c.batch_id, c.item_id, c.step_name, o.payload or {})
        for o in completed
        if (c := o.claim).state_id in won
    ]
    results_insert(conn, result_rows, now)
    skip_rows = [
        {"sid": o.claim.state_id, "meta": {"skip_reason": o.error}}
        for o in skipped
        if o.claim.state_id in won
    ]
    if skip_rows:
        conn.execute(
            update(ws).where(ws.c.id == bindparam("sid")).values(meta=bindparam("meta")), skip_rows
        )
    return won, _states_create_next(conn, sorted(won), now, chain_lease_ms)


NEW_STATE_COLUMNS = [
    "batch_id",
    "item_id",
    "step_name",
    "step_index",
    "status",
    "attempt",
    "retry_floor",
    "not_before",
    "created_at",
    "updated_at",
]
"""The columns a new state is inserted with, in the order its SELECT gives them."""


def _states_create_next(
    conn: Connection, state_ids: Sequence[int], now: int, claim_lease_ms: int | None = None
) -> list[Claim]:
    """Create the next step's state for each finished state (no-op after the last step):
    PENDING, or with ``claim_lease_ms`` already claimed by the caller, returned as claims."""
    if not is_postgres(conn):
        return _sqlite_states_create_next(conn, state_ids, now, claim_lease_ms)
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


_SQLITE_CREATE_NEXT = (
    f"INSERT INTO workflow_states ({', '.join(NEW_STATE_COLUMNS)}, lease_until) "
    "SELECT prev.batch_id, prev.item_id, s.step_name, s.position, ?1, ?2, 0, ?3, ?3, ?3, ?4 "
    "FROM workflow_states AS prev JOIN batch_steps AS s ON s.batch_id = prev.batch_id "
    "AND s.position = prev.step_index + 1 WHERE prev.id IN (SELECT value FROM json_each(?5)) "
    "ON CONFLICT DO NOTHING"
)
_SQLITE_CLAIMS_ABOVE = (
    "SELECT json_group_array(json_array(id, batch_id, item_id, step_index, step_name, attempt)) "
    "FROM workflow_states WHERE id > ?"
)


def _sqlite_states_create_next(
    conn: Connection, state_ids: Sequence[int], now: int, claim_lease_ms: int | None
) -> list[Claim]:
    """``_states_create_next`` on SQLite, as text (see ``_SQLITE_CLAIM_READ``)."""
    ids = jsoncodec.dumps(list(state_ids))
    if claim_lease_ms is None:
        conn.exec_driver_sql(_SQLITE_CREATE_NEXT, (Status.PENDING.value, 0, now, None, ids))
        return []
    # The new rows are the ids above the largest before the insert: SQLite gives an INTEGER
    # PRIMARY KEY max(rowid) + 1, and the write transaction keeps other writers out.
    largest = conn.exec_driver_sql("SELECT coalesce(max(id), 0) FROM workflow_states").scalar()
    params = (Status.IN_PROGRESS.value, 1, now, now + claim_lease_ms, ids)
    conn.exec_driver_sql(_SQLITE_CREATE_NEXT, params)
    found = conn.exec_driver_sql(_SQLITE_CLAIMS_ABOVE, (largest,)).scalar_one()
    return list(map(Claim._make, jsoncodec.loads(found)))


def states_create_first(conn: Connection, batch_id: int, step_name: str, now: int) -> None:
    """Launch: a PENDING state of the first step for every item of the batch, in one statement."""
    source = select(
        BatchItem.batch_id,
        BatchItem.id,
        literal(step_name, String),
        literal(0),
        literal(Status.PENDING.value, String),
        literal(0),
        literal(0),
        literal(now),
        literal(now),
        literal(now),
    ).where(BatchItem.batch_id == batch_id)
    conn.execute(insert(ws).from_select(NEW_STATE_COLUMNS, source))


def _retry_update(now: int, error: Any, guard: ColumnElement[bool], extra_delay: Any) -> Any:
    """PENDING with backoff while the attempt budget lasts, FAILED after; error kept either way."""
    exhausted = (ws.c.attempt - ws.c.retry_floor) >= bs.c.max_attempts
    delay = backoff_ms_sql(
        ws.c.attempt, ws.c.retry_floor, bs.c.backoff_base_ms, bs.c.backoff_max_ms, ws.c.id
    )
    delay = case((extra_delay > delay, extra_delay), else_=delay)
    return (
        update(ws)
        .where(guard, bs.c.batch_id == ws.c.batch_id, bs.c.position == ws.c.step_index)
        .values(
            status=case((exhausted, Status.FAILED.value), else_=Status.PENDING.value),
            not_before=case((exhausted, ws.c.not_before), else_=cast(now + delay, BigInteger)),
            lease_until=None,
            error=error,
            updated_at=now,
        )
    )


def _fail(conn: Connection, failures: list[StepOutcome], now: int) -> tuple[int, int, list[int]]:
    fence = and_(
        ws.c.id == bindparam("sid"),
        ws.c.attempt == bindparam("att"),
        ws.c.status == Status.IN_PROGRESS.value,
    )
    won = set(
        conn.execute(
            select(ws.c.id).where(_fenced(conn, (o.claim for o in failures)))
            if not is_postgres(conn)
            else select(ws.c.id).where(_fenced(conn, (o.claim for o in failures))).with_for_update()
        )
        .scalars()
        .all()
    )
    retryable = [o for o in failures if o.kind is Status.PENDING and o.claim.state_id in won]
    permanent = [o for o in failures if o.kind is Status.FAILED and o.claim.state_id in won]
    if retryable:
        conn.execute(
            _retry_update(now, bindparam("err"), fence, bindparam("delay", type_=BigInteger)),
            [
                {
                    "sid": o.claim.state_id,
                    "att": o.claim.attempt,
                    "err": o.error,
                    "delay": o.retry_after_ms,
                }
                for o in retryable
            ],
        )
    if permanent:
        conn.execute(
            update(ws)
            .where(fence)
            .values(
                status=Status.FAILED.value, lease_until=None, error=bindparam("err"), updated_at=now
            ),
            [{"sid": o.claim.state_id, "att": o.claim.attempt, "err": o.error} for o in permanent],
        )
    failed_now = 0
    if retryable:
        failed_now = conn.execute(
            select(func.count())
            .select_from(ws)
            .where(
                ws.c.id.in_([o.claim.state_id for o in retryable]),
                ws.c.status == Status.FAILED.value,
            )
        ).scalar_one()
    lost = [o.claim.state_id for o in failures if o.claim.state_id not in won]
    return len(retryable) - failed_now, len(permanent) + failed_now, lost


# --------------------------------------------------------------------------- sequencer


def states_advance(conn: Connection, now: int, limit: int = 5000) -> int:
    """Sequencer: for finished states not yet advanced, create the next step's state.

    Marking ``advanced_at`` and inserting happen in one transaction, so running it twice (or
    in two conductors at once) never creates anything twice; the unique key backs that up.
    """
    page = _for_claim(
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
        _states_create_next(conn, marked, now)
    return len(marked)


# --------------------------------------------------------------------------- reaper


def states_reap(conn: Connection, now: int, limit: int = 1000) -> int:
    """Take back QUEUED / IN_PROGRESS states whose lease or callback deadline passed.

    Each goes back to PENDING with backoff, or to FAILED when its attempts are used up, with a
    stored error that says which deadline passed.
    """
    page = _for_claim(
        conn,
        select(ws.c.id)
        .where(status_in(*LEASED), ws.c.lease_until < now)
        .order_by(ws.c.lease_until)
        .limit(limit),
    )
    ids = list(conn.execute(page).scalars().all())
    if not ids:
        return 0
    attempt_text = cast(ws.c.attempt, postgresql.TEXT if is_postgres(conn) else sqlite.TEXT)
    seconds_text = cast(
        bs.c.callback_timeout_ms / 1000, postgresql.TEXT if is_postgres(conn) else sqlite.TEXT
    )
    error = case(
        (
            ws.c.status == Status.QUEUED.value,
            "lease expired: no runner started this state (attempt " + attempt_text + ")",
        ),
        (
            bs.c.type == "ASYNC",
            "callback not received within " + seconds_text + " s (attempt " + attempt_text + ")",
        ),
        else_="lease expired: the runner stopped renewing it (crashed or hung) (attempt "
        + attempt_text
        + ")",
    )
    guard = and_(
        ws.c.id.in_(ids),
        ws.c.status.in_([Status.QUEUED.value, Status.IN_PROGRESS.value]),
        ws.c.lease_until < now,
    )
    return conn.execute(_retry_update(now, error, guard, literal_column("0", BigInteger))).rowcount


# --------------------------------------------------------------------------- manual retry


def states_retry_failed(
    conn: Connection,
    batch_id: int,
    now: int,
    step_name: str | None = None,
    item_id: int | None = None,
) -> int:
    """FAILED -> PENDING with a fresh attempt budget; re-opens the batch."""
    guard = [ws.c.batch_id == batch_id, status_in(Status.FAILED)]
    if step_name is not None:
        guard.append(ws.c.step_name == step_name)
    if item_id is not None:
        guard.append(ws.c.item_id == item_id)
    moved = conn.execute(
        update(ws)
        .where(*guard)
        .values(
            status=Status.PENDING.value,
            retry_floor=ws.c.attempt,
            not_before=now,
            lease_until=None,
            error=None,
            updated_at=now,
        )
    ).rowcount
    if moved:
        conn.execute(
            update(batches)
            .where(batches.c.id == batch_id)
            .values(status=BatchStatus.RUNNING.value, finished_at=None)
        )
    return moved


# --------------------------------------------------------------------------- batches


def _batch_finishable() -> ColumnElement[bool]:
    """A RUNNING batch with nothing left to move: no active state, none waiting to advance.

    One test per partial index (claimable, leased_batch, unadvanced): a single ``status IN``
    over all three would match none of their predicates."""
    this_batch = ws.c.batch_id == batches.c.id
    pending = exists().where(this_batch, status_in(Status.PENDING))
    leased = exists().where(this_batch, status_in(*LEASED))
    unadvanced = exists().where(this_batch, status_in(*FINISHED), ws.c.advanced_at.is_(None))
    return and_(batches.c.status == BatchStatus.RUNNING.value, ~pending, ~leased, ~unadvanced)


def batches_rollup(conn: Connection, now_dt: Any) -> int:
    """RUNNING batches with nothing left to move become COMPLETED or COMPLETED_WITH_ERRORS."""
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


def conductor_work_pending(conn: Connection) -> tuple[bool, bool]:
    """(some state waits to be advanced, some batch can be rolled up): a cheap read that lets
    the conductor skip write transactions that would change nothing, which on SQLite would
    each queue for the single writer behind the runners' group commits."""
    unadvanced = conn.execute(
        select(ws.c.id).where(status_in(*FINISHED), ws.c.advanced_at.is_(None)).limit(1)
    ).first()
    finishable = conn.execute(select(batches.c.id).where(_batch_finishable()).limit(1)).first()
    return unadvanced is not None, finishable is not None


def batch_steps_runnable(conn: Connection) -> list[BatchStepInfo]:
    """Steps of RUNNING batches: what the dispatcher tries to claim from, later steps first,
    so items flow through the pipeline and finish early instead of every item waiting at
    step 1 until the whole batch has passed step 0."""
    rows = conn.execute(
        select(bs)
        .join(batches, batches.c.id == bs.c.batch_id)
        .where(batches.c.status == BatchStatus.RUNNING.value)
        .order_by(bs.c.batch_id, bs.c.position.desc())
    ).mappings()
    return [BatchStepInfo(**dict(r)) for r in rows]


def batch_step_load(conn: Connection, batch_id: int, position: int) -> BatchStepInfo | None:
    """One step of a batch's blueprint; ``None`` past the last step."""
    row = (
        conn.execute(select(bs).where(bs.c.batch_id == batch_id, bs.c.position == position))
        .mappings()
        .first()
    )
    return BatchStepInfo(**dict(row)) if row is not None else None


@dataclass(frozen=True, slots=True)
class BatchStepInfo:
    batch_id: int
    position: int
    step_name: str
    type: str
    handler: str
    max_attempts: int
    lease_ms: int
    backoff_base_ms: int
    backoff_max_ms: int
    callback_timeout_ms: int
    concurrency: int
    config: dict[str, Any]

    @property
    def key(self) -> tuple[int, int]:
        return (self.batch_id, self.position)


def batch_counts(conn: Connection, batch_id: int) -> dict[str, dict[str, int]]:
    """step name -> status -> number of states."""
    rows = conn.execute(
        select(ws.c.step_name, ws.c.status, func.count())
        .where(ws.c.batch_id == batch_id)
        .group_by(ws.c.step_name, ws.c.status)
    )
    counts: dict[str, dict[str, int]] = {}
    for step, status, n in rows:
        counts.setdefault(step, {})[status] = n
    return counts


def batch_status(conn: Connection, batch_id: int) -> str | None:
    return conn.execute(
        select(batches.c.status).where(batches.c.id == batch_id)
    ).scalar_one_or_none()
