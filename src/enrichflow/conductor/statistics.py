"""What Postgres reads stay fast on, kept up by the conductor (nothing on SQLite): it ANALYZEs
tables whose statistics went stale while batches grew them, so the runners' and the export's
look-ups keep their index plans, and folds the state tallies the batch page sums
(:func:`~enrichflow.db.states.tallies.tallies_fold`)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from enrichflow.db.engine import is_postgres, urgent
from enrichflow.db.states.tallies import tallies_fold
from enrichflow.db.statistics import statistics_refresh

__all__ = ["StatisticsRefresh", "StatisticsReport", "StatisticsSettings"]


@dataclass(frozen=True, slots=True)
class StatisticsSettings:
    interval: float = 15.0
    """Least seconds between two looks for stale tables (and two tally folds) in the
    conductor's loop."""


@dataclass(frozen=True, slots=True)
class StatisticsReport:
    analyzed: tuple[str, ...]
    folded: int = 0
    """Tally rows written by the fold."""


class StatisticsRefresh:
    """One look for stale tables, ANALYZE of those found, and one tally fold."""

    name = "statistics"

    def __init__(self, engine: Engine, settings: StatisticsSettings = StatisticsSettings()) -> None:
        self.engine = engine
        self.settings = settings

    def run_once(self) -> StatisticsReport:
        analyzed = tuple(statistics_refresh(self.engine))
        if not is_postgres(self.engine):
            return StatisticsReport(analyzed)
        with urgent(self.engine.connect()) as conn, conn.begin():
            folded = tallies_fold(conn)
        return StatisticsReport(analyzed, folded)
