"""The state statements of ASYNC steps: callbacks landing, and company-level de-duplication.

House rules as in :mod:`enrichflow.db.queries`: every status change is a compare-and-set,
statements are set-based, ``now`` (epoch ms) is passed in.

**Which callback completes a state.** A callback token names ``(state, attempt N)``. It
completes the state when the state's current attempt ``A >= N`` and its status is one the
state machine allows into COMPLETED (``sources_of(COMPLETED)``: every status but SKIPPED):

* ``A > N`` is accepted: attempt N's send was a real, paid request; if its callback is late and
  the reaper already re-sent the item as attempt N+1, the data of attempt N is just as good.
  Whichever callback arrives first lands.
* FAILED is accepted: a callback after the deadline made the state FAILED still lands its data.
* Once COMPLETED (or SKIPPED), every later callback, for any attempt, is a no-op answered
  *duplicate*; the result row is written exactly once (the CAS is the gate, the unique key
  ``(item_id, step_name)`` of ``enrichment_results`` the backstop).
* PENDING or QUEUED (a retry scheduled, not started): *retry pending*, nothing written; the
  declared transitions do not allow PENDING -> COMPLETED. The caller may call again later,
  when the re-send made the state IN_PROGRESS.
* ``N > A`` was never issued by this database: *not found*, like an unknown state or a state
  of a SYNC step.

A callback that arrives before the runner recorded the send (fast services) completes the
IN_PROGRESS state; the runner's later write is fenced by ``(id, attempt, IN_PROGRESS)`` and is
dropped as stale, so it cannot move the state back. ``advanced_at`` is left NULL: the
sequencer creates the next step's state. A completion also re-opens the batch when it had
already been rolled up (a late callback after the batch finished with errors), otherwise the
next step's state would never be dispatched.

**Company-level de-duplication** (``dedupe_by`` in the workflow config). The first state with
a key in ``(batch, step)`` becomes the leader (``step_dedupe``: insert-ignore, then read the
leader back) and sends; the others (followers) do not send: they wait IN_PROGRESS with
``waiting_on = leader_state_id`` (an indexed column: every look-up of a leader's followers is
an index probe). When the leader's callback lands, its followers (IN_PROGRESS or FAILED,
waiting on it) complete with the same payload in the same transaction.
:func:`leaders_finished` and :func:`followers_settle`, run by the conductor's housekeeping,
catch what a callback cannot: followers whose wait was recorded after the leader completed,
and followers of a leader that ended FAILED (they fail with its error; should the leader be
retried and complete, its callback completes them too). A follower is never COMPLETED before
the leader's result row exists.
"""

from __future__ import annotations

import enum
import hashlib
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, Table, and_, bindparam, exists, or_, select, text, update

from enrichflow.db import jsoncodec
from enrichflow.db.engine import is_postgres
from enrichflow.db.models import Batch, BatchStep, EnrichmentResult, StepDedupe, WorkflowState
from enrichflow.db.queries import id_in, insert_ignore, results_insert
from enrichflow.states import DONE_OK, BatchStatus, Status, StepType, sources_of

__all__ = [
    "CallbackOutcome",
    "CallbackReport",
    "DedupeDecision",
    "FinishedLeader",
    "callback_complete",
    "callbacks_complete",
    "dedupe_join",
    "dedupe_key_text",
    "followers_settle",
    "leaders_finished",
]

ws = typing.cast(Table, WorkflowState.__table__)
bs = typing.cast(Table, BatchStep.__table__)
batches = typing.cast(Table, Batch.__table__)
results = typing.cast(Table, EnrichmentResult.__table__)
dedupe = typing.cast(Table, StepDedupe.__table__)

COMPLETABLE = sorted(s.value for s in sources_of(Status.COMPLETED))
"""Every status a callback may complete: waiting (IN_PROGRESS), given up (FAILED), or
waiting for a retry (PENDING, QUEUED) whose earlier attempt's data has now arrived."""
_DONE_OK = [s.value for s in DONE_OK]
MAX_KEY_CHARS = 500


class CallbackOutcome(enum.StrEnum):
    COMPLETED = "completed"
    DUPLICATE = "duplicate"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"


@dataclass(frozen=True, slots=True)
class CallbackReport:
    outcome: CallbackOutcome
    followers: int = 0
    """Followers completed with the same payload (company-level de-duplication)."""


def callback_complete(
    conn: Connection, state_id: int, attempt: int, payload: dict[str, Any], now: int
) -> CallbackReport:
    """Land a callback's payload for ``(state_id, attempt)`` in the caller's transaction.

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
        )
        .values(status=Status.COMPLETED.value, lease_until=None, error=None, updated_at=now)
        .returning(ws.c.batch_id, ws.c.item_id, ws.c.step_name, ws.c.step_index)
    ).first()
    if won is None:
        return CallbackReport(_why_not(conn, state_id, attempt))
    batch_id, item_id, step_name, step_index = won
    results_insert(conn, [(batch_id, item_id, step_name, payload)], now)
    followers = _followers_complete(conn, batch_id, step_index, {state_id: payload}, now)
    conn.execute(
        update(batches)
        .where(batches.c.id == batch_id, batches.c.status != BatchStatus.RUNNING.value)
        .values(status=BatchStatus.RUNNING.value, finished_at=None)
    )
    return CallbackReport(CallbackOutcome.COMPLETED, followers)


Callback = tuple[int, int, dict[str, Any]]
"""``(state_id, attempt, payload)`` of one received callback."""


def callbacks_complete(
    conn: Connection, callbacks: Sequence[Callback], now: int
) -> list[CallbackReport]:
    """Land a group of callbacks in the caller's transaction (group commit); one report per
    callback, in order, each exactly what :func:`callback_complete` would have answered had the
    callbacks been landed one after another in that order.

    Two callbacks for the same state in one group: the first is landed first (it wins, when it
    can), the later one then sees the state as it left it (*duplicate*). On Postgres a round
    of distinct states is one statement (fenced UPDATE ... RETURNING, the result rows, the batch
    re-opening, all from unnested arrays), plus one read for the callbacks that did not win and
    one UPDATE per step whose leaders have de-duplication followers. SQLite lands them one by
    one in the same transaction (it has a single writer anyway).
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


_ROUND_SQL = text(
    # The rows are looked up by primary key (id = ANY), each callback's attempt and payload
    # found by its position in the arrays. Nothing else may drive the plan: with the stale
    # statistics of a freshly created batch, the planner otherwise scans the batch's states by
    # status (a join to the arrays, the status indexes), which costs milliseconds per group
    # and grows with the batch. So the status test is written "IS TRUE" (not indexable) and
    # the step-type check is a scalar subquery (not pulled up into a join).
    """
WITH won AS (
    UPDATE workflow_states AS w
    SET status = 'COMPLETED', lease_until = NULL, error = NULL, updated_at = :now
    WHERE w.id = ANY(CAST(:ids AS BIGINT[]))
      AND w.attempt >= (CAST(:atts AS INTEGER[]))[array_position(CAST(:ids AS BIGINT[]), w.id)]
      AND (w.status = ANY(CAST(:completable AS VARCHAR[]))) IS TRUE
      AND (SELECT b.type FROM batch_steps AS b
           WHERE b.batch_id = w.batch_id AND b.position = w.step_index) = 'ASYNC'
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

_WHY_NOT_SQL = text(
    """
SELECT w.id, w.status, w.attempt, b.type
FROM workflow_states AS w
JOIN batch_steps AS b ON b.batch_id = w.batch_id AND b.position = w.step_index
WHERE w.id = ANY(CAST(:ids AS BIGINT[]))
"""
)


def _round_complete(
    conn: Connection, callbacks: Sequence[Callback], now: int
) -> list[CallbackReport]:
    """Postgres, callbacks for distinct states: see :func:`callbacks_complete`."""
    # Array literals and one JSON array: psycopg's per-element list adaptation (a regex per
    # string) cost more than the statement.
    won = conn.execute(
        _ROUND_SQL,
        {
            "ids": "{" + ",".join(str(int(c[0])) for c in callbacks) + "}",
            "atts": "{" + ",".join(str(int(c[1])) for c in callbacks) + "}",
            "payloads": jsoncodec.dumps([c[2] for c in callbacks]),
            "completable": COMPLETABLE,
            "now": now,
        },
    ).all()
    won_ids = {int(row.id) for row in won}
    followers: dict[int, int] = {}
    leaders: dict[tuple[int, int], dict[int, dict[str, Any]]] = {}
    by_id = {c[0]: c[2] for c in callbacks}
    for row in won:
        if row.leads:
            leaders.setdefault((row.batch_id, row.step_index), {})[int(row.id)] = by_id[row.id]
    for (batch_id, step_index), payloads in leaders.items():
        for leader_id, n in _followers_complete_by_leader(
            conn, batch_id, step_index, payloads, now
        ).items():
            followers[leader_id] = n
    missed = [c for c in callbacks if c[0] not in won_ids]
    why: dict[int, tuple[str, int, str]] = {}
    if missed:
        why = {
            int(sid): (status, attempt, step_type)
            for sid, status, attempt, step_type in conn.execute(
                _WHY_NOT_SQL, {"ids": "{" + ",".join(str(int(c[0])) for c in missed) + "}"}
            )
        }
    reports = []
    for sid, attempt, _ in callbacks:
        if sid in won_ids:
            reports.append(CallbackReport(CallbackOutcome.COMPLETED, followers.get(sid, 0)))
        else:
            reports.append(CallbackReport(_outcome_of_miss(why.get(sid), attempt)))
    return reports


def _outcome_of_miss(row: tuple[str, int, str] | None, attempt: int) -> CallbackOutcome:
    """Why a fenced update missed ``(state, attempt)``, given the state's (status, attempt,
    step type) read after it, or ``None`` when there is no such state."""
    if row is None:
        return CallbackOutcome.NOT_FOUND
    status, current, step_type = row
    if step_type != StepType.ASYNC.value or current < attempt:
        return CallbackOutcome.NOT_FOUND
    if status in _DONE_OK:
        return CallbackOutcome.DUPLICATE
    # completable, yet the fenced update missed it: it changed under us; the sender may retry
    return CallbackOutcome.CONFLICT


def _why_not(conn: Connection, state_id: int, attempt: int) -> CallbackOutcome:
    row = conn.execute(
        select(ws.c.status, ws.c.attempt, bs.c.type)
        .join(bs, and_(bs.c.batch_id == ws.c.batch_id, bs.c.position == ws.c.step_index))
        .where(ws.c.id == state_id)
    ).first()
    return _outcome_of_miss(None if row is None else (row[0], row[1], row[2]), attempt)


def _followers_complete(
    conn: Connection,
    batch_id: int,
    step_index: int,
    payloads: dict[int, dict[str, Any]],
    now: int,
) -> int:
    """Complete every follower (IN_PROGRESS or FAILED) of the given leaders of one step with
    its leader's payload: one UPDATE ... RETURNING (an index probe per leader), one result
    insert."""
    return sum(_followers_complete_by_leader(conn, batch_id, step_index, payloads, now).values())


def _followers_complete_by_leader(
    conn: Connection,
    batch_id: int,
    step_index: int,
    payloads: dict[int, dict[str, Any]],
    now: int,
) -> dict[int, int]:
    """:func:`_followers_complete`, counted per leader state id."""
    done = conn.execute(
        update(ws)
        .where(
            ws.c.batch_id == batch_id,
            ws.c.step_index == step_index,
            ws.c.status.in_(COMPLETABLE),
            ws.c.waiting_on.in_(list(payloads)),
        )
        .values(status=Status.COMPLETED.value, lease_until=None, error=None, updated_at=now)
        .returning(ws.c.item_id, ws.c.step_name, ws.c.waiting_on)
    ).all()
    results_insert(
        conn,
        [(batch_id, item_id, step_name, payloads[leader]) for item_id, step_name, leader in done],
        now,
    )
    counts: dict[int, int] = {}
    for _, _, leader in done:
        counts[leader] = counts.get(leader, 0) + 1
    return counts


# --------------------------------------------------------------------------- de-duplication


def dedupe_key_text(value: Any) -> str | None:
    """The stored form of a de-duplication key: trimmed and case-folded; ``None`` when empty.
    Keys longer than the column are replaced by their SHA-256."""
    if value is None:
        return None
    text = " ".join(str(value).split()).casefold()
    if not text:
        return None
    if len(text) > MAX_KEY_CHARS:
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text


@dataclass(frozen=True, slots=True)
class DedupeDecision:
    leader_state_id: int
    leader_status: str | None
    """None when the leader's state no longer exists."""
    leader_lease_until: int | None
    payload: dict[str, Any] | None
    """The leader's result, when it is COMPLETED."""

    def leads(self, state_id: int) -> bool:
        return self.leader_state_id == state_id


def dedupe_join(
    conn: Connection, batch_id: int, step_name: str, key: str, state_id: int
) -> DedupeDecision:
    """Become the leader of ``key`` in ``(batch, step)``, or learn who is.

    Insert-ignore then read back: of concurrent callers exactly one row wins, and every caller
    reads the same leader. Call it in its own short transaction, so that the row is visible to
    the other workers at once.
    """
    conn.execute(
        insert_ignore(conn, dedupe).values(
            batch_id=batch_id, step_name=step_name, dedupe_key=key, leader_state_id=state_id
        )
    )
    leader = ws.alias("leader")
    row = conn.execute(
        select(dedupe.c.leader_state_id, leader.c.status, leader.c.lease_until, leader.c.item_id)
        .select_from(dedupe.outerjoin(leader, leader.c.id == dedupe.c.leader_state_id))
        .where(
            dedupe.c.batch_id == batch_id,
            dedupe.c.step_name == step_name,
            dedupe.c.dedupe_key == key,
        )
    ).one()
    leader_id, status, lease_until, leader_item = row
    payload = None
    if status == Status.COMPLETED.value:
        payload = conn.execute(
            select(results.c.payload).where(
                results.c.item_id == leader_item, results.c.step_name == step_name
            )
        ).scalar_one_or_none()
    return DedupeDecision(int(leader_id), status, lease_until, payload)


class FinishedLeader(NamedTuple):
    """A leader that finished while followers of a running batch still wait on it."""

    state_id: int
    batch_id: int
    step_index: int
    status: str
    error: str | None


def leaders_finished(conn: Connection, limit: int = 1000) -> list[FinishedLeader]:
    """Conductor's housekeeping, first half (a read; no write lock needed): up to ``limit``
    leaders with followers left to settle by :func:`followers_settle`:

    * leader COMPLETED, a follower IN_PROGRESS or FAILED (its wait was recorded after the
      leader's callback, or it timed out first);
    * leader FAILED, a follower IN_PROGRESS.

    It starts from the leaders that followers of RUNNING batches still wait on, read from
    ``ix_workflow_states_waiting`` alone, and looks up only those distinct leaders.
    """
    follower = ws.alias("follower")
    leader = ws.alias("leader")
    waited_on = (
        select(follower.c.waiting_on, follower.c.status)
        .join(batches, batches.c.id == follower.c.batch_id)
        .where(
            batches.c.status == BatchStatus.RUNNING.value,
            follower.c.status.in_(COMPLETABLE),
            follower.c.waiting_on.is_not(None),
        )
        .distinct()
        .subquery()
    )
    rows = conn.execute(
        select(leader.c.id, leader.c.batch_id, leader.c.step_index, leader.c.status, leader.c.error)
        .join(waited_on, waited_on.c.waiting_on == leader.c.id)
        .where(
            or_(
                leader.c.status == Status.COMPLETED.value,
                and_(
                    leader.c.status == Status.FAILED.value,
                    waited_on.c.status == Status.IN_PROGRESS.value,
                ),
            )
        )
        .distinct()
        .order_by(leader.c.id)
        .limit(limit)
    )
    return [FinishedLeader(*row) for row in rows]


def followers_settle(conn: Connection, leaders: Sequence[FinishedLeader], now: int) -> int:
    """Conductor's housekeeping, second half, in the caller's write transaction: followers of
    COMPLETED ``leaders`` complete with the leader's payload, IN_PROGRESS followers of FAILED
    ones fail with its error. Each leader's followers are one index probe, and every change
    is a compare-and-set, so a leader that moved on since :func:`leaders_finished` read it
    (a late callback completed it and its followers, a retry re-opened it) moves nothing.
    Returns the number of states moved."""
    moved = 0
    to_complete: dict[tuple[int, int], list[int]] = {}
    failing: list[dict[str, Any]] = []
    for leader in leaders:
        if leader.status == Status.COMPLETED.value:
            to_complete.setdefault((leader.batch_id, leader.step_index), []).append(leader.state_id)
        else:
            failing.append(
                {
                    "b": leader.batch_id,
                    "lid": leader.state_id,
                    "err": _follower_error(leader.state_id, leader.error),
                }
            )
    for (batch_id, step_index), leader_ids in to_complete.items():
        payloads = _leader_payloads(conn, leader_ids)
        if payloads:
            moved += _followers_complete(conn, batch_id, step_index, payloads, now)
    if failing:
        still_failed = ws.alias("leader")
        moved += conn.execute(
            update(ws)
            .where(
                ws.c.batch_id == bindparam("b"),
                ws.c.status == Status.IN_PROGRESS.value,
                ws.c.waiting_on == bindparam("lid"),
                exists().where(
                    still_failed.c.id == bindparam("lid"),
                    still_failed.c.status == Status.FAILED.value,
                ),
            )
            .values(
                status=Status.FAILED.value, lease_until=None, error=bindparam("err"), updated_at=now
            ),
            failing,
        ).rowcount
    return moved


def _follower_error(leader_id: int, leader_error: str | None) -> str:
    return (
        f"company-level duplicate: waited on state {leader_id}, which failed: "
        f"{leader_error or 'no error recorded'}"
    )[:2000]


def _leader_payloads(conn: Connection, leader_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """leader state id -> its stored result (only leaders whose result row exists)."""
    leader = ws.alias("leader")
    rows = conn.execute(
        select(leader.c.id, results.c.payload)
        .join(
            results,
            and_(results.c.item_id == leader.c.item_id, results.c.step_name == leader.c.step_name),
        )
        .where(id_in(conn, leader.c.id, leader_ids))
    )
    return {int(sid): payload for sid, payload in rows}
