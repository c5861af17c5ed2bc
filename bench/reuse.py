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

Besides the sends, it times what the runner does per chunk of the Clay step to decide, by
wrapping it here: the reuse look-up (``db.states.reuse.results_reusable``) and the read of the
leaders the other keys already have (``db.states.followers.dedupe_leaders``), both in the
runner's read of the chunk, and the join (``dedupe_join``), a short transaction only for a
chunk with keys that have no leader yet. ``in run`` sums their calls' wall time over the runner
threads, which includes waiting for the other threads' share of the CPU; ``alone`` replays the
same calls (same keys) one after another once the batch finished, which is what they cost: the
reads on one connection, as the runner makes them on the one it already holds, each join in its
own transaction. ``share`` is ``alone`` over the batch's wall time from launch to COMPLETED. The second batch waits on no callback, so all its wall time is
synchronous work (the SYNC steps, the look-ups, recording the reused results); the first one's
includes Clay's callbacks. Target: the reuse look-ups well under 10% of it (under 5%); the
de-duplication's reads and joins are printed beside them. Exit 1 when a batch sent other than expected.

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
TARGET_SHARE = 0.05
"""The reuse look-ups' share of a batch's time: "well under 10%" read as under half of it."""
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


class CallTimer:
    """Wraps one of the runner's per-chunk decisions: how often it ran, the seconds it took
    summed over the runner threads that called it, and each call's arguments, to replay them
    alone."""

    def __init__(self, call: Callable[..., Any], writes: bool) -> None:
        self.call = call
        self.writes = writes
        self.calls: list[tuple[Any, ...]] = []
        self.seconds = 0.0
        self._lock = threading.Lock()

    def __call__(self, conn: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.call(conn, *args)
        finally:
            spent = time.perf_counter() - started
            with self._lock:
                self.calls.append(args)
                self.seconds += spent

    def reset(self) -> None:
        with self._lock:
            self.calls, self.seconds = [], 0.0

    def replay(self, engine: Any) -> float:
        """Seconds the batch's calls take one after another in one thread: their cost without
        the other threads' share of the CPU, which the timings inside the run include. A join
        replayed finds its leaders in place and writes the same keys again."""
        from enrichflow.db.engine import reading

        started = time.perf_counter()
        if self.writes:
            for args in self.calls:
                with engine.begin() as conn:
                    self.call(conn, *args)
        else:
            with reading(engine) as conn:
                for args in self.calls:
                    self.call(conn, *args)
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
    store: str, tmp: Path, files: list[Path], sandbox: Sandbox, timers: dict[str, CallTimer]
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
            for timer in timers.values():
                timer.reset()
            started = time.perf_counter()
            batch_id = launch(engine, CLIENT, APOLLO, report.upload_id, steps=STEPS)
            drive(engine, batch_id, STEPS, report.rows, True, ("127.0.0.1", port))
            seconds = time.perf_counter() - started
            alone = {name: timer.replay(engine) for name, timer in timers.items()}
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
                    "rows_per_second": round(report.rows / seconds, 1),
                    **{
                        f"{name}_{measure}": value
                        for name, timer in timers.items()
                        for measure, value in (
                            ("calls", len(timer.calls)),
                            ("seconds_in_run", round(timer.seconds, 3)),
                            ("seconds_alone", round(alone[name], 3)),
                            ("share", round(alone[name] / seconds, 4)),
                        )
                    },
                    "deciding_share": round(sum(alone.values()) / seconds, 4),
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
    timers = {
        "lookup": CallTimer(runner.results_reusable, writes=False),
        "leaders": CallTimer(runner.dedupe_leaders, writes=False),
        "join": CallTimer(runner.dedupe_join, writes=True),
    }
    runner.results_reusable = timers["lookup"]  # type: ignore[assignment]
    runner.dedupe_leaders = timers["leaders"]  # type: ignore[assignment]
    runner.dedupe_join = timers["join"]  # type: ignore[assignment]

    print(
        f"Clay reuse: 2 batches of {rows:,} rows over the same {companies:,} companies, "
        f"sandbox as Clay, {os.cpu_count()} CPUs"
    )
    print(
        "deciding per chunk, replayed alone: reuse look-ups, leader reads, joins "
        "(calls / seconds); share = their sum over the batch's seconds"
    )
    print(
        f"{'store':9} {'batch':>5} {'sent':>6} {'dedup':>7} {'reused':>7} {'batch s':>8} "
        f"{'rows/s':>7} {'look-ups':>14} {'leader reads':>14} {'joins':>14} {'share':>6}"
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
                for f in run_store(store, tmp, files, sandbox, timers):
                    figures.append(f)
                    spent = " ".join(
                        f"{f[f'{name}_calls']:>6,} / {f[f'{name}_seconds_alone']:>5.2f}"
                        for name in timers
                    )
                    print(
                        f"{store:9} {f['batch']:>5} {f['sent']:>6,} {f['deduplicated']:>7,} "
                        f"{f['reused']:>7,} {f['batch_seconds']:>8.1f} "
                        f"{f['rows_per_second']:>7,.0f} {spent} {f['deciding_share']:>6.1%}"
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
    deciding = max(f["deciding_share"] for f in figures)
    met = worst < TARGET_SHARE
    print(
        f"saved: {sum(f['reused'] + f['deduplicated'] for f in figures):,} sends; "
        f"reuse look-ups at most {worst:.1%} of a batch's time, "
        f"target < {TARGET_SHARE:.0%}: {'met' if met else 'NOT MET'}; "
        f"deciding in all (with de-duplication) at most {deciding:.1%}"
    )
    if not args.quick and args.rows is None and args.companies is None and args.store is None:
        record("reuse", {"companies": companies, "target_share": TARGET_SHARE, "batches": figures})
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
