"""``enrichflow pipeline save/list/show/delete``: clients' saved pipelines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.exc import IntegrityError

from enrichflow.cli.root import DatabaseUrl, JsonFlag, console, engine_for, fail, json_print, out
from enrichflow.db.engine import reading
from enrichflow.defaults import APOLLO
from enrichflow.errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from sqlalchemy import Connection

pipeline_app = typer.Typer(no_args_is_help=True, help="Clients' saved pipelines.")

KNOWN_CLIENTS_SHOWN = 20


def _unknown_client(conn: Connection, name: str, hint: str = "") -> typer.Exit:
    from enrichflow.catalog.clients import clients_names

    known = clients_names(conn, KNOWN_CLIENTS_SHOWN)
    listed = ", ".join(known) if known else "none yet"
    return fail(f"unknown client {name!r} (known: {listed}){hint}")


def _check_step_slugs(conn: Connection, workstream: str, steps: list[str]) -> None:
    """Exit 2 naming every step missing from the workstream's registry, with the known ones."""
    from enrichflow.catalog.registry import registry_slugs

    known = registry_slugs(conn, workstream)
    unknown = [s for s in steps if s not in known]
    if unknown and known:
        names = ", ".join(repr(s) for s in unknown)
        raise fail(
            f"unknown step{'s' if len(unknown) > 1 else ''} {names} for workstream "
            f"{workstream!r} (known: {', '.join(known)})"
        )


@pipeline_app.command("save")
def pipeline_save(
    client: Annotated[str, typer.Argument(metavar="CLIENT", help="Client the pipeline is for.")],
    name: Annotated[str, typer.Argument(metavar="NAME", help="Pipeline name.")],
    steps: Annotated[str, typer.Option(help="Comma-separated step slugs, in order.")],
    workstream: Annotated[str, typer.Option(help="Workstream slug.")] = APOLLO,
    create_client: Annotated[
        bool, typer.Option("--create-client", help="Create CLIENT if it does not exist.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Save (or replace) a client's named pipeline, after checking every step exists.

    An unknown client is refused unless --create-client is given, so a typo cannot file the
    pipeline under a new, empty client. Use it with: enrichflow run CSV --client CLIENT
    --pipeline NAME."""
    from enrichflow.catalog import pipelines
    from enrichflow.catalog.clients import client_get_id, client_get_or_create, name_clean
    from enrichflow.doctor import preflight_batch
    from enrichflow.launch import resolve_steps
    from enrichflow.seed import BUILTIN_PIPELINES, init_database

    try:
        name = name_clean(name, "pipeline name")
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    step_list = [s.strip() for s in steps.split(",") if s.strip()]
    if not step_list:
        raise fail("--steps is empty: give the step slugs, comma-separated")
    engine = engine_for(database_url)
    try:
        init_database(engine)
        with engine.begin() as conn:
            _check_step_slugs(conn, workstream, step_list)
            plan = resolve_steps(conn, client, workstream, None, step_list)
            client_id = client_get_id(conn, client)
            created = False
            if client_id is None:
                if not create_client:
                    raise _unknown_client(conn, client, "; pass --create-client to create it")
                client_id = client_get_or_create(conn, client)
                created = True
            _, previous = pipelines.pipeline_save(conn, client_id, workstream, name, step_list)
            missing_configs = [
                c.detail
                for c in preflight_batch(conn, client, workstream, plan.steps)
                if c.name == "async configs"
            ]
    except IntegrityError as exc:
        raise fail(
            f"pipeline {name!r} of client {client!r} was saved by someone else at the same "
            "time; run the command again to replace it"
        ) from exc
    except (ConfigError, NotFoundError) as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()
    if created:
        console.print(f"created client {client!r}")
    arrow = " → ".join(step_list)
    if previous is None:
        console.print(f"saved pipeline {name!r} of client {client!r} in {workstream}: {arrow}")
    elif previous == step_list:
        console.print(f"pipeline {name!r} of client {client!r} in {workstream} unchanged: {arrow}")
    else:
        console.print(
            f"updated pipeline {name!r} of client {client!r} in {workstream}: {arrow} "
            f"(was: {' → '.join(previous)})"
        )
    if name in BUILTIN_PIPELINES.get(workstream, {}):
        console.print(
            f"[yellow]note: for client {client!r} this replaces the built-in pipeline {name!r}[/]"
        )
    for detail in missing_configs:
        console.print(f"[yellow]before running it: {detail}[/]")


@pipeline_app.command("list")
def pipeline_list(
    client: Annotated[
        str | None, typer.Argument(metavar="[CLIENT]", help="Only this client's pipelines.")
    ] = None,
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Saved pipelines (of every client, or of CLIENT), with their steps."""
    from enrichflow.catalog.clients import client_get_id
    from enrichflow.catalog.pipelines import pipelines_list
    from enrichflow.seed import init_database

    engine = engine_for(database_url)
    try:
        init_database(engine)
        with reading(engine) as conn:
            if client is not None and client_get_id(conn, client) is None:
                raise _unknown_client(conn, client)
            rows: list[dict[str, Any]] = [
                {
                    "client": p["client"],
                    "workstream": p["workstream"],
                    "name": p["name"],
                    "steps": p["steps"],
                }
                for p in pipelines_list(conn, client=client)
            ]
    finally:
        engine.dispose()
    if as_json:
        json_print(rows)
        return
    title = f"client {client}" if client is not None else "every client"
    table = Table(title=f"{title}: {len(rows)} saved pipeline(s)")
    for column in ("client", "workstream", "pipeline", "steps"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["client"], row["workstream"], row["name"], ", ".join(row["steps"]))
    out.print(table)


@pipeline_app.command("show")
def pipeline_show(
    client: Annotated[str, typer.Argument(metavar="CLIENT")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    workstream: Annotated[str, typer.Option(help="Workstream slug.")] = APOLLO,
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """One pipeline's steps, in order, with their type (a saved one, else the built-in one)."""
    from enrichflow.catalog.clients import client_get_id
    from enrichflow.catalog.pipelines import pipeline_get_steps
    from enrichflow.catalog.registry import registry_get_many
    from enrichflow.seed import BUILTIN_PIPELINES, init_database

    engine = engine_for(database_url)
    try:
        init_database(engine)
        with reading(engine) as conn:
            if client_get_id(conn, client) is None:
                raise _unknown_client(conn, client)
            saved = pipeline_get_steps(conn, client, workstream, name)
            builtin = BUILTIN_PIPELINES.get(workstream, {}).get(name)
            if saved is None and builtin is None:
                raise fail(
                    f"no pipeline {name!r} for client {client!r} in workstream {workstream!r} "
                    f"(see: enrichflow pipeline list {client})"
                )
            steps = saved if saved is not None else list(builtin or [])
            types = {s: r.type for s, r in registry_get_many(conn, workstream, steps).items()}
    finally:
        engine.dispose()
    rows = [{"slug": s, "type": types.get(s, "MISSING")} for s in steps]
    listed = {
        "client": client,
        "workstream": workstream,
        "name": name,
        "builtin": saved is None,
        "steps": rows,
    }
    if as_json:
        json_print(listed)
        return
    origin = "built-in" if saved is None else "saved"
    table = Table(title=f"pipeline {name} ({origin}) for {client} in {workstream}")
    for column in ("#", "step", "type"):
        table.add_column(column)
    for i, step in enumerate(rows, 1):
        kind = step["type"] if step["type"] != "MISSING" else "[bold red]not in registry[/]"
        table.add_row(str(i), step["slug"], kind)
    out.print(table)


@pipeline_app.command("delete")
def pipeline_delete(
    client: Annotated[str, typer.Argument(metavar="CLIENT")],
    name: Annotated[str, typer.Argument(metavar="NAME")],
    workstream: Annotated[str, typer.Option(help="Workstream slug.")] = APOLLO,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete a saved pipeline (batches already launched from it keep their own copy)."""
    from enrichflow.catalog.clients import client_get_id
    from enrichflow.catalog.pipelines import pipeline_delete_named
    from enrichflow.seed import init_database

    engine = engine_for(database_url)
    try:
        init_database(engine)
        with engine.begin() as conn:
            client_id = client_get_id(conn, client)
            if client_id is None:
                raise _unknown_client(conn, client)
            gone = pipeline_delete_named(conn, client_id, workstream, name)
    finally:
        engine.dispose()
    if not gone:
        raise fail(f"no saved pipeline {name!r} for client {client!r} in {workstream!r}")
    console.print(f"deleted pipeline {name!r} of client {client!r} in {workstream}")
