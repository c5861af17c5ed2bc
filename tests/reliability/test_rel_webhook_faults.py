"""ASYNC steps under faults: a webhook target that fails for a while or for good, callback
storms (duplicates, reordering, late, forged, oversized), and two tenants side by side."""

from __future__ import annotations

import random
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from invariants import batch_status, check_invariants, wait_until, ws
from processes import ENRICHFLOW, cli_env, tune
from sqlalchemy import Engine, select

from enrichflow.db.models import EnrichmentResult
from test_async_pipeline import COMPANY, SECRET, Service, people, set_webhook, start
from webhooks.webhook_servers import Recorded, Reply, ScriptedServer

rs = EnrichmentResult.__table__
FAST_ASYNC = {
    "rate_per_second": 1000,
    "burst": 1000,
    "concurrency": 16,
    "backoff_base_seconds": 0.02,
    "backoff_max_seconds": 0.1,
    "timeout_seconds": 2,
}


def call_back_later(request: Recorded, payload: dict[str, Any] | None = None) -> None:
    body = request.json()
    data = payload if payload is not None else {"company": f"Company {body['item_id']}"}
    threading.Timer(0.02, lambda: httpx.post(body["callback_url"], json=data, timeout=10)).start()


def results(engine: Engine, batch_id: int) -> dict[int, Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(rs.c.item_id, rs.c.payload).where(rs.c.batch_id == batch_id))
        return {r.item_id: r.payload for r in rows}


# --------------------------------------------------------------------------- target outages


def test_target_fails_for_a_while_then_recovers(
    engine: Engine, tmp_path: Path, service: Service
) -> None:
    """500s and dropped connections for the first 30 requests: every item retries and ends
    COMPLETED with exactly one result."""
    tune_row(engine, max_attempts=20)
    broken = [Reply(500, {"error": "down"}) if i % 2 else Reply(close=True) for i in range(30)]

    def healthy(request: Recorded) -> Reply:
        call_back_later(request)
        return Reply(200, {"status": "accepted"})

    with ScriptedServer(broken, responder=healthy) as target:
        set_webhook(engine, "acme", COMPANY, f"{target.url}/hook")
        batch_id = start(engine, tmp_path, [COMPANY], people(20))
        service.drive(batch_id, timeout=90)
        assert len(target.requests) >= 50
    assert batch_status(engine, batch_id) == "COMPLETED"
    assert check_invariants(engine, batch_id, 20) == {"COMPLETED": 20}
    with engine.connect() as conn:
        attempts = conn.execute(select(ws.c.attempt).where(ws.c.batch_id == batch_id)).scalars()
        assert max(attempts) >= 2


def test_permanent_outage_fails_with_the_error_then_retry_completes(
    db_url: str, engine: Engine, tmp_path: Path, service: Service
) -> None:
    tune_row(engine, max_attempts=2)
    up = threading.Event()

    def target_reply(request: Recorded) -> Reply:
        if not up.is_set():
            return Reply(503, {"error": "maintenance"})
        call_back_later(request)
        return Reply(200, {"status": "accepted"})

    with ScriptedServer(responder=target_reply) as target:
        set_webhook(engine, "acme", COMPANY, f"{target.url}/hook")
        batch_id = start(engine, tmp_path, [COMPANY], people(8))
        service.drive(batch_id, timeout=90)
        assert batch_status(engine, batch_id) == "COMPLETED_WITH_ERRORS"
        with engine.connect() as conn:
            failed = conn.execute(select(ws).where(ws.c.batch_id == batch_id)).all()
        assert {s.status for s in failed} == {"FAILED"}
        assert all(s.error and "503" in s.error for s in failed), [s.error for s in failed]
        assert check_invariants(engine, batch_id, 8) == {"FAILED": 8}

        up.set()
        retry = subprocess.run(
            [ENRICHFLOW, "retry", str(batch_id)],
            env=cli_env(db_url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert retry.returncode == 0, retry.stdout + retry.stderr
        service.drive(batch_id, timeout=90)
    assert batch_status(engine, batch_id) == "COMPLETED"
    assert check_invariants(engine, batch_id, 8) == {"COMPLETED": 8}
    assert set(results(engine, batch_id)) == {s.item_id for s in failed}


def tune_row(engine: Engine, **config: Any) -> None:
    tune(engine, COMPANY, **{**FAST_ASYNC, **config})


# --------------------------------------------------------------------------- callback storms


@pytest.mark.slow
def test_callback_storm(engine: Engine, tmp_path: Path, service: Service) -> None:
    """Every state gets 3 genuine callbacks in random order from 16 threads, plus forged and
    oversized ones, and late ones after completion. One result per state, the forged and
    oversized bodies never land, the late ones are duplicates."""
    n = 150
    tune_row(engine, max_attempts=3)
    with ScriptedServer(responder=lambda r: Reply(200, {"status": "accepted"})) as target:
        set_webhook(engine, "acme", COMPANY, f"{target.url}/hook")
        batch_id = start(engine, tmp_path, [COMPANY], people(n))
        driver = threading.Thread(target=service.drive, args=(batch_id, 120), daemon=True)
        driver.start()
        wait_until(lambda: len(target.requests) >= n, 60, "every item sent")
        sent = [r.json() for r in target.requests]
    rng = random.Random(7)
    base = service.server.url
    calls: list[tuple[str, bytes, str]] = []  # (url, body, kind)
    for body in sent:
        url = body["callback_url"]
        token = url.rsplit("/", 1)[1]
        for copy in range(3):
            payload = {"company": f"genuine {body['item_id']}", "copy": copy}
            calls.append((url, httpx.Request("POST", "/", json=payload).read(), "genuine"))
        state_id, attempt, signature = token.split(".")
        forged_tokens = [
            f"{state_id}.{attempt}.{signature[::-1]}",
            f"{int(state_id) + 1}.{attempt}.{signature}",
            f"{state_id}.{int(attempt) + 1}.{signature}",
        ]
        for forged in forged_tokens:
            calls.append((f"{base}/callbacks/{forged}", b'{"forged": true}', "forged"))
        calls.append((url, b'{"big": "' + b"x" * (1024 * 1024 + 10) + b'"}', "oversized"))
    rng.shuffle(calls)
    answers: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def post(call: tuple[str, bytes, str]) -> None:
        url, body, kind = call
        with httpx.Client(timeout=30) as client:
            answer = client.post(url, content=body, headers={"content-type": "application/json"})
        with lock:
            answers.append((kind, answer.status_code, answer.json().get("status", "")))

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(post, calls))
    driver.join(120)
    assert not driver.is_alive()
    # late: after the batch finished, every genuine callback again
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(post, [c for c in calls if c[2] == "genuine"][::3]))

    by_kind: dict[str, set[tuple[int, str]]] = {}
    for kind, code, status in answers:
        by_kind.setdefault(kind, set()).add((code, status))
    assert by_kind["forged"] <= {(401, "invalid_token")}, by_kind
    assert by_kind["oversized"] == {(413, "too_large")}, by_kind
    assert by_kind["genuine"] <= {(200, "completed"), (200, "duplicate")}, by_kind
    completed = sum(1 for k, c, s in answers if k == "genuine" and s == "completed")
    assert completed == n
    assert batch_status(engine, batch_id) == "COMPLETED"
    assert check_invariants(engine, batch_id, n) == {"COMPLETED": n}
    landed = results(engine, batch_id)
    for item_id, payload in landed.items():
        assert payload["company"] == f"genuine {item_id}", payload


# --------------------------------------------------------------------------- two tenants


def test_two_tenants_never_cross(engine: Engine, tmp_path: Path, service: Service) -> None:
    """A's items go to A's webhook only, B's to B's; B's callback tokens cannot complete A's
    states (a token names one state and attempt; re-signing for another is impossible without
    the key, and B's own token only ever lands on B's state)."""
    tune_row(engine, max_attempts=3)
    with (
        ScriptedServer(responder=lambda r: Reply(200, {})) as hook_a,
        ScriptedServer(responder=lambda r: Reply(200, {})) as hook_b,
    ):
        set_webhook(engine, "client_a", COMPANY, f"{hook_a.url}/a")
        set_webhook(engine, "client_b", COMPANY, f"{hook_b.url}/b")
        batch_a = start(engine, tmp_path, [COMPANY], people(5), client="client_a")
        batch_b = start(engine, tmp_path, [COMPANY], people(5), client="client_b")
        threads = [
            threading.Thread(target=service.drive, args=(b, 60), daemon=True)
            for b in (batch_a, batch_b)
        ]
        for t in threads:
            t.start()
        wait_until(lambda: len(hook_a.requests) >= 5 and len(hook_b.requests) >= 5, 30, "sends")
        sent_a = [r.json() for r in hook_a.requests]
        sent_b = [r.json() for r in hook_b.requests]
        assert {s["batch_id"] for s in sent_a} == {batch_a}
        assert {s["batch_id"] for s in sent_b} == {batch_b}
        assert all(r.path == "/a" for r in hook_a.requests)
        assert all(r.path == "/b" for r in hook_b.requests)
        with httpx.Client(timeout=10) as client:
            # B's tokens complete B's states only
            for s in sent_b:
                answer = client.post(s["callback_url"], json={"tenant": "B"})
                assert answer.json()["status"] == "completed"
            # B's tokens grafted onto A's state ids are forged
            for a, b in zip(sent_a, sent_b, strict=True):
                a_id = a["callback_url"].rsplit("/", 1)[1].split(".")[0]
                b_rest = b["callback_url"].rsplit("/", 1)[1].split(".", 1)[1]
                forged = f"{service.server.url}/callbacks/{a_id}.{b_rest}"
                assert client.post(forged, json={"tenant": "B"}).status_code == 401
            assert batch_status(engine, batch_a) == "RUNNING"
            for s in sent_a:
                assert client.post(s["callback_url"], json={"tenant": "A"}).status_code == 200
        for t in threads:
            t.join(60)
            assert not t.is_alive()
    assert check_invariants(engine, batch_a, 5) == {"COMPLETED": 5}
    assert check_invariants(engine, batch_b, 5) == {"COMPLETED": 5}
    assert {p["tenant"] for p in results(engine, batch_a).values()} == {"A"}
    assert {p["tenant"] for p in results(engine, batch_b).values()} == {"B"}
    assert SECRET  # every token above was signed with the service's key
