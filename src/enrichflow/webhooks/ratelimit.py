"""Process-wide rate and concurrency limits for outbound HTTP.

:class:`RateLimiter` is a token bucket: it holds up to ``burst`` tokens, refills at
``rate_per_second`` and every request takes one. Callers that find the bucket empty
reserve the next token and sleep until it is due, so waiting callers are served in
arrival order and the long-run rate never exceeds ``rate_per_second``.

:func:`limiter_for` and :func:`concurrency_for` cache one limiter / semaphore per key for
the whole process, so every item of a workflow (every worker thread) shares one bucket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from enrichflow.errors import RetryableStepError

__all__ = [
    "RateLimitTimeout",
    "RateLimiter",
    "concurrency_for",
    "concurrency_slot",
    "limiter_for",
    "reset_limits",
]


class RateLimitTimeout(RetryableStepError):
    """The local rate or concurrency limit did not admit the request in time; it will be retried."""


class RateLimiter:
    """A thread-safe token bucket. ``clock`` and ``sleep`` are injectable for tests."""

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate_per_second > 0:
            raise ValueError("rate_per_second must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = float(rate_per_second)
        self.burst = int(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._updated = clock()

    def _refill(self, now: float) -> None:
        elapsed = max(now - self._updated, 0.0)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._updated = now

    def acquire(self, timeout: float | None = None) -> None:
        """Take one token, sleeping until one is due.

        Raises :class:`RateLimitTimeout` (with ``retry_after``) without taking a token when
        the wait would exceed ``timeout`` seconds; ``None`` waits as long as needed.
        """
        with self._lock:
            self._refill(self._clock())
            self._tokens -= 1.0
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
            if timeout is not None and wait > timeout:
                self._tokens += 1.0
                raise RateLimitTimeout(
                    f"rate limit ({self.rate:g}/s, burst {self.burst}) would delay this "
                    f"request {wait:.1f}s, more than the {timeout:g}s allowed",
                    retry_after=wait,
                )
        if wait > 0:
            self._sleep(wait)

    def available(self) -> float:
        """Tokens in the bucket now (negative when callers are queued)."""
        with self._lock:
            self._refill(self._clock())
            return self._tokens


_registry_lock = threading.Lock()
_limiters: dict[tuple[str, float, int], RateLimiter] = {}
_semaphores: dict[tuple[str, int], threading.BoundedSemaphore] = {}


def limiter_for(key: str, rate: float, burst: int) -> RateLimiter:
    """The process-wide limiter for ``key`` (a new bucket if ``rate``/``burst`` change)."""
    cache_key = (key, float(rate), int(burst))
    with _registry_lock:
        limiter = _limiters.get(cache_key)
        if limiter is None:
            limiter = RateLimiter(rate, burst)
            _limiters[cache_key] = limiter
        return limiter


def concurrency_for(key: str, limit: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore for ``key`` admitting ``limit`` holders at once."""
    if limit < 1:
        raise ValueError("concurrency limit must be at least 1")
    cache_key = (key, int(limit))
    with _registry_lock:
        semaphore = _semaphores.get(cache_key)
        if semaphore is None:
            semaphore = threading.BoundedSemaphore(limit)
            _semaphores[cache_key] = semaphore
        return semaphore


@contextmanager
def concurrency_slot(key: str, limit: int, timeout: float | None = None) -> Iterator[None]:
    """Hold one slot of :func:`concurrency_for` ``(key, limit)``; :class:`RateLimitTimeout` if
    no slot frees up within ``timeout`` seconds."""
    semaphore = concurrency_for(key, limit)
    if not semaphore.acquire(timeout=timeout):
        raise RateLimitTimeout(
            f"all {limit} concurrent request slots stayed busy for {timeout:g}s",
            retry_after=1.0,
        )
    try:
        yield
    finally:
        semaphore.release()


def reset_limits() -> None:
    """Forget every cached limiter and semaphore (for tests)."""
    with _registry_lock:
        _limiters.clear()
        _semaphores.clear()
