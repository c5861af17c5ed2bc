"""The conductor: one tick composes the parts (sequencer, roll-up, reaper, settler, statistics,
dispatcher); ``run`` repeats ticks until told to stop.

A tick first reads whether anything waits to be advanced or rolled up (a read never queues for
SQLite's writer), then runs the writing parts on one connection in the writer's urgent lane:
the sequencer and the roll-up when the read found work for them, the housekeeping parts (the
reaper every ``housekeeping_interval``, the settler and the statistics refresh at their own
longer intervals), and the dispatcher. Every part can also run on its own (``run_once``); the
CLI's ``conductor`` and ``run``, ``serve`` and the Prefect flow all run this same composition,
the flow through a :class:`PhaseRunner` that records each part as a Prefect task.

Wake-ups: the conductor sleeps in ``executor.wait`` between ticks. A finished chunk, a
callback or a launch in this process wakes it through ``executor.wake``; on Postgres a
:class:`~enrichflow.conductor.wakeups.NotifyListener` also wakes it on every ``NOTIFY
enrichflow`` (states changed by other processes). ``poll_interval`` is only the safety net.

Losing the database (server restart) does not stop ``run``: a tick that fails with a
connection error is logged, the loop backs off (up to ``max_backoff`` seconds) and carries
on; the pool's pre-ping replaces dead connections, and the reaper takes back chunks whose
runners died with the connection.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from sqlalchemy import Engine, exists, select
from sqlalchemy.exc import InterfaceError, OperationalError

from enrichflow.conductor.dispatcher import Dispatcher, DispatcherSettings
from enrichflow.conductor.reaper import Reaper, ReaperSettings
from enrichflow.conductor.rollup import Rollup
from enrichflow.conductor.sequencer import Sequencer
from enrichflow.conductor.settler import Settler, SettlerSettings
from enrichflow.conductor.statistics import StatisticsRefresh, StatisticsSettings
from enrichflow.conductor.wakeups import NotifyListener, listener_for
from enrichflow.db.engine import now_ms, reading, urgent
from enrichflow.db.models import Batch, BatchStep
from enrichflow.db.states import conductor_work_pending
from enrichflow.executors.base import Executor
from enrichflow.states import BatchStatus

__all__ = ["CONNECTION_ERRORS", "Conductor", "PhaseRunner", "TickReport", "run_directly"]

log = logging.getLogger(__name__)

CONNECTION_ERRORS = (OperationalError, InterfaceError)
"""What a lost or restarting database raises through SQLAlchemy (SQLite's 'database is
locked' is an OperationalError too; backing off is right for it as well)."""

R = TypeVar("R")


class PhaseRunner(Protocol):
    """How a tick calls one part: ``run`` is the part's ``run_once`` bound to the tick's
    connection, ``name`` the part's name; the runner returns what ``run`` returns."""

    def __call__(self, name: str, run: Callable[[], R]) -> R: ...


def run_directly(name: str, run: Callable[[], R]) -> R:
    """The plain :class:`PhaseRunner`: call the part in this thread."""
    return run()


@dataclass(frozen=True, slots=True)
class TickReport:
    advanced: int
    reaped: int
    finished_batches: int
    dispatched: int
    settled: int = 0


class Conductor:
    """Drives every RUNNING batch in the database through ``executor``, one part at a time."""

    def __init__(
        self,
        engine: Engine,
        executor: Executor,
        chunk_size: int = 500,
        poll_interval: float = 1.0,
        clock: Callable[[], int] = now_ms,
        listen: bool = True,
        max_backoff: float = 5.0,
        housekeeping_interval: float = 0.25,
        settle_interval: float = 2.0,
        statistics_interval: float = 15.0,
        phase: PhaseRunner = run_directly,
    ) -> None:
        self.engine = engine
        self.executor = executor
        self.poll_interval = poll_interval
        self.listen = listen
        """On Postgres, ``LISTEN enrichflow`` while :meth:`run` runs."""
        self.max_backoff = max_backoff
        self.phase = phase
        self.sequencer = Sequencer(engine, clock=clock)
        self.rollup = Rollup(engine)
        self.reaper = Reaper(engine, ReaperSettings(interval=housekeeping_interval), clock)
        self.settler = Settler(engine, SettlerSettings(interval=settle_interval), clock)
        self.statistics = StatisticsRefresh(engine, StatisticsSettings(statistics_interval))
        self.dispatcher = Dispatcher(engine, executor, DispatcherSettings(chunk_size), clock)
        self._next_settle = 0.0
        self._next_statistics = 0.0
        self.listener: NotifyListener | None = None
        self.db_errors = 0
        """Ticks that failed on a connection error (and were retried after a back-off)."""

    def tick(self, housekeeping: bool = True) -> TickReport:
        """One pass. ``housekeeping=False`` skips the reaper, the settler and the statistics
        refresh (the run loop does them every reaper interval, not on every wake-up; the
        settler and the statistics refresh at most every one of their own intervals).

        The writes share one connection (one pool checkout, so one pre-ping, per tick)."""
        phase = self.phase
        advanced = reaped = finished = settled = 0
        with reading(self.engine) as reader:
            must_advance, must_roll_up = conductor_work_pending(reader)
        with urgent(self.engine.connect()) as conn:
            if must_advance:
                advanced = phase(
                    self.sequencer.name, lambda: self.sequencer.run_once(conn)
                ).advanced
            if must_roll_up:  # first: a finished batch is reported without waiting on chores
                finished = phase(
                    self.rollup.name, lambda: self.rollup.run_once(conn)
                ).finished_batches
            if housekeeping:
                reaped = phase(self.reaper.name, lambda: self.reaper.run_once(conn)).reaped
                if time.monotonic() >= self._next_settle:
                    settled = phase(self.settler.name, self.settler.run_once).settled
                    self._next_settle = time.monotonic() + self.settler.settings.interval
                if time.monotonic() >= self._next_statistics:
                    phase(self.statistics.name, self.statistics.run_once)
                    self._next_statistics = time.monotonic() + self.statistics.settings.interval
            dispatched = phase(
                self.dispatcher.name, lambda: self.dispatcher.run_once(conn)
            ).dispatched
        return TickReport(advanced, reaped, finished, dispatched, settled)

    def run(
        self, stop: Callable[[], bool], on_tick: Callable[[TickReport], None] | None = None
    ) -> None:
        """Tick until ``stop()``; sleeps until a chunk finishes, a wake-up, or the safety-net poll."""
        listener = listener_for(self.engine, self.executor.wake) if self.listen else None
        if listener is not None:
            self.listener = listener.start()
        backoff = 0.0
        next_housekeeping = 0.0
        try:
            while not stop():
                housekeeping = time.monotonic() >= next_housekeeping
                try:
                    report = self.tick(housekeeping)
                except CONNECTION_ERRORS as exc:
                    self.db_errors += 1
                    backoff = min(max(backoff * 2, 0.1), self.max_backoff)
                    log.error(
                        "conductor: database unavailable (%s); retrying in %.1f s",
                        _first_line(exc),
                        backoff,
                    )
                    self.executor.wait(backoff)
                    continue
                if backoff:
                    log.warning("conductor: database reachable again; carrying on")
                    backoff = 0.0
                if housekeeping:
                    next_housekeeping = time.monotonic() + self.reaper.settings.interval
                if on_tick is not None:
                    on_tick(report)
                # Whatever this tick made runnable it dispatched; the next work arrives with a
                # wake-up (a chunk finished, a callback, a NOTIFY) or, at worst, the poll.
                timeout = 0.5 if self.executor.busy() else self.poll_interval
                self.executor.wait(timeout)
        finally:
            if listener is not None:
                listener.stop()

    def run_until_finished(
        self,
        batch_ids: Iterable[int] | None = None,
        on_tick: Callable[[TickReport], None] | None = None,
        interrupted: Callable[[], bool] = lambda: False,
    ) -> None:
        """Run until the given batches (default: every RUNNING batch) are no longer RUNNING or
        are paused (by an operator or the circuit breaker: they wait for ``resume``), or until
        ``interrupted()``."""
        wanted = list(batch_ids) if batch_ids is not None else None

        def finished() -> bool:
            if interrupted():
                return True
            step_paused = exists().where(
                BatchStep.batch_id == Batch.id, BatchStep.paused_reason.is_not(None)
            )
            query = select(Batch.id).where(
                Batch.status == BatchStatus.RUNNING.value,
                Batch.paused_at.is_(None),
                ~step_paused,
            )
            if wanted is not None:
                query = query.where(Batch.id.in_(wanted))
            try:
                with reading(self.engine) as conn:
                    running = conn.execute(query.limit(1)).first()
            except CONNECTION_ERRORS:
                return False  # the next tick logs and backs off
            return running is None and not self.executor.busy()

        self.run(finished, on_tick)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
