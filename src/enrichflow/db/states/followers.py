"""Company-level de-duplication (``dedupe_by`` in the workflow config): leaders and followers.

The first state with a key in ``(batch, step)`` becomes the leader (``step_dedupe``:
insert-ignore, then read the leader back) and sends; the others (followers) do not send: they
wait IN_PROGRESS with ``waiting_on = leader_state_id`` (an indexed column: every look-up of a
leader's followers is an index probe). When the leader's callback lands, its followers
(IN_PROGRESS or FAILED, waiting on it) complete with the same payload in the same transaction.
:func:`leaders_finished` and :func:`followers_settle`, run by the conductor's housekeeping,
catch what a callback cannot: followers whose wait was recorded after the leader completed,
and followers of a leader that ended FAILED (they fail with its error; should the leader be
retried and complete, its callback completes them too). A follower is never COMPLETED before
the leader's result row exists.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, bindparam, exists, or_, select, update

from enrichflow.db.dialect import id_in, insert_ignore, text_in
from enrichflow.db.states.base import COMPLETABLE, batches, dedupe, results, ws
from enrichflow.db.states.errors import error_class
from enrichflow.db.states.results import results_insert
from enrichflow.db.states.transition import status_unchanged, transition
from enrichflow.states import BatchStatus, Status

MAX_KEY_CHARS = 500


@transition((Status.PENDING, Status.QUEUED, Status.IN_PROGRESS, Status.FAILED), Status.COMPLETED)
def followers_complete(
    conn: Connection,
    batch_id: int,
    step_index: int,
    payloads: dict[int, dict[str, Any]],
    now: int,
) -> dict[int, int]:
    """-> COMPLETED for every follower (IN_PROGRESS or FAILED) of the given leaders of one step,
    with its leader's payload: one UPDATE ... RETURNING (an index probe per leader), one result
    insert; how many per leader state id."""
    done = conn.execute(
        update(ws)
        .where(
            ws.c.batch_id == batch_id,
            ws.c.step_index == step_index,
            ws.c.status.in_(COMPLETABLE),
            ws.c.waiting_on.in_(list(payloads)),
        )
        .values(
            status=Status.COMPLETED.value,
            lease_until=None,
            error=None,
            error_class=None,
            updated_at=now,
        )
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


@status_unchanged
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


_LEADER = ws.alias("leader")


@status_unchanged
def dedupe_leaders(
    conn: Connection, batch_id: int, step_name: str, keys: Collection[str]
) -> dict[str, DedupeDecision]:
    """key -> its leader in ``(batch, step)``, for the keys that have one, with the leader's
    result when it is COMPLETED: one read, no write. A leader never changes once chosen, so an
    item whose key is here needs no :func:`dedupe_join`."""
    if not keys:
        return {}
    rows = conn.execute(
        select(
            dedupe.c.dedupe_key,
            dedupe.c.leader_state_id,
            _LEADER.c.status,
            _LEADER.c.lease_until,
            results.c.payload,
        )
        .select_from(
            dedupe.outerjoin(_LEADER, _LEADER.c.id == dedupe.c.leader_state_id).outerjoin(
                results,
                and_(
                    results.c.item_id == _LEADER.c.item_id,
                    results.c.step_name == dedupe.c.step_name,
                    _LEADER.c.status == Status.COMPLETED.value,
                ),
            )
        )
        .where(
            dedupe.c.batch_id == batch_id,
            dedupe.c.step_name == step_name,
            text_in(conn, dedupe.c.dedupe_key, list(keys)),
        )
    )
    return {
        key: DedupeDecision(int(leader_id), status, lease_until, payload)
        for key, leader_id, status, lease_until, payload in rows
    }


@status_unchanged
def dedupe_join(
    conn: Connection, batch_id: int, step_name: str, keys: Mapping[int, str]
) -> dict[int, DedupeDecision]:
    """Make each state of ``keys`` (state id -> key) the leader of its key in
    ``(batch, step)`` unless a state already is, and learn who is, for a whole chunk: the
    keys' leaders read (:func:`dedupe_leaders`); for the keys that have none yet, one
    insert-ignore (the first state of each, in ``keys``' order, leads it), a read of who won,
    and the key written on each new leader's state (what later batches' reuse finds).

    Of concurrent callers exactly one row per key wins, and every caller reads the same
    leader. Call it in its own short transaction, committed before any of these states sends,
    so that the other workers see the leaders at once. Keys go in sorted order, so two chunks
    that share new keys wait on each other's rows in the same order and cannot deadlock.
    """
    if not keys:
        return {}
    first: dict[str, int] = {}
    for state_id, key in keys.items():
        first.setdefault(key, state_id)
    leaders = dedupe_leaders(conn, batch_id, step_name, first)
    new = sorted(key for key in first if key not in leaders)
    if new:
        conn.execute(
            insert_ignore(conn, dedupe),
            [
                {
                    "batch_id": batch_id,
                    "step_name": step_name,
                    "dedupe_key": key,
                    "leader_state_id": first[key],
                }
                for key in new
            ],
        )
        leaders.update(dedupe_leaders(conn, batch_id, step_name, new))
        paying = [{"sid": first[key], "key": key} for key in new if leaders[key].leads(first[key])]
        if paying:
            conn.execute(
                update(ws).where(ws.c.id == bindparam("sid")).values(dedupe_key=bindparam("key")),
                paying,
            )
    return {state_id: leaders[key] for state_id, key in keys.items()}


class FinishedLeader(NamedTuple):
    """A leader that finished while followers of a running batch still wait on it."""

    state_id: int
    batch_id: int
    step_index: int
    status: str
    error: str | None


@status_unchanged
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


@transition((Status.PENDING, Status.QUEUED, Status.IN_PROGRESS, Status.FAILED), Status.COMPLETED)
@transition(Status.IN_PROGRESS, Status.FAILED)
def followers_settle(conn: Connection, leaders: Sequence[FinishedLeader], now: int) -> int:
    """-> COMPLETED for followers of COMPLETED ``leaders`` (with the leader's payload),
    IN_PROGRESS -> FAILED for followers of FAILED ones (with its error).

    Conductor's housekeeping, second half, in the caller's write transaction. Each leader's
    followers are one index probe, and every change is a compare-and-set, so a leader that
    moved on since :func:`leaders_finished` read it (a late callback completed it and its
    followers, a retry re-opened it) moves nothing. Returns the number of states moved."""
    moved = 0
    to_complete: dict[tuple[int, int], list[int]] = {}
    failing: list[dict[str, Any]] = []
    for leader in leaders:
        if leader.status == Status.COMPLETED.value:
            to_complete.setdefault((leader.batch_id, leader.step_index), []).append(leader.state_id)
        else:
            error = _follower_error(leader.state_id, leader.error)
            failing.append(
                {
                    "b": leader.batch_id,
                    "lid": leader.state_id,
                    "err": error,
                    "klass": error_class(error),
                }
            )
    for (batch_id, step_index), leader_ids in to_complete.items():
        payloads = _leader_payloads(conn, leader_ids)
        if payloads:
            moved += sum(followers_complete(conn, batch_id, step_index, payloads, now).values())
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
                status=Status.FAILED.value,
                lease_until=None,
                error=bindparam("err"),
                error_class=bindparam("klass"),
                updated_at=now,
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
