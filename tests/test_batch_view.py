"""The batch page's reads on both stores: progress counted from the state table (an all-failed
step reads as failed, the steps after a failure as never run), Clay waits, failure groups by
error class and their retry, the keyset pages of the failed list and of the lead browser, one
item's steps, and the failures CSV (formula-safe)."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import Engine, insert, select

from enrichflow.api.dashboard import batch_service
from enrichflow.catalog import batch_view
from enrichflow.db.models import (
    Batch,
    BatchItem,
    BatchStep,
    Client,
    EnrichmentResult,
    WorkflowState,
)
from enrichflow.db.states.errors import error_class
from enrichflow.db.states.triage import failure_groups, states_retry_failed_class
from enrichflow.states import Status

NOW = 1_800_000_000_000
HOUR = 3_600_000
STEPS = [("normalize_company_name", "SYNC"), ("enrich_in_clay", "ASYNC"), ("final", "SYNC")]
ERRORS = {5: "HTTP 404 for item 12345", 6: "HTTP 404 for item 67890", 7: "=HYPERLINK(1) timeout"}


def _step(batch_id: int, position: int, name: str, kind: str) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "position": position,
        "step_name": name,
        "type": kind,
        "handler": "webhook" if kind == "ASYNC" else "normalize",
        "max_attempts": 3,
        "lease_ms": 60_000,
        "backoff_base_ms": 1000,
        "backoff_max_ms": 60_000,
        "callback_timeout_ms": 24 * HOUR,
        "concurrency": 4,
        "config": {},
    }


def _state(batch_id: int, item: int, position: int, status: Status, **extra: Any) -> dict[str, Any]:
    return {
        "batch_id": batch_id,
        "item_id": item,
        "step_name": STEPS[position][0],
        "step_index": position,
        "status": status.value,
        "attempt": 1,
        "retry_floor": 0,
        "not_before": NOW - HOUR,
        "created_at": NOW - 2 * HOUR,
        "updated_at": NOW - HOUR,
        "lease_until": None,
        "error": None,
        "error_class": None,
        "meta": None,
        **extra,
    }


def build(engine: Engine) -> tuple[int, list[int]]:
    """Ten items over three steps: 0-3 done, 4 skipped at Clay then done, 5-7 failed at Clay
    (attempt 2 of 3 after a retry), 8 waiting on Clay for an hour, 9 not yet run."""
    with engine.begin() as conn:
        client = conn.execute(
            insert(Client).values(name="View Co").returning(Client.id)
        ).scalar_one()
        batch_id = conn.execute(
            insert(Batch)
            .values(
                client_id=client,
                workstream_slug="apollo_scrape",
                blueprint=[],
                column_map={},
                headers=["name", "company"],
                status="RUNNING",
                item_count=10,
            )
            .returning(Batch.id)
        ).scalar_one()
        conn.execute(
            insert(BatchStep), [_step(batch_id, i, n, k) for i, (n, k) in enumerate(STEPS)]
        )
        conn.execute(
            insert(BatchItem),
            [
                {
                    "batch_id": batch_id,
                    "row_number": i + 2,
                    "person_name": f"Person {i}",
                    "company_name": f"Company {i}",
                    "original_data": [f"Person {i}", f"Company {i}"],
                }
                for i in range(10)
            ],
        )
        items = list(
            conn.execute(
                select(BatchItem.id).where(BatchItem.batch_id == batch_id).order_by(BatchItem.id)
            ).scalars()
        )
        states = [_state(batch_id, items[i], 0, Status.COMPLETED) for i in range(9)]
        states.append(_state(batch_id, items[9], 0, Status.PENDING))
        states += [_state(batch_id, items[i], 1, Status.COMPLETED) for i in range(4)]
        states.append(
            _state(batch_id, items[4], 1, Status.SKIPPED, meta={"skip_reason": "no domain"})
        )
        states += [
            _state(
                batch_id,
                items[i],
                1,
                Status.FAILED,
                attempt=5,
                retry_floor=3,
                error=e,
                error_class=error_class(e),  # as the statement that fails a state stores it
            )
            for i, e in ERRORS.items()
        ]
        states.append(
            _state(batch_id, items[8], 1, Status.IN_PROGRESS, lease_until=NOW + 23 * HOUR)
        )
        states += [_state(batch_id, items[i], 2, Status.COMPLETED) for i in range(5)]
        conn.execute(insert(WorkflowState), states)
        conn.execute(
            insert(EnrichmentResult).values(
                batch_id=batch_id,
                item_id=items[0],
                step_name="enrich_in_clay",
                payload={"employees": 120},
                created_at=NOW,
            )
        )
    return batch_id, items


def test_progress_counts_failures_and_waits(engine: Engine) -> None:
    batch_id, _ = build(engine)
    with engine.connect() as conn:
        view = batch_view.batch_overview(conn, batch_id, 10, True, NOW - HOUR, NOW)
    assert (view.completed, view.skipped, view.failed, view.not_run) == (18, 1, 3, 3)
    assert (view.waiting, view.todo, view.total) == (1, 4, 30)
    assert (view.items_done, view.items_failed) == (5, 3)
    assert [s.not_run for s in view.steps] == [0, 0, 3]
    assert view.waits.count == 1
    assert view.overdue == 1  # item 9's first step, PENDING for an hour: no conductor ran it
    assert view.waits.oldest_sent_ms == NOW - HOUR
    assert view.waits.next_deadline_ms == NOW + 23 * HOUR
    # Clay still owes a callback: no time-left figure, and the reason says why
    assert view.eta_ms is None and "Clay" in view.eta_reason
    assert round(view.processed_percent) == 83
    assert (
        sum(s["w"] for s in view.segments) == 100.0
        or abs(sum(s["w"] for s in view.segments) - 100) < 0.01
    )


def test_failure_groups_mask_ids_and_retry_one_group(engine: Engine) -> None:
    batch_id, items = build(engine)
    assert error_class("HTTP 404 for item 12345") == "HTTP 404 for item <n>"
    assert error_class(None) == "(no error text)"
    assert (
        error_class("status 500 at row 7 of 0f3e9a1b2c3d4e5f6a7b")
        == "status 500 at row <n> of <id>"
    )
    with engine.connect() as conn:
        groups = failure_groups(conn, batch_id)
    assert [(g.step_name, g.error_class, g.count) for g in groups] == [
        ("enrich_in_clay", "HTTP 404 for item <n>", 2),
        ("enrich_in_clay", "=HYPERLINK(<n>) timeout", 1),
    ]
    with engine.begin() as conn:
        moved = states_retry_failed_class(
            conn, batch_id, NOW, "enrich_in_clay", groups[0].error_class
        )
    assert moved == 2
    with engine.connect() as conn:
        left = failure_groups(conn, batch_id)
        view = batch_view.batch_overview(conn, batch_id, 10, True, NOW - HOUR, NOW)
        retried = conn.execute(
            select(WorkflowState.status, WorkflowState.retry_floor).where(
                WorkflowState.item_id == items[5], WorkflowState.step_index == 1
            )
        ).one()
    assert [g.count for g in left] == [1]
    assert retried == (Status.PENDING.value, 5)
    assert view.retried == 2 and view.failed == 1


def test_failed_list_and_lead_browser_page_by_key(engine: Engine) -> None:
    batch_id, items = build(engine)
    with engine.connect() as conn:
        first = batch_view.batch_failed_page(conn, batch_id, size=2)
        assert [r["item_id"] for r in first.rows] == items[5:7]
        assert first.rows[0]["attempt"] == 2 and first.rows[0]["max_attempts"] == 3
        rest = batch_view.batch_failed_page(conn, batch_id, after=first.next_after, size=2)
        assert [r["item_id"] for r in rest.rows] == [items[7]] and rest.next_after is None
        by_class = batch_view.batch_failed_page(conn, batch_id, klass="=HYPERLINK(<n>) timeout")
        assert [r["item_id"] for r in by_class.rows] == [items[7]]
        waiting = batch_view.batch_failed_page(conn, batch_id, status="IN_PROGRESS")
        assert [r["item_id"] for r in waiting.rows] == [items[8]]

        page = batch_view.batch_items_page(conn, batch_id, size=4)
        assert [r["id"] for r in page.rows] == items[:4] and page.next_after == items[3]
        assert page.rows[0]["states"]["enrich_in_clay"]["status"] == "COMPLETED"
        page2 = batch_view.batch_items_page(conn, batch_id, after=page.next_after, size=4)
        assert [r["id"] for r in page2.rows] == items[4:8]
        failed = batch_view.batch_items_page(conn, batch_id, step="enrich_in_clay", status="FAILED")
        assert [r["id"] for r in failed.rows] == items[5:8]
        found = batch_view.batch_items_page(conn, batch_id, search="company 9")
        assert [r["id"] for r in found.rows] == [items[9]]

        detail = batch_view.batch_item_detail(conn, batch_id, items[4])
        assert detail is not None
        clay = detail.steps[1]
        assert clay["status"] == "SKIPPED" and clay["skip_reason"] == "no domain"
        assert detail.original == [("name", "Person 4"), ("company", "Company 4")]
        done = batch_view.batch_item_detail(conn, batch_id, items[0])
        assert done is not None and done.steps[1]["payload"] == {"employees": 120}
        assert batch_view.batch_item_detail(conn, batch_id, 10**9) is None


def test_failures_csv_is_formula_safe(engine: Engine) -> None:
    batch_id, _ = build(engine)
    text = "".join(batch_service.failures_csv(engine, batch_id))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3
    assert rows[2]["error"] == "'=HYPERLINK(1) timeout"
    assert rows[0]["attempt"] == "2" and rows[0]["max_attempts"] == "3"
