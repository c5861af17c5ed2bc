"""Planner statistics: the conductor ANALYZEs tables whose statistics went stale while batches
grew them (Postgres; nothing on SQLite), so the runners' and the export's look-ups keep
their index plans."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from enrichflow.db.statistics import statistics_refresh

__all__ = ["StatisticsRefresh", "StatisticsReport", "StatisticsSettings"]


@dataclass(frozen=True, slots=True)
class StatisticsSettings:
    interval: float = 15.0
    """Least seconds between two looks for stale tables in the conductor's loop."""


@dataclass(frozen=True, slots=True)
class StatisticsReport:
    analyzed: tuple[str, ...]


class StatisticsRefresh:
    """One look for stale tables, and ANALYZE of those found."""

    name = "statistics"

    def __init__(self, engine: Engine, settings: StatisticsSettings = StatisticsSettings()) -> None:
        self.engine = engine
        self.settings = settings

    def run_once(self) -> StatisticsReport:
        return StatisticsReport(tuple(statistics_refresh(self.engine)))
