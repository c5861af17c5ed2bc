"""Login throttling: exponential back-off after repeated wrong passwords.

Failures are counted per client address and over all addresses. After
:data:`FREE_FAILURES` failures from one address (or :data:`GLOBAL_FREE_FAILURES` in all),
each further failure closes the door for twice as long as the last one, up to
:data:`MAX_BACKOFF` seconds; while it is closed, attempts get 429 with ``Retry-After`` and the
password is not even checked, so guessing during a back-off gains nothing. A correct password
clears its address's count. Counts are forgotten after :data:`FORGET_AFTER` quiet seconds.

The state is in this process's memory rather than the database: a database counter would let
every wrong guess cost a write (an attacker's lever on the shared state store), and ``serve``
runs a single uvicorn worker, whose memory sees every attempt made to it. Several ``serve``
processes behind a load balancer each keep their own counts: that multiplies an attacker's
guesses by their number, and the back-off still doubles on each. Memory is bounded: at most
:data:`MAX_ADDRESSES` addresses are tracked, the least recently seen dropped first, and the
overall counter still throttles an attacker who rotates addresses.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["FREE_FAILURES", "LoginThrottle"]

FREE_FAILURES = 5
GLOBAL_FREE_FAILURES = 50
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 15 * 60.0
FORGET_AFTER = 60 * 60.0
MAX_ADDRESSES = 10_000
_EVERYONE = "*"


@dataclass(slots=True)
class _Count:
    failures: int = 0
    blocked_until: float = 0.0
    last_failure: float = 0.0


class LoginThrottle:
    """Back-off bookkeeping; ``clock`` (monotonic seconds) is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._counts: OrderedDict[str, _Count] = OrderedDict()
        self._lock = threading.Lock()

    def _get(self, key: str, now: float) -> _Count:
        count = self._counts.get(key)
        if count is None or now - count.last_failure > FORGET_AFTER:
            count = _Count()
            self._counts[key] = count
        self._counts.move_to_end(key)
        while len(self._counts) > MAX_ADDRESSES + 1:
            oldest = next(iter(self._counts))
            if oldest == _EVERYONE:
                self._counts.move_to_end(_EVERYONE)
                continue
            del self._counts[oldest]
        return count

    def retry_after(self, address: str) -> int:
        """Seconds before ``address`` may try again (0: it may try now)."""
        now = self.clock()
        with self._lock:
            wait = max(
                self._get(address, now).blocked_until - now,
                self._get(_EVERYONE, now).blocked_until - now,
            )
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, address: str) -> None:
        """Counts a wrong password from ``address`` and closes the door when it is time."""
        now = self.clock()
        with self._lock:
            for key, free in ((address, FREE_FAILURES), (_EVERYONE, GLOBAL_FREE_FAILURES)):
                count = self._get(key, now)
                count.failures += 1
                count.last_failure = now
                if count.failures >= free:
                    backoff = min(FIRST_BACKOFF * 2 ** (count.failures - free), MAX_BACKOFF)
                    count.blocked_until = now + backoff

    def succeeded(self, address: str) -> None:
        """The right password from ``address``: its count starts over."""
        with self._lock:
            self._counts.pop(address, None)
