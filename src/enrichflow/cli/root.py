"""The root Typer app, the options and exits every command shares, and the engine it opens."""

from __future__ import annotations

import json
import logging
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from sqlalchemy import Engine

from enrichflow.config import get_settings
from enrichflow.db.engine import make_engine
from enrichflow.error_reporting import init_error_reporting
from enrichflow.errors import ConfigError
from enrichflow.gc_tuning import tune_gc

HELP = (
    "The enrichflow command line. Exit codes: 0 done, 1 some items failed or rows of the file "
    "were rejected, 2 bad input/config."
)

# No local variables in tracebacks: they hold settings, webhook URLs and lead rows. Help is
# rendered as Markdown so a docstring's wrapped lines read as one paragraph.
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help=HELP,
    pretty_exceptions_show_locals=False,
    rich_markup_mode="markdown",
)
console = Console(stderr=True)
out = Console()

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", envvar="ENRICHFLOW_DATABASE_URL", help="State store URL."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]
ExecutorOption = Annotated[
    str | None,
    typer.Option("--executor", help="local or modal (default: ENRICHFLOW_EXECUTOR, else local)."),
]

EXIT_OK, EXIT_FAILED_ITEMS, EXIT_BAD_INPUT = 0, 1, 2


def json_print(value: Any) -> None:
    """``value`` as plain JSON on stdout, never through Rich, so neither a terminal nor
    FORCE_COLOR adds colour codes and a pipe gets exactly JSON; everything else a command
    says goes to stderr (``console``)."""
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    sys.stdout.flush()


def engine_for(database_url: str | None) -> Engine:
    return make_engine(database_url or get_settings().database_url)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def error_reporting() -> None:
    """Sentry for the processes that run the conductor, the runner or the API (only when
    SENTRY_DSN is set)."""
    try:
        init_error_reporting(get_settings())
    except ConfigError as exc:
        raise fail(str(exc)) from exc


def _print_version(requested: bool) -> None:
    if requested:
        from enrichflow import __version__

        sys.stdout.write(f"enrichflow {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the installed version (from the package metadata) and exit.",
        ),
    ] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    tune_gc()
