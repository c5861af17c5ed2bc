"""An operator's controls on a running batch (cancel, pause, resume, re-send waiting items),
the circuit breaker's pause of one step, and the batch's history of both (``batch_events``).

The CLI, the REST API and the dashboard call the same functions, in the caller's
transaction; each records one event naming who acted.
"""

from __future__ import annotations

import enum
import re
import typing
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypedDict

from sqlalchemy import Connection, Table, insert, select, update

from enrichflow.db.models import Batch, BatchEvent, BatchStep
from enrichflow.db.states import states_cancel, states_resend
from enrichflow.errors import ConflictError, InputError, NotFoundError
from enrichflow.states import BatchStatus, StepType

__all__ = [
    "Actor",
    "BatchControls",
    "EventKind",
    "Halt",
    "batch_cancel",
    "batch_controls_read",
    "batch_halt_load",
    "batch_pause",
    "batch_resend",
    "batch_resume",
    "duration_seconds",
    "step_breaker_trip",
]

EVENTS_SHOWN = 50

_batches = typing.cast(Table, Batch.__table__)
_steps = typing.cast(Table, BatchStep.__table__)
_events = typing.cast(Table, BatchEvent.__table__)


class Actor(enum.StrEnum):
    """Who acted on a batch."""

    CLI = "cli"
    API = "api"
    DASHBOARD = "dashboard"
    SYSTEM = "system"


class EventKind(enum.StrEnum):
    CANCELLED = "cancelled"
    PAUSED = "paused"
    RESUMED = "resumed"
    RESENT = "resent"
    BREAKER_TRIPPED = "breaker_tripped"


class Halt(enum.StrEnum):
    """Why a runner must stop sending for a (batch, step)."""

    CANCELLED = "cancelled"
    PAUSED = "paused"
    BREAKER = "breaker"


class BreakerState(TypedDict):
    step: str
    reason: str


class BatchEventOut(TypedDict):
    at: str
    kind: str
    actor: str
    detail: dict[str, Any]


class BatchControls(TypedDict):
    paused: bool
    paused_at: str | None
    breaker: list[BreakerState]
    """Steps the circuit breaker paused, with why."""
    events: list[BatchEventOut]
    """The batch's history, newest first."""


class _Batch(NamedTuple):
    status: str
    paused_at: datetime | None


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$")
_UNIT_SECONDS = {"s": 1, None: 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def duration_seconds(text: str) -> float:
    """``30s``, ``15m``, ``2h``, ``1d`` or a number of seconds; :class:`InputError` otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise InputError(f"older-than must be a duration such as 30s, 15m, 2h or 1d, got {text!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def _event(
    conn: Connection, batch_id: int, kind: EventKind, actor: Actor, detail: dict[str, Any]
) -> None:
    conn.execute(
        insert(_events).values(
            batch_id=batch_id,
            at=datetime.now(UTC),
            kind=kind.value,
            actor=actor.value,
            detail=detail,
        )
    )


def _running(conn: Connection, batch_id: int, action: str) -> _Batch:
    """The batch, locked against a concurrent control; :class:`InputError` unless RUNNING."""
    stmt = select(_batches.c.status, _batches.c.paused_at).where(_batches.c.id == batch_id)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFoundError(f"batch {batch_id} does not exist")
    batch = _Batch(row[0], row[1])
    if batch.status != BatchStatus.RUNNING.value:
        raise ConflictError(
            f"batch {batch_id} is {batch.status}; only a running batch can be {action}"
        )
    return batch


def batch_cancel(conn: Connection, batch_id: int, actor: Actor, now: int) -> int:
    """Cancel a running batch: CANCELLED, its unfinished states CANCELLED (nothing more is
    sent; late callbacks store nothing); how many states were cancelled."""
    _running(conn, batch_id, "cancelled")
    cancelled = states_cancel(conn, batch_id, now)
    conn.execute(
        update(_batches)
        .where(_batches.c.id == batch_id)
        .values(status=BatchStatus.CANCELLED.value, finished_at=datetime.now(UTC))
    )
    _event(conn, batch_id, EventKind.CANCELLED, actor, {"states": cancelled})
    return cancelled


def batch_pause(conn: Connection, batch_id: int, actor: Actor) -> None:
    """Pause a running batch: nothing of it is dispatched or sent until it is resumed;
    callbacks still land."""
    if _running(conn, batch_id, "paused").paused_at is not None:
        raise ConflictError(
            f"batch {batch_id} is already paused; resume it with: enrichflow resume {batch_id}"
        )
    conn.execute(
        update(_batches).where(_batches.c.id == batch_id).values(paused_at=datetime.now(UTC))
    )
    _event(conn, batch_id, EventKind.PAUSED, actor, {})


def batch_resume(conn: Connection, batch_id: int, actor: Actor) -> list[str]:
    """Resume a batch paused by an operator or by the circuit breaker; the steps the breaker
    had paused, which run again."""
    batch = _running(conn, batch_id, "resumed")
    tripped = list(
        conn.execute(
            select(_steps.c.step_name)
            .where(_steps.c.batch_id == batch_id, _steps.c.paused_reason.is_not(None))
            .order_by(_steps.c.position)
        ).scalars()
    )
    if batch.paused_at is None and not tripped:
        raise ConflictError(f"batch {batch_id} is not paused")
    conn.execute(update(_batches).where(_batches.c.id == batch_id).values(paused_at=None))
    if tripped:
        conn.execute(
            update(_steps)
            .where(_steps.c.batch_id == batch_id, _steps.c.paused_reason.is_not(None))
            .values(paused_reason=None)
        )
    _event(conn, batch_id, EventKind.RESUMED, actor, {"steps": tripped})
    return tripped


def batch_resend(
    conn: Connection,
    batch_id: int,
    step_name: str,
    older_than_seconds: float,
    actor: Actor,
    now: int,
) -> int:
    """Re-send now, as a new attempt, the items of an ASYNC step that wait on the external
    service since at least ``older_than_seconds``; how many."""
    _running(conn, batch_id, "re-sent")
    step_type = conn.execute(
        select(_steps.c.type).where(_steps.c.batch_id == batch_id, _steps.c.step_name == step_name)
    ).scalar_one_or_none()
    if step_type is None:
        raise NotFoundError(f"batch {batch_id} has no step {step_name!r}")
    if step_type != StepType.ASYNC.value:
        raise ConflictError(
            f"step {step_name!r} of batch {batch_id} is {step_type}: only an ASYNC step's "
            "items wait on an external service"
        )
    if older_than_seconds < 0:
        raise InputError(f"older-than must not be negative, got {older_than_seconds}")
    sent_before = now - int(older_than_seconds * 1000)
    resent = states_resend(conn, batch_id, step_name, sent_before, now)
    _event(
        conn,
        batch_id,
        EventKind.RESENT,
        actor,
        {"step": step_name, "older_than_seconds": older_than_seconds, "items": resent},
    )
    return resent


def step_breaker_trip(
    conn: Connection, batch_id: int, step_index: int, reason: str, detail: dict[str, Any]
) -> bool:
    """The circuit breaker pauses one step of a batch with ``reason``; ``False`` when it was
    paused already (another runner tripped first)."""
    tripped = conn.execute(
        update(_steps)
        .where(
            _steps.c.batch_id == batch_id,
            _steps.c.position == step_index,
            _steps.c.paused_reason.is_(None),
        )
        .values(paused_reason=reason)
        .returning(_steps.c.step_name)
    ).scalar_one_or_none()
    if tripped is None:
        return False
    _event(
        conn,
        batch_id,
        EventKind.BREAKER_TRIPPED,
        Actor.SYSTEM,
        {"step": tripped, "reason": reason, **detail},
    )
    return True


def batch_halt_load(conn: Connection, batch_id: int, step_index: int) -> Halt | None:
    """Whether a runner may go on sending for this (batch, step): ``None``, or why not."""
    row = conn.execute(
        select(_batches.c.status, _batches.c.paused_at, _steps.c.paused_reason)
        .join(_steps, _steps.c.batch_id == _batches.c.id)
        .where(_batches.c.id == batch_id, _steps.c.position == step_index)
    ).first()
    if row is None or row[0] == BatchStatus.CANCELLED.value:
        return Halt.CANCELLED
    if row[1] is not None:
        return Halt.PAUSED
    if row[2] is not None:
        return Halt.BREAKER
    return None


def batch_controls_read(conn: Connection, batch_id: int) -> BatchControls:
    """The batch's pause, the steps its breaker paused and its latest events."""
    paused_at = conn.execute(
        select(_batches.c.paused_at).where(_batches.c.id == batch_id)
    ).scalar_one_or_none()
    breaker = [
        BreakerState(step=name, reason=reason)
        for name, reason in conn.execute(
            select(_steps.c.step_name, _steps.c.paused_reason)
            .where(_steps.c.batch_id == batch_id, _steps.c.paused_reason.is_not(None))
            .order_by(_steps.c.position)
        )
    ]
    events = [
        BatchEventOut(at=at.isoformat(), kind=kind, actor=actor, detail=dict(detail or {}))
        for at, kind, actor, detail in conn.execute(
            select(_events.c.at, _events.c.kind, _events.c.actor, _events.c.detail)
            .where(_events.c.batch_id == batch_id)
            .order_by(_events.c.id.desc())
            .limit(EVENTS_SHOWN)
        )
    ]
    return BatchControls(
        paused=paused_at is not None,
        paused_at=None if paused_at is None else paused_at.isoformat(),
        breaker=breaker,
        events=events,
    )
