"""The batch pages on a big batch on Postgres: the batch page (progress, steps, failure groups and
the first page of failures), the lead browser (first page, a page deep in the batch, a filtered
page), the failure groups' fragment and the clients page (each client's Clay credits), each
requested through the app as a browser would (login, session cookie), p50 and p95 of the answer
times. The batch is built with set-based SQL, not through the engine: three steps, most items
finished, some failed with three error classes whose texts carry ids, some waiting on Clay,
some to do.

    python bench/dashboard.py            # 1,000,000 items
    python bench/dashboard.py --quick    # 20,000 items
    python bench/dashboard.py --keep dash_1m   # build into database dash_1m once, reuse after
"""

from __future__ import annotations

import argparse
import contextlib
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, insert, select, text
from starlette.testclient import TestClient

from _databases import kept_engine, scratch_engine
from _results import record
from enrichflow.api.app import create_app
from enrichflow.config import Settings
from enrichflow.db.engine import now_ms
from enrichflow.db.models import Batch, BatchStep, Client
from enrichflow.seed import init_database

TARGET_P95_MS = 300.0
PASSWORD = "bench-admin-password"
CLAY = "enrich_company_via_waterfall_in_clay"
STEPS = [("normalize_company_name", "SYNC"), (CLAY, "ASYNC"), ("normalize_company_domain", "SYNC")]

ITEMS_SQL = """
INSERT INTO batch_items (batch_id, row_number, person_name, title, company_name, company_domain,
                         email, original_data)
SELECT :batch, g + 1, 'Person ' || g, 'Head of Sales', 'Company ' || (g % 50000),
       'company' || (g % 50000) || '.example', 'p' || g || '@company' || (g % 50000) || '.example',
       jsonb_build_array('Person ' || g, 'Company ' || (g % 50000))
FROM generate_series(1, :n) AS g
"""
# step 0 done for all; Clay: 70 % done, 15 % failed (three error classes), 5 % waiting,
# 10 % to do; step 2 for the Clay-done items: half done, half to do.
STATES_SQL = """
INSERT INTO workflow_states (batch_id, item_id, step_name, step_index, status, attempt,
                             retry_floor, not_before, lease_until, advanced_at, error,
                             created_at, updated_at)
SELECT :batch, i.id, :step, :position, s.status, s.attempt, 0, :now,
       CASE WHEN s.status = 'IN_PROGRESS' THEN :now + 82800000 END,
       CASE WHEN s.status IN ('COMPLETED', 'SKIPPED') THEN :now END,
       s.error, :now - 3600000, :now - (i.row_number % 3600) * 1000
FROM batch_items AS i
CROSS JOIN LATERAL (SELECT {status} AS status, {attempt} AS attempt, {error} AS error) AS s
WHERE i.batch_id = :batch {where}
"""
CLAY_STATUS = """CASE WHEN i.row_number % 100 < 70 THEN 'COMPLETED'
    WHEN i.row_number % 100 < 85 THEN 'FAILED'
    WHEN i.row_number % 100 < 90 THEN 'IN_PROGRESS' ELSE 'PENDING' END"""
CLAY_ERROR = """CASE WHEN i.row_number % 100 BETWEEN 70 AND 84 THEN CASE i.row_number % 3
    WHEN 0 THEN 'POST https://api.clay.com/… answered HTTP 404 for row ' || i.id
    WHEN 1 THEN 'timeout after 30 s, request ' || md5(i.id::text)
    ELSE 'HTTP 429: rate limited' END END"""


def build(engine: Engine, n: int) -> int:
    """A RUNNING batch of ``n`` items over three steps; its id."""
    now = now_ms()
    with engine.begin() as conn:
        client = conn.execute(insert(Client).values(name="bench").returning(Client.id)).scalar_one()
        batch_id = int(
            conn.execute(
                insert(Batch)
                .values(
                    client_id=client,
                    workstream_slug="apollo_scrape",
                    blueprint=[],
                    column_map={},
                    headers=["name", "company"],
                    status="RUNNING",
                    item_count=n,
                )
                .returning(Batch.id)
            ).scalar_one()
        )
        conn.execute(
            insert(BatchStep),
            [
                {
                    "batch_id": batch_id,
                    "position": p,
                    "step_name": name,
                    "type": kind,
                    "handler": "webhook" if kind == "ASYNC" else "normalize",
                    "max_attempts": 3,
                    "lease_ms": 60_000,
                    "backoff_base_ms": 2000,
                    "backoff_max_ms": 600_000,
                    "callback_timeout_ms": 86_400_000,
                    "concurrency": 10,
                    "config": {},
                }
                for p, (name, kind) in enumerate(STEPS)
            ],
        )
        conn.execute(text(ITEMS_SQL), {"batch": batch_id, "n": n})
        args = {"batch": batch_id, "now": now}
        forms = [
            ("'COMPLETED'", "1", "NULL::text", ""),
            (
                CLAY_STATUS,
                "CASE WHEN i.row_number % 100 BETWEEN 70 AND 84 THEN 3 ELSE 1 END",
                CLAY_ERROR,
                "",
            ),
            (
                "CASE WHEN i.row_number % 2 = 0 THEN 'COMPLETED' ELSE 'PENDING' END",
                "1",
                "NULL::text",
                "AND i.row_number % 100 < 70",
            ),
        ]
        for position, (status, attempt, error, where) in enumerate(forms):
            sql = STATES_SQL.format(status=status, attempt=attempt, error=error, where=where)
            conn.execute(text(sql), {**args, "step": STEPS[position][0], "position": position})
    with engine.begin() as conn:  # as launch and the conductor's housekeeping do
        conn.execute(text("ANALYZE"))
    return batch_id


def timed(client: TestClient, path: str, repeat: int) -> tuple[float, float]:
    """p50 and p95 in milliseconds of ``repeat`` GETs of ``path`` (after one warm-up)."""
    client.get(path).raise_for_status()
    times: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 items instead of 1,000,000")
    parser.add_argument("--items", type=int, help="the batch's size (overrides --quick)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--keep",
        metavar="DATABASE",
        help="build into this Postgres database and keep it; a later run with the same name "
        "migrates it to head and times its batch again",
    )
    args = parser.parse_args()
    n = args.items or (20_000 if args.quick else 1_000_000)
    with contextlib.ExitStack() as stack:
        if args.keep:
            engine = stack.enter_context(kept_engine(args.keep))
        else:
            tmp = stack.enter_context(tempfile.TemporaryDirectory())
            engine = stack.enter_context(scratch_engine("postgres", Path(tmp), "dash"))
        # a kept database is migrated again, so a migration landed since its build applies
        init_database(engine)
        with engine.connect() as conn:
            built = conn.execute(select(Batch.id, Batch.item_count)).first()
        if built is None:
            started = time.perf_counter()
            batch_id = build(engine, n)
            print(f"built a batch of {n:,} items in {time.perf_counter() - started:.1f} s")
        else:
            batch_id, n = built
            print(f"reusing batch {batch_id} of {n:,} items in {args.keep}", flush=True)
        with engine.connect() as conn:
            middle = conn.execute(
                text("SELECT id FROM batch_items WHERE batch_id = :b AND row_number = :r"),
                {"b": batch_id, "r": n // 2},
            ).scalar_one()
            states = conn.execute(
                select(text("count(*)")).select_from(text("workflow_states"))
            ).scalar_one()
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            secret_key="bench-secret-of-at-least-32-bytes-long",
            admin_password=PASSWORD,
        )
        app = create_app(engine, settings)
        app.state.wake = lambda: None
        pages = {
            "batch page": f"/batches/{batch_id}",
            "failure groups": f"/batches/{batch_id}/fragments/groups",
            "lead browser": f"/batches/{batch_id}/items",
            "lead browser, mid-batch page": f"/batches/{batch_id}/items?after={middle}",
            "lead browser, Clay failed": f"/batches/{batch_id}/items?step={CLAY}&status=FAILED",
            "item page": f"/batches/{batch_id}/items/{middle}",
            "clients page": "/clients",
        }
        failed = []
        results: dict[str, dict[str, float]] = {}
        with TestClient(app, base_url="http://localhost") as client:
            form = client.get("/login").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert token is not None, "no CSRF token on the login page"
            login = client.post(
                "/login",
                data={"password": PASSWORD, "csrf_token": token.group(1)},
                follow_redirects=False,
            )
            assert login.status_code == 303, login.text
            for name, path in pages.items():
                p50, p95 = timed(client, path, args.repeat)
                results[name] = {"p50_ms": round(p50, 1), "p95_ms": round(p95, 1)}
                verdict = "ok" if p95 < TARGET_P95_MS else f"OVER {TARGET_P95_MS:.0f} ms"
                print(f"{name:32s} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   {verdict}", flush=True)
                if p95 >= TARGET_P95_MS:
                    failed.append(name)
    if not args.quick:
        record("dashboard", {"items": n, "states": int(states), "pages": results})
    if failed and not args.quick:
        print(f"p95 over {TARGET_P95_MS:.0f} ms: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
