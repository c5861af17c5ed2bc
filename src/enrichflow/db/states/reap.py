"""Taking leased states back: the reaper's expired leases and callback deadlines, and the
chunks a remote executor could not be handed. Either way a state goes back to PENDING with
backoff while its attempts last, to FAILED after, with an error saying why."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    case,
    cast,
    literal,
    literal_column,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from enrichflow.db.engine import is_postgres
from enrichflow.db.states.base import LEASED, Claim, bs, for_claim, status_in, ws
from enrichflow.db.states.errors import error_class
from enrichflow.db.states.retry import backoff_ms_sql, retry_update
from enrichflow.db.states.transition import transition
from enrichflow.states import Status

NOT_STARTED = "lease expired: no runner started this state (attempt {attempt})"
NO_CALLBACK = "callback not received within {seconds} s (attempt {attempt})"
RUNNER_GONE = "lease expired: the runner stopped renewing it (crashed or hung) (attempt {attempt})"


def _filled(template: str, **values: Any) -> Any:
    """``template`` as a SQL string expression, each ``{name}`` replaced by ``values[name]``."""
    parts = re.split(r"\{(\w+)\}", template)
    expr: Any = literal(parts[0])
    for at in range(1, len(parts), 2):
        expr = expr + values[parts[at]] + parts[at + 1]
    return expr


def _class_of(template: str) -> str:
    """The error class of every error ``template`` makes (its numbers are masked anyway)."""
    return error_class(template.format(attempt=1, seconds=1))


@transition((Status.QUEUED, Status.IN_PROGRESS), (Status.PENDING, Status.FAILED))
def states_reap(conn: Connection, now: int, limit: int = 1000) -> int:
    """QUEUED / IN_PROGRESS -> PENDING (backoff) or FAILED (attempts used up) for states whose
    lease or callback deadline passed, with a stored error that says which deadline passed."""
    page = for_claim(
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
    queued, is_async = ws.c.status == Status.QUEUED.value, bs.c.type == "ASYNC"
    error = case(
        (queued, _filled(NOT_STARTED, attempt=attempt_text)),
        (is_async, _filled(NO_CALLBACK, seconds=seconds_text, attempt=attempt_text)),
        else_=_filled(RUNNER_GONE, attempt=attempt_text),
    )
    klass = case(
        (queued, _class_of(NOT_STARTED)),
        (is_async, _class_of(NO_CALLBACK)),
        else_=_class_of(RUNNER_GONE),
    )
    guard = and_(
        ws.c.id.in_(ids),
        ws.c.status.in_([Status.QUEUED.value, Status.IN_PROGRESS.value]),
        ws.c.lease_until < now,
    )
    delay = literal_column("0", BigInteger)
    return conn.execute(retry_update(now, error, klass, guard, delay)).rowcount


@dataclass(frozen=True, slots=True)
class DispatchFailure:
    retried: int
    failed: int
    stale: int
    """Claims no longer QUEUED at their attempt (someone else moved them): untouched."""


@transition(Status.QUEUED, (Status.PENDING, Status.FAILED))
def states_dispatch_failed(
    conn: Connection, claims: Sequence[Claim], error: str, now: int
) -> DispatchFailure:
    """QUEUED -> PENDING (backoff) or FAILED (attempts used up) for a chunk ``spawn`` could not
    hand over, with ``error``; fenced by (id, attempt, QUEUED), so a state the reaper or a
    runner already moved is left alone."""
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
            error_class=case((exhausted, error_class(error)), else_=None),
            updated_at=now,
        )
        .returning(ws.c.status)
    )
    statuses = list(conn.execute(stmt).scalars().all())
    failed = sum(1 for s in statuses if s == Status.FAILED.value)
    return DispatchFailure(len(statuses) - failed, failed, len(claims) - len(statuses))
