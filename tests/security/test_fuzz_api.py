"""Hostile requests against the real app (uvicorn on loopback, SQLite and Postgres): generated
callback tokens and bodies for ``/callbacks/{token}``, and schemathesis cases, valid and
invalid, for every ``/api/*`` operation over a database holding a client, an upload, a batch and
a pipeline. No answer may be a 5xx."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from sqlalchemy import Engine

from enrichflow.api.app import create_app
from enrichflow.config import Settings
from enrichflow.db.engine import now_ms
from enrichflow.db.states import StepOutcome, outcomes_record, states_claim
from enrichflow.states import Status
from enrichflow.webhooks.signing import callback_token
from handlers_for_tests import make_batch
from webhooks.webhook_servers import UvicornThread

SECRET = "fuzz-test-secret-0123456789abcdef0123"
TOKEN = "fuzz-test-api-token-0123456789abcdef"
CLAY_STEP = "enrich_company_via_waterfall_in_clay"
FUZZ = settings(
    max_examples=50,
    deadline=None,
    phases=[Phase.generate],
    suppress_health_check=list(HealthCheck),
    database=None,
)


class Served:
    def __init__(self, url: str, states: list[tuple[int, int]], ids: dict[str, int]) -> None:
        self.url, self.states, self.ids = url, states, ids


@pytest.fixture
def served(engine: Engine, tmp_path: Path) -> Iterator[Served]:
    batch_id = make_batch(engine, tmp_path, [CLAY_STEP, "noop"], n=4)
    with engine.begin() as conn:
        claims = states_claim(conn, batch_id, 0, 10, 60_000, now_ms(), start=True)
        outcomes_record(
            conn,
            [StepOutcome(c, Status.IN_PROGRESS, deadline_ms=now_ms() + 10**7) for c in claims],
            now_ms(),
        )
    config = Settings(  # type: ignore[call-arg]
        _env_file=None, secret_key=SECRET, api_token=TOKEN, callback_max_bytes=64 * 1024
    )
    with (
        UvicornThread(create_app(engine, config)) as server,
        httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as api,
    ):
        batch = api.get(f"/api/batches/{batch_id}").json()
        client_id = api.get("/api/clients").json()[0]["id"]
        pipeline = api.post(
            "/api/pipelines",
            json={
                "client_id": client_id,
                "workstream": "apollo_scrape",
                "name": "fuzzed",
                "steps": ["noop"],
            },
        )
        assert pipeline.status_code == 201, pipeline.text
        ids = {
            "batch_id": batch_id,
            "client_id": client_id,
            "upload_id": int(batch["upload_id"]),
            "pipeline_id": int(pipeline.json()["id"]),
        }
        yield Served(server.url, [(c.state_id, c.attempt) for c in claims], ids)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
RAW_TEXT = st.sampled_from(
    [
        '{"a": NaN}',
        '{"a": Infinity}',
        '{"a": 1e400}',
        '{"a": -1e400}',
        '{"a": 123456789012345678901234567890}',
        '{"a": "\\u0000"}',
        '{"a": "\\ud800"}',
        '{"\\ud800": 1}',
        '{"a": 1, "a": 2}',
        "[]",
        '"text"',
        "",
        "{",
        '{"a": "' + "x" * 70_000 + '"}',
    ]
)


@st.composite
def callback_bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["json", "deep", "raw", "bytes"]))
    if kind == "json":
        value = draw(st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=6))
        return json.dumps(value, ensure_ascii=draw(st.booleans())).encode()
    if kind == "deep":
        return json.dumps({"d": nested(draw(st.integers(1, 1500)))}).encode()
    if kind == "raw":
        return draw(RAW_TEXT).encode("utf-8", "surrogatepass")
    return draw(st.binary(max_size=200))


def test_fuzzed_callbacks_never_answer_5xx(served: Served) -> None:
    answers: list[int] = []
    failures: list[str] = []

    @FUZZ
    @given(
        which=st.integers(0, 10),
        attempt_shift=st.sampled_from([0, 0, 0, 1, -1]),
        garbage=st.text(max_size=40),
        body=callback_bodies(),
        content_type=st.sampled_from(["application/json", "text/plain", "", "application/x"]),
    )
    def check(which: int, attempt_shift: int, garbage: str, body: bytes, content_type: str) -> None:
        if which < len(served.states):
            state_id, attempt = served.states[which]
            token = callback_token(state_id, attempt + attempt_shift, SECRET)
        elif which == 10:
            token = callback_token(10**12, 1, SECRET)
        else:
            token = quote(garbage, safe="") or "x"
        headers = {"content-type": content_type} if content_type else {}
        with httpx.Client(timeout=30) as http:
            response = http.post(f"{served.url}/callbacks/{token}", content=body, headers=headers)
        answers.append(response.status_code)
        if response.status_code >= 500:
            failures.append(f"{response.status_code} {response.text[:200]} for {body[:120]!r}")

    check()
    assert failures == []
    assert {200, 401, 422} <= set(answers), sorted(set(answers))


def _fuzz(strategy: Any, label: str, base: str, failures: list[str], answers: list[int]) -> Any:
    """A hypothesis test calling one operation with generated cases; 5xx are recorded."""

    @settings(
        max_examples=6,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(strategy)
    def check(case: Any) -> None:
        response = case.call(base_url=base, headers={"authorization": f"Bearer {TOKEN}"})
        answers.append(response.status_code)
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:200]}")

    return check


def test_fuzzed_api_operations_never_answer_5xx(served: Served) -> None:
    import schemathesis  # a test dependency: a missing one fails, never skips
    from schemathesis import GenerationMode

    with httpx.Client(
        base_url=served.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
    ) as api:
        raw = api.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    failures: list[str] = []
    answers: list[int] = []
    started = time.monotonic()
    operations = [op.ok() for op in schema.get_all_operations()]
    assert {"/api/uploads", "/api/batches/{batch_id}/retry"} <= {op.path for op in operations}
    for operation in operations:
        known = {
            name: value for name, value in served.ids.items() if f"{{{name}}}" in operation.path
        }
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(mode, path_parameters=known or None)
            label = f"{operation.label} ({mode.value})"
            try:
                _fuzz(strategy, label, served.url, failures, answers)()
            except Unsatisfiable:
                # an operation without parameters or body has no invalid case to send
                assert mode is GenerationMode.NEGATIVE, label
    assert time.monotonic() - started < 120
    assert failures == []
    assert any(code < 300 for code in answers) and any(code == 422 for code in answers)
