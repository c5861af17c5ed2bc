"""The default executor: a thread pool inside this process."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine

from enrichflow.db.states import BatchStepInfo, Claim
from enrichflow.runner import DEFAULT_OPTIONS, RunnerOptions, run_claims

log = logging.getLogger(__name__)


class LocalExecutor:
    """Runs each chunk in a pool thread; at most ``concurrency`` chunks of one step at once.

    A chunk runs its items one after another, so a step's concurrency limit is the number of
    its handler calls in flight. A chunk is accepted only when a thread is free, so it starts
    at once: claims go straight to IN_PROGRESS and never sit in a queue outliving their lease.
    """

    starts_on_claim = True

    def __init__(
        self,
        engine: Engine,
        workers: int,
        services: Mapping[str, Any] | None = None,
        options: RunnerOptions = DEFAULT_OPTIONS,
    ) -> None:
        self.engine = engine
        self.workers = workers
        self.services: Mapping[str, Any] = services or {}
        self.options = options
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="enrichflow-run")
        self._lock = threading.Lock()
        self._inflight: dict[tuple[int, int], int] = {}
        self._total = 0
        self._event = threading.Event()
        self.failures: list[BaseException] = []
        """Chunks that died outside any handler (database errors); their claims are left to
        the reaper, and the conductor reports these."""

    def reserve(self, step: BatchStepInfo) -> bool:
        """A slot of ``step`` and a pool thread, taken in one go under the lock."""
        with self._lock:
            if self._total >= self.workers or not self._step_has_room(step):
                return False
            self._inflight[step.key] = self._inflight.get(step.key, 0) + 1
            self._total += 1
            return True

    def submit(self, step: BatchStepInfo, claims: list[Claim]) -> None:
        future = self._pool.submit(self._run, step, claims)
        future.add_done_callback(self._done)

    def release(self, step: BatchStepInfo) -> None:
        with self._lock:
            self._inflight[step.key] -= 1
            self._total -= 1

    def _run(self, step: BatchStepInfo, claims: list[Claim]) -> None:
        """Run the chunk, then, while the runner chains them, its items' next steps.

        A chained step holds a slot of that step (taken by :meth:`_take` when the first items
        finish), so per-step concurrency limits hold for chained chunks too; the slot of the
        step just finished is given back before the next one runs.
        """
        current: BatchStepInfo | None = step
        granted: list[BatchStepInfo] = []

        def take(next_step: BatchStepInfo) -> bool:
            if self._take(next_step):
                granted.append(next_step)
                return True
            return False

        try:
            while current is not None:
                report = run_claims(
                    self.engine, claims, self.services, self.options, started=True, chain=take
                )
                self._give_back(current.key)
                current = granted.pop() if granted else None
                claims = list(report.chained)
                if current is not None and not claims:  # every next state already existed
                    self._give_back(current.key)
                    current = None
        finally:
            if current is not None:
                self._give_back(current.key)
            for left in granted:
                self._give_back(left.key)

    def _take(self, step: BatchStepInfo) -> bool:
        """A slot of ``step`` for a chained chunk (it runs on the thread it chains from)."""
        with self._lock:
            if not self._step_has_room(step):
                return False
            self._inflight[step.key] = self._inflight.get(step.key, 0) + 1
            return True

    def _step_has_room(self, step: BatchStepInfo) -> bool:
        """Caller holds the lock."""
        return self._inflight.get(step.key, 0) < min(step.concurrency, self.workers)

    def _give_back(self, key: tuple[int, int]) -> None:
        with self._lock:
            self._inflight[key] -= 1

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._total -= 1
        exc = future.exception()
        if exc is not None:
            log.error("a chunk failed outside its handlers", exc_info=exc)
            self.failures.append(exc)
        self._event.set()

    def busy(self) -> bool:
        with self._lock:
            return self._total > 0

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()

    def wake(self) -> None:
        self._event.set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
