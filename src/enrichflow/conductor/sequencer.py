"""The sequencer: each finished state's next-step state is created (``states_advance``), one
page per write transaction, until a page comes back short."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from enrichflow.db.engine import now_ms, urgent
from enrichflow.db.states import states_advance

__all__ = ["Sequencer", "SequencerReport", "SequencerSettings"]


@dataclass(frozen=True, slots=True)
class SequencerSettings:
    page_size: int = 5000
    """Finished states advanced per transaction, so a large backlog never holds the writer
    lock in one long transaction."""


@dataclass(frozen=True, slots=True)
class SequencerReport:
    advanced: int
    pages: int


class Sequencer:
    """Moves items to their next step; running it twice, or in two conductors at once, never
    creates a state twice (``states_advance`` marks and inserts in one transaction)."""

    name = "sequencer"

    def __init__(
        self,
        engine: Engine,
        settings: SequencerSettings = SequencerSettings(),
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock

    def run_once(self, conn: Connection | None = None) -> SequencerReport:
        """Advance every finished state; ``conn`` is the caller's writing connection."""
        if conn is None:
            with urgent(self.engine.connect()) as own:
                return self.run_once(own)
        advanced = pages = 0
        while True:
            with conn.begin():
                n = states_advance(conn, self.clock(), self.settings.page_size)
            advanced += n
            pages += 1
            if n < self.settings.page_size:
                return SequencerReport(advanced, pages)
