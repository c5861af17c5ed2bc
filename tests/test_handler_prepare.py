"""A handler's ``prepare``: called once per chunk, before the handler, inside the runner's read
of the chunk, with every context of the chunk and the earlier steps' results already read
through that connection (the Clay sender looks up reuse and existing leaders this way)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, select

from enrichflow.catalog.workflow_setup import workflow_add
from enrichflow.db.models import EnrichmentResult, WorkflowState
from enrichflow.seed import APOLLO
from enrichflow.steps.base import JSON, StepContext
from enrichflow.steps.registry import get_preparer, handler, handler_modes
from handlers_for_tests import make_batch
from test_conductor import run_to_end


class Prepared:
    """What each ``prepare`` call saw, and the connections the engine handed out meanwhile."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.chunks: list[dict[str, Any]] = []
        self.checkouts = 0
        self.handled: dict[int, int] = {}

    def reset(self) -> None:
        with self.lock:
            self.chunks, self.checkouts, self.handled = [], 0, {}


PREPARED = Prepared()


def _prepare(conn: Connection, contexts: Sequence[StepContext]) -> None:
    before = PREPARED.checkouts
    earlier = [dict(ctx.results) for ctx in contexts]
    with PREPARED.lock:
        PREPARED.chunks.append(
            {
                "items": [ctx.item_id for ctx in contexts],
                "earlier": earlier,
                "open": not conn.closed,
                "checkouts": PREPARED.checkouts - before,
            }
        )


@handler("test_prepared", prepare=_prepare)
def prepared(ctx: StepContext) -> JSON:
    with PREPARED.lock:
        PREPARED.handled[ctx.item_id] = len(PREPARED.chunks)
    return {"item": ctx.item_id}


def test_prepare_sees_each_chunk_once_with_its_results_read(engine: Engine, tmp_path: Path) -> None:
    PREPARED.reset()
    with engine.begin() as conn:
        workflow_add(
            conn,
            "test_prepared",
            APOLLO,
            "test_prepared",
            handler_modes(),
            config={"batch_size": 3},
        )
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_prepared"], n=8)

    def checked_out(*_: object) -> None:
        PREPARED.checkouts += 1

    event.listen(engine, "checkout", checked_out)
    try:
        run_to_end(engine, batch_id)
    finally:
        event.remove(engine, "checkout", checked_out)

    assert get_preparer("test_prepared") is _prepare
    assert get_preparer("test_count") is None
    chunks = PREPARED.chunks
    items = [item for chunk in chunks for item in chunk["items"]]
    assert len(items) == len(set(items)) == 8  # every item in exactly one prepared chunk
    assert all(len(chunk["items"]) <= 3 for chunk in chunks)
    assert all(chunk["open"] and chunk["checkouts"] == 0 for chunk in chunks)
    for chunk in chunks:
        for item, earlier in zip(chunk["items"], chunk["earlier"], strict=True):
            assert earlier["test_count"]["item"] == item
    # every item was handled after its chunk was prepared
    prepared_at = {item: n for n, chunk in enumerate(chunks, 1) for item in chunk["items"]}
    assert all(PREPARED.handled[item] >= prepared_at[item] for item in items)
    with engine.connect() as conn:
        stored = conn.execute(
            select(EnrichmentResult.item_id).where(
                EnrichmentResult.batch_id == batch_id, EnrichmentResult.step_name == "test_prepared"
            )
        ).scalars()
        assert sorted(stored) == sorted(items)


def _prepare_breaks(conn: Connection, contexts: Sequence[StepContext]) -> None:
    raise ValueError(f"prepare broke on a chunk of {len(contexts)}")


@handler("test_prepare_breaks", prepare=_prepare_breaks)
def never_called(ctx: StepContext) -> JSON:
    raise AssertionError("the handler runs only after its chunk was prepared")


def test_a_prepare_that_raises_fails_every_item_of_its_chunk_with_the_error(
    engine: Engine, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        workflow_add(
            conn,
            "test_prepare_breaks",
            APOLLO,
            "test_prepare_breaks",
            handler_modes(),
            config={"max_attempts": 2, "backoff_base_seconds": 0.001, "backoff_max_seconds": 0.01},
        )
    batch_id = make_batch(engine, tmp_path, ["test_prepare_breaks"], n=4)
    run_to_end(engine, batch_id)
    with engine.connect() as conn:
        rows = conn.execute(
            select(WorkflowState.status, WorkflowState.attempt, WorkflowState.error).where(
                WorkflowState.batch_id == batch_id
            )
        ).all()
    assert len(rows) == 4
    for status, attempt, error in rows:
        assert (status, attempt) == ("FAILED", 2)
        assert error.startswith("ValueError: prepare broke on a chunk of"), error
