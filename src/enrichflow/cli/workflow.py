"""``enrichflow workflow set/show``: workflows' own options, the same for every client."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from enrichflow.cli.config import settings_merged, shown
from enrichflow.cli.root import DatabaseUrl, JsonFlag, console, engine_for, fail, out
from enrichflow.db.engine import reading
from enrichflow.defaults import APOLLO
from enrichflow.errors import NotFoundError

workflow_app = typer.Typer(
    no_args_is_help=True, help="Workflows' own options, the same for every client."
)


@workflow_app.command("set")
def workflow_set(
    workflow: Annotated[str, typer.Argument(metavar="WORKFLOW", help="Workflow (step) slug.")],
    values: Annotated[
        list[str],
        typer.Argument(
            metavar="KEY=VALUE...",
            help="Options to merge: dedupe_by=company_domain, rate_per_second=5, max_attempts=5, "
            "fields=A fields=B (a list), 'fields+=C' appends, key= removes a key. Numbers and "
            "true/false are stored as such.",
        ),
    ],
    workstream: Annotated[str, typer.Option(help="Workstream slug.")] = APOLLO,
    database_url: DatabaseUrl = None,
) -> None:
    """Change a workflow's options (registry config); batches launched afterwards use them."""
    from enrichflow.catalog.workflow_options import workflow_config_set

    config = settings_merged(
        values,
        database_url,
        lambda conn, changes: workflow_config_set(conn, workflow, workstream, changes),
    )
    console.print(f"options of workflow {workflow} in {workstream}:")
    for key, value in sorted(config.items()):
        console.print(f"  {key} = {shown(value)}")


@workflow_app.command("show")
def workflow_show(
    workflow: Annotated[str, typer.Argument(metavar="WORKFLOW", help="Workflow (step) slug.")],
    workstream: Annotated[str, typer.Option(help="Workstream slug.")] = APOLLO,
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """A workflow's handler and options (unset ones take their defaults)."""
    from enrichflow.catalog.workflow_options import workflow_config_get
    from enrichflow.seed import init_database

    engine = engine_for(database_url)
    try:
        init_database(engine)
        with reading(engine) as conn:
            handler, config = workflow_config_get(conn, workflow, workstream)
    except NotFoundError as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()
    if as_json:
        listed = {"workflow": workflow, "workstream": workstream, "handler": handler}
        out.print_json(json.dumps({**listed, "config": config}))
        return
    table = Table(title=f"workflow {workflow} ({workstream}, handler {handler})")
    for column in ("option", "value"):
        table.add_column(column, overflow="fold")
    for key, value in sorted(config.items()):
        table.add_row(key, shown(value))
    out.print(table)
