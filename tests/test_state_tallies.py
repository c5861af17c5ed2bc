"""The batch page's counts without counting the batch, on both stores: whichever statement fails
a state (the runner's permanent and exhausted failures, the reaper, a failed dispatch) stores
its error class, the failure groups agree with classifying every error text, and the counts
(the trigger-kept tallies on Postgres) equal a count of the states through a real run, a
retry of one group, a fold and a batch's deletion."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from sqlalchemy import Connection, Engine, delete, func, select, update

from enrichflow.conductor.loop import Conductor
from enrichflow.db.engine import is_postgres, now_ms
from enrichflow.db.models import Batch, BatchStep, StateTally, WorkflowState
from enrichflow.db.states import batch_counts, states_claim, states_dispatch_failed, states_reap
from enrichflow.db.states.errors import error_class
from enrichflow.db.states.tallies import tallies_fold
from enrichflow.db.states.triage import failure_groups, states_retry_failed_class, step_tallies
from enrichflow.executors.local import LocalExecutor
from handlers_for_tests import make_batch

ws = WorkflowState.__table__
T = now_ms() + 10_000_000


def counted(conn: Connection, batch_id: int) -> dict[str, dict[str, int]]:
    """step name -> status -> states, counted from the state table itself."""
    out: dict[str, dict[str, int]] = {}
    for step, status, n in conn.execute(
        select(ws.c.step_name, ws.c.status, func.count())
        .where(ws.c.batch_id == batch_id)
        .group_by(ws.c.step_name, ws.c.status)
    ):
        out.setdefault(step, {})[status] = n
    return out


def classified(conn: Connection, batch_id: int) -> Counter[tuple[str, str]]:
    """(step, error class) -> FAILED states, classifying every stored error text."""
    return Counter(
        (step, error_class(error))
        for step, error in conn.execute(
            select(ws.c.step_name, ws.c.error).where(
                ws.c.batch_id == batch_id, ws.c.status == "FAILED"
            )
        )
    )


def check(conn: Connection, batch_id: int) -> None:
    """Stored classes, groups and counts all agree with the states themselves."""
    for error, stored in conn.execute(
        select(ws.c.error, ws.c.error_class).where(
            ws.c.batch_id == batch_id, ws.c.status == "FAILED"
        )
    ):
        assert stored == error_class(error), (error, stored)
    groups = Counter(
        {(g.step_name, g.error_class): g.count for g in failure_groups(conn, batch_id)}
    )
    assert groups == classified(conn, batch_id)
    assert batch_counts(conn, batch_id) == counted(conn, batch_id)
    by_position = {p: t.counts for p, t in step_tallies(conn, batch_id).items()}
    names = dict(
        conn.execute(
            select(BatchStep.position, BatchStep.step_name).where(BatchStep.batch_id == batch_id)
        ).all()
    )
    assert {names[p]: c for p, c in by_position.items()} == counted(conn, batch_id)


def test_a_real_run_stores_error_classes_and_counts_agree(engine: Engine, tmp_path: Path) -> None:
    """Permanent failures (one class, ids masked) after a step that completed, and retryable
    ones that use up their attempts (the retry-or-fail statement)."""
    permanent = make_batch(engine, tmp_path, ["test_count", "test_permanent"], n=6)
    exhausted = make_batch(engine, tmp_path, ["test_always_fail"], n=4)
    Conductor(engine, LocalExecutor(engine, 2), poll_interval=0.02).run_until_finished(
        [permanent, exhausted]
    )
    with engine.connect() as conn:
        check(conn, permanent)
        check(conn, exhausted)
        groups = failure_groups(conn, permanent)
        assert [(g.step_name, g.error_class, g.count) for g in groups] == [
            ("test_permanent", "permanently broken item <n>", 6)
        ]
        assert [(g.error_class, g.count) for g in failure_groups(conn, exhausted)] == [
            ("ValueError: boom on attempt <n>", 4)
        ]
    with engine.begin() as conn:
        moved = states_retry_failed_class(
            conn, permanent, T, "test_permanent", "permanently broken item <n>"
        )
        assert moved == 6
        cleared = conn.execute(
            select(func.count()).where(ws.c.batch_id == permanent, ws.c.error_class.is_not(None))
        ).scalar_one()
        assert cleared == 0
    with engine.connect() as conn:
        assert failure_groups(conn, permanent) == []
        assert counted(conn, permanent)["test_permanent"] == {"PENDING": 6}
        check(conn, permanent)


def test_the_reaper_and_a_failed_dispatch_store_their_class(engine: Engine, tmp_path: Path) -> None:
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=4)
    with engine.begin() as conn:
        conn.execute(update(BatchStep).where(BatchStep.batch_id == batch_id).values(max_attempts=1))
        reaped = states_claim(conn, batch_id, 0, 2, 1_000, T)
        assert states_reap(conn, T + 1_001) == 2
        spawned = states_claim(conn, batch_id, 0, 2, 60_000, T)
        report = states_dispatch_failed(conn, spawned, "spawn failed after 3 tries", T)
        assert report.failed == 2
    with engine.connect() as conn:
        check(conn, batch_id)
        groups = {(g.error_class, g.count) for g in failure_groups(conn, batch_id)}
        assert groups == {
            ("lease expired: no runner started this state (attempt <n>)", 2),
            ("spawn failed after <n> tries", 2),
        }
        assert len(reaped) == 2


def test_tallies_fold_and_follow_a_deleted_batch(engine: Engine, tmp_path: Path) -> None:
    """Postgres keeps tallies (SQLite counts the states, and has none to fold): the fold
    keeps every sum, and deleting a batch takes its states out of them."""
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_permanent"], n=5)
    Conductor(engine, LocalExecutor(engine, 2), poll_interval=0.02).run_until_finished([batch_id])
    tally = StateTally.__table__
    with engine.begin() as conn:
        before = conn.execute(select(func.count()).where(tally.c.batch_id == batch_id)).scalar_one()
        written = tallies_fold(conn, rows=0)
        after = conn.execute(select(func.count()).where(tally.c.batch_id == batch_id)).scalar_one()
        check(conn, batch_id)
    if is_postgres(engine):
        # one row per group: test_count COMPLETED, test_permanent FAILED of one class
        assert before > after == written == 2
    else:
        assert before == after == written == 0
    with engine.begin() as conn:
        conn.execute(delete(Batch).where(Batch.id == batch_id))
    with engine.begin() as conn:
        assert batch_counts(conn, batch_id) == {}
        tallies_fold(conn, rows=0)
        left = conn.execute(select(func.count()).where(tally.c.batch_id == batch_id)).scalar_one()
        assert left == 0
