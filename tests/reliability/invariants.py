"""The invariants every reliability scenario ends with (:func:`check_invariants`), and the
small helpers the scenarios share (waiting with a deadline, counting states)."""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine, func, select

from enrichflow.db.engine import reading
from enrichflow.db.models import Batch, BatchItem, EnrichmentResult, WorkflowState
from enrichflow.export import write_export

ws = WorkflowState.__table__
rs = EnrichmentResult.__table__
TERMINAL = {"COMPLETED", "SKIPPED", "FAILED"}
DEADLINE_COLUMN = {"PENDING": "not_before", "QUEUED": "lease_until", "IN_PROGRESS": "lease_until"}


def check_invariants(engine: Engine, batch_id: int, input_rows: int) -> dict[str, int]:
    """Assert the invariants of a batch; returns its state counts by status.

    * every state is terminal (COMPLETED / SKIPPED / FAILED) or legitimately waiting, i.e. has
      its deadline: PENDING has ``not_before``, QUEUED and IN_PROGRESS have ``lease_until``;
    * exactly one result per COMPLETED (item, step), and never more than one per (item, step);
    * exactly one state per (item, step) of the batch's pipeline;
    * the batch has as many items as the input had rows;
    * the export has one row per item.
    """
    with reading(engine) as conn:
        steps = len(conn.execute(select(Batch.blueprint).where(Batch.id == batch_id)).scalar_one())
        items = conn.execute(
            select(func.count()).where(BatchItem.batch_id == batch_id)
        ).scalar_one()
        counts = dict(
            conn.execute(
                select(ws.c.status, func.count())
                .where(ws.c.batch_id == batch_id)
                .group_by(ws.c.status)
            ).all()
        )
        undated = conn.execute(
            select(ws.c.id, ws.c.status, ws.c.not_before, ws.c.lease_until)
            .where(ws.c.batch_id == batch_id, ws.c.status.not_in(sorted(TERMINAL)))
            .where(
                ((ws.c.status == "PENDING") & ws.c.not_before.is_(None))
                | (ws.c.status.in_(["QUEUED", "IN_PROGRESS"]) & ws.c.lease_until.is_(None))
            )
            .limit(5)
        ).all()
        per_item_step = (
            select(rs.c.item_id, rs.c.step_name, func.count().label("n"))
            .where(rs.c.batch_id == batch_id)
            .group_by(rs.c.item_id, rs.c.step_name)
            .subquery()
        )
        duplicated = conn.execute(select(per_item_step).where(per_item_step.c.n > 1).limit(5)).all()
        missing = conn.execute(
            select(ws.c.item_id, ws.c.step_name)
            .select_from(
                ws.outerjoin(
                    rs,
                    (rs.c.batch_id == ws.c.batch_id)
                    & (rs.c.item_id == ws.c.item_id)
                    & (rs.c.step_name == ws.c.step_name),
                )
            )
            .where(ws.c.batch_id == batch_id, ws.c.status == "COMPLETED", rs.c.id.is_(None))
            .limit(5)
        ).all()
        double_states = conn.execute(
            select(ws.c.item_id, ws.c.step_name)
            .where(ws.c.batch_id == batch_id)
            .group_by(ws.c.item_id, ws.c.step_name)
            .having(func.count() > 1)
            .limit(5)
        ).all()
    unknown = set(counts) - TERMINAL - set(DEADLINE_COLUMN)
    assert not unknown, f"unknown statuses {unknown}"
    assert undated == [], f"non-terminal states without a deadline: {undated}"
    assert duplicated == [], f"more than one result for (item, step): {duplicated}"
    assert missing == [], f"COMPLETED states without a result: {missing}"
    assert double_states == [], f"two states for one (item, step): {double_states}"
    assert items == input_rows, f"{items} items for {input_rows} input rows"
    # a finished batch has a state for every (item, step) unless an earlier one failed/skipped
    assert sum(counts.values()) <= items * steps
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "export.csv"
        written = write_export(engine, batch_id, out)
        csv.field_size_limit(sys.maxsize)
        with out.open(newline="", encoding="utf-8") as f:
            data_rows = sum(1 for _ in csv.reader(f)) - 1
    assert written == data_rows == items, f"export: {written} written, {data_rows} read, {items}"
    return {str(k): int(v) for k, v in counts.items()}


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 50 ms; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def count_status(engine: Engine, batch_id: int, status: str) -> int:
    with reading(engine) as conn:
        return int(
            conn.execute(
                select(func.count()).where(ws.c.batch_id == batch_id, ws.c.status == status)
            ).scalar_one()
        )


def batch_status(engine: Engine, batch_id: int) -> str:
    with reading(engine) as conn:
        return str(conn.execute(select(Batch.status).where(Batch.id == batch_id)).scalar_one())
