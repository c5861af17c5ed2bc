"""Set-up without SQL: ``enrichflow workstream add/list`` and ``workflow add/list/delete``
through Typer's CliRunner, on SQLite and Postgres, including an ``http`` workflow's object
options (``headers``, ``body``, ``keep`` as JSON). The handlers are this process's (the
built-in ones and the installed example plugin's ``title_length``)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from enrichflow.api.dashboard.workflow_form import options_read, other_options_text
from enrichflow.cli import app
from enrichflow.db.models import ClientWorkflowConfig, EnrichmentRegistry

CLAY_URL = "https://api.clay.com/v3/sources/webhook/pull-in-data-from-a-webhook-abc"


def invoke(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--database-url", db_url])


def message(result: Any) -> str:
    """The command's error, unwrapped from the console's line breaks."""
    return " ".join(result.output.split())


def registry_row(engine: Engine, slug: str, workstream: str) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(EnrichmentRegistry).where(
                EnrichmentRegistry.slug == slug, EnrichmentRegistry.workstream_slug == workstream
            )
        ).one_or_none()


def test_a_workstream_is_added_once_and_listed(db_url: str) -> None:
    added = invoke(db_url, "workstream", "add", "hubspot_contacts", "--description", "HubSpot")
    assert added.exit_code == 0, added.output
    again = invoke(db_url, "workstream", "add", "hubspot_contacts")
    assert again.exit_code == 2 and "workstream 'hubspot_contacts' already exists" in again.output
    bad = invoke(db_url, "workstream", "add", "HubSpot Contacts")
    assert bad.exit_code == 2
    assert "the workstream slug 'HubSpot Contacts' must start with a letter" in message(bad)

    listed = invoke(db_url, "workstream", "list", "--json")
    assert listed.exit_code == 0, listed.output
    by_slug = {w["slug"]: w for w in json.loads(listed.stdout)}
    assert by_slug["hubspot_contacts"] == {
        "slug": "hubspot_contacts",
        "name": "hubspot_contacts",
        "description": "HubSpot",
        "workflows": 0,
    }
    assert by_slug["apollo_scrape"]["workflows"] > 0


def test_workflow_add_takes_webhook_http_builtin_and_plugin_handlers(
    db_url: str, engine: Engine
) -> None:
    assert invoke(db_url, "workstream", "add", "leads_b").exit_code == 0
    cases = [
        (["enrich_tech_in_clay", "--handler", "webhook", "--option", "dedupe_by=company_domain",
          "--option", "fields=Company", "--option", "fields=Website"],
         "ASYNC", {"dedupe_by": "company_domain", "fields": ["Company", "Website"]}),
        (["lookup_firmographics", "--handler", "http", "--option",
          "url=https://api.example.com/firms/{company_domain}", "--option", "max_attempts=5"],
         "SYNC", {"url": "https://api.example.com/firms/{company_domain}", "max_attempts": 5}),
        (["clean_names", "--handler", "normalize_company_name"], "SYNC", {}),
        (["title_length", "--handler", "title_length", "--name", "Title length (chars)"],
         "SYNC", {}),
        (["title_length_async", "--handler", "title_length", "--mode", "async"], "ASYNC", {}),
    ]  # fmt: skip
    for args, kind, config in cases:
        result = invoke(db_url, "workflow", "add", *args, "--workstream", "leads_b")
        assert result.exit_code == 0, result.output
        row = registry_row(engine, args[0], "leads_b")
        assert (row.type, row.handler, row.config) == (kind, args[2], config)
    assert registry_row(engine, "title_length", "leads_b").name == "Title length (chars)"
    assert registry_row(engine, "clean_names", "leads_b").name == "Clean names"

    listed = invoke(db_url, "workflow", "list", "--workstream", "leads_b", "--json")
    assert [w["workflow"] for w in json.loads(listed.stdout)] == [c[0][0] for c in cases]
    shown = invoke(db_url, "workflow", "show", "lookup_firmographics", "--workstream", "leads_b")
    assert shown.exit_code == 0 and "handler http" in shown.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["x_unknown", "--handler", "title_words"],
            "no handler named 'title_words' is loaded (loaded: consolidate_final_leads, http,",
        ),
        (["x_sync_clay", "--handler", "webhook", "--mode", "sync"], "can only be ASYNC, not SYNC"),
        (["x_async_noop", "--handler", "noop", "--mode", "async"], "can only be SYNC, not ASYNC"),
        (["x_mode", "--handler", "noop", "--mode", "later"], "--mode must be sync or async"),
        (
            ["x_rate", "--handler", "webhook", "--option", "rate_per_second=fast"],
            "workflow 'x_rate' in workstream 'apollo_scrape': workflow option 'rate_per_second' "
            "must be a positive number, got 'fast'",
        ),
        (
            ["x_secret", "--handler", "webhook", "--option", f"webhook_url={CLAY_URL}"],
            "webhook_url: a client's setting (a secret), never stored with the workflow",
        ),
        (["x_http", "--handler", "http", "--option", "url=ftp://x.example/a"], "x_http"),
        (["x_http", "--handler", "http"], "option 'url' is required"),
        (
            [
                "x_http",
                "--handler",
                "http",
                "--option",
                "url=https://a.example/{Company}",
                "--option",
                "headers={not json}",
            ],
            "option 'headers' must be a JSON object of text values",
        ),
        (
            [
                "x_http",
                "--handler",
                "http",
                "--option",
                "url=https://a.example/{Company}",
                "--option",
                "method=FETCH",
            ],
            "option 'method' must be one of DELETE, GET, PATCH, POST, PUT, got 'FETCH'",
        ),
        (
            [
                "x_http",
                "--handler",
                "http",
                "--option",
                "url=https://a.example/{Company}",
                "--option",
                'keep={"n": 3}',
            ],
            "option 'keep' must be a list of dotted paths",
        ),
        (
            [
                "x_http",
                "--handler",
                "http",
                "--option",
                "url=https://a.example/{Company}",
                "--option",
                "urls=https://b.example",
            ],
            "unknown option urls (an http workflow reads:",
        ),
        (["x_append", "--handler", "noop", "--option", "fields+=A"], "fields: give a value"),
        (
            ["x_nowhere", "--handler", "noop", "--workstream", "nowhere"],
            "unknown workstream 'nowhere' (workstreams: apollo_scrape); add it first: "
            "enrichflow workstream add nowhere",
        ),
        (["Bad-Slug", "--handler", "noop"], "the workflow slug 'Bad-Slug' must start"),
        (["noop", "--handler", "noop"], "workflow 'noop' already exists in 'apollo_scrape'"),
    ],
)
def test_workflow_add_refuses_with_a_message_naming_what_is_wrong(
    db_url: str, engine: Engine, args: list[str], expected: str
) -> None:
    before = invoke(db_url, "workflow", "list", "--json")
    result = invoke(db_url, "workflow", "add", *args)
    assert result.exit_code == 2, result.output
    assert expected in message(result)
    assert invoke(db_url, "workflow", "list", "--json").stdout == before.stdout


def test_workflow_add_refuses_an_option_as_workflow_set_does(db_url: str) -> None:
    """One validator: the same value is refused with the same words by add and set."""
    assert invoke(db_url, "workflow", "add", "x_clay", "--handler", "webhook").exit_code == 0
    added = invoke(db_url, "workflow", "add", "y_clay", "--handler", "webhook",
                   "--option", "fields=")  # fmt: skip
    assert added.exit_code == 2 and "fields: give a value" in message(added)
    for option in ("max_attempts=0", "dedupe_by=true", "reuse_days=5"):
        added = invoke(db_url, "workflow", "add", "y_clay", "--handler", "webhook",
                       "--option", option)  # fmt: skip
        changed = invoke(db_url, "workflow", "set", "x_clay", option)
        assert added.exit_code == changed.exit_code == 2, option
        said = message(added).split(": ", 2)[-1]
        assert said and said == message(changed).split(": ", 2)[-1].replace("x_clay", "y_clay")


def test_workflow_delete_refuses_while_a_pipeline_runs_it_and_for_built_ins(
    db_url: str, engine: Engine
) -> None:
    assert (
        invoke(db_url, "workflow", "add", "enrich_tech_in_clay", "--handler", "webhook").exit_code
        == 0
    )
    assert (
        invoke(
            db_url, "config", "set", "acme", "enrich_tech_in_clay", f"webhook_url={CLAY_URL}"
        ).exit_code
        == 0
    )
    saved = invoke(db_url, "pipeline", "save", "acme", "tech", "--steps",
                   "normalize_company_domain,enrich_tech_in_clay")  # fmt: skip
    assert saved.exit_code == 0, saved.output

    refused = invoke(db_url, "workflow", "delete", "enrich_tech_in_clay")
    assert refused.exit_code == 2
    assert (
        "enrich_tech_in_clay is a step of 1 saved pipeline(s) (acme: tech); remove it from them "
        "first" in message(refused)
    )
    built_in = invoke(db_url, "workflow", "delete", "normalize_company_name")
    assert built_in.exit_code == 2 and "is built in" in message(built_in)
    missing = invoke(db_url, "workflow", "delete", "no_such_step")
    assert missing.exit_code == 2 and "no workflow 'no_such_step'" in message(missing)
    assert registry_row(engine, "enrich_tech_in_clay", "apollo_scrape") is not None

    assert invoke(db_url, "pipeline", "delete", "acme", "tech").exit_code == 0
    deleted = invoke(db_url, "workflow", "delete", "enrich_tech_in_clay")
    assert deleted.exit_code == 0, deleted.output
    assert "and 1 client config(s)" in message(deleted)
    assert registry_row(engine, "enrich_tech_in_clay", "apollo_scrape") is None
    with engine.connect() as conn:
        left = conn.execute(
            select(ClientWorkflowConfig.id).where(
                ClientWorkflowConfig.workflow_slug == "enrich_tech_in_clay"
            )
        ).all()
    assert left == []


def test_an_http_workflow_takes_its_object_options_as_json(db_url: str, engine: Engine) -> None:
    headers = '{"x-api-key": "{secret:api_key}", "accept": "application/json"}'
    added = invoke(
        db_url, "workflow", "add", "firmographics", "--handler", "http",
        "--option", "url=https://api.example.com/firms/{company_domain}",
        "--option", "method=POST",
        "--option", f"headers={headers}",
        "--option", 'body={"domain": "{company_domain}", "size": "{results.sizes.count}"}',
        "--option", 'keep={"employees": "data.employees"}',
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    stored = registry_row(engine, "firmographics", "apollo_scrape").config
    assert stored["headers"] == json.loads(headers)
    assert stored["body"] == {"domain": "{company_domain}", "size": "{results.sizes.count}"}
    assert stored["keep"] == {"employees": "data.employees"}

    # text in braces that is not JSON stays a template
    changed = invoke(db_url, "workflow", "set", "firmographics", "body={results.lookup.payload}")
    assert changed.exit_code == 0, changed.output
    stored = registry_row(engine, "firmographics", "apollo_scrape").config
    assert stored["body"] == "{results.lookup.payload}"

    # the dashboard's KEY=VALUE lines give the same options back when saved unchanged
    lines = other_options_text("http", stored)
    values, remove = options_read("http", {"other_options": lines}, stored)
    assert values == stored and not remove & set(stored)
