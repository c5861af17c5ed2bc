"""The dispatcher: claims runnable states per step while the executor has room and hands each
chunk over, later steps first so items flow through the pipeline instead of queueing at step 0."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from enrichflow.db.engine import now_ms, reading, urgent
from enrichflow.db.states import batch_steps_with_work, states_claim
from enrichflow.executors.base import Executor

__all__ = ["DispatchReport", "Dispatcher", "DispatcherSettings"]


@dataclass(frozen=True, slots=True)
class DispatcherSettings:
    chunk_size: int = 500
    """States claimed per chunk, unless the step's ``batch_size`` says otherwise."""


@dataclass(frozen=True, slots=True)
class DispatchReport:
    dispatched: int
    chunks: int


class Dispatcher:
    """A chunk is claimed only after the executor reserved a slot for it, so nothing (a chained
    chunk) can take that slot between the claim and :meth:`Executor.submit`; a slot that gets
    no chunk is released."""

    name = "dispatcher"

    def __init__(
        self,
        engine: Engine,
        executor: Executor,
        settings: DispatcherSettings = DispatcherSettings(),
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.engine = engine
        self.executor = executor
        self.settings = settings
        self.clock = clock

    def run_once(self, conn: Connection | None = None) -> DispatchReport:
        """Claim and submit until every step with work is out of slots or short of states;
        ``conn`` is the caller's writing connection (one pool checkout per tick)."""
        if conn is None:
            with urgent(self.engine.connect()) as own:
                return self.run_once(own)
        # Only steps that have a runnable PENDING state (one index probe per step), so an
        # idle step costs no claim transaction.
        with reading(self.engine) as reader:
            steps = batch_steps_with_work(reader, self.clock())
        dispatched = chunks = 0
        for step in steps:
            size = int(step.config.get("batch_size", self.settings.chunk_size))
            while self.executor.reserve(step):
                try:
                    with conn.begin():
                        claims = states_claim(
                            conn,
                            step.batch_id,
                            step.position,
                            size,
                            step.lease_ms,
                            self.clock(),
                            start=self.executor.starts_on_claim,
                        )
                except BaseException:
                    self.executor.release(step)
                    raise
                if not claims:
                    self.executor.release(step)
                    break
                self.executor.submit(step, claims)
                dispatched += len(claims)
                chunks += 1
                if len(claims) < size:
                    break
        return DispatchReport(dispatched, chunks)
