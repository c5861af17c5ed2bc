"""``POST /callbacks/{token}`` served by uvicorn on 127.0.0.1, on SQLite and Postgres.

Every case compares whole ``workflow_states``, ``enrichment_results`` and ``batches`` rows
before and after: the rows that must change, and only those, do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, update

from enrichflow.api.app import create_app
from enrichflow.config import Settings
from enrichflow.db.engine import now_ms
from enrichflow.db.models import Batch, EnrichmentResult, WorkflowState
from enrichflow.db.states import (
    CallbackOutcome,
    Claim,
    StepOutcome,
    callback_complete,
    outcomes_record,
    states_claim,
)
from enrichflow.states import Status
from enrichflow.webhooks.signing import callback_token
from handlers_for_tests import make_batch
from webhooks.webhook_servers import UvicornThread

SECRET = "callback-test-secret-of-32-bytes-or-more"
CLAY_STEP = "enrich_company_via_waterfall_in_clay"
ws = WorkflowState.__table__
rs = EnrichmentResult.__table__
bt = Batch.__table__


class Wakes:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


@pytest.fixture
def wakes() -> Wakes:
    return Wakes()


@pytest.fixture
def api(engine: Engine, wakes: Wakes) -> Iterator[str]:
    settings = Settings(_env_file=None, secret_key=SECRET, callback_max_bytes=4096)  # type: ignore[call-arg]
    with UvicornThread(create_app(engine, settings, wakes)) as server:
        yield server.url


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def sent(engine: Engine, tmp_path: Path) -> list[Claim]:
    """Three items of a Clay step, claimed (IN_PROGRESS, attempt 1) as the sender leaves them."""
    batch_id = make_batch(engine, tmp_path, [CLAY_STEP, "noop"], n=3)
    with engine.begin() as conn:
        claims = states_claim(conn, batch_id, 0, 10, 60_000, now_ms(), start=True)
        outcomes_record(
            conn,
            [
                StepOutcome(
                    c, Status.IN_PROGRESS, meta={"sent": True}, deadline_ms=now_ms() + 10**7
                )
                for c in claims
            ],
            now_ms(),
        )
    return sorted(claims, key=lambda c: c.state_id)


def snapshot(engine: Engine) -> dict[str, dict[Any, dict[str, Any]]]:
    with engine.connect() as conn:
        return {
            "states": {r.id: dict(r._mapping) for r in conn.execute(select(ws))},
            "results": {r.id: dict(r._mapping) for r in conn.execute(select(rs))},
            "batches": {r.id: dict(r._mapping) for r in conn.execute(select(bt))},
        }


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, set[Any]]:
    """table -> ids of the rows added, removed or different."""
    out: dict[str, set[Any]] = {}
    for table in before:
        ids = set(before[table]) | set(after[table])
        diff = {i for i in ids if before[table].get(i) != after[table].get(i)}
        if diff:
            out[table] = diff
    return out


def url(api: str, claim: Claim, attempt: int | None = None) -> str:
    token = callback_token(claim.state_id, claim.attempt if attempt is None else attempt, SECRET)
    return f"{api}/callbacks/{token}"


def test_healthz(api: str, http: httpx.Client) -> None:
    response = http.get(f"{api}/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


def test_valid_callback_completes_exactly_that_state(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim], wakes: Wakes
) -> None:
    target = sent[1]
    before = snapshot(engine)
    response = http.post(url(api, target), json={"employees": 42, "name": "Acme"})
    assert response.status_code == 200
    assert response.json() == {"status": "completed"}
    after = snapshot(engine)
    diff = changed(before, after)
    assert diff["states"] == {target.state_id}
    assert set(diff) == {"states", "results"}
    state = after["states"][target.state_id]
    old = before["states"][target.state_id]
    assert state["status"] == "COMPLETED"
    assert state["lease_until"] is None and state["advanced_at"] is None
    assert {k: v for k, v in state.items() if k not in ("status", "lease_until", "updated_at")} == {
        k: v for k, v in old.items() if k not in ("status", "lease_until", "updated_at")
    }
    (result,) = [after["results"][i] for i in diff["results"]]
    assert (result["item_id"], result["step_name"]) == (target.item_id, CLAY_STEP)
    assert result["payload"] == {"employees": 42, "name": "Acme"}
    assert wakes.count == 1


def test_second_callback_is_a_duplicate_no_op(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim], wakes: Wakes
) -> None:
    target = sent[0]
    assert http.post(url(api, target), json={"v": 1}).json() == {"status": "completed"}
    before = snapshot(engine)
    again = http.post(url(api, target), json={"v": 2})
    assert again.status_code == 200
    assert again.json() == {"status": "duplicate"}
    assert snapshot(engine) == before
    assert wakes.count == 1


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature changed
        lambda t: "9" + t,  # state id changed
        lambda t: t.split(".")[0] + ".7." + t.split(".")[2],  # attempt changed
        lambda t: "not-a-token",
        lambda t: t + "." + t,
    ],
    ids=["signature", "state", "attempt", "garbage", "extra-part"],
)
def test_forged_or_tampered_token_is_401_and_writes_nothing(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim], mangle: Any, wakes: Wakes
) -> None:
    token = callback_token(sent[0].state_id, sent[0].attempt, SECRET)
    before = snapshot(engine)
    response = http.post(f"{api}/callbacks/{mangle(token)}", json={"x": 1})
    assert response.status_code == 401
    assert response.json() == {"status": "invalid_token"}
    assert snapshot(engine) == before
    assert wakes.count == 0


def test_token_signed_with_another_key_is_401(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim]
) -> None:
    before = snapshot(engine)
    token = callback_token(sent[0].state_id, sent[0].attempt, "some-other-key")
    assert http.post(f"{api}/callbacks/{token}", json={}).status_code == 401
    assert snapshot(engine) == before


def test_unknown_state_and_unissued_attempt_are_404(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim]
) -> None:
    before = snapshot(engine)
    unknown = callback_token(10**9, 1, SECRET)
    response = http.post(f"{api}/callbacks/{unknown}", json={"x": 1})
    assert response.status_code == 404
    assert response.json() == {"status": "not_found"}
    future = http.post(url(api, sent[0], attempt=sent[0].attempt + 1), json={"x": 1})
    assert future.status_code == 404
    assert snapshot(engine) == before


def test_sync_state_is_not_completed_by_a_callback(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim]
) -> None:
    with engine.begin() as conn:
        conn.execute(update(ws).where(ws.c.id == sent[0].state_id).values(status="COMPLETED"))
        # the noop (SYNC) state created by the sequencer's statement path
    from enrichflow.db.states import states_advance

    with engine.begin() as conn:
        states_advance(conn, now_ms())
        sync_id, attempt = conn.execute(
            select(ws.c.id, ws.c.attempt).where(ws.c.step_name == "noop")
        ).one()
        conn.execute(update(ws).where(ws.c.id == sync_id).values(status="IN_PROGRESS"))
    before = snapshot(engine)
    token = callback_token(sync_id, attempt, SECRET)
    assert http.post(f"{api}/callbacks/{token}", json={"x": 1}).status_code == 404
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"not json at all", "not JSON"),
        (b"[1, 2, 3]", "JSON object, not list"),
        (b'"a string"', "JSON object, not str"),
        (b"null", "JSON object, not NoneType"),
        (b'{"a": NaN}', "NaN is not allowed"),
        (b'{"a": "x\\u0000y"}', "\\u0000"),
        (b'{"a": "\\ud800"}', "lone surrogates"),
        (b"\xff\xfe{}", "not JSON"),
        (b"", "not JSON"),
        (b"[" * 2000 + b"]" * 2000, "nested too deeply"),
    ],
    ids=["text", "list", "string", "null", "nan", "nul", "surrogate", "bytes", "empty", "deep"],
)
def test_not_a_json_object_is_422_and_writes_nothing(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim], body: bytes, detail: str
) -> None:
    before = snapshot(engine)
    response = http.post(
        url(api, sent[0]), content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["status"] == "invalid_body"
    assert detail in response.json()["detail"]
    assert snapshot(engine) == before


def test_oversized_body_is_413_by_content_length(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim]
) -> None:
    before = snapshot(engine)
    body = json.dumps({"blob": "x" * 5000}).encode()
    response = http.post(url(api, sent[0]), content=body)
    assert response.status_code == 413
    assert response.json() == {"status": "too_large", "limit_bytes": 4096}
    assert snapshot(engine) == before


def test_oversized_streamed_body_is_413_without_content_length(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim]
) -> None:
    """A chunked body declares no length: the bytes actually received are counted."""

    def chunks() -> Iterator[bytes]:
        yield b'{"blob": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    before = snapshot(engine)
    response = http.post(url(api, sent[0]), content=chunks())
    assert response.status_code == 413
    assert snapshot(engine) == before


def test_body_at_the_limit_is_accepted(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim]
) -> None:
    prefix = b'{"blob": "'
    body = prefix + b"z" * (4096 - len(prefix) - 2) + b'"}'
    assert len(body) == 4096
    assert http.post(url(api, sent[0]), content=body).json() == {"status": "completed"}


def test_late_callback_for_earlier_attempt_completes_resent_state(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim]
) -> None:
    """Attempt 1's callback after the reaper re-sent the item as attempt 2 still lands."""
    target = sent[0]
    with engine.begin() as conn:
        conn.execute(update(ws).where(ws.c.id == target.state_id).values(attempt=2))
    assert http.post(url(api, target, attempt=1), json={"a": 1}).json() == {"status": "completed"}
    again = http.post(url(api, target, attempt=2), json={"a": 2})
    assert again.json() == {"status": "duplicate"}
    with engine.connect() as conn:
        assert conn.execute(select(rs.c.payload)).scalars().all() == [{"a": 1}]


def test_callback_after_failed_completes_and_reopens_a_finished_batch(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim]
) -> None:
    target = sent[2]
    with engine.begin() as conn:
        conn.execute(
            update(ws)
            .where(ws.c.id == target.state_id)
            .values(status="FAILED", lease_until=None, error="callback not received within 1 s")
        )
        conn.execute(update(bt).values(status="COMPLETED_WITH_ERRORS"))
    before = snapshot(engine)
    assert http.post(url(api, target), json={"late": True}).json() == {"status": "completed"}
    after = snapshot(engine)
    diff = changed(before, after)
    assert diff["states"] == {target.state_id}
    assert after["states"][target.state_id]["status"] == "COMPLETED"
    assert after["states"][target.state_id]["error"] is None
    assert {after["batches"][i]["status"] for i in diff["batches"]} == {"RUNNING"}


def test_callback_completes_a_state_waiting_for_its_retry(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim]
) -> None:
    """The reaper scheduled a retry (PENDING) when attempt 1's callback finally lands: the
    paid-for data is kept and the state completes, so the retry never runs."""
    with engine.begin() as conn:
        conn.execute(update(ws).where(ws.c.id == sent[0].state_id).values(status="PENDING"))
    before = snapshot(engine)
    response = http.post(url(api, sent[0]), json={"a": 1})
    assert response.status_code == 200
    assert response.json() == {"status": "completed"}
    after = snapshot(engine)
    diff = changed(before, after)
    assert diff["states"] == {sent[0].state_id}
    assert after["states"][sent[0].state_id]["status"] == "COMPLETED"
    (new_result,) = diff["results"]
    assert after["results"][new_result]["payload"] == {"a": 1}


def test_callback_before_the_senders_write_is_not_undone(
    engine: Engine, api: str, http: httpx.Client, sent: list[Claim], tmp_path: Path
) -> None:
    """The callback lands while the runner still holds the claim; its later Deferred write is
    fenced (IN_PROGRESS, attempt) and dropped, counted as answered, not as stale. A send
    whose claim the reaper took back is still stale."""
    batch_id = make_batch(engine, tmp_path, [CLAY_STEP], n=2, client="fast")
    with engine.begin() as conn:
        fast, reaped = states_claim(conn, batch_id, 0, 10, 60_000, now_ms(), start=True)
    assert http.post(url(api, fast), json={"fast": 1}).json() == {"status": "completed"}
    with engine.begin() as conn:
        conn.execute(update(ws).where(ws.c.id == reaped.state_id).values(status="PENDING"))
    before = snapshot(engine)
    with engine.begin() as conn:
        report = outcomes_record(
            conn,
            [
                StepOutcome(c, Status.IN_PROGRESS, meta={"late": 1}, deadline_ms=now_ms() + 10)
                for c in (fast, reaped)
            ],
            now_ms(),
        )
    assert (report.answered, report.stale, report.deferred) == (1, 1, 0)
    assert report.stale_ids == (reaped.state_id,)
    assert snapshot(engine) == before
    assert before["states"][fast.state_id]["status"] == "COMPLETED"


def test_concurrent_duplicates_complete_once(engine: Engine, sent: list[Claim]) -> None:
    """Many callbacks for one state at once (two databases' worth of locking): one wins."""
    from concurrent.futures import ThreadPoolExecutor

    target = sent[0]

    def land(i: int) -> CallbackOutcome:
        with engine.begin() as conn:
            return callback_complete(conn, target.state_id, 1, {"i": i}, now_ms()).outcome

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(land, range(16)))
    assert outcomes.count(CallbackOutcome.COMPLETED) == 1
    assert outcomes.count(CallbackOutcome.DUPLICATE) == 15
    with engine.connect() as conn:
        assert len(conn.execute(select(rs)).all()) == 1


# --------------------------------------------------------------------------- group commit


@pytest.fixture
def sent_many(engine: Engine, tmp_path: Path) -> list[Claim]:
    """Thirty items of a Clay step, claimed IN_PROGRESS (attempt 1)."""
    batch_id = make_batch(engine, tmp_path, [CLAY_STEP, "noop"], n=30, client="many")
    with engine.begin() as conn:
        claims = states_claim(conn, batch_id, 0, 100, 60_000, now_ms(), start=True)
    return sorted(claims, key=lambda c: c.state_id)


def test_many_concurrent_callbacks_with_duplicates_each_answered_correctly(
    engine: Engine, api: str, sent_many: list[Claim], wakes: Wakes
) -> None:
    """Three callbacks per state, all at once over 24 connections: each state completes
    exactly once, with the payload of the callback answered ``completed``; the rest are
    duplicates; the conductor is woken once per group, not once per callback."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(claim, copy) for copy in range(3) for claim in sent_many]

    def post(job: tuple[Claim, int]) -> tuple[int, int, dict[str, Any]]:
        claim, copy = job
        with httpx.Client(timeout=30) as client:
            response = client.post(url(api, claim), json={"copy": copy})
        return claim.state_id, copy, response.json()

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(post, jobs))
    winners: dict[int, int] = {}
    for state_id, copy, body in answers:
        assert body["status"] in ("completed", "duplicate"), body
        if body["status"] == "completed":
            assert state_id not in winners
            winners[state_id] = copy
    assert set(winners) == {c.state_id for c in sent_many}
    with engine.connect() as conn:
        stored = conn.execute(select(ws.c.id, rs.c.payload).join(rs, rs.c.item_id == ws.c.item_id))
        payloads = {sid: payload for sid, payload in stored}
        statuses = set(conn.execute(select(ws.c.status).where(ws.c.step_name == CLAY_STEP)))
    assert payloads == {sid: {"copy": copy} for sid, copy in winners.items()}
    assert statuses == {("COMPLETED",)}
    assert 1 <= wakes.count <= len(sent_many)


def _one_group(writer: Any, callbacks: list[tuple[int, int, Any]]) -> list[Any]:
    """Queue ``callbacks`` so that the writer takes them as one group: its condition is held
    (it is re-entrant) while they are submitted."""
    with writer._cond:
        futures = [writer.submit(*c) for c in callbacks]
    return [f.exception(timeout=30) or f.result() for f in futures]


def test_one_group_first_wins_and_every_outcome_is_its_own(
    engine: Engine, sent: list[Claim], wakes: Wakes
) -> None:
    from enrichflow.api.callbacks import CallbackWriter

    writer = CallbackWriter(engine, wakes)
    try:
        a, b, c = sent
        with engine.begin() as conn:
            conn.execute(update(ws).where(ws.c.id == c.state_id).values(status="COMPLETED"))
        outcomes = _one_group(
            writer,
            [
                (a.state_id, 1, {"first": True}),
                (a.state_id, 1, {"second": True}),
                (b.state_id, 2, {"unissued attempt": True}),
                (b.state_id, 1, {"b": 1}),
                (c.state_id, 1, {"already": "completed"}),
                (10**9, 1, {"unknown": True}),
            ],
        )
    finally:
        writer.close()
    assert [o.outcome.value for o in outcomes] == [
        "completed",
        "duplicate",
        "not_found",
        "completed",
        "duplicate",
        "not_found",
    ]
    assert writer.groups == 1
    assert wakes.count == 1
    with engine.connect() as conn:
        stored = dict(conn.execute(select(rs.c.item_id, rs.c.payload)).all())
    assert stored == {a.item_id: {"first": True}, b.item_id: {"b": 1}}


def test_a_callback_that_cannot_be_stored_fails_alone(
    engine: Engine, sent: list[Claim], wakes: Wakes
) -> None:
    """The group's transaction fails; its callbacks are landed again one by one, so only the
    bad one is refused and the others are answered (and stored) as if alone."""
    from enrichflow.api.callbacks import CallbackWriter

    writer = CallbackWriter(engine, wakes)
    a, b, c = sent
    try:
        outcomes = _one_group(
            writer,
            [
                (a.state_id, 1, {"a": 1}),
                (b.state_id, 1, {"bad": object()}),  # not JSON-serialisable
                (c.state_id, 1, {"c": 1}),
                (a.state_id, 1, {"a": 2}),
            ],
        )
    finally:
        writer.close()
    assert outcomes[0].outcome is CallbackOutcome.COMPLETED
    assert isinstance(outcomes[1], Exception)
    assert outcomes[2].outcome is CallbackOutcome.COMPLETED
    assert outcomes[3].outcome is CallbackOutcome.DUPLICATE
    with engine.connect() as conn:
        stored = dict(conn.execute(select(rs.c.item_id, rs.c.payload)).all())
        status_b = conn.execute(select(ws.c.status).where(ws.c.id == b.state_id)).scalar_one()
    assert stored == {a.item_id: {"a": 1}, c.item_id: {"c": 1}}
    assert status_b == "IN_PROGRESS"


def test_unstorable_payload_in_a_group_is_a_data_error_for_that_callback_only(
    engine: Engine, sent: list[Claim]
) -> None:
    """Postgres refuses ``\\u0000`` in JSONB (the endpoint refuses it before the database; a
    direct caller of the writer gets the DataError), the rest of the group lands."""
    from sqlalchemy.exc import DataError

    from enrichflow.api.callbacks import CallbackWriter

    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores \\u0000 in JSON text")
    writer = CallbackWriter(engine, lambda: None)
    try:
        outcomes = _one_group(
            writer,
            [(sent[0].state_id, 1, {"x": "a\x00b"}), (sent[1].state_id, 1, {"ok": 1})],
        )
    finally:
        writer.close()
    assert isinstance(outcomes[0], DataError)
    assert outcomes[1].outcome is CallbackOutcome.COMPLETED


def test_writer_reconnects_after_its_connection_broke(engine: Engine, sent: list[Claim]) -> None:
    from enrichflow.api.callbacks import CallbackWriter

    writer = CallbackWriter(engine, lambda: None)
    try:
        assert writer.submit(sent[0].state_id, 1, {"n": 0}).result(30).outcome.value == (
            "completed"
        )
        assert writer._conn is not None
        writer._conn.invalidate()  # as after a server restart
        assert writer.submit(sent[1].state_id, 1, {"n": 1}).result(30).outcome.value == (
            "completed"
        )
    finally:
        writer.close()


def test_coalesced_wake_folds_calls_and_never_drops_the_last() -> None:
    import time

    from enrichflow.api.server import CoalescedWake

    calls: list[float] = []
    wake = CoalescedWake(lambda: calls.append(time.monotonic()), interval=0.2)
    for _ in range(50):
        wake()
    assert len(calls) == 1  # the first at once, the rest folded into one deferred call
    time.sleep(0.4)
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.19
    wake.cancel()
