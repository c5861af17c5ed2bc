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

COMPANY_CLAY = "enrich_company_via_waterfall_in_clay"


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


def test_webhook_source_near_its_limit_fails(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(WebhookSubmission).values(
                url_key="k" * 64,
                url_redacted="https://api.clay.com/…",
                submissions=46_000,
                updated_at=datetime.now(UTC),
            )
        )
    check = by_name(run_checks(engine, Settings(executor="local")))["clay sources"]
    assert not check.ok and "46,000" in check.detail


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
