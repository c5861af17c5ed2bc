"""One tick = sequencer + reaper + roll-up + dispatcher; ``run`` repeats ticks until told to stop.

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
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import InterfaceError, OperationalError

from enrichflow.conductor.wakeups import NotifyListener, listener_for
from enrichflow.db.engine import now_ms, reading, urgent
from enrichflow.db.models import Batch
from enrichflow.db.states import (
    batch_steps_with_work,
    batches_rollup,
    conductor_work_pending,
    followers_settle,
    leaders_finished,
    states_advance,
    states_claim,
    states_reap,
)
from enrichflow.db.statistics import statistics_refresh
from enrichflow.executors.base import Executor
from enrichflow.states import BatchStatus

log = logging.getLogger(__name__)

CONNECTION_ERRORS = (OperationalError, InterfaceError)
"""What a lost or restarting database raises through SQLAlchemy (SQLite's 'database is
locked' is an OperationalError too; backing off is right for it as well)."""


@dataclass(frozen=True, slots=True)
class TickReport:
    advanced: int
    reaped: int
    finished_batches: int
    dispatched: int

    @property
    def moved(self) -> bool:
        return bool(self.advanced or self.reaped or self.finished_batches or self.dispatched)


class Conductor:
    """Drives every RUNNING batch in the database through ``executor``."""

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
    ) -> None:
        self.engine = engine
        self.executor = executor
        self.chunk_size = chunk_size
        self.poll_interval = poll_interval
        self.clock = clock
        self.listen = listen
        """On Postgres, ``LISTEN enrichflow`` while :meth:`run` runs."""
        self.max_backoff = max_backoff
        self.housekeeping_interval = housekeeping_interval
        """How often :meth:`run` reaps expired leases."""
        self.settle_interval = settle_interval
        """How often housekeeping looks for de-duplication followers whose leader finished
        without settling them (a leader's callback settles its followers itself; this is for
        failed leaders and waits recorded just after the callback). The look is a read, but it
        reads every waiting follower's index entry: 20 ms at 80,000 of them."""
        self._next_settle = 0.0
        self.statistics_interval = statistics_interval
        """How often housekeeping looks for tables whose planner statistics are out of date
        (Postgres, ``db.statistics``)."""
        self._next_statistics = 0.0
        self.listener: NotifyListener | None = None
        self.db_errors = 0
        """Ticks that failed on a connection error (and were retried after a back-off)."""

    def tick(self, housekeeping: bool = True) -> TickReport:
        """One pass. ``housekeeping=False`` skips the reaper and the follower settling (the
        run loop does them every ``housekeeping_interval`` seconds, not on every wake-up; the
        settling at most every ``settle_interval``).

        The writes share one connection (one pool checkout, so one pre-ping, per tick)."""
        advanced = reaped = finished = 0
        with reading(self.engine) as reader:
            must_advance, must_roll_up = conductor_work_pending(reader)
        with urgent(self.engine.connect()) as conn:
            while must_advance:
                with conn.begin():
                    n = states_advance(conn, self.clock())
                advanced += n
                if n == 0:
                    break
            if must_roll_up:  # first: a finished batch is reported without waiting on chores
                with conn.begin():
                    finished = batches_rollup(conn, datetime.now(UTC))
            if housekeeping:
                with conn.begin():
                    reaped = states_reap(conn, self.clock())
                if reaped:
                    log.warning("reaper: %d state(s) past their lease or callback deadline", reaped)
                if time.monotonic() >= self._next_settle:
                    self.settle()
                    self._next_settle = time.monotonic() + self.settle_interval
                if time.monotonic() >= self._next_statistics:
                    statistics_refresh(self.engine)
                    self._next_statistics = time.monotonic() + self.statistics_interval
            dispatched = self._dispatch(conn)
        return TickReport(advanced, reaped, finished, dispatched)

    def settle(self) -> int:
        """Settle de-duplication followers whose leader finished: a read, and a write
        transaction only when there is something to move. Returns the states moved."""
        with reading(self.engine) as reader:
            leaders = leaders_finished(reader)
        if not leaders:
            return 0
        with urgent(self.engine.connect()) as conn, conn.begin():
            settled = followers_settle(conn, leaders, self.clock())
        if settled:
            log.info("settled %d de-duplication follower(s)", settled)
        return settled

    def dispatch(self) -> int:
        """Claim runnable states per step while the executor has room, and hand them over."""
        with urgent(self.engine.connect()) as conn:
            return self._dispatch(conn)

    def _dispatch(self, conn: Connection) -> int:
        # Only steps that have a runnable PENDING state (one index probe per step), so an
        # idle step costs no claim transaction.
        with reading(self.engine) as reader:
            steps = batch_steps_with_work(reader, self.clock())
        dispatched = 0
        for step in steps:
            size = int(step.config.get("batch_size", self.chunk_size))
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
                if len(claims) < size:
                    break
        return dispatched

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
                    next_housekeeping = time.monotonic() + self.housekeeping_interval
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
        """Run until the given batches (default: every RUNNING batch) are no longer RUNNING,
        or until ``interrupted()``."""
        wanted = list(batch_ids) if batch_ids is not None else None

        def finished() -> bool:
            if interrupted():
                return True
            query = select(Batch.id).where(Batch.status == BatchStatus.RUNNING.value)
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
