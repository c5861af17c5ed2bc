"""Two versions of the built-in steps side by side: each step timed alternately with another
revision's code and this checkout's, on identical copies of one database.

A shared machine's speed drifts within minutes, so a before/after taken minutes apart says
little about a small change. Here both versions run the same step on copies of
the same database, each run in a fresh process, in ABBA order (the first of each pair
alternates), and the medians, ranges and pairs won are printed side by side.

    .venv/bin/python bench/compare.py HEAD~1                      # every step, 100,000 rows, 3 pairs
    .venv/bin/python bench/compare.py 2cb3444 --steps consolidate_final_leads --pairs 6
    .venv/bin/python bench/compare.py HEAD --quick                # 2,000 rows, 1 pair (CI)

The other revision's ``src/`` comes from ``git archive`` (committed code only), and this
checkout's from its working tree. The database is built once by this checkout's code (the
synthetic file of ``bench/steps.py``, ingested, launched through ``apollo_default``, each
earlier step run), so both versions must share the schema. What one run times is what
``bench/steps.py`` times for a step: claims of 1,000 states and ``run_claims`` until none is
left.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def extract_source(revision: str, into: Path) -> Path:
    """``revision``'s ``src/`` under ``into``; its path."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, "src"],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def prepare(directory: Path, rows: int, last_step: int) -> int:
    """``s<k>.db`` in ``directory`` for each step k up to ``last_step``: the database ready
    to run step k (the earlier steps done by this checkout's code); the batch id."""
    from enrichflow.db.engine import make_engine
    from steps import STEPS, launched, run_step

    engine, _, batch_id, steps = launched(directory, rows)
    database = directory / "bench.db"
    for index in range(last_step + 1):
        engine.dispose()  # the last connection's close checkpoints the WAL into the file
        shutil.copy(database, directory / f"s{index}.db")
        if index < last_step:
            engine = make_engine(f"sqlite:///{database}")
            run_step(engine, batch_id, *steps[STEPS[index]])
    engine.dispose()
    return batch_id


def run_one(database: Path, batch_id: int, index: int, tree: Path) -> None:
    """In a child process whose ``PYTHONPATH`` is ``tree``: time step ``index`` of the batch
    and print ``{"rows": ..., "seconds": ...}``."""
    import enrichflow

    if not Path(enrichflow.__file__).resolve().is_relative_to(tree.resolve()):
        sys.exit(f"timing the wrong code: enrichflow comes from {enrichflow.__file__}")
    from sqlalchemy import func, select

    from enrichflow.db.engine import make_engine
    from enrichflow.db.models import BatchStep, WorkflowState
    from enrichflow.gc_tuning import tune_gc
    from enrichflow.steps import registry
    from steps import run_step  # its enrichflow imports resolve in ``tree`` too

    registry.get_handler("noop")  # imports the built-in handlers before the clock starts
    tune_gc()
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        position, lease_ms = conn.execute(
            select(BatchStep.position, BatchStep.lease_ms).where(
                BatchStep.batch_id == batch_id, BatchStep.position == index
            )
        ).one()
    started = time.perf_counter()
    rows = run_step(engine, batch_id, position, lease_ms)
    seconds = time.perf_counter() - started
    with engine.connect() as conn:
        unfinished = conn.execute(
            select(func.count()).where(
                WorkflowState.batch_id == batch_id,
                WorkflowState.step_index == index,
                WorkflowState.status.notin_(["COMPLETED", "SKIPPED"]),
            )
        ).scalar_one()
    engine.dispose()
    if unfinished:
        sys.exit(f"{unfinished} state(s) of step {index} did not finish: the time is not valid")
    print(json.dumps({"rows": rows, "seconds": seconds}))


def timed_run(snapshot: Path, batch_id: int, index: int, tree: Path) -> tuple[int, float]:
    """Step ``index`` run by the code under ``tree`` on a fresh copy of ``snapshot``."""
    database = snapshot.with_name(f"run-{snapshot.stem}.db")
    shutil.copy(snapshot, database)
    try:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        command = [sys.executable, __file__, "--run", str(database), str(batch_id), str(index)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            sys.exit(f"the run of {tree} failed:\n{done.stderr.strip()}")
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        return figures["rows"], figures["seconds"]
    finally:
        for path in database.parent.glob(f"{database.name}*"):
            path.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revision", nargs="?", help="the git revision to compare with")
    parser.add_argument("--steps", help="comma-separated step names (default: every step)")
    parser.add_argument("--rows", type=int, help="rows of the synthetic file (default 100,000)")
    parser.add_argument("--pairs", type=int, help="runs of each version per step (default 3)")
    parser.add_argument("--quick", action="store_true", help="2,000 rows, one pair")
    parser.add_argument("--run", nargs=3, metavar=("DB", "BATCH", "STEP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        database, batch_id, index = args.run
        run_one(Path(database), int(batch_id), int(index), Path(os.environ["PYTHONPATH"]))
        return 0
    if not args.revision:
        parser.error("give the revision to compare with (for example HEAD~1)")

    from steps import CHUNK, STEPS

    wanted = args.steps.split(",") if args.steps else list(STEPS)
    unknown = sorted(set(wanted) - set(STEPS))
    if unknown:
        parser.error(f"--steps: not a step of apollo_default: {', '.join(unknown)}")
    rows = args.rows or (2_000 if args.quick else 100_000)
    pairs = args.pairs or (1 if args.quick else 3)
    indexes = sorted(STEPS.index(step) for step in wanted)

    tmp = Path(tempfile.mkdtemp(prefix="ef-bench-compare-"))
    try:
        trees = {
            args.revision: extract_source(args.revision, tmp / "other"),
            "this checkout": ROOT / "src",
        }
        print(f"preparing {rows:,} rows ...", flush=True)
        batch_id = prepare(tmp, rows, indexes[-1])
        print(
            f"{rows:,} rows, SQLite, one process per run, chunks of {CHUNK:,}, "
            f"{pairs} pair(s) per step in ABBA order"
        )
        print(
            f"{'step':45} {'version':16} {'median s':>9} {'range s':>15} {'rows/s':>9} {'won':>4}"
        )
        for index in indexes:
            times: dict[str, list[float]] = {name: [] for name in trees}
            wins = dict.fromkeys(trees, 0)
            for pair in range(pairs):
                order = list(trees) if pair % 2 == 0 else list(reversed(trees))
                pair_times = {}
                for name in order:
                    rows_run, seconds = timed_run(
                        tmp / f"s{index}.db", batch_id, index, trees[name]
                    )
                    pair_times[name] = seconds
                    times[name].append(seconds)
                wins[min(pair_times, key=pair_times.__getitem__)] += 1
            for name, values in times.items():
                median = statistics.median(values)
                print(
                    f"{STEPS[index]:45} {name:16} {median:9.2f} "
                    f"{min(values):7.2f}–{max(values):<7.2f} {rows_run / median:9,.0f} {wins[name]:4}"
                )
            ratio = statistics.median(times["this checkout"]) / statistics.median(
                times[args.revision]
            )
            print(f"{'':45} this checkout / {args.revision}: {ratio:.3f} of the time")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
