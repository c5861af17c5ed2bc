"""``enrichflow workstream add/list``: the families of workflows pipelines are built from."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from enrichflow.cli.root import DatabaseUrl, JsonFlag, console, engine_for, fail, json_print, out
from enrichflow.db.engine import reading
from enrichflow.errors import ConfigError

workstream_app = typer.Typer(
    no_args_is_help=True,
    help="Workstreams: families of workflows for one kind of input, each with its pipelines.",
)


@workstream_app.command("add")
def workstream_add(
    slug: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="The workstream's slug, as --workstream takes it: lowercase letters, digits "
            "and _.",
        ),
    ],
    title: Annotated[
        str | None, typer.Option("--name", help="Display name (default: NAME).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What its inputs are.")] = None,
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Add an empty workstream; give it workflows with enrichflow workflow add --workstream
    NAME."""
    from enrichflow.catalog.workstreams import workstream_add as add
    from enrichflow.seed import init_database

    engine = engine_for(database_url)
    try:
        init_database(engine)
        with engine.begin() as conn:
            row = add(conn, slug, title, description)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()
    if as_json:
        json_print(dict(row))
        return
    console.print(f"added workstream {row['slug']} ({row['name']})")


@workstream_app.command("list")
def workstream_list(as_json: JsonFlag = False, database_url: DatabaseUrl = None) -> None:
    """Every workstream, with how many workflows it has."""
    from enrichflow.catalog.registry import registry_list
    from enrichflow.catalog.workstreams import workstreams_list
    from enrichflow.seed import init_database

    engine = engine_for(database_url)
    try:
        init_database(engine)
        with reading(engine) as conn:
            workstreams = workstreams_list(conn)
            counts: dict[str, int] = {}
            for row in registry_list(conn):
                counts[row.workstream_slug] = counts.get(row.workstream_slug, 0) + 1
    finally:
        engine.dispose()
    rows: list[dict[str, Any]] = [{**w, "workflows": counts.get(w["slug"], 0)} for w in workstreams]
    if as_json:
        json_print(rows)
        return
    table = Table(title=f"{len(rows)} workstream(s)")
    for column in ("workstream", "name", "workflows", "description"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r["slug"], r["name"], str(r["workflows"]), r["description"] or "")
    out.print(table)
