"""The conductor's parts on their own: each ``run_once`` pages until a page comes back short and
reports what it moved, on SQLite and Postgres."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, func, select, update

from enrichflow.conductor.dispatcher import Dispatcher, DispatcherSettings
from enrichflow.conductor.reaper import Reaper, ReaperSettings
from enrichflow.conductor.rollup import Rollup
from enrichflow.conductor.sequencer import Sequencer, SequencerSettings
from enrichflow.db.engine import now_ms
from enrichflow.db.models import Batch, WorkflowState
from enrichflow.executors.local import LocalExecutor
from handlers_for_tests import make_batch

ws = WorkflowState.__table__


def _count(engine: Engine, batch_id: int, step_index: int, status: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).where(
                    ws.c.batch_id == batch_id, ws.c.step_index == step_index, ws.c.status == status
                )
            ).scalar_one()
        )


def test_the_reaper_pages_until_a_page_comes_back_short(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=5)
    now = now_ms()
    with engine.begin() as conn:
        conn.execute(
            update(ws)
            .where(ws.c.batch_id == batch_id)
            .values(status="IN_PROGRESS", attempt=1, lease_until=now - 1)
        )
    report = Reaper(engine, ReaperSettings(page_size=2), clock=lambda: now).run_once()
    assert (report.reaped, report.pages) == (5, 3)
    assert _count(engine, batch_id, 0, "PENDING") == 5
    assert Reaper(engine, ReaperSettings(page_size=2), clock=lambda: now).run_once().reaped == 0


def test_the_sequencer_advances_every_page_then_the_rollup_finishes_nothing_early(
    engine: Engine, tmp_path: Path
) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_count_b"], n=4)
    with engine.begin() as conn:
        conn.execute(update(ws).where(ws.c.batch_id == batch_id).values(status="COMPLETED"))
    report = Sequencer(engine, SequencerSettings(page_size=2)).run_once()
    # two full pages, then the short (empty) one that ends the run
    assert (report.advanced, report.pages) == (4, 3)
    assert _count(engine, batch_id, 1, "PENDING") == 4
    assert Rollup(engine).run_once().finished_batches == 0  # step 1 is still PENDING
    with engine.begin() as conn:
        conn.execute(update(ws).where(ws.c.batch_id == batch_id).values(status="COMPLETED"))
    assert Sequencer(engine).run_once().advanced == 4  # the last step's: nothing to create
    assert Rollup(engine).run_once().finished_batches == 1
    with engine.connect() as conn:
        status = conn.execute(select(Batch.status).where(Batch.id == batch_id)).scalar_one()
    assert status == "COMPLETED"


def test_the_dispatcher_claims_chunks_while_the_executor_has_slots(
    engine: Engine, tmp_path: Path
) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=5)
    executor = LocalExecutor(engine, 4)
    try:
        report = Dispatcher(engine, executor, DispatcherSettings(chunk_size=2)).run_once()
        assert (report.dispatched, report.chunks) == (5, 3)
    finally:
        executor.close()
    assert _count(engine, batch_id, 0, "COMPLETED") == 5
