"""ASYNC (Clay) steps end to end on SQLite and Postgres: the real conductor and local
executor, the callback app and a Clay stand-in (the sandbox, or a scripted server), all
served on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, delete, func, select, update

from enrichflow.api.app import create_app
from enrichflow.catalog.assignments import parse_assignments
from enrichflow.catalog.client_configs import client_config_set
from enrichflow.conductor.loop import Conductor
from enrichflow.config import Settings
from enrichflow.db.models import (
    Batch,
    BatchItem,
    ClientWorkflowConfig,
    EnrichmentRegistry,
    EnrichmentResult,
    StepDedupe,
    WorkflowState,
)
from enrichflow.errors import ConfigError
from enrichflow.executors.local import LocalExecutor
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.seed import APOLLO
from enrichflow.services import build_services
from enrichflow.webhooks.ratelimit import reset_limits
from enrichflow.webhooks.sandbox import create_sandbox_app
from webhooks.webhook_servers import Recorded, Reply, ScriptedServer, UvicornThread

SECRET = "pipeline-test-secret-of-32-bytes-or-more"
COMPANY = "enrich_company_via_waterfall_in_clay"
PERSON = "enrich_person_via_waterfall_in_clay"
ws = WorkflowState.__table__
rs = EnrichmentResult.__table__
# Launch's preflight needs a public URL once ASYNC steps are used; these tests' callback
# receivers listen on loopback, which the preflight accepts when it is set explicitly.
LOOPBACK = Settings(_env_file=None, public_url="http://127.0.0.1:8000")  # type: ignore[call-arg]


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.02)


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    reset_limits()
    yield
    reset_limits()


class Service:
    """The callback app on loopback plus a local executor whose handlers call back to it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.settings = Settings(_env_file=None, secret_key=SECRET)  # type: ignore[call-arg]
        self.executor: LocalExecutor | None = None
        self.http = httpx.Client(timeout=10)
        app = create_app(engine, self.settings, lambda: self.executor and self.executor.wake())
        self.server = UvicornThread(app)
        services = build_services(engine, self.settings, self.server.url)
        self.executor = LocalExecutor(engine, 4, {**services, "http_client": self.http})

    def drive(self, batch_id: int, timeout: float = 60) -> None:
        """Run the conductor until the batch is finished (failing instead of hanging)."""
        assert self.executor is not None
        conductor = Conductor(self.engine, self.executor, chunk_size=50, poll_interval=0.02)
        errors: list[BaseException] = []

        def target() -> None:
            try:
                conductor.run_until_finished([batch_id])
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        thread.join(timeout)
        assert not thread.is_alive(), f"batch {batch_id} did not finish within {timeout} s"
        assert errors == [] and self.executor.failures == []


@pytest.fixture
def service(engine: Engine) -> Iterator[Service]:
    svc = Service(engine)
    with svc.server:
        try:
            yield svc
        finally:
            assert svc.executor is not None
            svc.executor.close()
            svc.http.close()


@pytest.fixture
def sandbox() -> Iterator[UvicornThread]:
    with UvicornThread(create_sandbox_app(delay_seconds=0.05)) as server:
        yield server


def tune(engine: Engine, slug: str, **config: Any) -> None:
    """Registry config for the next launches (a launch snapshots it)."""
    with engine.begin() as conn:
        current = conn.execute(
            select(EnrichmentRegistry.config).where(
                EnrichmentRegistry.slug == slug, EnrichmentRegistry.workstream_slug == APOLLO
            )
        ).scalar_one()
        conn.execute(
            update(EnrichmentRegistry)
            .where(EnrichmentRegistry.slug == slug, EnrichmentRegistry.workstream_slug == APOLLO)
            .values(config={**current, "backoff_base_seconds": 0.05, **config})
        )


def set_webhook(engine: Engine, client: str, slug: str, url: str) -> None:
    with engine.begin() as conn:
        client_config_set(conn, client, slug, APOLLO, parse_assignments([f"webhook_url={url}"]))


def start(
    engine: Engine,
    tmp_path: Path,
    steps: list[str],
    rows: list[str],
    client: str = "acme",
    settings: Settings = LOOPBACK,
) -> int:
    path = tmp_path / f"leads_{client}.csv"
    lines = ["First Name,Last Name,Email,Company,Website,Title", *rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest_csv(engine, path)
    return launch(
        engine, client, APOLLO, report.upload_id, steps=steps, create_client=True,
        settings=settings,
    )  # fmt: skip


def people(n: int) -> list[str]:
    return [
        f"First{i},Last{i},p{i}@example{i}.com,Company {i},https://example{i}.com,CEO"
        for i in range(n)
    ]


def states(engine: Engine, batch_id: int, step: str | None = None) -> list[Any]:
    query = select(ws).where(ws.c.batch_id == batch_id).order_by(ws.c.item_id, ws.c.step_index)
    if step is not None:
        query = query.where(ws.c.step_name == step)
    with engine.connect() as conn:
        return list(conn.execute(query))


def results_of(engine: Engine, batch_id: int, step: str) -> dict[int, Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(rs).where(rs.c.batch_id == batch_id, rs.c.step_name == step))
        return {r.item_id: r.payload for r in rows}


def batch_status(engine: Engine, batch_id: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(Batch.status).where(Batch.id == batch_id)).scalar_one())


def test_full_batch_through_sandbox_company_and_person(
    engine: Engine, tmp_path: Path, service: Service, sandbox: UvicornThread
) -> None:
    set_webhook(engine, "acme", COMPANY, f"{sandbox.url}/webhook/company-table")
    set_webhook(engine, "acme", PERSON, f"{sandbox.url}/webhook/person-table")
    batch_id = start(engine, tmp_path, ["normalize_company_name", COMPANY, PERSON], people(6))
    service.drive(batch_id)
    assert batch_status(engine, batch_id) == "COMPLETED"
    all_states = states(engine, batch_id)
    assert len(all_states) == 18
    assert {s.status for s in all_states} == {"COMPLETED"}
    assert all(s.advanced_at is not None for s in all_states)
    company = results_of(engine, batch_id, COMPANY)
    person = results_of(engine, batch_id, PERSON)
    assert len(company) == len(person) == 6
    for item_id, payload in company.items():
        assert payload["sandbox"] is True and payload["item_id"] == item_id
        assert payload["table"] == "company-table" and "employees" in payload
    for item_id, payload in person.items():
        assert payload["item_id"] == item_id and payload["table"] == "person-table"
        assert payload["positions"][0]["title"] == "CEO"
    with httpx.Client() as client:
        assert client.get(f"{sandbox.url}/stats").json()["called_back"] == 12


def test_5xx_then_success_retries_and_completes(
    engine: Engine, tmp_path: Path, service: Service
) -> None:
    def callback_later(request: Recorded) -> Reply:
        body = request.json()
        threading.Timer(
            0.05, lambda: httpx.post(body["callback_url"], json={"ok": body["item_id"]})
        ).start()
        return Reply(200, {"status": "accepted"})

    tune(engine, COMPANY, max_attempts=3)
    with ScriptedServer(
        [Reply(500), Reply(503, headers={"Retry-After": "0"})], callback_later
    ) as clay:
        set_webhook(engine, "acme", COMPANY, f"{clay.url}/hook")
        batch_id = start(engine, tmp_path, [COMPANY], people(1))
        service.drive(batch_id)
        assert len(clay.requests) == 3
    (state,) = states(engine, batch_id)
    assert (state.status, state.attempt) == ("COMPLETED", 3)
    assert results_of(engine, batch_id, COMPANY) == {state.item_id: {"ok": state.item_id}}


def test_400_fails_without_retry(engine: Engine, tmp_path: Path, service: Service) -> None:
    tune(engine, COMPANY, max_attempts=3)
    with ScriptedServer([Reply(400, {"error": "unknown column"})]) as clay:
        set_webhook(engine, "acme", COMPANY, f"{clay.url}/hook")
        batch_id = start(engine, tmp_path, [COMPANY], people(1))
        service.drive(batch_id)
        assert len(clay.requests) == 1
    (state,) = states(engine, batch_id)
    assert (state.status, state.attempt) == ("FAILED", 1)
    assert "answered HTTP 400" in state.error and "unknown column" in state.error
    assert "/hook" not in state.error
    assert results_of(engine, batch_id, COMPANY) == {}
    assert batch_status(engine, batch_id) == "COMPLETED_WITH_ERRORS"


def test_no_config_refuses_the_launch_naming_client_workflow_workstream(
    engine: Engine, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as refused:
        start(engine, tmp_path, [COMPANY], people(2), client="initech")
    message = str(refused.value)
    assert (
        f"async configs: client 'initech' has no webhook_url for {COMPANY} in {APOLLO}" in message
    )
    assert f"enrichflow config set initech {COMPANY} webhook_url=<url>" in message
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Batch)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(ws)).scalar_one() == 0


def test_config_deleted_after_launch_fails_the_items_naming_it(
    engine: Engine, tmp_path: Path, service: Service
) -> None:
    """The preflight cannot see the future: the handler still fails items whose config went."""
    set_webhook(engine, "initech", COMPANY, "https://hook.example/initech")
    # a public webhook needs a public callback base to be launched
    public = Settings(_env_file=None, public_url="https://flow.example.com")  # type: ignore[call-arg]
    batch_id = start(engine, tmp_path, [COMPANY], people(2), client="initech", settings=public)
    with engine.begin() as conn:
        conn.execute(delete(ClientWorkflowConfig))
    service.drive(batch_id)
    found = states(engine, batch_id)
    assert [(s.status, s.attempt) for s in found] == [("FAILED", 1), ("FAILED", 1)]
    for s in found:
        assert f"no webhook_url configured for client 'initech', workflow '{COMPANY}'" in s.error
        assert f"workstream '{APOLLO}'" in s.error
        assert f"enrichflow config set initech {COMPANY} --workstream {APOLLO}" in s.error


def test_dedupe_by_company_domain_sends_once_per_company(
    engine: Engine, tmp_path: Path, service: Service, sandbox: UvicornThread
) -> None:
    tune(engine, COMPANY, dedupe_by="company_domain")
    set_webhook(engine, "acme", COMPANY, f"{sandbox.url}/webhook/companies")
    rows = [
        f"P{c}{i},L{i},p{c}{i}@co{c}.com,Co {c},https://co{c}.com,CEO"
        for i in range(4)
        for c in range(3)
    ]
    rows.append("Solo,Person,solo@nowhere.org,Nameless,,CEO")  # no key: sends on its own
    batch_id = start(engine, tmp_path, [COMPANY], rows)
    service.drive(batch_id)
    with httpx.Client() as client:
        stats = client.get(f"{sandbox.url}/stats").json()
    assert stats["accepted"] == 4  # three companies and the row without a domain
    found = states(engine, batch_id)
    assert {s.status for s in found} == {"COMPLETED"} and len(found) == 13
    payloads = results_of(engine, batch_id, COMPANY)
    assert len(payloads) == 13
    with engine.connect() as conn:
        leader_ids = set(
            conn.execute(
                select(StepDedupe.leader_state_id).where(StepDedupe.batch_id == batch_id)
            ).scalars()
        )
        domain = dict(
            conn.execute(
                select(BatchItem.id, BatchItem.company_domain).where(BatchItem.batch_id == batch_id)
            ).all()
        )
    assert len(leader_ids) == 3
    leader_of = {domain[s.item_id]: s.item_id for s in found if s.id in leader_ids}
    for s in found:
        if domain[s.item_id] is None:
            assert payloads[s.item_id]["company_name"] == "Nameless"
        else:  # every follower holds exactly its leader's payload
            assert payloads[s.item_id] == payloads[leader_of[domain[s.item_id]]]
    assert len({str(p) for p in payloads.values()}) == 4


def test_late_callback_after_failed_completes_the_state(
    engine: Engine, tmp_path: Path, service: Service
) -> None:
    tune(engine, COMPANY, max_attempts=1, callback_timeout_seconds=0.3)
    with UvicornThread(create_sandbox_app(delay_seconds=1.5)) as slow:
        set_webhook(engine, "acme", COMPANY, f"{slow.url}/webhook/late")
        batch_id = start(engine, tmp_path, [COMPANY, "noop"], people(1))
        service.drive(batch_id)
        (state,) = states(engine, batch_id)
        assert state.status == "FAILED"
        assert state.error.startswith("callback not received within")
        assert batch_status(engine, batch_id) == "COMPLETED_WITH_ERRORS"
        wait_until(
            lambda: states(engine, batch_id, COMPANY)[0].status == "COMPLETED",
            what="the late callback",
        )
    assert results_of(engine, batch_id, COMPANY)[state.item_id]["table"] == "late"
    assert batch_status(engine, batch_id) == "RUNNING"  # re-opened for the next step
    service.drive(batch_id)
    assert [s.status for s in states(engine, batch_id)] == ["COMPLETED", "COMPLETED"]
    assert batch_status(engine, batch_id) == "COMPLETED"


def test_callback_before_the_senders_write(
    engine: Engine, tmp_path: Path, service: Service
) -> None:
    """The Clay stand-in calls back before answering the send: the state is COMPLETED by the
    callback and the runner's later IN_PROGRESS write is dropped as stale."""
    answers: list[int] = []

    def callback_first(request: Recorded) -> Reply:
        body = request.json()
        answers.append(httpx.post(body["callback_url"], json={"fast": True}).status_code)
        return Reply(200, {"status": "accepted"})

    with ScriptedServer(responder=callback_first) as clay:
        set_webhook(engine, "acme", COMPANY, f"{clay.url}/hook")
        batch_id = start(engine, tmp_path, [COMPANY, "noop"], people(2))
        service.drive(batch_id)
    assert answers == [200, 200]
    found = states(engine, batch_id)
    assert [(s.step_name, s.status) for s in found] == [
        (COMPANY, "COMPLETED"),
        ("noop", "COMPLETED"),
        (COMPANY, "COMPLETED"),
        ("noop", "COMPLETED"),
    ]
    for s in found:
        if s.step_name == COMPANY:
            assert s.attempt == 1 and s.meta is None  # the Deferred write never landed
    assert list(results_of(engine, batch_id, COMPANY).values()) == [{"fast": True}] * 2


def test_dedupe_followers_fail_with_their_leaders_error(
    engine: Engine, tmp_path: Path, service: Service
) -> None:
    tune(engine, COMPANY, dedupe_by="company_domain", max_attempts=1)
    with ScriptedServer([Reply(400, {"error": "table is archived"})]) as clay:
        set_webhook(engine, "acme", COMPANY, f"{clay.url}/hook")
        rows = [f"P{i},L{i},p{i}@same.com,Same,https://same.com,CEO" for i in range(3)]
        batch_id = start(engine, tmp_path, [COMPANY], rows)
        service.drive(batch_id)
        assert len(clay.requests) == 1
    found = states(engine, batch_id)
    assert [s.status for s in found] == ["FAILED"] * 3
    leader, *followers = found
    assert "table is archived" in leader.error
    for f in followers:
        assert f.error.startswith(f"company-level duplicate: waited on state {leader.id}")
        assert "table is archived" in f.error
    assert results_of(engine, batch_id, COMPANY) == {}
