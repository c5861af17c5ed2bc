"""The result rows a completion stores beside its state."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from enrichflow.db.engine import is_postgres
from enrichflow.db.states import postgres, sqlite
from enrichflow.db.states.transition import status_unchanged

ResultRow = tuple[int, int, str, dict[str, Any]]
"""(batch id, item id, step name, payload): a plain tuple, which orjson writes as an array
itself (a named tuple went through the encoder's fallback, once per row)."""


@status_unchanged
def results_insert(conn: Connection, rows: Sequence[ResultRow], now: int) -> None:
    """Store results, ignoring any (item, step) that already has one."""
    if not rows:
        return
    if is_postgres(conn):
        postgres.results_insert(conn, rows, now)
    else:
        sqlite.results_insert(conn, rows, now)
