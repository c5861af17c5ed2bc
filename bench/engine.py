"""Engine throughput: N items x 3 no-op SYNC steps through the real conductor and local executor.

Each (store, N) runs in its own process so peak RSS is that run's own. Prints wall time,
step executions per second and peak RSS, with the targets (N = 100,000: 10,000/s on
Postgres, 20,000/s on SQLite). ``--quick`` runs N = 2,000 only. Like the ``enrichflow``
command, each run raises the garbage collector's threshold (``enrichflow.gc_tuning``);
``--default-gc`` keeps CPython's default, to see what that buys. The same run measures the peer
baseline, N x 3 no-op Prefect 3 tasks (bench/prefect_peer.py, in .venv-prefect; N = 500, or 30
with ``--quick``), and prints our rate / Prefect's as a ratio.

    .venv/bin/python bench/engine.py            # N = 10,000 and 100,000, both stores
    .venv/bin/python bench/engine.py --quick
    .venv/bin/python bench/engine.py --store sqlite --n 100000 --default-gc
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from _databases import scratch_engine
from enrichflow.conductor.loop import Conductor
from enrichflow.executors.local import LocalExecutor
from enrichflow.gc_tuning import tune_gc
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.seed import APOLLO, init_database

STEPS = 3
TARGETS = {"sqlite": 20_000, "postgres": 10_000}


def write_csv(path: Path, n: int) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["First Name", "Last Name", "Company Name", "Email", "Website", "Title"])
        for i in range(n):
            w.writerow(
                [
                    f"First{i}",
                    f"Last{i}",
                    f"Company {i % 997}",
                    f"p{i}@c{i % 997}.com",
                    f"c{i % 997}.com",
                    "VP Sales",
                ]
            )


def one(store: str, n: int, workers: int, default_gc: bool = False) -> dict[str, object]:
    """Run one configuration in this process and return its figures."""
    if not default_gc:
        tune_gc()  # as the CLI does for every enrichflow process
    tmp = Path(tempfile.mkdtemp(prefix="ef-bench-"))
    csv_path = tmp / "items.csv"
    write_csv(csv_path, n)
    with scratch_engine(store, tmp, "ef_bench") as engine:
        init_database(engine)
        report = ingest_csv(engine, csv_path)
        batch_id = launch(
            engine, "bench", APOLLO, report.upload_id, steps=_steps(engine), create_client=True
        )
        executor = LocalExecutor(engine, workers)
        conductor = Conductor(engine, executor, chunk_size=1000, poll_interval=0.05)
        started = time.perf_counter()
        conductor.run_until_finished([batch_id])
        wall = time.perf_counter() - started
        executor.close()
        with engine.connect() as conn:
            done = conn.execute(
                text(
                    "SELECT count(*) FROM workflow_states WHERE batch_id = :b AND status = 'COMPLETED'"
                ),
                {"b": batch_id},
            ).scalar_one()
    executions = n * STEPS
    return {
        "store": store,
        "n": n,
        "gc": "default" if default_gc else "tuned",
        "wall_s": round(wall, 2),
        "executions": executions,
        "completed": done,
        "per_s": round(executions / wall),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _steps(engine: object) -> list[str]:
    """Three distinct no-op steps, registered once in the bench database."""
    from enrichflow.db.models import EnrichmentRegistry

    names = [f"noop_{i}" for i in range(1, STEPS + 1)]
    with engine.begin() as conn:  # type: ignore[attr-defined]
        for name in names:
            conn.execute(
                EnrichmentRegistry.__table__.insert().values(
                    slug=name,
                    workstream_slug=APOLLO,
                    name=name,
                    type="SYNC",
                    handler="noop",
                    config={},
                )
            )
    return names


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--store", choices=["sqlite", "postgres"], action="append")
    parser.add_argument("--n", type=int, action="append")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--default-gc", action="store_true", help="CPython's default GC threshold (see above)"
    )
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    stores = args.store or ["sqlite", "postgres"]
    sizes = args.n or ([2_000] if args.quick else [10_000, 100_000])
    if args.one:
        print(json.dumps(one(stores[0], sizes[0], args.workers, args.default_gc)))
        return
    rows = []
    print(f"{'store':<9} {'N':>8} {'wall s':>8} {'exec/s':>9} {'peak MB':>8}  target")
    for store in stores:
        for n in sizes:
            proc = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    "--store",
                    store,
                    "--n",
                    str(n),
                    "--workers",
                    str(args.workers),
                    *(["--default-gc"] if args.default_gc else []),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            target = TARGETS[store] if n >= 100_000 else None
            row["target_per_s"] = target
            row["met"] = None if target is None else row["per_s"] >= target
            verdict = (
                "-" if target is None else f"{target:,}/s {'MET' if row['met'] else 'NOT MET'}"
            )
            print(
                f"{store:<9} {n:>8,} {row['wall_s']:>8} {row['per_s']:>9,} {row['peak_rss_mb']:>8}  {verdict}",
                flush=True,
            )
            rows.append(row)
    # The peer baseline: the same workload as Prefect 3 tasks, in the same run.
    from prefect_peer import PEER_N, PEER_N_QUICK, run_peer  # bench/prefect_peer.py

    peer = run_peer(PEER_N_QUICK if args.quick else PEER_N)
    if peer is not None:
        print(
            f"prefect   {peer['n']:>8,} {peer['wall_s']:>8} {peer['per_s']:>9,}"
            f"           {peer['engine']}, 4 threads, temporary local server"
        )
        peer["ratio"] = {
            f"{row['store']}_{row['n']}": round(float(row["per_s"]) / float(peer["per_s"]), 1)
            for row in rows
        }
        for key, ratio in peer["ratio"].items():
            print(f"enrichflow {key} / prefect: {ratio:,}x")
    if args.store or args.n or args.default_gc:
        return  # a partial run must not overwrite the recorded figures
    results = Path(__file__).with_name("results")
    results.mkdir(exist_ok=True)
    (results / ("engine-quick.json" if args.quick else "engine.json")).write_text(
        json.dumps(rows, indent=2) + "\n"
    )
    if not args.quick:
        from _results import record  # bench/_results.py: the shared bench/results/latest.json

        record("engine", rows)
        if peer is not None:
            record("engine_prefect_peer", peer)


if __name__ == "__main__":
    main()
