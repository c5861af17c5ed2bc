"""End-to-end latency on Postgres: a one-item batch through five no-op SYNC steps.

A conductor (LISTEN/NOTIFY wake-ups, local executor) runs in a thread from the start, as
``enrichflow serve`` runs it; each sample times ``launch()`` until the item's five states are
COMPLETED (``states``) and until the batch is rolled up to COMPLETED (``batch``). Prints p50 /
p99 over 100 batches (``--quick``: 20) against the 250 ms target, met or not met.

    .venv/bin/python bench/latency.py            # 100 batches
    .venv/bin/python bench/latency.py --quick    # 20 batches

Uses a fresh database on the server at ``ENRICHFLOW_BENCH_PG`` (default
postgresql://postgres@127.0.0.1:5432), dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, func, insert, select, text

from enrichflow.conductor.loop import Conductor
from enrichflow.db.engine import make_engine
from enrichflow.db.models import Batch, EnrichmentRegistry, WorkflowState
from enrichflow.executors.local import LocalExecutor
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.seed import APOLLO, init_database

STEPS = [f"latency_noop_{i}" for i in range(1, 6)]
TARGET_MS = 250.0
PG_BASE = os.environ.get("ENRICHFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
RESULTS = Path(__file__).with_name("results") / "latency.json"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def register(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(EnrichmentRegistry),
            [
                {
                    "slug": slug,
                    "workstream_slug": APOLLO,
                    "name": slug,
                    "type": "SYNC",
                    "handler": "noop",
                    "config": {},
                    "description": "latency benchmark",
                }
                for slug in STEPS
            ],
        )


def sample(engine: Engine, upload_id: int, listen: psycopg.Connection[Any]) -> tuple[float, float]:
    """Launch one batch; seconds until its states are COMPLETED, and until the batch is.

    The bench looks at the database only when Postgres notifies a change (the same NOTIFY
    the conductor listens to), so measuring does not compete with the conductor for CPU."""
    ws = WorkflowState.__table__
    start = time.perf_counter()
    batch_id = launch(engine, "latency", APOLLO, upload_id, steps=STEPS, create_client=True)
    states_done = batch_done = None
    deadline = start + 30
    with engine.connect() as conn:
        while time.perf_counter() < deadline:
            if states_done is None:
                done = conn.execute(
                    select(func.count()).where(
                        ws.c.batch_id == batch_id, ws.c.status == "COMPLETED"
                    )
                ).scalar_one()
                if done == len(STEPS):
                    states_done = time.perf_counter() - start
            status = conn.execute(select(Batch.status).where(Batch.id == batch_id)).scalar_one()
            conn.rollback()
            if status == "COMPLETED":
                batch_done = time.perf_counter() - start
                if states_done is None:
                    states_done = batch_done
                break
            for _ in listen.notifies(timeout=0.05, stop_after=1):
                pass
    if states_done is None or batch_done is None:
        raise RuntimeError(f"batch {batch_id} did not complete within 30 s")
    return states_done, batch_done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 batches instead of 100")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when the target is missed (default: 0)"
    )
    parser.add_argument("--batches", type=int, default=None)
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, help="the conductor's safety-net poll"
    )
    parser.add_argument("--no-listen", action="store_true", help="disable LISTEN/NOTIFY")
    args = parser.parse_args(argv)
    n = args.batches or (20 if args.quick else 100)

    name = f"ef_latency_{uuid.uuid4().hex[:10]}"
    admin = make_engine(f"{PG_BASE}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(f"{PG_BASE}/{name}")
    executor = LocalExecutor(engine, 8)
    conductor = Conductor(
        engine, executor, poll_interval=args.poll_interval, listen=not args.no_listen
    )
    stop = threading.Event()
    thread = threading.Thread(target=conductor.run, args=(stop.is_set,), daemon=True)
    try:
        init_database(engine)
        register(engine)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "one.csv"
            path.write_text(
                "First Name,Last Name,Email,Company,Website,Title\n"
                "Ada,Lovelace,ada@example.com,Analytical,https://example.com,CEO\n"
            )
            upload_id = ingest_csv(engine, path).upload_id
        thread.start()
        if conductor.listener is None and not args.no_listen:
            time.sleep(0.05)
        if conductor.listener is not None:
            conductor.listener.ready.wait(5)
        listen = psycopg.connect(f"{PG_BASE}/{name}", autocommit=True)
        listen.execute("LISTEN enrichflow")
        sample(engine, upload_id, listen)  # warm-up: caches, pool, prepared plans
        states: list[float] = []
        batches: list[float] = []
        for _ in range(n):
            s, b = sample(engine, upload_id, listen)
            states.append(s * 1000)
            batches.append(b * 1000)
        listen.close()
    finally:
        stop.set()
        executor.wake()
        thread.join(10)
        executor.close()
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    figures: dict[str, Any] = {
        "batches": n,
        "steps": len(STEPS),
        "listen": not args.no_listen,
        "poll_interval_s": args.poll_interval,
        "target_ms": TARGET_MS,
    }
    print(f"{n} one-item batches x {len(STEPS)} no-op SYNC steps, Postgres, conductor running")
    for label, values in (("states COMPLETED", states), ("batch COMPLETED", batches)):
        p50, p99 = percentile(values, 50), percentile(values, 99)
        met = p99 < TARGET_MS
        figures[label.split()[0]] = {
            "p50_ms": round(p50, 1),
            "p99_ms": round(p99, 1),
            "mean_ms": round(statistics.fmean(values), 1),
            "max_ms": round(max(values), 1),
            "met": met,
        }
        print(
            f"  launch -> {label:<17} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
            f"max {max(values):7.1f} ms  target < {TARGET_MS:.0f} ms: "
            f"{'met' if met else 'NOT MET'}"
        )
    if n >= 100 and not args.no_listen and args.poll_interval == 1.0:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
        from _results import record  # bench/_results.py: the shared bench/results/latest.json

        record("latency", figures)
    return 1 if args.strict and not figures["batch"]["met"] else 0


if __name__ == "__main__":
    sys.exit(main())
