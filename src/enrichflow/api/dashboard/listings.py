"""The lists of batches the home page, the batches page and a client's page show: keyset
pages with each batch's file, progress, failures and duration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from enrichflow.api.dashboard.formatting import span
from enrichflow.catalog import batches
from enrichflow.db.engine import reading
from enrichflow.states import BatchStatus

__all__ = ["BATCH_STATUSES", "Listing", "batches_page", "home"]

BATCH_STATUSES = [s.value for s in BatchStatus]


@dataclass(frozen=True, slots=True)
class Listing:
    rows: list[dict[str, Any]]
    older: int | None = None
    newer: int | None = None
    filters: dict[str, Any] = field(default_factory=dict)


def _view(row: batches.BatchListRow) -> dict[str, Any]:
    """The row with what the table shows: the share of items that failed (an item stops at
    its failed step) and the share done (while running: of every item's steps; once
    finished: every item that did not fail)."""
    items = max(int(row["item_count"]), 1)
    planned = items * max(row["step_count"], 1)
    running = row["status"] == BatchStatus.RUNNING.value
    failed_pct = min(100.0 * row["failed"] / items, 100.0)
    done_pct = 100.0 - failed_pct if not running else 100.0 * row["finished_states"] / planned
    return {
        **row,
        "done_pct": round(min(done_pct, 100.0 - failed_pct), 1),
        "failed_pct": round(failed_pct, 1),
        "duration": span(row["created_at"], row["finished_at"]),
        "running": running,
    }


def batches_page(
    engine: Engine,
    *,
    status: str | None = None,
    client_id: int | None = None,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> Listing:
    with reading(engine) as conn:
        page = batches.batches_page(
            conn, status=status, client_id=client_id, before=before, after=after, limit=limit
        )
    return Listing(
        [_view(r) for r in page.rows],
        page.older,
        page.newer,
        {"status": status, "client_id": client_id},
    )


def home(engine: Engine) -> dict[str, Listing]:
    """What needs an eye: batches running now, and the latest ones that failed items."""
    running = batches_page(engine, status=BatchStatus.RUNNING.value, limit=20)
    with_errors = batches_page(engine, status=BatchStatus.COMPLETED_WITH_ERRORS.value, limit=10)
    failing = [r for r in running.rows if r["failed"]] + with_errors.rows
    return {"running": running, "failing": Listing(failing)}
