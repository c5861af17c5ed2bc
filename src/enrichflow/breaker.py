"""The circuit breaker of a step's sends: when they keep failing the same non-retryable way
(``breaker_failures`` in a row, e.g. every row answered ``HTTP 404``) or every send has failed
for ``breaker_window_seconds``, the step pauses for that batch instead of burning through every
row. The runner feeds it each outcome; the pause itself is a row (``batch_steps.paused_reason``)
that every runner and the dispatcher read, so an operator's ``resume`` lifts it.

The streak is counted per process (every runner thread of a (batch, step) shares it): another
process that sends for the same step keeps its own count.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from enrichflow.catalog.validation import BREAKER_WINDOW_MIN_FAILURES, BreakerOptions
from enrichflow.db.states import StepOutcome
from enrichflow.db.states.errors import error_class
from enrichflow.states import Status

__all__ = ["StepBreaker", "Trip", "breaker_for"]


@dataclass(frozen=True, slots=True)
class Trip:
    """Why the breaker opened: the reason shown to the operator, and its figures."""

    reason: str
    failures: int
    error_class: str


@dataclass(slots=True)
class StepBreaker:
    """One (batch, step)'s run of failed sends in this process."""

    options: BreakerOptions
    clock: Callable[[], float]
    lock: threading.Lock = field(default_factory=threading.Lock)
    failures: int = 0
    same: int = 0
    """Non-retryable failures in a row with the error class ``last_class``."""
    last_class: str | None = None
    started: float = 0.0
    tripped_at: float = -math.inf
    """When this process last wrote a trip's pause (``clock``): the other runners of the step
    then re-read it at once instead of at their next periodic check."""

    def record(self, outcome: StepOutcome) -> Trip | None:
        """Count one outcome; the trip when this one opens the breaker."""
        if outcome.waiting_on is not None or outcome.retry_after_ms:
            return None  # a follower sent nothing; a rate limit is the service pacing us
        with self.lock:
            if outcome.error is None or outcome.kind not in (Status.FAILED, Status.PENDING):
                self.failures = self.same = 0
                self.last_class = None
                return None
            klass = error_class(outcome.error)
            now = self.clock()
            if self.failures == 0:
                self.started = now
            self.failures += 1
            if outcome.kind is Status.FAILED:
                self.same = self.same + 1 if klass == self.last_class else 1
                self.last_class = klass
            else:
                self.same = 0
                self.last_class = None
            trip = self._trip(klass, outcome.error, now)
            if trip is not None:
                self.failures = self.same = 0
                self.last_class = None
            return trip

    def opened(self) -> None:
        """The pause of a trip is written: every runner of the step re-reads it now."""
        self.tripped_at = self.clock()

    def _trip(self, klass: str, error: str, now: float) -> Trip | None:
        limit, window = self.options
        if limit and self.same >= limit:
            return Trip(
                f"{self.same} sends in a row failed the same way, the last with: {error}",
                self.same,
                klass,
            )
        if window and self.failures >= BREAKER_WINDOW_MIN_FAILURES and now - self.started >= window:
            return Trip(
                f"every send for {now - self.started:.0f} s failed ({self.failures} in a row), "
                f"the last with: {error}",
                self.failures,
                klass,
            )
        return None


_streaks: dict[tuple[int, int, int], StepBreaker] = {}
_streaks_lock = threading.Lock()


def breaker_for(
    engine_key: int,
    batch_id: int,
    step_index: int,
    options: BreakerOptions,
    clock: Callable[[], float] = time.monotonic,
) -> StepBreaker:
    """The streak of one (database, batch, step) in this process, shared by its runners."""
    key = (engine_key, batch_id, step_index)
    with _streaks_lock:
        streak = _streaks.get(key)
        if streak is None or streak.options != options:
            streak = _streaks[key] = StepBreaker(options, clock)
        return streak
