"""The fence of every write on a claim: the state's ``(id, attempt)`` is still the claim's and
its status still IN_PROGRESS, so a claim the reaper took back, or that a callback completed,
moves nothing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_

from enrichflow.db.engine import is_postgres
from enrichflow.db.states import postgres, sqlite
from enrichflow.db.states.base import Claim, ws
from enrichflow.db.states.transition import status_unchanged, transition
from enrichflow.states import Status


@status_unchanged
def claims_match(conn: Connection, claims: Iterable[Claim]) -> ColumnElement[bool]:
    """``(id, attempt)`` matches one of the claims."""
    claims = list(claims)
    if is_postgres(conn):
        return postgres.claims_match(claims)
    return sqlite.claims_match(claims)


@status_unchanged
def claims_running(conn: Connection, claims: Iterable[Claim]) -> ColumnElement[bool]:
    """The claims' states whose attempt is still running."""
    return and_(claims_match(conn, claims), ws.c.status == Status.IN_PROGRESS.value)


@transition(Status.IN_PROGRESS, (Status.IN_PROGRESS, Status.COMPLETED, Status.SKIPPED))
def states_update_fenced(
    conn: Connection, claims: Sequence[Claim], values: dict[str, Any]
) -> set[int]:
    """IN_PROGRESS -> ``values`` for the claims whose attempt still runs; the ids it changed."""
    if is_postgres(conn):
        return postgres.states_update_fenced(conn, claims, values)
    return sqlite.states_update_fenced(conn, claims, values)
