"""``enrichflow doctor`` and ``preflight_batch`` on real databases of both kinds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

from enrichflow.catalog.assignments import parse_assignments
from enrichflow.catalog.client_configs import client_config_set
from enrichflow.catalog.clients import client_get_or_create
from enrichflow.cli import app
from enrichflow.config import Settings
from enrichflow.db.engine import make_engine
from enrichflow.db.models import EnrichmentPipeline, EnrichmentRegistry, WebhookSubmission
from enrichflow.doctor import Check, check_executor, failing, preflight_batch, run_checks
from enrichflow.launch import resolve_steps
from enrichflow.seed import APOLLO
from enrichflow.webhooks.ledger import url_key
from enrichflow.webhooks.redact import redact_url

COMPANY_CLAY = "enrich_company_via_waterfall_in_clay"
HOOK = "https://api.clay.com/v3/sources/webhook"


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def save_pipeline(engine: Engine, client: str, name: str, steps: list[str]) -> None:
    with engine.begin() as conn:
        client_id = client_get_or_create(conn, client)
        conn.execute(
            insert(EnrichmentPipeline).values(
                client_id=client_id, workstream_slug=APOLLO, name=name, steps=steps
            )
        )


@pytest.fixture
def no_modal_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    monkeypatch.delenv("MODAL_CONFIG_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def test_fresh_database_passes_every_check(engine: Engine) -> None:
    checks = run_checks(engine, Settings(executor="local"))
    assert failing(checks) == [], checks
    assert {c.name for c in checks} >= {
        "database",
        "handlers",
        "pipelines",
        "async configs",
        "public url",
        "clay sources",
        "executor",
        "bulk loads",
    }
    (bulk,) = [c for c in checks if c.name == "bulk loads"]
    # the suite's Postgres user is a superuser, so its loads skip the per-row checks
    expected = "fast: " if engine.dialect.name == "postgresql" else "SQLite: "
    assert bulk.detail.startswith(expected), bulk


def test_unmigrated_and_unreachable_databases_fail(tmp_path: Path) -> None:
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    checks = by_name(run_checks(empty, Settings(executor="local")))
    empty.dispose()
    assert not checks["database"].ok and "enrichflow init" in checks["database"].detail
    down = make_engine("postgresql://postgres:secretpw@127.0.0.1:1/nothing")
    checks = by_name(run_checks(down, Settings(executor="local")))
    down.dispose()
    assert not checks["database"].ok and "cannot reach" in checks["database"].detail
    assert "secretpw" not in checks["database"].detail


def test_missing_handler_and_unknown_pipeline_step_fail(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(EnrichmentRegistry).values(
                slug="ghost", workstream_slug=APOLLO, name="ghost", type="SYNC",
                handler="no_such_handler", config={},
            )
        )  # fmt: skip
    save_pipeline(engine, "acme", "typo", ["noop", "normalise_company_name"])
    checks = by_name(run_checks(engine, Settings(executor="local")))
    assert not checks["handlers"].ok and "no_such_handler" in checks["handlers"].detail
    assert not checks["pipelines"].ok and "normalise_company_name" in checks["pipelines"].detail


def test_async_step_needs_client_config_and_public_url(engine: Engine) -> None:
    save_pipeline(engine, "acme", "clay", ["noop", COMPANY_CLAY])
    checks = by_name(run_checks(engine, Settings(executor="local")))
    assert not checks["async configs"].ok
    assert (
        "acme" in checks["async configs"].detail and COMPANY_CLAY in checks["async configs"].detail
    )
    assert "webhook_url=" in checks["async configs"].detail
    assert not checks["public url"].ok and "ENRICHFLOW_PUBLIC_URL" in checks["public url"].detail

    with engine.begin() as conn:
        client_config_set(
            conn,
            "acme",
            COMPANY_CLAY,
            APOLLO,
            parse_assignments(["webhook_url=https://api.clay.com/v3/sources/webhook/abc"]),
        )
    settings = Settings(executor="local", public_url="https://enrich.example.com")
    assert failing(run_checks(engine, settings)) == []


def record_submissions(engine: Engine, url: str, count: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(WebhookSubmission).values(
                url_key=url_key(url),
                url_redacted=redact_url(url),
                submissions=count,
                updated_at=datetime.now(UTC),
            )
        )


def set_urls(engine: Engine, client: str, *assignments: str) -> None:
    with engine.begin() as conn:
        client_config_set(conn, client, COMPANY_CLAY, APOLLO, parse_assignments(assignments))


def test_webhook_source_near_its_limit_fails(engine: Engine) -> None:
    set_urls(engine, "acme", f"webhook_url={HOOK}/acme-1")
    record_submissions(engine, f"{HOOK}/acme-1", 46_000)
    check = by_name(run_checks(engine, Settings(executor="local")))["clay sources"]
    assert not check.ok and "46,000" in check.detail and "'acme'" in check.detail
    assert "webhook_url+=" in check.detail and "acme-1" not in check.detail

    # a fresh URL next in line answers the warning; the filling one stays in use until full
    set_urls(engine, "acme", f"webhook_url+={HOOK}/acme-2")
    assert by_name(run_checks(engine, Settings(executor="local")))["clay sources"].ok


def test_a_retired_full_url_no_longer_fails_the_doctor(engine: Engine) -> None:
    record_submissions(engine, f"{HOOK}/retired", 50_000)
    set_urls(engine, "acme", f"webhook_url={HOOK}/acme-1")
    assert by_name(run_checks(engine, Settings(executor="local")))["clay sources"].ok


def test_preflight_reads_only_the_launching_client_s_urls_for_its_steps(engine: Engine) -> None:
    settings = Settings(executor="local", public_url="https://enrich.example.com")
    set_urls(engine, "acme", f"webhook_url={HOOK}/acme-1")
    set_urls(engine, "globex", f"webhook_url={HOOK}/globex-1")
    record_submissions(engine, f"{HOOK}/acme-1", 50_000)
    with engine.connect() as conn:
        plan = resolve_steps(conn, "acme", APOLLO, None, ["noop", COMPANY_CLAY])
        (full,) = preflight_batch(conn, "acme", APOLLO, plan.steps, settings)
        assert full.name == "clay sources"
        assert f"client 'acme', workflow '{COMPANY_CLAY}' in '{APOLLO}'" in full.detail
        assert "every webhook URL (1) has reached its 50,000 submission limit" in full.detail
        assert "50,000/50,000" in full.detail
        assert f"enrichflow config set acme {COMPANY_CLAY}" in full.detail
        assert preflight_batch(conn, "globex", APOLLO, plan.steps, settings) == []
        assert preflight_batch(conn, "acme", APOLLO, ["noop"], settings) == []
    # the preflight agrees with the sender: the next URL with room is used
    set_urls(engine, "acme", f"webhook_url+={HOOK}/acme-2")
    with engine.connect() as conn:
        assert preflight_batch(conn, "acme", APOLLO, plan.steps, settings) == []
    record_submissions(engine, f"{HOOK}/acme-2", 50_000)
    with engine.connect() as conn:
        (full,) = preflight_batch(conn, "acme", APOLLO, plan.steps, settings)
        assert "every webhook URL (2)" in full.detail


def test_modal_executor_needs_credentials(no_modal_credentials: None, tmp_path: Path) -> None:
    settings = Settings(executor="modal")
    check = check_executor(settings)
    assert not check.ok and "MODAL_TOKEN_ID" in check.detail
    assert check_executor(settings, environ={"MODAL_TOKEN_ID": "a", "MODAL_TOKEN_SECRET": "b"}).ok
    (tmp_path / ".modal.toml").write_text('[default]\ntoken_id = "ak-1"\ntoken_secret = "as-1"\n')
    assert check_executor(settings).ok


def test_preflight_batch_reports_the_batch_s_problems(engine: Engine) -> None:
    settings = Settings(executor="local")
    with engine.connect() as conn:
        client_get_or_create(conn, "acme")
        plan = resolve_steps(conn, "acme", APOLLO, None, ["noop", COMPANY_CLAY])
        problems = preflight_batch(conn, "acme", APOLLO, plan.steps, settings)
        assert {p.name for p in problems} == {"async configs", "public url"}
        assert preflight_batch(conn, "acme", APOLLO, ["noop"], settings) == []
        modal_problems = preflight_batch(conn, "acme", APOLLO, ["noop"], settings, executor="bogus")
        assert [p.name for p in modal_problems] == ["executor"]


def _invoke(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["doctor", "--database-url", db_url, *args])


def test_cli_doctor_table_and_exit_codes(db_url: str, no_modal_credentials: None) -> None:
    result = _invoke(db_url, "--executor", "local")
    assert result.exit_code == 0, result.output
    assert "enrichflow doctor" in result.output and "FAIL" not in result.output
    result = _invoke(db_url, "--executor", "modal")
    assert result.exit_code == 1
    assert "FAIL" in result.output and "no credentials" in result.output
    result = _invoke(db_url, "--executor", "local", "--json")
    assert result.exit_code == 0
    assert '"ok": true' in result.output
