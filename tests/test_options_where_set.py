"""Options are checked where they are set, by the one validator the sender uses: the CLI's
``workflow set`` / ``config set``, the REST API, and ``retry --refresh-options``, which copies a
corrected option into a running batch (SQLite and Postgres; the last test sends through the real
sender and receiver to the sandbox standing in for Clay, which cannot run here)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from enrichflow.api.app import create_app
from enrichflow.cli import app
from enrichflow.config import Settings
from enrichflow.db.models import Batch, BatchStep, ClientWorkflowConfig, EnrichmentRegistry
from enrichflow.webhooks.ratelimit import reset_limits
from enrichflow.webhooks.sandbox import create_sandbox_app
from test_async_pipeline import COMPANY, Service, batch_status, people, start, states
from webhooks.webhook_servers import UvicornThread

TOKEN = "options-test-token-0123456789abcdef"
HOOK = "https://api.clay.com/v3/sources/webhook/pull-in-data-SECRET"


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    reset_limits()
    yield
    reset_limits()


def invoke(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--database-url", db_url])


def options(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                select(EnrichmentRegistry.config).where(EnrichmentRegistry.slug == COMPANY)
            ).scalar_one()
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["dedupe_by=3"], "workflow option 'dedupe_by' must be a field name"),
        (["max_submissions=0"], "workflow option 'max_submissions' must be a number from 1"),
        (["timeout_seconds=2.5e12"], "got 2500000000000.0 (at most 1,000,000,000)"),
        (["colour=blue"], f"workflow '{COMPANY}' in workstream 'apollo_scrape': unknown option "),
        (["auth_token=tok"], "a client's setting (a secret)"),
    ],
)
def test_workflow_set_refuses_what_the_sender_would_fail_on(
    db_url: str, engine: Engine, args: list[str], message: str
) -> None:
    before = options(engine)
    result = invoke(db_url, "workflow", "set", COMPANY, *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert options(engine) == before


def test_fields_given_once_on_the_command_line_is_a_list(db_url: str, engine: Engine) -> None:
    result = invoke(db_url, "workflow", "set", COMPANY, "fields=Company")
    assert result.exit_code == 0, result.output
    assert options(engine)["fields"] == ["Company"]
    assert invoke(db_url, "workflow", "set", COMPANY, "fields+=2024").exit_code == 0
    assert options(engine)["fields"] == ["Company", "2024"]  # names stay text


def test_config_set_refuses_a_bad_url_in_a_list(db_url: str, engine: Engine) -> None:
    assert invoke(db_url, "config", "set", "acme", COMPANY, f"webhook_url={HOOK}").exit_code == 0
    with engine.begin() as conn:  # what an older version let in
        conn.execute(update(ClientWorkflowConfig).values(config={"webhook_url": [HOOK, 42]}))
    result = invoke(db_url, "config", "set", "acme", COMPANY, "auth_token=tok")
    assert result.exit_code == 2, result.output
    assert "webhook_url must be a URL or a list of URLs, got 42" in " ".join(result.output.split())
    assert "SECRET" not in result.output


@pytest.fixture
def api(engine: Engine) -> Iterator[httpx.Client]:
    settings = Settings(
        _env_file=None, secret_key="options-secret-of-at-least-32-bytes-long", api_token=TOKEN
    )  # type: ignore[call-arg]
    with (
        UvicornThread(create_app(engine, settings)) as server,
        httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as client,
    ):
        yield client


def test_the_api_refuses_unknown_keys_and_bad_options_with_422(
    api: httpx.Client, engine: Engine
) -> None:
    client_id = api.post("/api/clients", json={"name": "acme"}).json()["id"]
    target = {"client_id": client_id, "workflow": COMPANY, "workstream": "apollo_scrape"}

    # a key of the body the API does not know was dropped, answering 200 and storing nothing
    typo = api.put("/api/configs", json={**target, "webhook_url": HOOK})
    assert typo.status_code == 422 and "webhook_url" in typo.text
    assert "SECRET" not in typo.text
    foreign = api.put("/api/configs", json={**target, "set": {"dedupe_by": "company_domain"}})
    assert foreign.status_code == 422
    assert "dedupe_by: not a client setting" in foreign.json()["detail"]
    assert api.get(f"/api/configs?client_id={client_id}").json() == []

    path = f"/api/workflows/apollo_scrape/{COMPANY}"
    bad = api.patch(path, json={"set": {"fields": "Company"}})
    assert bad.status_code == 422
    assert "workflow option 'fields' must be a list of names" in bad.json()["detail"]
    unknown = api.patch(path, json={"set": {"rate_per_sec": 5}})
    assert unknown.status_code == 422 and "unknown option rate_per_sec" in unknown.text
    assert api.patch(path, json={"sets": {}}).status_code == 422
    assert api.patch("/api/workflows/apollo_scrape/nope", json={"set": {}}).status_code == 404

    good = api.patch(
        path,
        json={"set": {"fields": ["Company"], "dedupe_by": "company_domain", "burst": 5},
              "remove": ["batch_size"]},
    )  # fmt: skip
    assert good.status_code == 200, good.text
    config = good.json()["config"]
    assert config["fields"] == ["Company"] and config["burst"] == 5
    assert "batch_size" not in config and options(engine) == config

    new = {"slug": "enrich_tech_in_clay", "workstream": "apollo_scrape", "name": "Tech"}
    refused = api.post("/api/workflows", json={**new, "config": {"dedupe_by": ""}})
    assert refused.status_code == 422 and "dedupe_by" in refused.json()["detail"]
    made = api.post("/api/workflows", json={**new, "config": {"fields": ["Website"]}})
    assert made.status_code == 201, made.text

    no_step = api.post("/api/batches/1/retry", json={"refresh_options": True})
    assert no_step.status_code == 422 and "needs a step" in no_step.text


@pytest.fixture
def receiver(engine: Engine) -> Iterator[Service]:
    svc = Service(engine)
    with svc.server:
        try:
            yield svc
        finally:
            assert svc.executor is not None
            svc.executor.close()
            svc.http.close()


def test_retry_with_refreshed_options_fixes_a_running_batch(
    db_url: str, engine: Engine, tmp_path: Path, receiver: Service
) -> None:
    """A payload limit too small fails every item; the operator corrects the option and
    retries the same batch with it, without launching a new one."""
    with UvicornThread(create_sandbox_app(delay_seconds=0.02)) as sandbox:
        assert invoke(db_url, "workflow", "set", COMPANY, "max_payload_bytes=100").exit_code == 0
        assert (
            invoke(
                db_url, "config", "set", "acme", COMPANY, f"webhook_url={sandbox.url}/webhook/t"
            ).exit_code
            == 0
        )
        batch_id = start(engine, tmp_path, [COMPANY], people(3))
        receiver.drive(batch_id)
        failed = states(engine, batch_id)
        assert [s.status for s in failed] == ["FAILED"] * 3
        assert all("max_payload_bytes" in s.error for s in failed)

        assert invoke(db_url, "workflow", "set", COMPANY, "max_payload_bytes=20000").exit_code == 0
        # a plain retry keeps the batch's snapshot: the items fail again
        assert invoke(db_url, "retry", str(batch_id), "--step", COMPANY).exit_code == 0
        receiver.drive(batch_id)
        assert [s.status for s in states(engine, batch_id)] == ["FAILED"] * 3

        # the registry's options are re-read only when they could run
        broken = {**options(engine), "fields": "Company"}
        with engine.begin() as conn:
            conn.execute(
                update(EnrichmentRegistry)
                .where(EnrichmentRegistry.slug == COMPANY)
                .values(config=broken)
            )
        refused = invoke(db_url, "retry", str(batch_id), "--step", COMPANY, "--refresh-options")
        assert refused.exit_code == 2, refused.output
        assert "'fields' must be a list of names" in " ".join(refused.output.split())
        assert [s.status for s in states(engine, batch_id)] == ["FAILED"] * 3
        assert invoke(db_url, "workflow", "set", COMPANY, "fields=").exit_code == 0
        assert invoke(db_url, "retry", str(batch_id), "--refresh-options").exit_code == 2

        result = invoke(db_url, "retry", str(batch_id), "--step", COMPANY, "--refresh-options")
        assert result.exit_code == 0, result.output
        assert "max_payload_bytes=20000" in result.output
        receiver.drive(batch_id)
    assert [s.status for s in states(engine, batch_id)] == ["COMPLETED"] * 3
    assert batch_status(engine, batch_id) == "COMPLETED"
    with engine.connect() as conn:
        step = conn.execute(select(BatchStep).where(BatchStep.batch_id == batch_id)).one()
        blueprint = conn.execute(select(Batch.blueprint).where(Batch.id == batch_id)).scalar_one()
    assert step.config["max_payload_bytes"] == 20000
    assert blueprint[0]["config"]["max_payload_bytes"] == 20000
