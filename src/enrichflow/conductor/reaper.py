"""The reaper: QUEUED / IN_PROGRESS states past their lease or callback deadline go back to
PENDING with backoff, or to FAILED once their attempts are used up (``states_reap``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from enrichflow.db.engine import now_ms, urgent
from enrichflow.db.states import states_reap

__all__ = ["Reaper", "ReaperReport", "ReaperSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReaperSettings:
    interval: float = 0.25
    """Seconds between two runs in the conductor's loop (its housekeeping cadence)."""
    page_size: int = 1000
    """States taken back per transaction."""


@dataclass(frozen=True, slots=True)
class ReaperReport:
    reaped: int
    pages: int


class Reaper:
    """Takes back the work of runners that died or hung and of callbacks that never came."""

    name = "reaper"

    def __init__(
        self,
        engine: Engine,
        settings: ReaperSettings = ReaperSettings(),
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock

    def run_once(self, conn: Connection | None = None) -> ReaperReport:
        """Reap page by page until a page comes back short; ``conn`` is the caller's writing
        connection."""
        if conn is None:
            with urgent(self.engine.connect()) as own:
                return self.run_once(own)
        reaped = pages = 0
        while True:
            with conn.begin():
                n = states_reap(conn, self.clock(), self.settings.page_size)
            reaped += n
            pages += 1
            if n < self.settings.page_size:
                break
        if reaped:
            log.warning("reaper: %d state(s) past their lease or callback deadline", reaped)
        return ReaperReport(reaped, pages)
