"""The roll-up: RUNNING batches with nothing left to move become COMPLETED or
COMPLETED_WITH_ERRORS (``batches_rollup``), in one set-based statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine

from enrichflow.db.engine import urgent
from enrichflow.db.states import batches_rollup

__all__ = ["Rollup", "RollupReport"]


@dataclass(frozen=True, slots=True)
class RollupReport:
    finished_batches: int


class Rollup:
    """Reports a batch as finished the tick its last state advanced; it has no settings, since
    one statement finishes every finishable batch."""

    name = "rollup"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def run_once(self, conn: Connection | None = None) -> RollupReport:
        """Roll up every finishable batch; ``conn`` is the caller's writing connection."""
        if conn is None:
            with urgent(self.engine.connect()) as own:
                return self.run_once(own)
        with conn.begin():
            return RollupReport(batches_rollup(conn, datetime.now(UTC)))
