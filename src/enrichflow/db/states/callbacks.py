"""Callbacks landing: an ASYNC step's result completes its state.

**Which callback completes a state.** A callback token names ``(state, attempt N)``. It
completes the state when the state's current attempt ``A >= N`` and its status is one the
state machine allows into COMPLETED (``sources_of(COMPLETED)``: every status but SKIPPED and
CANCELLED) and its batch is not CANCELLED:

* ``A > N`` is accepted: attempt N's send was a real, paid request; if its callback is late and
  the reaper already re-sent the item as attempt N+1, the data of attempt N is just as good.
  Whichever callback arrives first lands.
* FAILED is accepted: a callback after the deadline made the state FAILED still lands its data.
* PENDING or QUEUED (a retry scheduled, not started) is accepted too: the earlier attempt's data
  has arrived, so the retry is no longer needed.
* Once COMPLETED (or SKIPPED), every later callback, for any attempt, is a no-op answered
  *duplicate*; the result row is written exactly once (the CAS is the gate, the unique key
  ``(item_id, step_name)`` of ``enrichment_results`` the backstop).
* ``N > A`` was never issued by this database: *not found*, like an unknown state or a state
  of a SYNC step.
* A state the operator cancelled, or any unfinished one of a cancelled batch, stores nothing:
  *cancelled*.

A callback that arrives before the runner recorded the send (fast services) completes the
IN_PROGRESS state; the runner's later write is fenced by ``(id, attempt, IN_PROGRESS)`` and is
dropped as stale, so it cannot move the state back. ``advanced_at`` is left NULL: the
sequencer creates the next step's state. A completion also re-opens the batch when it had
already been rolled up (a late callback after the batch finished with errors), otherwise the
next step's state would never be dispatched. De-duplication followers of the completed state
complete with it (:mod:`enrichflow.db.states.followers`).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, exists, select, update

from enrichflow.db.engine import is_postgres
from enrichflow.db.states import postgres
from enrichflow.db.states.base import COMPLETABLE, batch_cancelled, batches, bs, ws
from enrichflow.db.states.followers import followers_complete
from enrichflow.db.states.results import results_insert
from enrichflow.db.states.transition import transition
from enrichflow.states import DONE_OK, BatchStatus, Status, StepType

_DONE_OK = [s.value for s in DONE_OK]


class CallbackOutcome(enum.StrEnum):
    COMPLETED = "completed"
    DUPLICATE = "duplicate"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class CallbackReport:
    outcome: CallbackOutcome
    followers: int = 0
    """Followers completed with the same payload (company-level de-duplication)."""


@transition((Status.PENDING, Status.QUEUED, Status.IN_PROGRESS, Status.FAILED), Status.COMPLETED)
def callback_complete(
    conn: Connection, state_id: int, attempt: int, payload: dict[str, Any], now: int
) -> CallbackReport:
    """PENDING / QUEUED / IN_PROGRESS / FAILED -> COMPLETED: land a callback's payload for
    ``(state_id, attempt)`` in the caller's transaction.

    See the module docstring for the rule. On COMPLETED the result row, the status change,
    the followers' completion and the batch re-opening are all in this one transaction.
    """
    is_async = exists().where(
        bs.c.batch_id == ws.c.batch_id,
        bs.c.position == ws.c.step_index,
        bs.c.type == StepType.ASYNC.value,
    )
    won = conn.execute(
        update(ws)
        .where(
            ws.c.id == state_id,
            ws.c.status.in_(COMPLETABLE),
            ws.c.attempt >= attempt,
            is_async,
            ~batch_cancelled(),
        )
        .values(
            status=Status.COMPLETED.value,
            lease_until=None,
            error=None,
            error_class=None,
            updated_at=now,
        )
        .returning(ws.c.batch_id, ws.c.item_id, ws.c.step_name, ws.c.step_index)
    ).first()
    if won is None:
        return CallbackReport(_why_not(conn, state_id, attempt))
    batch_id, item_id, step_name, step_index = won
    results_insert(conn, [(batch_id, item_id, step_name, payload)], now)
    followers = sum(
        followers_complete(conn, batch_id, step_index, {state_id: payload}, now).values()
    )
    conn.execute(
        update(batches)
        .where(batches.c.id == batch_id, batches.c.status != BatchStatus.RUNNING.value)
        .values(status=BatchStatus.RUNNING.value, finished_at=None)
    )
    return CallbackReport(CallbackOutcome.COMPLETED, followers)


Callback = tuple[int, int, dict[str, Any]]
"""``(state_id, attempt, payload)`` of one received callback."""


@transition((Status.PENDING, Status.QUEUED, Status.IN_PROGRESS, Status.FAILED), Status.COMPLETED)
def callbacks_complete(
    conn: Connection, callbacks: Sequence[Callback], now: int
) -> list[CallbackReport]:
    """PENDING / QUEUED / IN_PROGRESS / FAILED -> COMPLETED for a group of callbacks in the
    caller's transaction (group commit).

    One report per callback, in order, each exactly what :func:`callback_complete` would
    have answered had the callbacks been landed one after another in that order. Two callbacks
    for the same state in one group: the first is landed first (it wins, when it can), the
    later one then sees the state as it left it (*duplicate*). On Postgres a round of distinct
    states is one statement (:func:`enrichflow.db.states.postgres.callbacks_land`), plus one
    read for the callbacks that did not win and one UPDATE per step whose leaders have
    de-duplication followers. SQLite lands them one by one in the same transaction (it has a
    single writer anyway).
    """
    if not is_postgres(conn):
        return [callback_complete(conn, sid, att, payload, now) for sid, att, payload in callbacks]
    reports: list[CallbackReport | None] = [None] * len(callbacks)
    pending = list(range(len(callbacks)))
    while pending:
        seen: set[int] = set()
        this_round: list[int] = []
        later: list[int] = []
        for i in pending:
            sid = callbacks[i][0]
            (later if sid in seen else this_round).append(i)
            seen.add(sid)
        for i, report in zip(
            this_round, _round_complete(conn, [callbacks[i] for i in this_round], now), strict=True
        ):
            reports[i] = report
        pending = later
    return [r for r in reports if r is not None]


@transition((Status.PENDING, Status.QUEUED, Status.IN_PROGRESS, Status.FAILED), Status.COMPLETED)
def _round_complete(
    conn: Connection, callbacks: Sequence[Callback], now: int
) -> list[CallbackReport]:
    """Postgres, callbacks for distinct states: see :func:`callbacks_complete`."""
    won = postgres.callbacks_land(conn, callbacks, COMPLETABLE, now)
    won_ids = {int(row.id) for row in won}
    followers: dict[int, int] = {}
    leaders: dict[tuple[int, int], dict[int, dict[str, Any]]] = {}
    by_id = {c[0]: c[2] for c in callbacks}
    for row in won:
        if row.leads:
            leaders.setdefault((row.batch_id, row.step_index), {})[int(row.id)] = by_id[row.id]
    for (batch_id, step_index), payloads in leaders.items():
        for leader_id, n in followers_complete(conn, batch_id, step_index, payloads, now).items():
            followers[leader_id] = n
    missed = [c[0] for c in callbacks if c[0] not in won_ids]
    why = postgres.states_why_not(conn, missed) if missed else {}
    reports = []
    for sid, attempt, _ in callbacks:
        if sid in won_ids:
            reports.append(CallbackReport(CallbackOutcome.COMPLETED, followers.get(sid, 0)))
        else:
            reports.append(CallbackReport(_outcome_of_miss(why.get(sid), attempt)))
    return reports


def _outcome_of_miss(row: tuple[str, int, str, str] | None, attempt: int) -> CallbackOutcome:
    """Why a fenced update missed ``(state, attempt)``, given the state's (status, attempt,
    step type, batch status) read after it, or ``None`` when there is no such state."""
    if row is None:
        return CallbackOutcome.NOT_FOUND
    status, current, step_type, batch_status = row
    if step_type != StepType.ASYNC.value or current < attempt:
        return CallbackOutcome.NOT_FOUND
    if status in _DONE_OK:
        return CallbackOutcome.DUPLICATE
    if status == Status.CANCELLED.value or batch_status == BatchStatus.CANCELLED.value:
        return CallbackOutcome.CANCELLED
    # completable, yet the fenced update missed it: it changed under us; the sender may retry
    return CallbackOutcome.CONFLICT


def _why_not(conn: Connection, state_id: int, attempt: int) -> CallbackOutcome:
    row = conn.execute(
        select(ws.c.status, ws.c.attempt, bs.c.type, batches.c.status)
        .join(bs, and_(bs.c.batch_id == ws.c.batch_id, bs.c.position == ws.c.step_index))
        .join(batches, batches.c.id == ws.c.batch_id)
        .where(ws.c.id == state_id)
    ).first()
    return _outcome_of_miss(None if row is None else (row[0], row[1], row[2], row[3]), attempt)
