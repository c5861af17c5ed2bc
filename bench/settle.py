"""De-duplication followers benchmark: what a leader's callback costs, and what the
conductor's follower settling costs (``leaders_finished``, a read every ``settle_interval``,
then ``followers_settle`` in its write transaction when a leader finished), while a large batch
that de-duplicates by company waits on Clay.

The batch is built directly: ``--items`` items whose one ASYNC step (``dedupe_by`` company)
is IN_PROGRESS, one leader per ``--per-key`` items and the rest followers waiting on it, as the
webhook sender leaves them; its ``step_dedupe`` rows name the leaders. Timed (median of
``--repeat`` calls, each in a transaction that is rolled back, so every call sees the same
states):

* ``leader callback``: the first leader's callback lands, its followers complete with it;
* ``waiting``: no leader has finished (the common case: the conductor looks, nothing to do);
* ``one leader done``: one leader COMPLETED (with its result) after its followers were
  recorded, the case the callback could not settle;
* ``leaders failed``: a tenth of the leaders FAILED, the followers of the first 1,000 of them
  (one call's limit) must fail too.

    .venv/bin/python bench/settle.py                 # 100,000 items, SQLite and Postgres
    .venv/bin/python bench/settle.py --quick         # 5,000 items (CI)
    .venv/bin/python bench/settle.py --store sqlite --items 200000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection, Engine, insert, select, text, update

from _async_batch import STEP, async_batch, sent_state
from _databases import scratch_engine
from enrichflow.db.engine import now_ms
from enrichflow.db.models import (
    EnrichmentResult,
    StepDedupe,
    WorkflowState,
)
from enrichflow.db.states import callback_complete, followers_settle, leaders_finished
from enrichflow.seed import init_database

ws = WorkflowState.__table__


def build(engine: Engine, n: int, per_key: int) -> tuple[list[int], dict[int, list[int]]]:
    """The batch; returns the leaders' state ids and each leader's followers."""
    init_database(engine)
    now = now_ms()
    with engine.begin() as conn:
        batch_id, item_ids = async_batch(conn, n, {"dedupe_by": "company_domain"})
        conn.execute(
            insert(WorkflowState),
            [sent_state(batch_id, item_id, now, {"sent": True}) for item_id in item_ids[::per_key]],
        )
        leaders = list(
            conn.execute(select(ws.c.id).where(ws.c.batch_id == batch_id).order_by(ws.c.id))
            .scalars()
            .all()
        )
        conn.execute(
            insert(StepDedupe),
            [
                {
                    "batch_id": batch_id,
                    "step_name": STEP,
                    "dedupe_key": f"company-{k}.example",
                    "leader_state_id": leader,
                }
                for k, leader in enumerate(leaders)
            ],
        )
        conn.execute(
            insert(WorkflowState),
            [
                sent_state(
                    batch_id, item_id, now, {"dedupe_by": "company_domain"}, leaders[i // per_key]
                )
                for i, item_id in enumerate(item_ids)
                if i % per_key
            ],
        )
        rows = conn.execute(
            select(ws.c.id, ws.c.waiting_on).where(
                ws.c.batch_id == batch_id, ws.c.waiting_on.is_not(None)
            )
        ).all()
    if engine.dialect.name == "postgresql":  # as launch and the conductor's housekeeping do
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    followers: dict[int, list[int]] = {}
    for sid, leader in rows:
        followers.setdefault(int(leader), []).append(int(sid))
    return leaders, followers


def timed(
    engine: Engine, repeat: int, prepare: Callable[[Connection], None]
) -> tuple[float, float, int]:
    """Median seconds of the look (``leaders_finished``) and of the settling
    (``followers_settle``) after ``prepare``, and the states moved; every call is rolled back
    with its preparation."""
    looks: list[float] = []
    settles: list[float] = []
    moved = 0
    for _ in range(repeat):
        with engine.connect() as conn:
            transaction = conn.begin()
            prepare(conn)
            started = time.perf_counter()
            leaders = leaders_finished(conn)
            looked = time.perf_counter()
            moved = followers_settle(conn, leaders, now_ms())
            settles.append(time.perf_counter() - looked)
            looks.append(looked - started)
            transaction.rollback()
    return statistics.median(looks), statistics.median(settles), moved


def timed_callback(engine: Engine, repeat: int, leader: int) -> tuple[float, int]:
    """Median seconds of the callback that completes ``leader`` (and its followers)."""
    times: list[float] = []
    followers = 0
    for _ in range(repeat):
        with engine.connect() as conn:
            transaction = conn.begin()
            started = time.perf_counter()
            followers = callback_complete(conn, leader, 1, {"employees": 12}, now_ms()).followers
            times.append(time.perf_counter() - started)
            transaction.rollback()
    return statistics.median(times), followers


def finish_leaders(leader_ids: list[int], status: str) -> Callable[[Connection], None]:
    def prepare(conn: Connection) -> None:
        now = now_ms()
        conn.execute(
            update(ws)
            .where(ws.c.id.in_(leader_ids))
            .values(status=status, error="clay said no" if status == "FAILED" else None)
        )
        if status == "COMPLETED":
            items = conn.execute(select(ws.c.item_id).where(ws.c.id.in_(leader_ids))).scalars()
            conn.execute(
                insert(EnrichmentResult),
                [
                    {
                        "batch_id": conn.execute(select(ws.c.batch_id).limit(1)).scalar_one(),
                        "item_id": item,
                        "step_name": STEP,
                        "payload": {"employees": 12},
                        "created_at": now,
                    }
                    for item in items
                ],
            )

    return prepare


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--per-key", type=int, default=5, help="items per company (default 5)")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="5,000 items, 3 calls")
    args = parser.parse_args()
    if args.quick:
        args.items, args.repeat = 5_000, 3
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    print(
        f"de-duplication followers, {args.items:,} items, {args.per_key} per company, median of "
        f"{args.repeat} calls"
    )
    print(f"{'store':<9} {'moment':<17} {'look ms':>9} {'write ms':>9} {'moved':>7}")
    failed = False
    for store in stores:
        with (
            tempfile.TemporaryDirectory() as tmp,
            scratch_engine(store, Path(tmp), "bench_settle") as engine,
        ):
            leaders, followers = build(engine, args.items, args.per_key)
            failing = leaders[: max(1, len(leaders) // 10)]
            moments = [
                ("waiting", lambda conn: None, 0),
                (
                    "one leader done",
                    finish_leaders(leaders[-1:], "COMPLETED"),
                    len(followers[leaders[-1]]),
                ),
                (
                    "leaders failed",
                    finish_leaders(failing, "FAILED"),
                    sum(len(followers[leader]) for leader in failing[:1000]),
                ),
            ]
            seconds, moved = timed_callback(engine, args.repeat, leaders[0])
            print(f"{store:<9} {'leader callback':<17} {'':>9} {seconds * 1000:>9.1f} {moved:>7}")
            if moved != len(followers[leaders[0]]):
                print(
                    f"  expected {len(followers[leaders[0]])} followers completed", file=sys.stderr
                )
                failed = True
            for name, prepare, expected in moments:
                look, write, moved = timed(engine, args.repeat, prepare)
                print(f"{store:<9} {name:<17} {look * 1000:>9.1f} {write * 1000:>9.1f} {moved:>7}")
                if moved != expected:
                    print(f"  expected {expected} states moved, got {moved}", file=sys.stderr)
                    failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
