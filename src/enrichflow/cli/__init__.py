"""The ``enrichflow`` command line: one module per command group, registered here in the order
``--help`` lists them. ``main`` is the console script."""

# Commands import their heavy modules (migrations, normalizers, ORM models, conductor, web
# stack) in their own bodies so that the CLI starts fast.

from __future__ import annotations

import sys

from enrichflow.cli import (
    conductor,
    config,
    controls,
    doctor,
    init,
    pipeline,
    run,
    sandbox,
    serve,
    workflow,
    workstream,
)
from enrichflow.cli.root import EXIT_BAD_INPUT, app, console
from enrichflow.errors import EnrichflowError

__all__ = ["app", "main"]

app.command()(init.init)
app.command()(run.run)
app.command()(run.status)
app.command()(run.retry)
app.command()(controls.cancel)
app.command()(controls.pause)
app.command()(controls.resume)
app.command()(controls.resend)
app.command()(conductor.conductor)
app.command()(doctor.doctor)
app.command()(run.export)
app.command()(serve.serve)
app.command()(sandbox.sandbox)
app.add_typer(config.config_app, name="config")
app.add_typer(workstream.workstream_app, name="workstream")
app.add_typer(workflow.workflow_app, name="workflow")
app.add_typer(pipeline.pipeline_app, name="pipeline")


def main() -> None:
    try:
        app()
    except EnrichflowError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        sys.exit(EXIT_BAD_INPUT)
