"""``enrichflow pipeline save/list/show/delete`` and ``run --pipeline`` with a pipeline saved
through the CLI, via Typer's CliRunner on SQLite and Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select
from typer.testing import CliRunner

import enrichflow.cli as cli
from enrichflow.cli import root
from enrichflow.db.models import (
    Batch,
    BatchStep,
    Client,
    EnrichmentPipeline,
    EnrichmentRegistry,
    WorkflowState,
)
from enrichflow.seed import APOLLO
from handlers_for_tests import register_steps, write_csv

COMPANY = "enrich_company_via_waterfall_in_clay"


@pytest.fixture(autouse=True)
def _dispose_cli_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``run`` leaves its engine open; close every engine the CLI made before the test
    database is dropped."""
    made: list[Engine] = []
    real = root.make_engine

    def tracking(url: str, **kwargs: Any) -> Engine:
        engine = real(url, **kwargs)
        made.append(engine)
        return engine

    monkeypatch.setattr(root, "make_engine", tracking)
    yield
    for engine in made:
        engine.dispose()


def invoke(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(cli.app, [*args, "--database-url", db_url], catch_exceptions=False)


def flat(text: str) -> str:
    """Rich wraps long lines; compare with whitespace collapsed."""
    return " ".join(text.split())


def saved(engine: Engine) -> list[tuple[str, str, str, list[str]]]:
    with engine.connect() as conn:
        return [
            (c, w, n, list(s))
            for c, w, n, s in conn.execute(
                select(
                    Client.name,
                    EnrichmentPipeline.workstream_slug,
                    EnrichmentPipeline.name,
                    EnrichmentPipeline.steps,
                )
                .join(Client, Client.id == EnrichmentPipeline.client_id)
                .order_by(EnrichmentPipeline.name)
            )
        ]


def clients(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(Client.name).order_by(Client.name)).scalars())


def test_unknown_client_is_refused_unless_asked_to_create_it(db_url: str, engine: Engine) -> None:
    result = invoke(db_url, "pipeline", "save", "acme", "weekly", "--steps", "noop")
    assert result.exit_code == 2
    text = flat(result.output)
    assert "unknown client 'acme'" in text and "--create-client" in text
    assert clients(engine) == [] and saved(engine) == []

    result = invoke(
        db_url, "pipeline", "save", "acme", "weekly", "--steps", "noop", "--create-client"
    )
    assert result.exit_code == 0, result.output
    assert "created client 'acme'" in flat(result.output)
    assert "saved pipeline 'weekly'" in flat(result.output)
    assert saved(engine) == [("acme", APOLLO, "weekly", ["noop"])]


def test_unknown_or_broken_steps_exit_2_naming_them_and_change_nothing(
    db_url: str, engine: Engine
) -> None:
    assert invoke(db_url, "pipeline", "save", "acme", "w", "--steps", "noop",
                  "--create-client").exit_code == 0  # fmt: skip

    result = invoke(db_url, "pipeline", "save", "acme", "w", "--steps", "noop,nope,normalise")
    assert result.exit_code == 2
    text = flat(result.output)
    assert "unknown steps 'nope', 'normalise' for workstream 'apollo_scrape'" in text
    assert "normalize_company_name" in text  # the known steps are listed

    with engine.begin() as conn:
        conn.execute(
            insert(EnrichmentRegistry).values(
                slug="ghost", workstream_slug=APOLLO, name="Ghost", type="SYNC",
                handler="no_such_handler", config={}, description="",
            )
        )  # fmt: skip
    result = invoke(db_url, "pipeline", "save", "acme", "w", "--steps", "noop,ghost")
    assert result.exit_code == 2
    assert "step 'ghost' names handler 'no_such_handler', which does not exist" in flat(
        result.output
    )

    result = invoke(db_url, "pipeline", "save", "acme", "w", "--steps", "noop,noop")
    assert result.exit_code == 2 and "appears twice" in flat(result.output)
    result = invoke(db_url, "pipeline", "save", "acme", "w", "--steps", " , ")
    assert result.exit_code == 2 and "--steps is empty" in flat(result.output)
    result = invoke(
        db_url, "pipeline", "save", "acme", "w", "--steps", "noop", "--workstream", "nowhere"
    )
    assert result.exit_code == 2 and "unknown workstream 'nowhere'" in flat(result.output)
    result = invoke(db_url, "pipeline", "save", "bob", "w", "--steps", "nope", "--create-client")
    assert result.exit_code == 2 and "'nope'" in flat(result.output)

    assert saved(engine) == [("acme", APOLLO, "w", ["noop"])]
    assert clients(engine) == ["acme"]  # bob was not created by the refused save


def test_saving_again_updates_and_says_so(db_url: str, engine: Engine) -> None:
    args = ("pipeline", "save", "acme", "weekly", "--create-client", "--steps")
    assert invoke(db_url, *args, "noop,normalize_company_name").exit_code == 0

    result = invoke(db_url, *args, "noop,normalize_company_domain")
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "updated pipeline 'weekly'" in text
    assert "(was: noop → normalize_company_name)" in text
    assert saved(engine) == [("acme", APOLLO, "weekly", ["noop", "normalize_company_domain"])]

    result = invoke(db_url, *args, "noop,normalize_company_domain")
    assert result.exit_code == 0 and "unchanged" in flat(result.output)
    assert len(saved(engine)) == 1


def test_async_step_without_config_is_saved_with_a_warning(db_url: str, engine: Engine) -> None:
    result = invoke(
        db_url, "pipeline", "save", "acme", "clay", "--create-client", "--steps",
        f"normalize_company_domain,{COMPANY}",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert f"client 'acme' has no webhook_url for {COMPANY}" in text
    assert "enrichflow config set acme" in text
    assert saved(engine)[0][3] == ["normalize_company_domain", COMPANY]


def test_list_show_and_delete(db_url: str, engine: Engine) -> None:
    assert invoke(db_url, "pipeline", "save", "acme", "b", "--create-client", "--steps",
                  f"noop,{COMPANY}").exit_code == 0  # fmt: skip
    assert invoke(db_url, "pipeline", "save", "zeta", "a", "--create-client", "--steps",
                  "noop").exit_code == 0  # fmt: skip

    everyone = invoke(db_url, "pipeline", "list", "--json")
    assert everyone.exit_code == 0, everyone.output
    assert json.loads(everyone.stdout) == [
        {"client": "acme", "workstream": APOLLO, "name": "b", "steps": ["noop", COMPANY]},
        {"client": "zeta", "workstream": APOLLO, "name": "a", "steps": ["noop"]},
    ]
    only = invoke(db_url, "pipeline", "list", "zeta", "--json")
    assert [p["name"] for p in json.loads(only.stdout)] == ["a"]
    unknown = invoke(db_url, "pipeline", "list", "nobody")
    assert unknown.exit_code == 2 and "unknown client 'nobody'" in flat(unknown.output)

    shown = invoke(db_url, "pipeline", "show", "acme", "b", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["steps"] == [
        {"slug": "noop", "type": "SYNC"},
        {"slug": COMPANY, "type": "ASYNC"},
    ]
    builtin = invoke(db_url, "pipeline", "show", "acme", "apollo_default", "--json")
    assert json.loads(builtin.stdout)["builtin"] is True
    stranger = invoke(db_url, "pipeline", "show", "nobody", "apollo_default")
    assert stranger.exit_code == 2 and "unknown client 'nobody'" in flat(stranger.output)
    missing = invoke(db_url, "pipeline", "show", "acme", "nope")
    assert missing.exit_code == 2 and "no pipeline 'nope' for client 'acme'" in flat(missing.output)

    assert invoke(db_url, "pipeline", "delete", "acme", "b").exit_code == 0
    again = invoke(db_url, "pipeline", "delete", "acme", "b")
    assert again.exit_code == 2 and "no saved pipeline 'b'" in flat(again.output)
    assert [s[2] for s in saved(engine)] == ["a"]


def test_run_uses_a_pipeline_saved_from_the_cli(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    """The saved steps (not the default pipeline's) are what the batch runs, in that order."""
    register_steps(engine)
    steps = ["normalize_company_domain", "test_count", "normalize_company_name"]
    result = invoke(db_url, "pipeline", "save", "acme", "weekly", "--create-client",
                    "--steps", ",".join(steps))  # fmt: skip
    assert result.exit_code == 0, result.output

    path = write_csv(tmp_path / "leads.csv", 4)
    result = invoke(db_url, "run", str(path), "--client", "acme", "--pipeline", "weekly", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "COMPLETED"
    assert list(summary["steps"]) == steps
    with engine.connect() as conn:
        batch = conn.execute(select(Batch.pipeline_name, Batch.client_id)).one()
        ran = list(conn.execute(select(BatchStep.step_name).order_by(BatchStep.position)).scalars())
        done = conn.execute(
            select(func.count())
            .select_from(WorkflowState)
            .where(WorkflowState.status == "COMPLETED")
        ).scalar_one()
        acme = conn.execute(select(Client.id).where(Client.name == "acme")).scalar_one()
    assert batch == ("weekly", acme)
    assert ran == steps
    assert done == 4 * len(steps)

    other = invoke(db_url, "run", str(path), "--client", "zeta", "--pipeline", "weekly")
    assert other.exit_code == 2
    assert "no pipeline 'weekly' for client 'zeta'" in flat(other.output)
