"""What Clay cost and what it saved, per batch and step and per client: items sent, items
de-duplicated (took a same-batch leader's result) and items reused (took an earlier batch's).
The CLI's ``status``, the batch API and the dashboard read these functions."""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import TypedDict

from sqlalchemy import Connection, Table, and_, case, func, select

from enrichflow.db.engine import is_postgres
from enrichflow.db.models import Batch, BatchStep, StateTally, WorkflowState
from enrichflow.db.states import status_in
from enrichflow.db.states.tallies import Tally, states_tally
from enrichflow.states import Status

__all__ = ["Credits", "batch_credits", "client_credits"]

ws = typing.cast(Table, WorkflowState.__table__)
bs = typing.cast(Table, BatchStep.__table__)
batches = typing.cast(Table, Batch.__table__)
tallies = typing.cast(Table, StateTally.__table__)


SENT = frozenset({Status.COMPLETED.value, Status.IN_PROGRESS.value})
"""A Clay step's states that count as sent, unless they followed a leader or reused a result."""


class Credits(TypedDict):
    sent: int
    deduplicated: int
    reused: int


def _sums() -> list[typing.Any]:
    # A reuse's meta names its source; a same-batch duplicate records its leader in
    # ``waiting_on``; every other item that completed or waits for its callback was sent (the
    # send's own meta may never be written when the callback beats it).
    reused = ws.c.meta["reused_from"].as_string().is_not(None)
    follower = ws.c.waiting_on.is_not(None)
    sent = and_(status_in(Status.COMPLETED, Status.IN_PROGRESS), ~follower, ~reused)
    return [
        func.coalesce(func.sum(case((sent, 1), else_=0)), 0),
        func.coalesce(func.sum(case((follower, 1), else_=0)), 0),
        func.coalesce(func.sum(case((reused, 1), else_=0)), 0),
    ]


def _clay_states() -> typing.Any:
    return ws.join(
        bs,
        and_(bs.c.batch_id == ws.c.batch_id, bs.c.position == ws.c.step_index),
    )


def batch_credits(
    conn: Connection, batch_id: int, tally: Sequence[Tally] | None = None
) -> dict[str, Credits]:
    """Clay (``webhook``) step name -> items sent, de-duplicated and reused in the batch, from
    the batch's tallies (:func:`~enrichflow.db.states.tallies.states_tally`; ``tally`` when
    the caller has read them)."""
    clay = dict(
        conn.execute(
            select(bs.c.position, bs.c.step_name).where(
                bs.c.batch_id == batch_id, bs.c.handler == "webhook"
            )
        ).all()
    )
    out: dict[str, Credits] = {}
    for t in states_tally(conn, batch_id) if tally is None else tally:
        if t.step_index not in clay:
            continue
        step = out.setdefault(clay[t.step_index], Credits(sent=0, deduplicated=0, reused=0))
        if t.status in SENT:
            step["sent"] += t.own
        step["deduplicated"] += t.followers
        step["reused"] += t.reused
    return out


def client_credits(conn: Connection) -> dict[int, Credits]:
    """client id -> items sent, de-duplicated and reused by Clay steps over all its batches:
    sums of the state tallies on Postgres (a few rows per batch step, however many states),
    the states counted on SQLite, which keeps no tallies."""
    if is_postgres(conn):
        t = tallies.c
        query = (
            select(
                batches.c.client_id,
                func.coalesce(func.sum(case((t.status.in_(sorted(SENT)), t.own), else_=0)), 0),
                func.coalesce(func.sum(t.followers), 0),
                func.coalesce(func.sum(t.reused), 0),
            )
            .select_from(
                tallies.join(
                    bs, and_(bs.c.batch_id == t.batch_id, bs.c.position == t.step_index)
                ).join(batches, batches.c.id == t.batch_id)
            )
            .where(bs.c.handler == "webhook")
            .group_by(batches.c.client_id)
        )
    else:
        query = (
            select(batches.c.client_id, *_sums())
            .select_from(_clay_states().join(batches, batches.c.id == ws.c.batch_id))
            .where(bs.c.handler == "webhook")
            .group_by(batches.c.client_id)
        )
    rows = conn.execute(query)
    return {
        int(cid): Credits(sent=int(s), deduplicated=int(d), reused=int(r)) for cid, s, d, r in rows
    }
