"""The batch page's reads and retries as plain functions over an engine, one transaction each
(the catalog's :mod:`~enrichflow.catalog.batch_view` does the reading)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from enrichflow.catalog import batch_view, batches, uploads
from enrichflow.catalog.batch_controls import batch_controls_read
from enrichflow.catalog.credits import batch_credits
from enrichflow.db.engine import now_ms, reading
from enrichflow.db.states.tallies import Tally, states_tally
from enrichflow.db.states.triage import failure_groups, states_retry_failed_class
from enrichflow.errors import NotFoundError
from enrichflow.export import cell
from enrichflow.states import BatchStatus, StepType

COUNTING = frozenset({"progress", "groups", "credits"})
PARTS = frozenset({"progress", "groups", "credits"})
OLDER_THAN = {
    "0s": "any time ago",
    "15m": "15 min ago",
    "1h": "1 h ago",
    "6h": "6 h ago",
    "1d": "1 day ago",
}
"""The re-send form's choices: how long ago a waiting item must have been sent."""
FAILURE_COLUMNS = [
    "row_number",
    "item_id",
    "step",
    "attempt",
    "max_attempts",
    "error_class",
    "error",
    "label",
]


def _batch(conn: Any, batch_id: int) -> batches.BatchRow:
    found = batches.batch_get(conn, batch_id)
    if found is None:
        raise NotFoundError(f"batch {batch_id} does not exist")
    return found


def started_ms(batch: batches.BatchRow) -> int | None:
    """When the batch was launched (epoch ms)."""
    created = batch["created_at"]
    return None if created is None else int(created.timestamp() * 1000)


def overview(
    conn: Any, batch: batches.BatchRow, now: int, tally: Sequence[Tally] | None = None
) -> batch_view.Overview:
    """The batch's progress as its page shows it; the REST API reports the same."""
    return batch_view.batch_overview(
        conn,
        batch["id"],
        int(batch["item_count"] or 0),
        batch["status"] == BatchStatus.RUNNING.value,
        started_ms(batch),
        now,
        tally,
    )


def batch_page(
    engine: Engine, batch_id: int, parts: frozenset[str] = PARTS, now: int | None = None
) -> dict[str, Any]:
    """What the batch page's ``parts`` show: ``progress`` (headline, bar, steps), ``groups``
    (failures by step and error class) and ``credits`` (per Clay step of a finished batch:
    sent, de-duplicated, reused); the batch row and its steps always."""
    now = now_ms() if now is None else now
    with reading(engine) as conn:
        batch = _batch(conn, batch_id)
        running = batch["status"] == BatchStatus.RUNNING.value
        page: dict[str, Any] = {"batch": batch, "now": now, "running": running}
        page["blueprint"] = batch_view.batch_blueprint(conn, batch_id)
        # one read of the tallies for every part that counts
        tally = states_tally(conn, batch_id) if parts & COUNTING else None
        if "progress" in parts:
            page["view"] = overview(conn, batch, now, tally)
        if "groups" in parts:
            page["groups"] = failure_groups(conn, batch_id, tally)
        has_clay = any(step.type == StepType.ASYNC.value for step in page["blueprint"])
        if "credits" in parts and has_clay:
            page["credits"] = batch_credits(conn, batch_id, tally)
    return page


def batch_controls(engine: Engine, batch_id: int) -> dict[str, Any]:
    """What the controls card shows: pause, the circuit breaker's pauses, the history, and the
    choices of the re-send form."""
    with reading(engine) as conn:
        controls = batch_controls_read(conn, batch_id)
    return {"controls": controls, "older_than": OLDER_THAN}


def rejected_rows(engine: Engine, upload_id: int | None) -> int:
    """How many rows of the batch's file were rejected (0 once its upload is deleted)."""
    if upload_id is None:
        return 0
    with reading(engine) as conn:
        return uploads.upload_rejected_count(conn, upload_id)


def failed_page(engine: Engine, batch_id: int, **filters: Any) -> batch_view.Page:
    with reading(engine) as conn:
        _batch(conn, batch_id)
        return batch_view.batch_failed_page(conn, batch_id, **filters)


def items_page(engine: Engine, batch_id: int, **filters: Any) -> batch_view.Page:
    with reading(engine) as conn:
        _batch(conn, batch_id)
        return batch_view.batch_items_page(conn, batch_id, **filters)


def item_detail(engine: Engine, batch_id: int, item_id: int) -> dict[str, Any]:
    with reading(engine) as conn:
        batch = _batch(conn, batch_id)
        found = batch_view.batch_item_detail(conn, batch_id, item_id)
    if found is None:
        raise NotFoundError(f"item {item_id} is not in batch {batch_id}")
    return {"batch": batch, "detail": found}


def retry_class(engine: Engine, batch_id: int, step: str, klass: str) -> int:
    """Retry one failure group; the number of states moved."""
    with engine.begin() as conn:
        _batch(conn, batch_id)
        return states_retry_failed_class(conn, batch_id, now_ms(), step, klass)


def failures_csv(engine: Engine, batch_id: int) -> Iterator[str]:
    """Every failed state of the batch as CSV, page by page, cells formula-safe."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FAILURE_COLUMNS)
    after: int | None = None
    while True:
        page = failed_page(engine, batch_id, after=after)
        for row in page.rows:
            writer.writerow([cell(row[c]) for c in FAILURE_COLUMNS])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if page.next_after is None:
            return
        after = page.next_after


def when(ms: int | None) -> str:
    """Epoch milliseconds as a UTC time with its zone."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def span(ms: int | None) -> str:
    """A duration in the largest fitting unit (42 min, 23 h, 3 d)."""
    if ms is None:
        return "—"
    seconds = abs(ms) / 1000
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"
