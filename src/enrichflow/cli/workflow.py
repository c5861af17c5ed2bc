"""``enrichflow workflow add/list/show/set/delete``: the workflows a pipeline can run, with
their own options (the same for every client)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from enrichflow.cli.config import settings_merged, shown
from enrichflow.cli.root import DatabaseUrl, JsonFlag, console, engine_for, fail, json_print, out
from enrichflow.db.engine import reading
from enrichflow.defaults import APOLLO
from enrichflow.errors import ConfigError, NotFoundError
from enrichflow.states import StepType

if TYPE_CHECKING:
    from enrichflow.catalog.registry import RegistryRow

workflow_app = typer.Typer(
    no_args_is_help=True,
    help="The workflows (steps) a pipeline can run, and their options, the same for every client.",
)


def _listed(row: RegistryRow) -> dict[str, Any]:
    return {
        "workflow": row.slug,
        "workstream": row.workstream_slug,
        "name": row.name,
        "type": row.type,
        "handler": row.handler,
        "description": row.description,
        "config": row.config,
    }


@workflow_app.command("add")
def workflow_add(
    slug: Annotated[
        str,
        typer.Argument(
            metavar="SLUG",
            help="The new workflow's slug, the step name pipelines use: lowercase letters, "
            "digits and _.",
        ),
    ],
    handler: Annotated[
        str,
        typer.Option(
            help="The handler that runs it: webhook (a Clay table), http, or any handler a "
            "built-in module or a loaded plugin provides.",
        ),
    ],
    workstream: Annotated[str, typer.Option(help="Workstream slug.")] = APOLLO,
    mode: Annotated[
        str | None,
        typer.Option(
            help="sync or async. By default what the handler runs as: async for webhook, sync "
            "for the others. A plugin's handler that returns Deferred needs async.",
        ),
    ] = None,
    options: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            metavar="KEY=VALUE",
            help="An option of the workflow, as workflow set takes it; repeat for several.",
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Display name (default: the slug in words).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the workflow does.")] = None,
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a workflow to a workstream, usable at once by pipelines and enrichflow run --steps.

    An unknown handler is refused with the list of loaded ones, and options are checked as
    workflow set checks them."""
    from enrichflow.catalog.workflow_options import options_from_text
    from enrichflow.catalog.workflow_setup import workflow_add as add
    from enrichflow.seed import init_database
    from enrichflow.steps.registry import handler_modes

    engine = engine_for(database_url)
    try:
        kind = None if mode is None else _mode(mode)
        config = options_from_text(options or [])
        init_database(engine)
        with engine.begin() as conn:
            row = add(
                conn,
                slug,
                workstream,
                handler,
                handler_modes(),
                mode=kind,
                name=name,
                description=description,
                config=config,
            )
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()
    if as_json:
        json_print(_listed(row))
        return
    console.print(
        f"added workflow {row.slug} to {row.workstream_slug}: {row.type}, handler {row.handler}"
    )


def _mode(text: str) -> StepType:
    try:
        return StepType(text.upper())
    except ValueError:
        raise ConfigError(f"--mode must be sync or async, got {text!r}") from None


@workflow_app.command("list")
def workflow_list(
    workstream: Annotated[
        str | None, typer.Option(help="Only this workstream's workflows.")
    ] = None,
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Every workflow, by workstream, with its type and handler."""
    from enrichflow.catalog.registry import registry_list
    from enrichflow.seed import init_database

    engine = engine_for(database_url)
    try:
        init_database(engine)
        with reading(engine) as conn:
            rows = [_listed(r) for r in registry_list(conn, workstream)]
    finally:
        engine.dispose()
    if as_json:
        json_print(rows)
        return
    table = Table(title=f"{len(rows)} workflow(s)")
    for column in ("workstream", "workflow", "type", "handler", "name"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["workstream"], row["workflow"], row["type"], row["handler"], row["name"])
    out.print(table)


@workflow_app.command("delete")
def workflow_delete(
    workflow: Annotated[str, typer.Argument(metavar="WORKFLOW", help="Workflow (step) slug.")],
    workstream: Annotated[str, typer.Option(help="Workstream slug.")] = APOLLO,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete a workflow and every client's config for it (webhook URLs, tokens).

    Refused while a saved pipeline runs it (the pipelines are named) and for a built-in
    workflow. Batches already launched keep running their own copy of it."""
    from enrichflow.catalog.workflow_setup import workflow_remove
    from enrichflow.seed import init_database

    engine = engine_for(database_url)
    try:
        init_database(engine)
        with engine.begin() as conn:
            configs = workflow_remove(conn, workflow, workstream)
    except (ConfigError, NotFoundError) as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()
    console.print(f"deleted workflow {workflow} of {workstream} and {configs} client config(s)")


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
        json_print({**listed, "config": config})
        return
    table = Table(title=f"workflow {workflow} ({workstream}, handler {handler})")
    for column in ("option", "value"):
        table.add_column(column, overflow="fold")
    for key, value in sorted(config.items()):
        table.add_row(key, shown(value))
    out.print(table)
