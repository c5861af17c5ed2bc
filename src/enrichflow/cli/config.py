"""``enrichflow config set/list``: clients' settings for workflows (webhook URLs, tokens)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from enrichflow.cli.root import DatabaseUrl, JsonFlag, console, engine_for, fail, json_print, out
from enrichflow.db.engine import reading
from enrichflow.defaults import APOLLO
from enrichflow.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Connection

    from enrichflow.catalog.assignments import Assignments

config_app = typer.Typer(no_args_is_help=True, help="Clients' settings for workflows.")


def settings_merged(
    values: list[str],
    database_url: str | None,
    merge: Callable[[Connection, Assignments], dict[str, Any]],
) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` arguments and ``merge`` them in one transaction (migrating the
    database first); exit 2 naming what is wrong, with nothing written."""
    from enrichflow.catalog.assignments import parse_assignments
    from enrichflow.seed import init_database

    try:
        changes = parse_assignments(values)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    engine = engine_for(database_url)
    try:
        init_database(engine)
        with engine.begin() as conn:
            return merge(conn, changes)
    except (ConfigError, NotFoundError) as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()


def shown(value: Any) -> str:
    """A stored value as a person reads it: a list comma-separated, an object as JSON."""
    if isinstance(value, dict):
        return json.dumps(value)
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


@config_app.command("set")
def config_set(
    client: Annotated[str, typer.Argument(metavar="CLIENT", help="Client (created if new).")],
    workflow: Annotated[str, typer.Argument(metavar="WORKFLOW", help="Workflow (step) slug.")],
    values: Annotated[
        list[str],
        typer.Argument(
            metavar="KEY=VALUE...",
            help="Settings to merge: webhook_url=URL (repeat for a list), 'webhook_url+=URL' "
            "appends, auth_token=TOKEN, key= removes a key.",
        ),
    ],
    workstream: Annotated[str, typer.Option(help="Workstream slug.")] = APOLLO,
    database_url: DatabaseUrl = None,
) -> None:
    """Write a client's config for a workflow (values are merged into what is there)."""
    from enrichflow.catalog.client_configs import client_config_set, redact_config

    config = settings_merged(
        values,
        database_url,
        lambda conn, changes: client_config_set(conn, client, workflow, workstream, changes),
    )
    console.print(f"config of client {client!r} for {workflow} in {workstream}:")
    for key, value in sorted(redact_config(config).items()):
        console.print(f"  {key} = {shown(value)}")


@config_app.command("list")
def config_list(
    client: Annotated[str, typer.Argument(metavar="CLIENT")],
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """A client's workflow configs, with URLs and secrets redacted."""
    from enrichflow.catalog.client_configs import client_configs_list, redact_config
    from enrichflow.catalog.clients import client_get_id
    from enrichflow.seed import init_database

    engine = engine_for(database_url)
    try:
        init_database(engine)
        with reading(engine) as conn:
            client_id = client_get_id(conn, client)
            if client_id is None:
                raise NotFoundError(f"client {client!r} does not exist")
            rows = client_configs_list(conn, client_id)
    except NotFoundError as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()
    listed: list[dict[str, Any]] = [
        {
            "workflow": r["workflow"],
            "workstream": r["workstream"],
            "config": redact_config(r["config"]),
        }
        for r in rows
    ]
    if as_json:
        json_print(listed)
        return
    table = Table(title=f"client {client}: {len(listed)} workflow config(s)")
    for column in ("workflow", "workstream", "setting", "value"):
        table.add_column(column, overflow="fold")
    for row in listed:
        for key, value in sorted(row["config"].items()):
            table.add_row(row["workflow"], row["workstream"], key, shown(value))
    out.print(table)
