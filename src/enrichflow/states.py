"""The workflow-state machine: statuses and the allowed transitions, declared as data."""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    """Status of one (item, step) pair."""

    PENDING = "PENDING"
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    SKIPPED = "SKIPPED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    """The operator cancelled the batch before this state finished; nothing more is sent."""


class StepType(enum.StrEnum):
    """SYNC steps finish in the runner; ASYNC steps finish when the external service calls back."""

    SYNC = "SYNC"
    ASYNC = "ASYNC"


class BatchStatus(enum.StrEnum):
    """Roll-up of a batch's items."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    CANCELLED = "CANCELLED"
    """Stopped by the operator: terminal, its unfinished states CANCELLED, late callbacks
    stored nowhere."""


TERMINAL: frozenset[Status] = frozenset(
    {Status.COMPLETED, Status.SKIPPED, Status.FAILED, Status.CANCELLED}
)
ACTIVE: frozenset[Status] = frozenset({Status.PENDING, Status.QUEUED, Status.IN_PROGRESS})
DONE_OK: frozenset[Status] = frozenset({Status.COMPLETED, Status.SKIPPED})

TRANSITIONS: dict[Status, frozenset[Status]] = {
    # dispatcher claim; straight to IN_PROGRESS for an executor that starts on claim (local);
    # COMPLETED when an earlier attempt's callback lands while the retry waits (the data
    # was paid for, so it is kept and the retry is no longer needed); the batch cancelled
    Status.PENDING: frozenset(
        {Status.QUEUED, Status.IN_PROGRESS, Status.COMPLETED, Status.CANCELLED}
    ),
    # runner start; lease expiry -> retry or give up; a late callback as for PENDING
    Status.QUEUED: frozenset(
        {Status.IN_PROGRESS, Status.PENDING, Status.FAILED, Status.COMPLETED, Status.CANCELLED}
    ),
    # result, skip, deferred-send keeps IN_PROGRESS; error or deadline -> retry or give up;
    # an operator's resend or a paused step gives the state back to PENDING
    Status.IN_PROGRESS: frozenset(
        {
            Status.IN_PROGRESS,
            Status.COMPLETED,
            Status.SKIPPED,
            Status.PENDING,
            Status.FAILED,
            Status.CANCELLED,
        }
    ),
    Status.COMPLETED: frozenset(),
    Status.SKIPPED: frozenset(),
    Status.CANCELLED: frozenset(),
    # manual retry; a late callback still lands its data
    Status.FAILED: frozenset({Status.PENDING, Status.COMPLETED}),
}


def can_transition(old: Status, new: Status) -> bool:
    """Whether the state machine allows ``old -> new``."""
    return new in TRANSITIONS[old]


def sources_of(new: Status) -> frozenset[Status]:
    """Every status from which ``new`` may be reached: the CAS guard of an UPDATE to ``new``."""
    return frozenset(old for old, targets in TRANSITIONS.items() if new in targets)
