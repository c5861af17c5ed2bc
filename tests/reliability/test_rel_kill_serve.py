"""``kill -9`` of a real ``enrichflow serve`` process while callbacks are arriving: every 200
``completed`` answered before the kill is durable, and after a restart the re-sent callbacks
complete every remaining state exactly once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from invariants import batch_status, check_invariants, count_status, wait_until
from processes import cli_env, kill_9, start_cli, stop, tune
from sqlalchemy import Engine, select

from enrichflow.db.models import EnrichmentResult
from test_async_pipeline import COMPANY, people, set_webhook, start
from webhooks.webhook_servers import Reply, ScriptedServer, free_port

N = 400
SECRET = "reliability-serve-secret-32-bytes-long"
rs = EnrichmentResult.__table__


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.slow
def test_serve_killed_while_callbacks_arrive(db_url: str, engine: Engine, tmp_path: Path) -> None:
    tune(
        engine,
        COMPANY,
        rate_per_second=1000,
        burst=1000,
        concurrency=16,
        callback_timeout_seconds=600,
        # every item is sent and called back, so none may wait on a de-duplication leader
        dedupe_by="off",
        reuse_days=0,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = cli_env(db_url, ENRICHFLOW_SECRET_KEY=SECRET, ENRICHFLOW_PUBLIC_URL=url)
    log = tmp_path / "serve.log"
    with ScriptedServer(responder=lambda r: Reply(200, {"status": "accepted"})) as target:
        set_webhook(engine, "acme", COMPANY, f"{target.url}/hook")
        batch_id = start(engine, tmp_path, [COMPANY], people(N))
        serve = start_cli(["serve", "--port", str(port)], env, log)
        try:
            wait_until(lambda: _healthy(url), 30, "serve to answer /healthz")
            wait_until(lambda: len(target.requests) >= N, 60, "every item sent")
            callbacks = [r.json()["callback_url"] for r in target.requests]
            assert all(c.startswith(f"{url}/callbacks/") for c in callbacks)
            durable: set[str] = set()
            lock = threading.Lock()
            killed = threading.Event()

            def post(callback: str) -> None:
                if killed.is_set():
                    return
                try:
                    answer = httpx.post(callback, json={"via": callback[-12:]}, timeout=10)
                except httpx.HTTPError:
                    return  # the server died under this request
                if answer.status_code == 200 and answer.json()["status"] == "completed":
                    with lock:
                        durable.add(callback)

            with ThreadPoolExecutor(8) as pool:
                futures = [pool.submit(post, c) for c in callbacks]
                wait_until(lambda: len(durable) >= N // 3, 60, "a third of the callbacks")
                kill_9(serve)
                killed.set()
                for f in futures:
                    f.result(timeout=30)
        finally:
            stop(serve)
        assert len(durable) < N, "every callback landed before the kill; send more"
        # every 200 'completed' answered before the kill survived it
        with engine.connect() as conn:
            landed = conn.execute(select(rs.c.payload).where(rs.c.batch_id == batch_id)).scalars()
            vias = {p["via"] for p in landed}
        assert {c[-12:] for c in durable} <= vias
        done_before = count_status(engine, batch_id, "COMPLETED")

        restarted = start_cli(["serve", "--port", str(port)], env, log)
        try:
            wait_until(lambda: _healthy(url), 30, "the restarted serve")
            statuses: list[str] = []
            with httpx.Client(timeout=10) as client:
                for callback in callbacks:  # the sender re-sends everything
                    statuses.append(
                        client.post(callback, json={"via": callback[-12:]}).json()["status"]
                    )
            assert set(statuses) <= {"completed", "duplicate"}
            assert statuses.count("completed") == N - done_before
            deadline = time.monotonic() + 60
            while batch_status(engine, batch_id) != "COMPLETED":
                assert time.monotonic() < deadline, "the batch was never rolled up"
                time.sleep(0.1)
        finally:
            stop(restarted)
        assert len(target.requests) == N, "an item was sent twice"
    assert check_invariants(engine, batch_id, N) == {"COMPLETED": N}
