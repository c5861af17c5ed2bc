"""``enrichflow workflow set/show``: a workflow's own options, through Typer's CliRunner, on
SQLite and Postgres."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from enrichflow.cli import app
from enrichflow.db.models import BatchStep, EnrichmentRegistry
from handlers_for_tests import make_batch

COMPANY = "enrich_company_via_waterfall_in_clay"


def invoke(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--database-url", db_url])


def options(engine: Engine, workflow: str = COMPANY) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                select(EnrichmentRegistry.config).where(EnrichmentRegistry.slug == workflow)
            ).scalar_one()
        )


def test_set_merges_typed_options_that_the_next_launch_snapshots(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    seeded = options(engine)
    result = invoke(
        db_url, "workflow", "set", COMPANY, "dedupe_by=company_domain", "rate_per_second=2.5",
        "max_attempts=5", "fields=Company", "fields=Website",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    want = {
        **seeded,
        "dedupe_by": "company_domain",
        "rate_per_second": 2.5,
        "max_attempts": 5,
        "fields": ["Company", "Website"],
    }
    assert options(engine) == want
    assert (
        invoke(db_url, "workflow", "set", COMPANY, "fields+=Industry", "dedupe_by=").exit_code == 0
    )
    want["fields"] = ["Company", "Website", "Industry"]
    del want["dedupe_by"]
    assert options(engine) == want

    shown = invoke(db_url, "workflow", "show", COMPANY, "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == {
        "workflow": COMPANY,
        "workstream": "apollo_scrape",
        "handler": "webhook",
        "config": want,
    }
    table = invoke(db_url, "workflow", "show", COMPANY)
    assert "Company, Website, Industry" in table.output and "max_attempts" in table.output

    batch_id = make_batch(engine, tmp_path, [COMPANY], n=1)
    with engine.connect() as conn:
        step = conn.execute(select(BatchStep).where(BatchStep.batch_id == batch_id)).one()
    assert step.max_attempts == 5 and step.config == want


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["max_attempts=0"], "config 'max_attempts' must be a positive number, got 0"),
        (["rate_per_second=fast"], "option 'rate_per_second' must be a positive number"),
        (["lease_seconds=true"], "config 'lease_seconds' must be a positive number, got True"),
        (["webhook_url=https://hooks.example/SECRET"], "a client's setting (a secret)"),
        (["no-equals-sign"], "expected KEY=VALUE"),
        (["--workstream", "nope", "max_attempts=2"], "no workflow"),
    ],
)
def test_bad_options_exit_2_and_write_nothing(
    db_url: str, engine: Engine, args: list[str], message: str
) -> None:
    before = options(engine)
    result = invoke(db_url, "workflow", "set", COMPANY, *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "SECRET" not in result.output
    assert options(engine) == before


def test_show_names_the_known_workflows_of_an_unknown_one(db_url: str) -> None:
    result = invoke(db_url, "workflow", "show", "enrich_everything")
    assert result.exit_code == 2
    assert "no workflow 'enrich_everything'" in result.output and COMPANY in result.output
