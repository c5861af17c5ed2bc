"""Recording what running a chunk produced, in groups (group commit), each write fenced by the
claim's (id, attempt, IN_PROGRESS)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BigInteger, Connection, and_, bindparam, func, select, update

from enrichflow.db.engine import is_postgres
from enrichflow.db.states.base import Claim, ws
from enrichflow.db.states.chain import states_create_next
from enrichflow.db.states.errors import error_class
from enrichflow.db.states.fence import claims_match, claims_running, states_update_fenced
from enrichflow.db.states.results import ResultRow, results_insert
from enrichflow.db.states.retry import retry_update
from enrichflow.db.states.transition import status_unchanged, transition
from enrichflow.states import Status


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


@transition(
    Status.IN_PROGRESS,
    (Status.COMPLETED, Status.SKIPPED, Status.IN_PROGRESS, Status.PENDING, Status.FAILED),
)
@transition(None, (Status.PENDING, Status.IN_PROGRESS))
def outcomes_record(
    conn: Connection,
    outcomes: Sequence[StepOutcome],
    now: int,
    chain_lease_ms: int | None = None,
) -> RecordReport:
    """IN_PROGRESS -> each outcome's status, for a group of outcomes in the caller's transaction.

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
        won = states_update_fenced(conn, [o.claim for o in deferred], {"updated_at": now})
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
            answered = claims_answered(conn, overtaken)
            counts["answered"] = len(answered)
            stale += [c.state_id for c in overtaken if c.state_id not in answered]

    failures = by_kind.get(Status.PENDING, []) + by_kind.get(Status.FAILED, [])
    if failures:
        retried, failed, lost = _fail(conn, failures, now)
        counts["retried"], counts["failed"] = retried, failed
        stale += lost
    return RecordReport(**counts, stale=len(stale), stale_ids=tuple(stale), chained=tuple(chained))


@status_unchanged
def claims_answered(conn: Connection, claims: Sequence[Claim]) -> set[int]:
    """The claims whose own attempt a callback already completed."""
    stmt = select(ws.c.id).where(claims_match(conn, claims), ws.c.status == Status.COMPLETED.value)
    return set(conn.execute(stmt).scalars().all())


@transition(Status.IN_PROGRESS, (Status.COMPLETED, Status.SKIPPED))
@transition(None, (Status.PENDING, Status.IN_PROGRESS))
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
        won |= states_update_fenced(
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
    noted = [
        {"sid": o.claim.state_id, "meta": o.meta, "leader": o.waiting_on}
        for o in completed
        if o.meta is not None and o.claim.state_id in won
    ]
    if noted:
        conn.execute(
            update(ws)
            .where(ws.c.id == bindparam("sid"))
            .values(meta=bindparam("meta"), waiting_on=bindparam("leader")),
            noted,
        )
    skip_rows = [
        {"sid": o.claim.state_id, "meta": {"skip_reason": o.error}}
        for o in skipped
        if o.claim.state_id in won
    ]
    if skip_rows:
        conn.execute(
            update(ws).where(ws.c.id == bindparam("sid")).values(meta=bindparam("meta")), skip_rows
        )
    return won, states_create_next(conn, sorted(won), now, chain_lease_ms)


@transition(Status.IN_PROGRESS, (Status.PENDING, Status.FAILED))
def _fail(conn: Connection, failures: list[StepOutcome], now: int) -> tuple[int, int, list[int]]:
    fence = and_(
        ws.c.id == bindparam("sid"),
        ws.c.attempt == bindparam("att"),
        ws.c.status == Status.IN_PROGRESS.value,
    )
    won = set(
        conn.execute(
            select(ws.c.id).where(claims_running(conn, (o.claim for o in failures)))
            if not is_postgres(conn)
            else select(ws.c.id)
            .where(claims_running(conn, (o.claim for o in failures)))
            .with_for_update()
        )
        .scalars()
        .all()
    )
    retryable = [o for o in failures if o.kind is Status.PENDING and o.claim.state_id in won]
    permanent = [o for o in failures if o.kind is Status.FAILED and o.claim.state_id in won]
    if retryable:
        conn.execute(
            retry_update(
                now,
                bindparam("err"),
                bindparam("klass"),
                fence,
                bindparam("delay", type_=BigInteger),
            ),
            [
                {
                    "sid": o.claim.state_id,
                    "att": o.claim.attempt,
                    "err": o.error,
                    "klass": error_class(o.error),
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
                status=Status.FAILED.value,
                lease_until=None,
                error=bindparam("err"),
                error_class=bindparam("klass"),
                updated_at=now,
            ),
            [
                {
                    "sid": o.claim.state_id,
                    "att": o.claim.attempt,
                    "err": o.error,
                    "klass": error_class(o.error),
                }
                for o in permanent
            ],
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
