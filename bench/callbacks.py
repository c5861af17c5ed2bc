"""Callback receiver benchmark: many concurrent clients POST valid callbacks against
``enrichflow serve`` (a subprocess) on Postgres.

The batch's states are created directly as IN_PROGRESS ASYNC states (attempt 1), as the
``webhook`` sender leaves them; each gets one callback with its own payload. Afterwards every
state must be COMPLETED exactly once with its payload. Targets: >= 2,000 callbacks/s, p99 under
100 ms.

    .venv/bin/python bench/callbacks.py            # 20,000 items
    .venv/bin/python bench/callbacks.py --quick    # 2,000 items (CI: a few seconds)
    .venv/bin/python bench/callbacks.py --strict   # exit 1 when a target is missed, too

The exit code is 1 when a callback was lost, answered other than 200, or landed other than
exactly once (with ``--strict`` also when a target is missed: throughput depends on the machine
and on what else runs on it). Besides wall-clock figures it prints the server's CPU time per
callback (all its threads), which other load on the machine disturbs far less. Before the
measured run, ``--warmup`` extra states (default: one per client) are called back, so that the
figures do not include connecting and first-use costs; they are checked like the others.

The clients are a minimal keep-alive HTTP/1.1 loop on asyncio streams, so that the load
generator (on the same machine) costs as little CPU as possible.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import psutil
from sqlalchemy import insert, select, text

from _async_batch import async_batch, sent_state
from enrichflow.db.engine import make_engine, now_ms
from enrichflow.db.models import (
    EnrichmentResult,
    WorkflowState,
)
from enrichflow.seed import init_database
from enrichflow.webhooks.signing import callback_token

PG_BASE = os.environ.get("ENRICHFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
SECRET = "bench-callbacks-secret-of-32-bytes-long"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_states(url: str, n: int) -> list[int]:
    """A RUNNING batch of ``n`` items whose single ASYNC step is IN_PROGRESS (attempt 1)."""
    engine = make_engine(url)
    init_database(engine)
    now = now_ms()
    with engine.begin() as conn:
        batch_id, item_ids = async_batch(conn, n, {})
        conn.execute(
            insert(WorkflowState),
            [sent_state(batch_id, item_id, now, {"sent": True}) for item_id in item_ids],
        )
        ids = list(
            conn.execute(
                select(WorkflowState.id)
                .where(WorkflowState.batch_id == batch_id)
                .order_by(WorkflowState.id)
            ).scalars()
        )
    engine.dispose()
    return ids


async def client_loop(
    port: int, jobs: list[tuple[int, str]], latencies: list[float], codes: dict[int, int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for state_id, token in jobs:
            body = json.dumps({"state": state_id, "company": f"Company {state_id}"}).encode()
            request = (
                f"POST /callbacks/{token} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
            ).encode() + body
            started = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            code = int(status_line.split()[1])
            codes[code] = codes.get(code, 0) + 1
    finally:
        writer.close()
        await writer.wait_closed()


async def load(
    port: int, state_ids: list[int], concurrency: int
) -> tuple[float, list[float], dict[int, int]]:
    tokens = [(sid, callback_token(sid, 1, SECRET)) for sid in state_ids]
    shares = [tokens[i::concurrency] for i in range(concurrency)]
    latencies: list[float] = []
    codes: dict[int, int] = {}
    started = time.perf_counter()
    await asyncio.gather(*(client_loop(port, share, latencies, codes) for share in shares))
    return time.perf_counter() - started, latencies, codes


def verify(url: str, state_ids: list[int]) -> tuple[bool, str]:
    """Every state COMPLETED, exactly one result each, carrying that state's payload."""
    engine = make_engine(url)
    ws, rs = WorkflowState.__table__, EnrichmentResult.__table__
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(select(ws.c.status, text("count(*)")).group_by(ws.c.status)).all()
        )
        rows = conn.execute(
            select(ws.c.id, rs.c.payload, rs.c.id).join(
                rs, (rs.c.item_id == ws.c.item_id) & (rs.c.step_name == ws.c.step_name)
            )
        ).all()
    engine.dispose()
    per_state: dict[int, int] = {}
    wrong = 0
    for sid, payload, _ in rows:
        per_state[sid] = per_state.get(sid, 0) + 1
        if payload != {"state": sid, "company": f"Company {sid}"}:
            wrong += 1
    ok = (
        statuses == {"COMPLETED": len(state_ids)}
        and len(per_state) == len(state_ids)
        and set(per_state.values()) == {1}
        and wrong == 0
    )
    return (
        ok,
        f"statuses {statuses}, results {len(rows)} for {len(per_state)} states, wrong payloads {wrong}",
    )


TARGET_RATE = 2_000
TARGET_P99_MS = 100.0


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 items instead of 20,000")
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=None, help="extra states called back first")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    n = args.items or (2_000 if args.quick else 20_000)
    warmup = args.concurrency if args.warmup is None else args.warmup

    admin = make_engine(f"{PG_BASE}/postgres", isolation_level="AUTOCOMMIT")
    name = f"ef_bench_callbacks_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = f"{PG_BASE}/{name}"
    server: subprocess.Popen[bytes] | None = None
    try:
        all_ids = create_states(url, n + warmup)
        warm_ids, state_ids = all_ids[:warmup], all_ids[warmup:]
        port = free_port()
        env = {
            **os.environ,
            "ENRICHFLOW_SECRET_KEY": SECRET,
            "ENRICHFLOW_DATABASE_URL": url,
            "ENRICHFLOW_PUBLIC_URL": f"http://127.0.0.1:{port}",
        }
        exe = Path(sys.executable).with_name("enrichflow")
        server = subprocess.Popen(
            [str(exe), "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        with httpx.Client() as http:
            while True:
                try:
                    if http.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("enrichflow serve did not start")
                time.sleep(0.1)
        if warm_ids:
            _, _, warm_codes = asyncio.run(load(port, warm_ids, args.concurrency))
            if warm_codes != {200: len(warm_ids)}:
                raise SystemExit(f"warm-up answers: {warm_codes}")
        served = psutil.Process(server.pid)
        cpu_before = cpu_seconds(served)
        elapsed, latencies, codes = asyncio.run(load(port, state_ids, args.concurrency))
        server_cpu = cpu_seconds(served) - cpu_before
        ok, detail = verify(url, all_ids)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    latencies.sort()
    rate = n / elapsed
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    rate_ok, p99_ok = rate >= TARGET_RATE, p99 < TARGET_P99_MS
    answers_ok = codes == {200: n}

    def verdict(met: bool) -> str:
        return "met" if met else "NOT MET"

    print(
        f"callbacks: {n:,} items (+{warmup} warm-up), {args.concurrency} concurrent clients, "
        f"Postgres, {os.cpu_count()} CPUs"
    )
    print(
        f"  throughput: {rate:,.0f} callbacks/s ({elapsed:.2f} s)   "
        f"target >= {TARGET_RATE:,}: {verdict(rate_ok)}"
    )
    print(
        f"  latency:    p50 {p50:.1f} ms, p99 {p99:.1f} ms   "
        f"target p99 < {TARGET_P99_MS:.0f} ms: {verdict(p99_ok)}"
    )
    print(f"  server CPU: {server_cpu / n * 1e6:.0f} us per callback (all threads)")
    print(f"  answers:    {codes}   {'OK' if answers_ok else 'FAILED'}")
    print(f"  exactly once: {'OK' if ok else 'FAILED'}: {detail}")
    correct = ok and answers_ok
    if not args.quick and args.items is None:
        from _results import record  # bench/_results.py: the shared bench/results/latest.json

        record(
            "callbacks",
            {
                "items": n,
                "concurrency": args.concurrency,
                "per_s": round(rate),
                "p50_ms": round(p50, 1),
                "p99_ms": round(p99, 1),
                "target_per_s": TARGET_RATE,
                "target_p99_ms": TARGET_P99_MS,
                "rate_met": rate_ok,
                "p99_met": p99_ok,
                "exactly_once": correct,
            },
        )
    return 0 if correct and (not args.strict or (rate_ok and p99_ok)) else 1


if __name__ == "__main__":
    sys.exit(main())
