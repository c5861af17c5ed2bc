"""``enrichflow doctor``: the preflight of everything a run needs, as a table or JSON."""

from __future__ import annotations

import typer
from rich.table import Table

from enrichflow.cli.root import (
    EXIT_FAILED_ITEMS,
    EXIT_OK,
    DatabaseUrl,
    ExecutorOption,
    JsonFlag,
    engine_for,
    json_print,
    out,
)
from enrichflow.config import get_settings


def doctor(
    database_url: DatabaseUrl = None,
    executor_kind: ExecutorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Preflight: database, handlers, pipelines, ASYNC configs, public URL, executor
    credentials, Clay source limits. Exits 1 when any check fails."""
    from enrichflow.doctor import failing, run_checks

    engine = engine_for(database_url)
    try:
        checks = run_checks(engine, get_settings(), executor_kind)
    finally:
        engine.dispose()
    if as_json:
        json_print([{"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks])
    else:
        table = Table(title="enrichflow doctor")
        for column in ("check", "", "detail"):
            table.add_column(column)
        for c in checks:
            table.add_row(c.name, "[green]ok[/]" if c.ok else "[bold red]FAIL[/]", c.detail)
        out.print(table)
    raise typer.Exit(EXIT_FAILED_ITEMS if failing(checks) else EXIT_OK)
