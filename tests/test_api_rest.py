"""The JSON API on SQLite and Postgres: clients, workstreams, workflows of any loaded handler,
pipelines, configs (redacted), uploads with their inspection, launch, batch detail, retry and
export; plus a schemathesis run over the OpenAPI schema finding no server error."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from sqlalchemy import Engine, select

from enrichflow.api.app import create_app
from enrichflow.config import Settings
from enrichflow.db.models import WorkflowState
from enrichflow.states import Status
from webhooks.webhook_servers import UvicornThread

TOKEN = "rest-test-token-abcdef0123456789"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "apollo_people_sample.csv"
CLAY = "enrich_company_via_waterfall_in_clay"
SECRET_URL = "https://api.clay.com/v3/sources/webhook/pull-in-data-from-a-webhook-SECRET123"


@pytest.fixture
def api(engine: Engine) -> Iterator[httpx.Client]:
    settings = Settings(
        _env_file=None, secret_key="rest-secret-of-at-least-32-bytes-long", api_token=TOKEN
    )  # type: ignore[call-arg]
    with (
        UvicornThread(create_app(engine, settings)) as server,
        httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as client,
    ):
        yield client


def test_api_crud(api: httpx.Client, engine: Engine) -> None:
    made = api.post("/api/clients", json={"name": "acme"})
    assert made.status_code == 201, made.text
    client_id = made.json()["id"]
    assert api.post("/api/clients", json={"name": "acme"}).status_code == 422
    assert api.post("/api/clients", json={"name": ""}).status_code == 422
    assert [c["name"] for c in api.get("/api/clients").json()] == ["acme"]
    assert api.get("/api/clients/999999").status_code == 404

    workflows = api.get("/api/workflows").json()
    assert {w["slug"] for w in workflows} >= {"normalize_company_name", CLAY}
    new = api.post(
        "/api/workflows",
        json={
            "slug": "enrich_tech_in_clay",
            "workstream": "apollo_scrape",
            "name": "Tech stack via Clay",
            "config": {"concurrency": 5},
        },
    )
    assert new.status_code == 201, new.text
    assert new.json()["handler"] == "webhook" and new.json()["type"] == "ASYNC"
    again = api.post("/api/workflows", json=json.loads(new.request.read()))
    assert again.status_code == 422 and "already exists" in again.text

    bad = api.post(
        "/api/pipelines",
        json={
            "client_id": client_id,
            "workstream": "apollo_scrape",
            "name": "p",
            "steps": ["no_such_step"],
        },
    )
    assert bad.status_code == 422 and "no_such_step" in bad.json()["detail"]
    saved = api.post(
        "/api/pipelines",
        json={
            "client_id": client_id,
            "workstream": "apollo_scrape",
            "name": "names",
            "steps": ["normalize_company_name", "normalize_company_domain"],
        },
    )
    assert saved.status_code == 201, saved.text
    pipeline_id = saved.json()["id"]
    assert api.get(f"/api/pipelines?client_id={client_id}").json()[0]["name"] == "names"

    config = api.put(
        "/api/configs",
        json={
            "client_id": client_id,
            "workflow": CLAY,
            "workstream": "apollo_scrape",
            "set": {"webhook_url": SECRET_URL, "auth_token": "tok-SECRET456"},
        },
    )
    assert config.status_code == 200, config.text
    listed = api.get(f"/api/configs?client_id={client_id}")
    for answer in (config, listed, api.get(f"/api/clients/{client_id}")):
        assert "SECRET" not in answer.text
    assert listed.json()[0]["config"]["auth_token"] == "…"

    with EXAMPLE.open("rb") as handle:
        upload = api.post(
            "/api/uploads",
            data={"client_id": str(client_id)},
            files={"file": ("leads.csv", handle, "text/csv")},
        )
    assert upload.status_code == 201, upload.text
    detail = upload.json()
    assert detail["row_count"] > 0 and detail["headers"] and detail["first_rows"]
    assert detail["column_map"]["company_name"]

    batch = api.post(
        "/api/batches",
        json={"upload_id": detail["id"], "workstream": "apollo_scrape", "pipeline": "names"},
    )
    assert batch.status_code == 201, batch.text
    batch_id = batch.json()["id"]
    assert batch.json()["earlier_batches"] == []
    got = api.get(f"/api/batches/{batch_id}").json()
    assert got["status"] == "RUNNING" and got["item_count"] == detail["row_count"]
    assert [s["name"] for s in got["steps"]] == [
        "normalize_company_name",
        "normalize_company_domain",
    ]
    assert api.get(f"/api/batches?client_id={client_id}").json()[0]["id"] == batch_id

    # the same file uploaded again: its launch names the batch that already ran over it
    with EXAMPLE.open("rb") as handle:
        again = api.post(
            "/api/uploads",
            data={"client_id": str(client_id)},
            files={"file": ("again.csv", handle, "text/csv")},
        )
    relaunch = api.post(
        "/api/batches",
        json={"upload_id": again.json()["id"], "workstream": "apollo_scrape", "pipeline": "names"},
    )
    assert relaunch.status_code == 201, relaunch.text
    assert relaunch.json()["earlier_batches"] == [batch_id]

    # no conductor here: fail one state by hand and retry it through the API
    with engine.begin() as conn:
        state_id = conn.execute(
            select(WorkflowState.id).where(WorkflowState.batch_id == batch_id).limit(1)
        ).scalar_one()
        conn.execute(
            WorkflowState.__table__.update()
            .where(WorkflowState.id == state_id)
            .values(status=Status.FAILED.value, error="boom")
        )
    failed = api.get(f"/api/batches/{batch_id}").json()["failed"]
    assert [f["error"] for f in failed] == ["boom"]
    retried = api.post(f"/api/batches/{batch_id}/retry", json={"item_id": failed[0]["item_id"]})
    assert retried.json() == {"moved": 1}
    with engine.connect() as conn:
        status = conn.execute(
            select(WorkflowState.status).where(WorkflowState.id == state_id)
        ).scalar_one()
    assert status == Status.PENDING.value

    export = api.get(f"/api/batches/{batch_id}/export?format=jsonl")
    assert export.status_code == 200
    rows = [json.loads(line) for line in export.text.splitlines()]
    assert len(rows) == detail["row_count"]
    csv_export = api.get(f"/api/batches/{batch_id}/export")
    assert csv_export.text.startswith("item_id,")
    assert api.get(f"/api/batches/{batch_id}/export?format=xml").status_code == 422
    every = api.get(f"/api/batches/{batch_id}/export?format=jsonl&all_columns=1")
    first = json.loads(every.text.splitlines()[0])
    assert first["original.Company Name"] == "Redwillow Studios"
    assert list(first)[-1] == "original.Apollo Account Id"
    companies = api.get(f"/api/batches/{batch_id}/export?table=companies")
    assert companies.text.startswith("id,company_key,name,domain,")
    assert 'filename="batch_' in companies.headers["content-disposition"]
    assert api.get(f"/api/batches/{batch_id}/export?table=deals").status_code == 422
    mixed = api.get(f"/api/batches/{batch_id}/export?table=people&all_columns=1")
    assert mixed.status_code == 422 and "leads export" in mixed.text

    assert api.delete(f"/api/pipelines/{pipeline_id}").status_code == 204
    assert api.delete(f"/api/pipelines/{pipeline_id}").status_code == 404


def test_api_sets_up_workstreams_and_workflows_like_the_cli(api: httpx.Client) -> None:
    made = api.post("/api/workstreams", json={"slug": "contacts", "description": "CRM"})
    assert made.status_code == 201, made.text
    assert made.json() == {"slug": "contacts", "name": "contacts", "description": "CRM"}
    again = api.post("/api/workstreams", json={"slug": "contacts"})
    assert again.status_code == 422 and "already exists" in again.text
    assert api.post("/api/workstreams", json={"slug": "Contacts"}).status_code == 422
    assert "contacts" in {w["slug"] for w in api.get("/api/workstreams").json()}

    handlers = {h["name"]: h["types"] for h in api.get("/api/handlers").json()}
    assert handlers["webhook"] == ["ASYNC"] and handlers["noop"] == ["SYNC"]
    assert handlers["title_length"] == ["ASYNC", "SYNC"]

    added = api.post(
        "/api/workflows",
        json={"slug": "title_length", "workstream": "contacts", "handler": "title_length"},
    )
    assert added.status_code == 201, added.text
    assert {k: added.json()[k] for k in ("name", "type", "handler")} == {
        "name": "Title length",
        "type": "SYNC",
        "handler": "title_length",
    }
    http = api.post(
        "/api/workflows",
        json={
            "slug": "firmographics",
            "workstream": "contacts",
            "handler": "http",
            "config": {
                "url": "https://api.example.com/firms/{company_domain}",
                "headers": {"x-api-key": "{secret:api_key}"},
                "body": {"domain": "{company_domain}", "tags": ["a", 1]},
                "keep": ["data.employees"],
            },
        },
    )
    assert http.status_code == 201, http.text
    assert http.json()["type"] == "SYNC"
    assert http.json()["config"]["body"] == {"domain": "{company_domain}", "tags": ["a", 1]}
    no_url = api.post(
        "/api/workflows", json={"slug": "no_url", "workstream": "contacts", "handler": "http"}
    )
    assert no_url.status_code == 422 and "option 'url' is required" in no_url.text
    unknown = api.post(
        "/api/workflows",
        json={"slug": "title_words", "workstream": "contacts", "handler": "title_words"},
    )
    assert unknown.status_code == 422
    loaded = unknown.json()["detail"].split("(loaded: ", 1)[1].split(")", 1)[0].split(", ")
    assert loaded == sorted(handlers)
    refusals = {
        "mode": ({"handler": "webhook", "mode": "sync"}, "can only be ASYNC, not SYNC"),
        "option": (
            {"handler": "noop", "config": {"max_attempts": 0}},
            "config 'max_attempts' must be a positive number, got 0",
        ),
        "workstream": ({"handler": "noop", "workstream": "nowhere"}, "unknown workstream"),
    }
    for slug, (body, expected) in refusals.items():
        refused = api.post("/api/workflows", json={"slug": slug, "workstream": "contacts", **body})
        assert refused.status_code == 422 and expected in refused.json()["detail"], refused.text

    client_id = api.post("/api/clients", json={"name": "acme"}).json()["id"]
    saved = api.post(
        "/api/pipelines",
        json={
            "client_id": client_id,
            "workstream": "contacts",
            "name": "t",
            "steps": ["title_length"],
        },
    )
    assert saved.status_code == 201, saved.text
    blocked = api.delete("/api/workflows/contacts/title_length")
    assert blocked.status_code == 422 and "(acme: t)" in blocked.json()["detail"]
    built_in = api.delete("/api/workflows/apollo_scrape/noop")
    assert built_in.status_code == 422 and "built in" in built_in.json()["detail"]
    assert api.delete(f"/api/pipelines/{saved.json()['id']}").status_code == 204
    assert api.delete("/api/workflows/contacts/title_length").status_code == 204
    assert api.delete("/api/workflows/contacts/title_length").status_code == 404


def _fuzz(strategy: Any, label: str, base: str, failures: list[str], calls: list[int]) -> Any:
    """A hypothesis test calling one operation with generated cases; 5xx are recorded."""

    @settings(
        max_examples=15,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(strategy)
    def check(case: Any) -> None:
        response = case.call(base_url=base, headers={"authorization": f"Bearer {TOKEN}"})
        calls.append(response.status_code)
        if response.status_code >= 500:
            failures.append(f"{label}: {response.status_code} {response.text[:200]}")

    return check


def test_schemathesis_finds_no_server_error(api: httpx.Client, engine: Engine) -> None:
    import schemathesis  # a test dependency: a missing one fails, never skips

    client_id = api.post("/api/clients", json={"name": "fuzz"}).json()["id"]
    assert client_id
    raw = api.get("/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    base = str(api.base_url)
    failures: list[str] = []
    calls: list[int] = []
    started = time.monotonic()
    for operation in schema.get_all_operations():
        op = operation.ok()
        _fuzz(op.as_strategy(), op.label, base, failures, calls)()
    assert time.monotonic() - started < 240
    assert failures == []
    assert len(calls) > 100 and any(code < 300 for code in calls), sorted(set(calls))
