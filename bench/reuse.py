"""Clay reuse benchmark: a batch of people over a set of companies pays for each company once;
a second batch over the same companies (other people) sends nothing and completes from the
first one's results. Default 100,000 rows over 5,000 companies per batch; ``--quick`` 2,000
rows over 100.

Each batch runs as ``enrichflow run`` runs it, in this process: ingest, launch of
``normalize_company_name``, ``normalize_company_domain`` and the seeded company Clay workflow
(``dedupe_by: company``, reuse on by default), then the conductor with the local executor and
the callback receiver on loopback until the batch is COMPLETED. Clay is the sandbox
(``enrichflow sandbox``, its own process on loopback), whose ``/stats`` count what was sent.
The workflow's rate limit is raised so that the first batch is not paced at Clay's.

Besides the sends, it times the runner's reuse look-up (``db.states.reuse.results_reusable``,
one statement per chunk of the Clay step) by wrapping it here: ``in run`` sums its calls' wall
time over the runner threads, which includes waiting for the other threads' share of the CPU;
``alone`` replays the same calls (same keys, each on its own connection) one after another once
the batch finished, which is what they cost. ``share`` is ``alone`` over the batch's wall time
from launch to COMPLETED. The second batch waits on no callback, so all its wall time is
synchronous work (the SYNC steps, the look-ups, recording the reused results); the first one's
includes Clay's callbacks. Target: the look-ups under 10% of it. Exit 1 when a batch sent other than expected.

    .venv/bin/python bench/reuse.py                 # 100,000 rows, 5,000 companies, both stores
    .venv/bin/python bench/reuse.py --quick         # 2,000 rows, 100 companies
    .venv/bin/python bench/reuse.py --store postgres --rows 20000 --companies 1000
"""

from __future__ import annotations

import argparse
import csv
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from _databases import scratch_engine  # bench/ is this script's directory, hence on sys.path
from _results import record

ENRICHFLOW = Path(sys.executable).with_name("enrichflow")
CLIENT = "bench"
COMPANY = "enrich_company_via_waterfall_in_clay"
STEPS = ["normalize_company_name", "normalize_company_domain", COMPANY]
TARGET_SHARE = 0.10
SITES = ("https://www.acme{c}.com/", "acme{c}.com", "http://acme{c}.com/about", "ACME{c}.COM")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_people(path: Path, rows: int, companies: int, first_person: int) -> None:
    """``rows`` people spread evenly over ``companies``; one company's Website cell is written
    several ways, which the normalized domain makes one key."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["First Name", "Last Name", "Email", "Company", "Website", "Title"])
        for i in range(first_person, first_person + rows):
            c = i % companies
            site = SITES[(i // companies) % len(SITES)].format(c=c)
            writer.writerow([f"P{i}", f"L{i}", f"p{i}@acme{c}.com", f"Acme {c} Inc.", site, "CEO"])


class LookupTimer:
    """Wraps the runner's reuse look-up: how often it ran, the seconds it took summed over the
    runner threads that called it, and each call's arguments, to replay them alone."""

    def __init__(self, lookup: Callable[..., Any]) -> None:
        self.lookup = lookup
        self.calls: list[tuple[Any, ...]] = []
        self.seconds = 0.0
        self._lock = threading.Lock()

    def __call__(self, conn: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.lookup(conn, *args)
        finally:
            spent = time.perf_counter() - started
            with self._lock:
                self.calls.append(args)
                self.seconds += spent

    def reset(self) -> None:
        with self._lock:
            self.calls, self.seconds = [], 0.0

    def replay(self, engine: Any) -> float:
        """Seconds the batch's look-ups take one after another in one thread, each on its own
        connection as the runner makes them: their cost without the other threads' share of
        the CPU, which the timings inside the run include."""
        from enrichflow.db.engine import reading

        started = time.perf_counter()
        for args in self.calls:
            with reading(engine) as conn:
                self.lookup(conn, *args)
        return time.perf_counter() - started


class Sandbox:
    """``enrichflow sandbox`` in its own process, answering at once and calling back soon."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(ENRICHFLOW), "sandbox", "--port", str(self.port), "--delay", "0.05"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise SystemExit("enrichflow sandbox did not start")
            time.sleep(0.1)

    def received(self) -> int:
        return int(httpx.get(f"{self.url}/stats").json()["received"])

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def run_store(
    store: str, tmp: Path, files: list[Path], sandbox: Sandbox, timer: LookupTimer
) -> list[dict[str, Any]]:
    """Both batches on a fresh database of ``store``; a figure per batch."""
    from enrichflow.catalog.assignments import parse_assignments
    from enrichflow.catalog.client_configs import client_config_set
    from enrichflow.catalog.credits import batch_credits
    from enrichflow.catalog.workflow_options import workflow_options_update
    from enrichflow.cli.run import drive
    from enrichflow.db.engine import reading
    from enrichflow.defaults import APOLLO
    from enrichflow.ingest.loader import ingest_csv
    from enrichflow.launch import launch
    from enrichflow.seed import init_database

    figures: list[dict[str, Any]] = []
    port = int(os.environ["ENRICHFLOW_PUBLIC_URL"].rsplit(":", 1)[1])
    with scratch_engine(store, tmp, "ef_bench_reuse") as engine:
        init_database(engine)
        with engine.begin() as conn:
            workflow_options_update(
                conn, COMPANY, APOLLO, {"rate_per_second": 2000, "burst": 2000, "concurrency": 50}
            )
            webhook = f"webhook_url={sandbox.url}/webhook/companies"
            client_config_set(conn, CLIENT, COMPANY, APOLLO, parse_assignments([webhook]))
        for path in files:
            sent_before = sandbox.received()
            report = ingest_csv(engine, path)
            timer.reset()
            started = time.perf_counter()
            batch_id = launch(engine, CLIENT, APOLLO, report.upload_id, steps=STEPS)
            drive(engine, batch_id, STEPS, report.rows, True, ("127.0.0.1", port))
            seconds = time.perf_counter() - started
            alone = timer.replay(engine)
            with reading(engine) as conn:
                spent = batch_credits(conn, batch_id)[COMPANY]
            figures.append(
                {
                    "store": store,
                    "batch": len(figures) + 1,
                    "rows": report.rows,
                    "sandbox_received": sandbox.received() - sent_before,
                    **spent,
                    "batch_seconds": round(seconds, 2),
                    "lookups": len(timer.calls),
                    "lookup_seconds_in_run": round(timer.seconds, 3),
                    "lookup_seconds_alone": round(alone, 3),
                    "lookup_share": round(alone / seconds, 4),
                }
            )
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 rows over 100 companies")
    parser.add_argument("--rows", type=int, help="rows per batch")
    parser.add_argument("--companies", type=int, help="companies they are spread over")
    parser.add_argument("--store", choices=["sqlite", "postgres"], action="append")
    args = parser.parse_args()
    rows = args.rows or (2_000 if args.quick else 100_000)
    companies = args.companies or (100 if args.quick else 5_000)
    stores = args.store or ["sqlite", "postgres"]

    port = free_port()
    os.environ["ENRICHFLOW_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    os.environ["ENRICHFLOW_ALLOW_PRIVATE_TARGETS"] = "1"  # the sandbox listens on loopback
    from enrichflow import runner
    from enrichflow.gc_tuning import tune_gc

    tune_gc()  # as the enrichflow command does
    timer = LookupTimer(runner.results_reusable)
    runner.results_reusable = timer  # type: ignore[assignment]

    print(
        f"Clay reuse: 2 batches of {rows:,} rows over the same {companies:,} companies, "
        f"sandbox as Clay, {os.cpu_count()} CPUs"
    )
    print(
        f"{'store':9} {'batch':>5} {'sent':>6} {'dedup':>7} {'reused':>7} {'batch s':>8} "
        f"{'look-ups':>9} {'in run s':>9} {'alone s':>8} {'share':>7}"
    )
    figures: list[dict[str, Any]] = []
    sandbox = Sandbox()
    try:
        with tempfile.TemporaryDirectory(prefix="ef-bench-reuse-") as tmp_name:
            tmp = Path(tmp_name)
            files = [tmp / "first.csv", tmp / "second.csv"]
            write_people(files[0], rows, companies, 0)
            write_people(files[1], rows, companies, rows)
            for store in stores:
                for f in run_store(store, tmp, files, sandbox, timer):
                    figures.append(f)
                    print(
                        f"{store:9} {f['batch']:>5} {f['sent']:>6,} {f['deduplicated']:>7,} "
                        f"{f['reused']:>7,} {f['batch_seconds']:>8.1f} {f['lookups']:>9,} "
                        f"{f['lookup_seconds_in_run']:>9.2f} {f['lookup_seconds_alone']:>8.2f} "
                        f"{f['lookup_share']:>7.1%}"
                    )
                for leftover in tmp.glob("bench.db*"):
                    leftover.unlink()
    finally:
        sandbox.close()

    wrong = [
        f
        for f in figures
        if f["sandbox_received"] != f["sent"]
        or f["sent"] != (companies if f["batch"] == 1 else 0)
        or f["reused"] != (0 if f["batch"] == 1 else rows)
    ]
    for f in wrong:
        print(f"  {f['store']} batch {f['batch']}: unexpected sends or reuse: {f}", file=sys.stderr)
    worst = max(f["lookup_share"] for f in figures)
    met = worst < TARGET_SHARE
    print(
        f"saved: {sum(f['reused'] + f['deduplicated'] for f in figures):,} sends; "
        f"look-ups at most {worst:.1%} of a batch's time, "
        f"target < {TARGET_SHARE:.0%}: {'met' if met else 'NOT MET'}"
    )
    if not args.quick and args.rows is None and args.companies is None and args.store is None:
        record("reuse", {"companies": companies, "target_share": TARGET_SHARE, "batches": figures})
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
