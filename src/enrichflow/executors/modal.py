"""Chunks run on Modal: ``modal.Function.from_name(app, fn).spawn(state_ids)`` per chunk.

The dispatcher claims a chunk (PENDING -> QUEUED, attempt + 1) and calls :meth:`submit`,
which spawns the deployed function (``deploy/modal_app.py``) from a small thread pool so the
conductor never blocks on the network. The function loads the states by id
(:func:`enrichflow.db.states.claims_load`) and runs them through
:func:`enrichflow.runner.run_claims`, which starts them (QUEUED -> IN_PROGRESS, fenced by
attempt) and records the outcomes; a chunk Modal never runs is taken back by the reaper when
its QUEUED lease ends.

If ``spawn`` raises (no credentials, function not deployed, network), the failure is logged at
ERROR and the chunk's states go back to PENDING with backoff and the error stored, or to FAILED
with it once the attempts are used up (:func:`enrichflow.db.states.states_dispatch_failed`), so
a batch never sits at QUEUED while everything reports success.

``modal`` is imported only when a chunk is dispatched, so this module imports without it.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine

from enrichflow.db.engine import now_ms, reading
from enrichflow.db.states import (
    BatchStepInfo,
    Claim,
    states_dispatch_failed,
    states_leased_count,
)

__all__ = ["FUNCTION_NAME", "ModalExecutor", "modal_function"]

log = logging.getLogger(__name__)

FUNCTION_NAME = "run_chunk"


def modal_function(app_name: str, function_name: str) -> Any:
    """The deployed function (a lazy handle: Modal is contacted on ``spawn``)."""
    import modal

    return modal.Function.from_name(app_name, function_name)


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text[:2000]


class ModalExecutor:
    """Dispatches chunks to a deployed Modal function; see the module docstring.

    Back-pressure: at most ``max_containers`` chunks of a step are out at once, counting the
    spawns in progress and the step's states still QUEUED or IN_PROGRESS (in chunks of
    ``chunk_size``), so claims never wait in Modal's queue long enough to outlive their lease.
    """

    starts_on_claim = False

    def __init__(
        self,
        engine: Engine,
        app_name: str,
        function_name: str = FUNCTION_NAME,
        max_containers: int = 10,
        chunk_size: int = 500,
        lookup: Callable[[str, str], Any] = modal_function,
        clock: Callable[[], int] = now_ms,
        spawn_threads: int = 4,
    ) -> None:
        self.engine = engine
        self.app_name = app_name
        self.function_name = function_name
        self.max_containers = max_containers
        self.chunk_size = chunk_size
        self.lookup = lookup
        self.clock = clock
        self._pool = ThreadPoolExecutor(spawn_threads, thread_name_prefix="enrichflow-modal")
        self._lock = threading.Lock()
        self._spawning: dict[tuple[int, int], int] = {}
        self._event = threading.Event()
        self.spawned: list[Any] = []
        """The FunctionCall handles of successful spawns (most recent 1,000)."""
        self.failures: list[BaseException] = []
        """Spawns that raised; their states went back to PENDING or FAILED."""

    def reserve(self, step: BatchStepInfo) -> bool:
        """Counts the step's leased states first, then takes a spawn slot under the lock."""
        with reading(self.engine) as conn:
            leased = states_leased_count(conn, step.batch_id, step.position)
        size = int(step.config.get("batch_size", self.chunk_size))
        limit = min(step.concurrency, self.max_containers)
        with self._lock:
            spawning = self._spawning.get(step.key, 0)
            if spawning + math.ceil(leased / max(size, 1)) >= limit:
                return False
            self._spawning[step.key] = spawning + 1
            return True

    def submit(self, step: BatchStepInfo, claims: list[Claim]) -> None:
        self._pool.submit(self._spawn, step, claims)

    def release(self, step: BatchStepInfo) -> None:
        with self._lock:
            self._spawning[step.key] -= 1

    def _spawn(self, step: BatchStepInfo, claims: list[Claim]) -> None:
        try:
            call = self.lookup(self.app_name, self.function_name).spawn(
                [c.state_id for c in claims]
            )
        except Exception as exc:
            self._spawn_failed(step, claims, exc)
        else:
            with self._lock:
                self.spawned.append(call)
                del self.spawned[:-1000]
        finally:
            with self._lock:
                self._spawning[step.key] -= 1
            self._event.set()

    def _spawn_failed(self, step: BatchStepInfo, claims: list[Claim], exc: Exception) -> None:
        error = (
            f"could not dispatch to Modal ({self.app_name}.{self.function_name}): {_describe(exc)}"
        )
        self.failures.append(exc)
        try:
            with self.engine.begin() as conn:
                outcome = states_dispatch_failed(conn, claims, error, self.clock())
        except Exception:
            log.exception(
                "step %s: %s; could not put the %d state(s) back either (the reaper will, "
                "when their lease ends)",
                step.step_name,
                error,
                len(claims),
            )
            return
        log.error(
            "step %s of batch %s: %s; %d state(s) back to PENDING with backoff, %d FAILED "
            "(attempts used up)",
            step.step_name,
            step.batch_id,
            error,
            outcome.retried,
            outcome.failed,
        )

    def busy(self) -> bool:
        with self._lock:
            return any(self._spawning.values())

    def wait(self, timeout: float) -> None:
        self._event.wait(timeout)
        self._event.clear()

    def wake(self) -> None:
        self._event.set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
