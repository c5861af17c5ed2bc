"""``enrichflow run`` end to end, as a user runs it, on the synthetic Apollo file of
``bench/steps.py`` (default 100,000 rows; ``--quick`` 5,000).

The real command in its own process, progress bars on: ingest, launch, the ``apollo_default``
pipeline (split, three normalizations, consolidation) through the conductor and the local
executor's runner threads, and the CSV export. Then ``enrichflow export`` of the same batch on
its own, so the export's share is known. Prints wall seconds, rows per second and each
process's peak RSS, per store.

There is no target of its own: ``bench/steps.py`` times each step in one thread with nothing
else running, and this line shows what a user gets with the whole product around the steps
(the progress bars' counts, the conductor, eight runner threads), so a gap between the two
points at what surrounds the steps rather than at the steps.

    .venv/bin/python bench/run.py              # 100,000 rows, SQLite and Postgres
    .venv/bin/python bench/run.py --quick      # 5,000 rows
    .venv/bin/python bench/run.py --store sqlite
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from _databases import scratch_engine  # bench/ is this script's directory, hence on sys.path
from _results import record
from enrichflow.db.models import Batch
from steps import write_synthetic

ENRICHFLOW = Path(sys.executable).with_name("enrichflow")


def timed(command: list[str]) -> tuple[float, float]:
    """Run ``command`` to its end; (wall seconds, peak RSS in MB of that process)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):  # 1: some items failed, which is still a run
        sys.stdout.write(output.decode(errors="replace")[-3000:])
        raise SystemExit(f"{command[1]} exited with {process.returncode}")
    return seconds, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 rows instead of 100,000")
    parser.add_argument("--rows", type=int, help="any other number of rows")
    parser.add_argument("--store", choices=["sqlite", "postgres"], action="append")
    args = parser.parse_args()
    n = args.rows or (5_000 if args.quick else 100_000)
    stores = args.store or ["sqlite", "postgres"]
    figures: dict[str, dict[str, object]] = {}
    print(f"enrichflow run, {n:,} rows, apollo_default, CSV export")
    print(
        f"{'store':9} {'run s':>7} {'rows/s':>8} {'peak RSS MB':>12} "
        f"{'export s':>9} {'export rows/s':>14}"
    )
    with tempfile.TemporaryDirectory(prefix="ef-bench-run-") as tmp_name:
        tmp = Path(tmp_name)
        source = tmp / "apollo.csv"
        write_synthetic(source, n)
        for store in stores:
            with scratch_engine(store, tmp, "ef_bench_run") as engine:
                url = engine.url.render_as_string(hide_password=False)
                database = ["--database-url", url]
                run_s, run_mb = timed(
                    [str(ENRICHFLOW), "run", str(source), *database, "--out", str(tmp / "run.csv")]
                )
                with engine.connect() as conn:
                    batch_id = conn.execute(select(func.max(Batch.id))).scalar_one()
                export = [str(ENRICHFLOW), "export", str(batch_id), *database]
                export_s, _ = timed([*export, "--out", str(tmp / "export.csv")])
            if store == "sqlite":
                for leftover in tmp.glob("bench.db*"):
                    leftover.unlink()
            print(
                f"{store:9} {run_s:>7.1f} {n / run_s:>8,.0f} {run_mb:>12.0f} "
                f"{export_s:>9.1f} {n / export_s:>14,.0f}"
            )
            figures[store] = {
                "rows": n,
                "run_seconds": round(run_s, 1),
                "run_per_s": round(n / run_s),
                "run_peak_rss_mb": round(run_mb),
                "export_seconds": round(export_s, 1),
                "export_per_s": round(n / export_s),
            }
    if not args.quick and args.rows is None and args.store is None:
        record("run", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
