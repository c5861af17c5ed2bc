"""Token bucket timing with an injected clock, and the process-wide caches."""

from __future__ import annotations

import threading
import time

import pytest

from enrichflow.errors import RetryableStepError
from enrichflow.webhooks.ratelimit import (
    RateLimiter,
    RateLimitTimeout,
    concurrency_for,
    concurrency_slot,
    limiter_for,
)


class FakeClock:
    """A monotonic clock that only moves when told to, or when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_burst_then_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, 3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        limiter.acquire()
    assert clock.sleeps == []
    limiter.acquire()
    assert clock.sleeps == [pytest.approx(0.5)]
    limiter.acquire()
    assert clock.sleeps == [pytest.approx(0.5), pytest.approx(0.5)]


def test_refill_is_capped_at_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 2, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.acquire()
    clock.now += 60
    assert limiter.available() == pytest.approx(2.0)
    limiter.acquire()
    limiter.acquire()
    assert clock.sleeps == []
    limiter.acquire()
    assert clock.sleeps == [pytest.approx(1.0)]


def test_queued_callers_reserve_successive_slots() -> None:
    clock = FakeClock()
    sleeps: list[float] = []
    limiter = RateLimiter(4.0, 1, clock=clock, sleep=sleeps.append)  # sleeping does not advance
    limiter.acquire()
    limiter.acquire()
    limiter.acquire()
    limiter.acquire()
    assert sleeps == [pytest.approx(0.25), pytest.approx(0.5), pytest.approx(0.75)]


def test_timeout_raises_retryable_without_taking_a_token() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 1, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    with pytest.raises(RateLimitTimeout) as info:
        limiter.acquire(timeout=0.5)
    assert isinstance(info.value, RetryableStepError)
    assert info.value.retry_after == pytest.approx(1.0)
    assert limiter.available() == pytest.approx(0.0)
    clock.now += 1.0
    limiter.acquire(timeout=0.0)
    assert clock.sleeps == []


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, 1)
    with pytest.raises(ValueError):
        RateLimiter(1, 0)


def test_real_clock_across_threads() -> None:
    limiter = RateLimiter(40.0, 1)
    start = time.monotonic()
    threads = [threading.Thread(target=limiter.acquire) for _ in range(9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    assert elapsed >= 8 / 40 - 0.02  # 1 immediate + 8 at 25ms spacing


def test_limiter_for_shares_one_bucket_per_key() -> None:
    a = limiter_for("webhook:step:abc", 10, 20)
    assert limiter_for("webhook:step:abc", 10, 20) is a
    assert limiter_for("webhook:step:other", 10, 20) is not a
    changed = limiter_for("webhook:step:abc", 5, 20)
    assert changed is not a
    assert changed.rate == 5


def test_concurrency_for_and_slot() -> None:
    semaphore = concurrency_for("k", 2)
    assert concurrency_for("k", 2) is semaphore
    with (
        concurrency_slot("k", 2),
        concurrency_slot("k", 2),
        pytest.raises(RateLimitTimeout),
        concurrency_slot("k", 2, timeout=0.05),
    ):
        pass
    with concurrency_slot("k", 2, timeout=0.05):
        pass
    with pytest.raises(ValueError):
        concurrency_for("k", 0)
