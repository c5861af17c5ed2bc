"""The settler: de-duplication followers whose leader finished without settling them (a failed
leader, or a wait recorded just after the leader's callback) complete with the leader's payload
or fail with its error (``leaders_finished`` then ``followers_settle``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine

from enrichflow.db.engine import now_ms, reading, urgent
from enrichflow.db.states import followers_settle, leaders_finished

__all__ = ["Settler", "SettlerReport", "SettlerSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SettlerSettings:
    interval: float = 2.0
    """Least seconds between two runs in the conductor's loop: the look is a read, but it reads
    every waiting follower's index entry."""
    page_size: int = 1000
    """Finished leaders settled per write transaction."""


@dataclass(frozen=True, slots=True)
class SettlerReport:
    settled: int
    pages: int


class Settler:
    """A leader's callback settles its followers itself; this catches the ones it could not."""

    name = "settler"

    def __init__(
        self,
        engine: Engine,
        settings: SettlerSettings = SettlerSettings(),
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock

    def run_once(self) -> SettlerReport:
        """A read per page, and a write transaction only for a page with leaders in it; stops
        at a short page, or at a page that moved nothing (its leaders moved on meanwhile)."""
        settled = pages = 0
        while True:
            with reading(self.engine) as reader:
                leaders = leaders_finished(reader, self.settings.page_size)
            pages += 1
            if not leaders:
                break
            with urgent(self.engine.connect()) as conn, conn.begin():
                moved = followers_settle(conn, leaders, self.clock())
            settled += moved
            if len(leaders) < self.settings.page_size or moved == 0:
                break
        if settled:
            log.info("settled %d de-duplication follower(s)", settled)
        return SettlerReport(settled, pages)
