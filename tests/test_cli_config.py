"""``enrichflow config set/list`` through Typer's CliRunner, on SQLite and Postgres."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, select, update
from typer.testing import CliRunner

from enrichflow.cli import app
from enrichflow.db.models import Client, ClientWorkflowConfig

COMPANY = "enrich_company_via_waterfall_in_clay"
HOOK_A = "https://api.clay.com/v3/sources/webhook/pull-in-data-SECRET-A"
HOOK_B = "https://api.clay.com/v3/sources/webhook/pull-in-data-SECRET-B"
TOKEN = "clay-auth-SECRET-token"


def invoke(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--database-url", db_url])


def stored(engine: Engine, client: str = "acme") -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(
            conn.execute(
                select(ClientWorkflowConfig.config)
                .join(Client, Client.id == ClientWorkflowConfig.client_id)
                .where(Client.name == client, ClientWorkflowConfig.workflow_slug == COMPANY)
            ).scalar_one()
        )


def test_set_creates_client_and_list_redacts(db_url: str, engine: Engine) -> None:
    result = invoke(
        db_url, "config", "set", "acme", COMPANY, "--workstream", "apollo_scrape",
        f"webhook_url={HOOK_A}", f"auth_token={TOKEN}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert stored(engine) == {"webhook_url": HOOK_A, "auth_token": TOKEN}
    assert "SECRET" not in result.output

    listed = invoke(db_url, "config", "list", "acme", "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.stdout) == [
        {
            "workflow": COMPANY,
            "workstream": "apollo_scrape",
            "config": {"auth_token": "…", "webhook_url": "https://api.clay.com/…"},
        }
    ]
    table = invoke(db_url, "config", "list", "acme")
    assert table.exit_code == 0 and "SECRET" not in table.output
    assert "api.clay.com" in table.output


def test_values_merge_repeat_append_and_remove(db_url: str, engine: Engine) -> None:
    assert invoke(db_url, "config", "set", "acme", COMPANY, f"webhook_url={HOOK_A}",
                  f"auth_token={TOKEN}").exit_code == 0  # fmt: skip
    # a repeated webhook_url is a list, used in order; other keys are kept
    assert invoke(db_url, "config", "set", "acme", COMPANY, f"webhook_url={HOOK_A}",
                  f"webhook_url={HOOK_B}").exit_code == 0  # fmt: skip
    assert stored(engine) == {"webhook_url": [HOOK_A, HOOK_B], "auth_token": TOKEN}
    # += appends a fresh URL; key= removes
    hook_c = HOOK_B.replace("-B", "-C")
    assert invoke(db_url, "config", "set", "acme", COMPANY, f"webhook_url+={hook_c}",
                  "auth_token=").exit_code == 0  # fmt: skip
    assert stored(engine) == {"webhook_url": [HOOK_A, HOOK_B, hook_c]}
    listed = invoke(db_url, "config", "list", "acme", "--json")
    assert json.loads(listed.stdout)[0]["config"] == {"webhook_url": ["https://api.clay.com/…"] * 3}


def test_bad_input_exits_2_and_writes_nothing(db_url: str, engine: Engine) -> None:
    for args in (
        ["config", "set", "acme", "no_such_workflow", f"webhook_url={HOOK_A}"],
        ["config", "set", "acme", COMPANY, "webhook_url=ftp://example.com/x"],
        ["config", "set", "acme", COMPANY, "no-equals-sign"],
        ["config", "set", "acme", COMPANY, "--workstream", "nope", f"webhook_url={HOOK_A}"],
    ):
        result = invoke(db_url, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "SECRET" not in result.output
    with engine.connect() as conn:
        assert conn.execute(select(ClientWorkflowConfig)).first() is None
        assert conn.execute(select(Client).where(Client.name == "acme")).first() is None
    missing = invoke(db_url, "config", "list", "nobody")
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_workflow_options_are_refused_in_a_clay_workflows_client_config(
    db_url: str, engine: Engine
) -> None:
    """The webhook handler reads only the URL and token from a client's config: a workflow
    option set there (dedupe_by, rate_per_second, ...) would be stored and ignored."""
    assert invoke(db_url, "config", "set", "acme", COMPANY, f"webhook_url={HOOK_A}").exit_code == 0
    result = invoke(
        db_url, "config", "set", "acme", COMPANY, f"webhook_url={HOOK_B}",
        "dedupe_by=company_domain", "rate_per_second+=50",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"dedupe_by, rate_per_second: not a client setting of '{COMPANY}'" in text
    assert "reads only webhook_url and auth_token" in text
    assert "are workflow options" in text
    assert f"enrichflow workflow set {COMPANY} dedupe_by=..." in text
    assert "SECRET" not in result.output
    assert stored(engine) == {"webhook_url": HOOK_A}  # nothing of the refused call landed
    # removing a key that an older version let in stays possible
    with engine.begin() as conn:
        conn.execute(
            update(ClientWorkflowConfig).values(config={"webhook_url": HOOK_A, "dedupe_by": "x"})
        )
    assert invoke(db_url, "config", "set", "acme", COMPANY, "dedupe_by=").exit_code == 0
    assert stored(engine) == {"webhook_url": HOOK_A}
