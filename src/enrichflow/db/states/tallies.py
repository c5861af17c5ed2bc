"""A batch's states counted by step, status and error class, for the batch page and the API.

Counting a million-item batch's states takes seconds, so on Postgres a statement trigger on
``workflow_states`` (migrations 0014, 0016) appends, in the statement's own transaction, one
``state_tallies`` row per (step, status, error class) the statement changed, with how many
states it added or took away there. The counts are then sums over a few rows, exact in any
snapshot, and the runners pay one small insert per statement rather than a write to a shared
counter row that every runner would queue on. The conductor folds each batch's rows into one
per group (:func:`tallies_fold`). SQLite counts the states themselves.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, case, func, select, text

from enrichflow.db.engine import is_postgres
from enrichflow.db.models import StateTally
from enrichflow.db.states.base import ws
from enrichflow.db.states.transition import status_unchanged
from enrichflow.states import Status

__all__ = ["ACTIVE", "FOLD_ROWS", "Tally", "states_tally", "tallies_fold"]

tallies = typing.cast(Table, StateTally.__table__)

ACTIVE = frozenset({Status.PENDING.value, Status.QUEUED.value, Status.IN_PROGRESS.value})
FOLD_ROWS = 16
"""A batch with more tally rows than this has them folded into one per group."""


@dataclass(frozen=True, slots=True)
class Tally:
    """``states`` of a step in ``status`` (and of ``error_class``, for FAILED ones);
    ``retried`` of them were retried by hand (``retry_floor > 0``)."""

    step_index: int
    status: str
    error_class: str | None
    states: int
    retried: int
    followers: int
    """Of ``states``: following a same-batch leader."""
    reused: int
    """Of ``states``: an earlier batch's result reused."""
    own: int
    """Of ``states``: neither (a Clay step's sends)."""


@status_unchanged
def states_tally(conn: Connection, batch_id: int) -> list[Tally]:
    """The batch's states by step, status and, for FAILED ones, error class."""
    if is_postgres(conn):
        t = tallies.c
        states = func.sum(t.states)
        query = (
            select(
                t.step_index,
                t.status,
                t.error_class,
                states,
                func.sum(t.retried),
                func.sum(t.followers),
                func.sum(t.reused),
                func.sum(t.own),
            )
            .where(t.batch_id == batch_id)
            .group_by(t.step_index, t.status, t.error_class)
            .having(states != 0)
        )
    else:
        klass = case((ws.c.status == Status.FAILED.value, ws.c.error_class))
        follower = ws.c.waiting_on.is_not(None)
        reused = ws.c.meta["reused_from"].as_string().is_not(None)
        query = (
            select(
                ws.c.step_index,
                ws.c.status,
                klass,
                func.count(),
                _count(ws.c.retry_floor > 0),
                _count(follower),
                _count(reused),
                _count(~follower & ~reused),
            )
            .where(ws.c.batch_id == batch_id)
            .group_by(ws.c.step_index, ws.c.status, klass)
        )
    return [
        Tally(int(i), s, k, int(n), int(r or 0), int(f or 0), int(u or 0), int(o or 0))
        for i, s, k, n, r, f, u, o in conn.execute(query)
    ]


def _count(condition: Any) -> Any:
    return func.sum(case((condition, 1), else_=0))


_FOLD = text(
    """
WITH gone AS (
    DELETE FROM state_tallies
    WHERE batch_id IN (SELECT batch_id FROM state_tallies
                       GROUP BY batch_id HAVING count(*) > :rows)
    RETURNING batch_id, step_index, status, error_class, states, retried, followers, reused, own
)
INSERT INTO state_tallies (batch_id, step_index, status, error_class, states, retried,
                           followers, reused, own)
SELECT batch_id, step_index, status, error_class, sum(states), sum(retried), sum(followers),
       sum(reused), sum(own)
FROM gone
GROUP BY batch_id, step_index, status, error_class
HAVING sum(states) <> 0 OR sum(retried) <> 0 OR sum(followers) <> 0 OR sum(reused) <> 0
    OR sum(own) <> 0
"""
)


@status_unchanged
def tallies_fold(conn: Connection, rows: int = FOLD_ROWS) -> int:
    """Fold the tally rows of every batch that has more than ``rows`` into one per group, in
    the caller's transaction (Postgres only: SQLite has no tallies); how many rows it wrote.

    Rows a concurrent transaction appends are not yet visible to the delete, so they stay
    and are folded next time: the sums are the same before and after."""
    if not is_postgres(conn):
        return 0
    return int(conn.execute(_FOLD, {"rows": rows}).rowcount)
