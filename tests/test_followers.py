"""Company-level de-duplication followers at the database: how the conductor's settling and a
leader's callback find them (the indexed ``waiting_on`` column), on both stores.

The states are written directly, as the webhook sender leaves them (a leader sent and waiting
for its callback, followers waiting on it); ``tests/test_async_pipeline.py`` drives the same
through the real sender and a loopback Clay stand-in.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, insert, select, update

from enrichflow.conductor.loop import Conductor
from enrichflow.db.engine import make_engine, now_ms
from enrichflow.db.models import (
    Batch,
    BatchItem,
    BatchStep,
    Client,
    EnrichmentResult,
    WorkflowState,
)
from enrichflow.db.states import callback_complete, followers_settle, leaders_finished
from enrichflow.executors.local import LocalExecutor
from statements_sent import statements_sent

STEP = "enrich_company_via_waterfall_in_clay"
ws = WorkflowState.__table__


@dataclass
class Company:
    batch_id: int
    leader: int
    followers: list[int]


def company(engine: Engine, followers: int = 3, batch_status: str = "RUNNING") -> Company:
    """A batch whose ASYNC step has one leader (sent, IN_PROGRESS) and ``followers`` waiting."""
    now = now_ms()
    with engine.begin() as conn:
        client_id = conn.execute(select(Client.id).where(Client.name == "acme")).scalar()
        if client_id is None:
            client_id = conn.execute(
                insert(Client).values(name="acme").returning(Client.id)
            ).scalar_one()
        batch_id = conn.execute(
            insert(Batch)
            .values(
                client_id=client_id,
                workstream_slug="apollo_scrape",
                blueprint=[{"step_name": STEP}],
                column_map={},
                headers=["Company"],
                status=batch_status,
                item_count=followers + 1,
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
                config={"dedupe_by": "company_domain"},
            )
        )
        items = [
            conn.execute(
                insert(BatchItem)
                .values(batch_id=batch_id, row_number=i + 2, original_data=["Globex"])
                .returning(BatchItem.id)
            ).scalar_one()
            for i in range(followers + 1)
        ]

        def state(item_id: int, waiting_on: int | None) -> int:
            return int(
                conn.execute(
                    insert(WorkflowState)
                    .values(
                        batch_id=batch_id,
                        item_id=item_id,
                        step_name=STEP,
                        step_index=0,
                        status="IN_PROGRESS",
                        attempt=1,
                        retry_floor=0,
                        not_before=now,
                        lease_until=now + 86_400_000,
                        meta={"dedupe_by": "company_domain"} if waiting_on else {"sent": True},
                        waiting_on=waiting_on,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(WorkflowState.id)
                ).scalar_one()
            )

        leader = state(items[0], None)
        return Company(batch_id, leader, [state(item, leader) for item in items[1:]])


def statuses(engine: Engine, ids: list[int]) -> list[tuple[str, str | None]]:
    with engine.connect() as conn:
        rows = conn.execute(select(ws.c.id, ws.c.status, ws.c.error).where(ws.c.id.in_(ids)))
        found = {sid: (status, error) for sid, status, error in rows}
    return [found[sid] for sid in ids]


def payloads(engine: Engine, batch_id: int) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(EnrichmentResult.payload)
                .where(EnrichmentResult.batch_id == batch_id)
                .order_by(EnrichmentResult.item_id)
            ).scalars()
        )


def leader_ends(engine: Engine, c: Company, status: str, payload: dict[str, object]) -> None:
    """The leader finishes without its followers being settled (as when their waits were
    recorded after its callback, or it failed at its deadline)."""
    with engine.begin() as conn:
        conn.execute(
            update(ws)
            .where(ws.c.id == c.leader)
            .values(status=status, error="table is archived" if status == "FAILED" else None)
        )
        if status == "COMPLETED":
            item = conn.execute(select(ws.c.item_id).where(ws.c.id == c.leader)).scalar_one()
            conn.execute(
                insert(EnrichmentResult).values(
                    batch_id=c.batch_id,
                    item_id=item,
                    step_name=STEP,
                    payload=payload,
                    created_at=now_ms(),
                )
            )


def settle(engine: Engine) -> int:
    with engine.begin() as conn:
        return followers_settle(conn, leaders_finished(conn), now_ms())


def test_a_leaders_callback_completes_its_followers_with_its_payload(engine: Engine) -> None:
    c = company(engine)
    other = company(engine)
    with engine.begin() as conn:
        report = callback_complete(conn, c.leader, 1, {"employees": 12}, now_ms())
    assert report.followers == 3
    assert statuses(engine, [c.leader, *c.followers]) == [("COMPLETED", None)] * 4
    assert payloads(engine, c.batch_id) == [{"employees": 12}] * 4
    assert statuses(engine, other.followers) == [("IN_PROGRESS", None)] * 3


def test_settling_completes_followers_of_a_leader_that_completed_before_they_waited(
    engine: Engine,
) -> None:
    c = company(engine)
    assert settle(engine) == 0  # the leader is still out with Clay
    leader_ends(engine, c, "COMPLETED", {"employees": 7})
    assert settle(engine) == 3
    assert statuses(engine, c.followers) == [("COMPLETED", None)] * 3
    assert payloads(engine, c.batch_id) == [{"employees": 7}] * 4
    assert settle(engine) == 0


def test_followers_of_a_failed_leader_fail_with_its_error_and_a_retried_leader_completes_them(
    engine: Engine,
) -> None:
    c = company(engine)
    leader_ends(engine, c, "FAILED", {})
    assert settle(engine) == 3
    for status, error in statuses(engine, c.followers):
        assert status == "FAILED"
        assert error == (
            f"company-level duplicate: waited on state {c.leader}, which failed: table is archived"
        )
    assert settle(engine) == 0  # failed followers are not failed again
    # the leader's data arrives after all (a late callback, or a retry that completed)
    with engine.begin() as conn:
        report = callback_complete(conn, c.leader, 1, {"employees": 3}, now_ms())
    assert report.followers == 3
    assert statuses(engine, c.followers) == [("COMPLETED", None)] * 3


def test_settling_leaves_batches_that_are_not_running(engine: Engine) -> None:
    c = company(engine, batch_status="COMPLETED_WITH_ERRORS")
    leader_ends(engine, c, "COMPLETED", {"employees": 7})
    assert settle(engine) == 0
    assert statuses(engine, c.followers) == [("IN_PROGRESS", None)] * 3


def test_settling_takes_at_most_limit_leaders_at_a_time(engine: Engine) -> None:
    companies = [company(engine, followers=2) for _ in range(3)]
    for c in companies:
        leader_ends(engine, c, "FAILED", {})
    with engine.begin() as conn:
        assert followers_settle(conn, leaders_finished(conn, limit=2), now_ms()) == 4
    assert settle(engine) == 2


def test_a_leader_that_moved_on_since_it_was_read_settles_nothing(engine: Engine) -> None:
    """The look for finished leaders is a read outside the write transaction; a leader retried
    between that read and the write must not fail its followers."""
    c = company(engine)
    leader_ends(engine, c, "FAILED", {})
    with engine.connect() as conn:
        finished = leaders_finished(conn)
    assert [leader.state_id for leader in finished] == [c.leader]
    with engine.begin() as conn:
        conn.execute(update(ws).where(ws.c.id == c.leader).values(status="PENDING", error=None))
    with engine.begin() as conn:
        assert followers_settle(conn, finished, now_ms()) == 0
    assert statuses(engine, c.followers) == [("IN_PROGRESS", None)] * 3


def test_the_conductor_settles_at_most_every_settle_interval(engine: Engine) -> None:
    c = company(engine)
    executor = LocalExecutor(engine, 1)
    conductor = Conductor(engine, executor, settle_interval=3600)
    try:
        conductor.tick()  # the first housekeeping looks: nothing finished yet
        leader_ends(engine, c, "COMPLETED", {"employees": 5})
        conductor.tick()
        assert statuses(engine, c.followers) == [("IN_PROGRESS", None)] * 3
        Conductor(engine, executor, settle_interval=3600).tick()  # a new one looks at once
    finally:
        executor.close()
    assert statuses(engine, c.followers) == [("COMPLETED", None)] * 3


def test_follower_look_ups_are_index_probes(sqlite_template: Path, tmp_path: Path) -> None:
    """SQLite's plans (Postgres's depend on its statistics): a leader's followers and the
    leaders a running batch waits on are read from ``ix_workflow_states_waiting``, never by
    walking the batch's states, which would make a leader's callback grow with the batch."""
    shutil.copy(sqlite_template, tmp_path / "plans.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    c = company(engine)
    with statements_sent(engine) as sent, engine.connect() as conn, conn.begin() as transaction:
        callback_complete(conn, c.leader, 1, {"employees": 1}, now_ms())
        followers_settle(conn, leaders_finished(conn), now_ms())
        transaction.rollback()
    statements = [
        (sql, params)
        for sql, params in sent
        if "waiting_on" in sql and not sql.lstrip().upper().startswith("INSERT")
    ]
    assert len(statements) == 2, statements  # the callback's followers, the settle's leaders
    with engine.connect() as conn:
        for sql, params in statements:
            plan = [row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params)]
            uses = [line for line in plan if "ix_workflow_states_waiting" in line]
            assert uses, plan
            walks = [line for line in plan if line.startswith("SCAN") and "states" in line]
            assert walks == [], plan
    engine.dispose()
