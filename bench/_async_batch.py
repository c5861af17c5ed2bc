"""A RUNNING batch whose one step is the Clay company workflow, built directly (no upload, no
launch), for the benchmarks of what happens after the sends: callbacks, de-duplication."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from enrichflow.db.models import Batch, BatchItem, BatchStep, Client

STEP = "enrich_company_via_waterfall_in_clay"


def async_batch(conn: Connection, n: int, config: dict[str, Any]) -> tuple[int, list[int]]:
    """A client, a RUNNING batch with the ASYNC step (workflow ``config``) and ``n`` items;
    the batch id and the item ids in row order."""
    client_id = conn.execute(insert(Client).values(name="bench").returning(Client.id)).scalar_one()
    batch_id = conn.execute(
        insert(Batch)
        .values(
            client_id=client_id,
            workstream_slug="apollo_scrape",
            blueprint=[{"step_name": STEP}],
            column_map={},
            headers=["i"],
            status="RUNNING",
            item_count=n,
        )
        .returning(Batch.id)
    ).scalar_one()
    conn.execute(
        insert(BatchStep).values(
            batch_id=batch_id,
            position=0,
            step_name=STEP,
            type="ASYNC",
            handler="webhook",
            max_attempts=3,
            lease_ms=60_000,
            backoff_base_ms=2000,
            backoff_max_ms=600_000,
            callback_timeout_ms=86_400_000,
            concurrency=10,
            config=config,
        )
    )
    conn.execute(
        insert(BatchItem),
        [{"batch_id": batch_id, "row_number": i + 2, "original_data": [str(i)]} for i in range(n)],
    )
    items = conn.execute(
        select(BatchItem.id).where(BatchItem.batch_id == batch_id).order_by(BatchItem.id)
    ).scalars()
    return batch_id, list(items)


def sent_state(
    batch_id: int, item_id: int, now: int, meta: dict[str, Any], waiting_on: int | None = None
) -> dict[str, Any]:
    """A state of the step as the webhook sender leaves it: IN_PROGRESS at attempt 1, its
    callback deadline a day away (``waiting_on``: a de-duplication follower)."""
    return {
        "batch_id": batch_id,
        "item_id": item_id,
        "step_name": STEP,
        "step_index": 0,
        "status": "IN_PROGRESS",
        "attempt": 1,
        "retry_floor": 0,
        "not_before": now,
        "lease_until": now + 86_400_000,
        "meta": meta,
        "waiting_on": waiting_on,
        "created_at": now,
        "updated_at": now,
    }
