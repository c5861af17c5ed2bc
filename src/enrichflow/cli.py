"""The ``enrichflow`` command line. Exit codes: 0 done, 1 some items failed, 2 bad input/config."""

# Commands import their heavy modules (migrations, normalizers, ORM models, conductor, web
# stack) in their own bodies so that the CLI starts fast. (Said here, not in the docstring
# above: that is the --help text.)

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from enrichflow.config import get_settings
from enrichflow.db.engine import make_engine, now_ms, reading, redact_db_url
from enrichflow.defaults import APOLLO, DEFAULT_MAX_SUBMISSIONS
from enrichflow.error_reporting import init_error_reporting
from enrichflow.errors import ConfigError, EnrichflowError, InputError, NotFoundError
from enrichflow.gc_tuning import tune_gc
from enrichflow.states import Status, StepType

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Connection, Engine

    from enrichflow.api.client_config import Assignments
    from enrichflow.conductor.loop import Conductor, TickReport
    from enrichflow.ingest.loader import IngestReport

# No local variables in tracebacks: they hold settings, webhook URLs and lead rows.
app = typer.Typer(
    add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_show_locals=False
)
console = Console(stderr=True)
out = Console()

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", envvar="ENRICHFLOW_DATABASE_URL", help="State store URL."),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]

EXIT_OK, EXIT_FAILED_ITEMS, EXIT_BAD_INPUT = 0, 1, 2


def _engine(database_url: str | None) -> Engine:
    return make_engine(database_url or get_settings().database_url)


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )


def _error_reporting() -> None:
    """Sentry for the processes that run the conductor, the runner or the API (only when
    SENTRY_DSN is set)."""
    try:
        init_error_reporting(get_settings())
    except ConfigError as exc:
        raise _fail(str(exc)) from exc


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    _setup_logging(verbose)
    tune_gc()


@app.command()
def init(database_url: DatabaseUrl = None) -> None:
    """Create or migrate the database and seed the built-in workstream and workflows."""
    from enrichflow.seed import init_database

    url = database_url or get_settings().database_url
    try:
        init_database(_engine(url))
    except EnrichflowError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"database ready: {redact_db_url(url)}")


def _executor(engine: Engine, port: int | None = None, kind: str | None = None) -> Any:
    """The executor (``--executor`` or ENRICHFLOW_EXECUTOR): the local one with the handlers'
    services (built in one place: :func:`enrichflow.api.runtime.build_services`; ``port`` is
    where callbacks are served), or Modal."""
    from enrichflow.api.runtime import build_services, public_url_for
    from enrichflow.executors.local import LocalExecutor

    settings = get_settings()
    if (kind or settings.executor) == "modal":
        from enrichflow.executors.modal import ModalExecutor

        return ModalExecutor(
            engine, settings.modal_app, max_containers=settings.modal_max_containers
        )
    try:
        services = build_services(engine, settings, public_url_for(settings, port))
    except ConfigError as exc:  # a weak ENRICHFLOW_SECRET_KEY among them
        raise _fail(str(exc)) from exc
    return LocalExecutor(engine, settings.workers, services)


ExecutorOption = Annotated[
    str | None,
    typer.Option("--executor", help="local or modal (default: ENRICHFLOW_EXECUTOR, else local)."),
]


def _conductor(engine: Engine, executor: Any) -> Conductor:
    from enrichflow.conductor.loop import Conductor

    settings = get_settings()
    return Conductor(engine, executor, settings.chunk_size, settings.poll_interval)


class _Interrupt:
    """First Ctrl-C stops the loop cleanly (state stays in the database); the second kills."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        console.print("[yellow]stopping after the chunks in flight; Ctrl-C again to abort[/]")


PROGRESS_SECONDS = 0.25
"""Shortest interval between two refreshes of `enrichflow run`'s progress bars."""


def _drive(
    engine: Engine, batch_id: int, quiet: bool, serve_on: tuple[str, int] | None = None
) -> None:
    """Run the conductor in this process until the batch is finished, with a bar per step.

    ``serve_on``: also serve the callback endpoint there while it runs (ASYNC steps)."""
    from enrichflow.api.runtime import CallbackServer
    from enrichflow.db.models import Batch, BatchStep
    from enrichflow.db.queries import batch_counts

    executor = _executor(engine, serve_on[1] if serve_on else None)
    conductor = _conductor(engine, executor)
    server: CallbackServer | None = None
    if serve_on is not None:
        from enrichflow.api.app import create_app  # the web stack, only when serving

        try:
            app = create_app(engine, get_settings(), executor.wake)
            server = CallbackServer(app, *serve_on)
            server.__enter__()
        except ConfigError as exc:
            executor.close()
            raise _fail(str(exc)) from exc
        if not quiet:
            console.print(
                f"serving callbacks on http://{serve_on[0]}:{serve_on[1]}/callbacks/ "
                f"(public URL {executor.services['public_url']})"
            )
    interrupt = _Interrupt()
    previous = signal.signal(signal.SIGINT, interrupt)
    with reading(engine) as conn:
        steps = list(
            conn.execute(
                select(BatchStep.step_name)
                .where(BatchStep.batch_id == batch_id)
                .order_by(BatchStep.position)
            ).scalars()
        )
        total = conn.execute(select(Batch.item_count).where(Batch.id == batch_id)).scalar_one()
    progress = Progress(
        TextColumn("{task.description:<40}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
    )
    tasks = {step: progress.add_task(step, total=total, failed=0) for step in steps}
    last = 0.0
    wait = PROGRESS_SECONDS

    def refresh(_: TickReport | None = None) -> None:
        nonlocal last, wait
        if quiet or time.monotonic() - last < wait:
            return
        started = time.monotonic()
        # A read-only connection: on SQLite a plain one would hold the writer lock (BEGIN
        # IMMEDIATE) while it counts, and every runner thread would wait on the bars.
        with reading(engine) as conn:
            counts = batch_counts(conn, batch_id)
        last = time.monotonic()
        # Counting walks every state of the batch (0.17 s for 200,000 on SQLite), so the
        # bars take at most a tenth of the run, however large the batch.
        wait = max(PROGRESS_SECONDS, 9 * (last - started))
        for step, task in tasks.items():
            c = counts.get(step, {})
            done = sum(c.get(s.value, 0) for s in (Status.COMPLETED, Status.SKIPPED, Status.FAILED))
            progress.update(task, completed=done, failed=c.get(Status.FAILED.value, 0))

    try:
        with progress:
            conductor.run_until_finished([batch_id], refresh, lambda: interrupt.requested)
            last = 0.0
            refresh()
    finally:
        executor.close()
        if server is not None:
            server.__exit__(None, None, None)
        signal.signal(signal.SIGINT, previous)
    for failure in executor.failures:
        console.print(f"[red]a chunk failed outside its handlers:[/] {failure}")
    if interrupt.requested:
        console.print(
            f"interrupted; batch {batch_id} resumes with: enrichflow conductor --until-idle"
        )
        raise typer.Exit(130)


def _require_batch(conn: Connection, batch_id: int) -> None:
    from enrichflow.db.models import Batch

    if conn.execute(select(Batch.id).where(Batch.id == batch_id)).first() is None:
        raise _fail(f"batch {batch_id} does not exist")


def _summary(engine: Engine, batch_id: int) -> dict[str, Any]:
    from enrichflow.db.models import Batch, WorkflowState
    from enrichflow.db.queries import batch_counts, status_in

    with reading(engine) as conn:
        batch = conn.execute(select(Batch.__table__).where(Batch.id == batch_id)).one()
        counts = batch_counts(conn, batch_id)
        failed = conn.execute(
            select(WorkflowState.item_id, WorkflowState.step_name, WorkflowState.error)
            .where(WorkflowState.batch_id == batch_id, status_in(Status.FAILED))
            .order_by(WorkflowState.item_id)
            .limit(50)
        ).all()
        steps = [s["step_name"] for s in batch.blueprint]
    return {
        "batch_id": batch_id,
        "status": batch.status,
        "items": batch.item_count,
        "steps": {step: counts.get(step, {}) for step in steps},
        "failed": [{"item_id": i, "step": s, "error": e} for i, s, e in failed],
    }


def _print_summary(summary: dict[str, Any]) -> None:
    table = Table(
        title=f"batch {summary['batch_id']}: {summary['status']} ({summary['items']} items)"
    )
    table.add_column("step", overflow="fold")
    # Only the statuses some step has (completed and failed always): six mostly empty
    # columns would crowd the step names out of an 80-column terminal.
    seen = {status for counts in summary["steps"].values() for status, n in counts.items() if n}
    always = {Status.COMPLETED.value, Status.FAILED.value}
    statuses = [s.value for s in Status if s.value in seen | always]
    for status in statuses:
        table.add_column(status.lower(), justify="right")
    for step, counts in summary["steps"].items():
        table.add_row(step, *[str(counts.get(s, 0) or "") for s in statuses])
    console.print(table)
    for f in summary["failed"]:
        console.print(f"[red]item {f['item_id']}[/] failed at [bold]{f['step']}[/]: {f['error']}")


def _exit_code(summary: dict[str, Any]) -> int:
    failed = sum(c.get(Status.FAILED.value, 0) for c in summary["steps"].values())
    return EXIT_FAILED_ITEMS if failed else EXIT_OK


def _ingest_with_progress(engine: Engine, csv_path: Path, quiet: bool) -> IngestReport:
    """Ingest with a live row count (the total is unknown until the file is read)."""
    from enrichflow.ingest.loader import ingest_csv

    with Progress(
        SpinnerColumn(),
        TextColumn("ingesting {task.fields[name]}: {task.completed:,.0f} rows"),
        TimeElapsedColumn(),
        console=console,
        disable=quiet,
        transient=True,
    ) as progress:
        task = progress.add_task("ingest", total=None, name=csv_path.name)
        return ingest_csv(
            engine, csv_path, on_progress=lambda rows: progress.update(task, completed=rows)
        )


@app.command()
def run(
    csv_path: Annotated[Path, typer.Argument(metavar="CSV", help="Lead list to enrich.")],
    client: Annotated[
        str, typer.Option(help="Client the batch belongs to (created if new).")
    ] = "default",
    workstream: Annotated[str, typer.Option(help="Workstream slug.")] = APOLLO,
    pipeline: Annotated[str | None, typer.Option(help="Saved or built-in pipeline name.")] = None,
    steps: Annotated[
        str | None, typer.Option(help="Comma-separated step slugs instead of a pipeline.")
    ] = None,
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Write the export here (.csv or .jsonl).")
    ] = None,
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
    host: Annotated[
        str, typer.Option(help="Interface for the callback endpoint (ASYNC steps only).")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port for the callback endpoint (ASYNC steps only).")
    ] = 8000,
) -> None:
    """Ingest CSV, launch it through a pipeline, run it to the end, and export the leads.

    With ASYNC (Clay) steps in the pipeline, the callback endpoint is served on --port for as
    long as the run lasts, and ENRICHFLOW_PUBLIC_URL must be set to a URL that reaches it (a
    loopback one is enough for the local Clay sandbox); the launch is refused without it."""
    from enrichflow.db.models import BatchStep
    from enrichflow.export import write_export
    from enrichflow.launch import check_launch, launch
    from enrichflow.seed import DEFAULT_PIPELINE, init_database

    _error_reporting()
    step_list = [s.strip() for s in steps.split(",") if s.strip()] if steps else None
    if pipeline is None and not step_list:
        pipeline = DEFAULT_PIPELINE
    try:
        engine = _engine(database_url)
        init_database(engine)
        with reading(engine) as conn:  # refuse before ingesting: no orphan upload
            check_launch(conn, client, workstream, pipeline, step_list)
        report = _ingest_with_progress(engine, csv_path, quiet=as_json)
        batch_id = launch(
            engine,
            client,
            workstream,
            report.upload_id,
            pipeline if not step_list else None,
            step_list,
            create_client=True,
        )
    except (ConfigError, InputError, NotFoundError) as exc:
        raise _fail(str(exc)) from exc
    if not as_json:
        console.print(
            f"ingested {report.rows} rows from {report.filename} "
            f"({report.encoding}, {report.delimiter!r}); {len(report.bad_rows)} unreadable"
        )
        for bad in report.bad_rows[:20]:
            console.print(f"  [yellow]line {bad.line_number}[/]: {bad.reason}")
        if report.unmapped_columns:
            console.print(f"  columns kept but not mapped: {', '.join(report.unmapped_columns)}")
    with reading(engine) as conn:
        has_async = (
            conn.execute(
                select(BatchStep.position)
                .where(BatchStep.batch_id == batch_id, BatchStep.type == StepType.ASYNC.value)
                .limit(1)
            ).first()
            is not None
        )
    _drive(engine, batch_id, quiet=as_json, serve_on=(host, port) if has_async else None)
    summary = _summary(engine, batch_id)
    summary["ingest"] = {
        "rows": report.rows,
        "bad_rows": len(report.bad_rows),
        "upload_id": report.upload_id,
    }
    if out_path is not None:
        fmt = "jsonl" if out_path.suffix == ".jsonl" else "csv"
        summary["exported"] = write_export(engine, batch_id, out_path, fmt)
        if not as_json:
            console.print(f"wrote {summary['exported']} rows to {out_path}")
    if as_json:
        out.print_json(json.dumps(summary))
    else:
        _print_summary(summary)
    raise typer.Exit(_exit_code(summary))


@app.command()
def status(
    batch_id: Annotated[int, typer.Argument(metavar="BATCH")],
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Counts per step and status for a batch, its failed items, and Clay webhook sources
    close to their 50,000-submission lifetime limit."""
    from enrichflow.webhooks.ledger import sources_near_limit

    engine = _engine(database_url)
    with reading(engine) as conn:
        _require_batch(conn, batch_id)
        near = sources_near_limit(conn)
    summary = _summary(engine, batch_id)
    summary["webhook_sources_near_limit"] = [
        {"webhook": s.url_redacted, "submissions": s.submissions} for s in near
    ]
    if as_json:
        out.print_json(json.dumps(summary))
        return
    _print_summary(summary)
    for source in near:
        console.print(
            f"[yellow]webhook {source.url_redacted} has taken {source.submissions:,} of its "
            f"{DEFAULT_MAX_SUBMISSIONS:,} submissions: add a fresh webhook URL "
            "(enrichflow config set ... 'webhook_url+=<url>')[/]"
        )


@app.command()
def retry(
    batch_id: Annotated[int, typer.Argument(metavar="BATCH")],
    step: Annotated[str | None, typer.Option(help="Only this step.")] = None,
    item: Annotated[int | None, typer.Option(help="Only this item.")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Move FAILED states back to PENDING with a fresh attempt budget."""
    from enrichflow.db.queries import states_retry_failed

    engine = _engine(database_url)
    with engine.begin() as conn:
        _require_batch(conn, batch_id)
        moved = states_retry_failed(conn, batch_id, now_ms(), step, item)
    console.print(
        f"{moved} failed state(s) of batch {batch_id} are PENDING again; "
        "run `enrichflow conductor --until-idle` to process them"
    )


@app.command()
def conductor(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit when no batch is running.")
    ] = False,
    database_url: DatabaseUrl = None,
    executor_kind: ExecutorOption = None,
) -> None:
    """Drive every unfinished batch (after a crash, this finishes them)."""
    from enrichflow.seed import init_database

    if executor_kind not in (None, "local", "modal"):
        raise _fail(f"unknown executor {executor_kind!r}: local or modal")
    _error_reporting()
    engine = _engine(database_url)
    init_database(engine)
    executor = _executor(engine, kind=executor_kind)
    loop = _conductor(engine, executor)
    interrupt = _Interrupt()
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        if until_idle:
            loop.run_until_finished(interrupted=lambda: interrupt.requested)
        else:
            loop.run(lambda: interrupt.requested)
    finally:
        executor.close()
    console.print("conductor stopped")


@app.command()
def doctor(
    database_url: DatabaseUrl = None,
    executor_kind: ExecutorOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Preflight: database, handlers, pipelines, ASYNC configs, public URL, executor
    credentials, Clay source limits. Exits 1 when any check fails."""
    from enrichflow.doctor import failing, run_checks

    engine = _engine(database_url)
    try:
        checks = run_checks(engine, get_settings(), executor_kind)
    finally:
        engine.dispose()
    if as_json:
        out.print_json(
            json.dumps([{"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks])
        )
    else:
        table = Table(title="enrichflow doctor")
        for column in ("check", "", "detail"):
            table.add_column(column)
        for c in checks:
            table.add_row(c.name, "[green]ok[/]" if c.ok else "[bold red]FAIL[/]", c.detail)
        out.print(table)
    raise typer.Exit(EXIT_FAILED_ITEMS if failing(checks) else EXIT_OK)


@app.command()
def export(
    batch_id: Annotated[int, typer.Argument(metavar="BATCH")],
    out_path: Annotated[Path, typer.Option("--out", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
    database_url: DatabaseUrl = None,
) -> None:
    """Write a batch's export: one row per item, failed items included."""
    from enrichflow.export import write_export

    engine = _engine(database_url)
    try:
        n = write_export(engine, batch_id, out_path, fmt)
    except InputError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"wrote {n} rows to {out_path}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the dashboard (/clients), the JSON API (/api/), callbacks (/callbacks/TOKEN)
    and /healthz, and run the conductor."""
    from enrichflow.api.auth import check_admin_password
    from enrichflow.api.runtime import public_url_for, serve_forever
    from enrichflow.executors.local import LocalExecutor
    from enrichflow.secret_key import resolve_secret_key
    from enrichflow.seed import init_database

    _error_reporting()
    engine = _engine(database_url)
    init_database(engine)
    settings = get_settings()
    try:
        check_admin_password(settings)
        key = resolve_secret_key(engine, settings)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    console.print(f"signing key: from the {key.source}")
    if settings.admin_password is None or not settings.admin_password.get_secret_value():
        console.print(
            "[yellow]ENRICHFLOW_ADMIN_PASSWORD is not set: the dashboard refuses every login "
            "(callbacks and /healthz work)[/]"
        )
    console.print(
        f"serving on http://{host}:{port}; callbacks are sent to "
        f"{public_url_for(settings, port)}/callbacks/…"
    )
    serve_forever(
        engine,
        settings,
        host,
        port,
        lambda services: LocalExecutor(engine, settings.workers, services),
    )


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    delay: Annotated[float, typer.Option(help="Seconds before calling back.")] = 0.5,
    fail_rate: Annotated[float, typer.Option(help="Share of rows answered 500.")] = 0.0,
    duplicate_rate: Annotated[float, typer.Option(help="Share of rows called back twice.")] = 0.0,
    late_seconds: Annotated[float, typer.Option(help="Extra delay for late rows.")] = 0.0,
    late_rate: Annotated[float, typer.Option(help="Share of rows that are late.")] = 1.0,
    auth_token: Annotated[
        str | None, typer.Option(help="Require this x-clay-webhook-auth header.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fault injection.")] = 0,
) -> None:
    """A local stand-in for a Clay table: POST rows to http://HOST:PORT/webhook/TABLE."""
    console.print(
        f"Clay sandbox on http://{host}:{port}/webhook/<table> "
        "(a table name containing 'person' returns person data, any other company data)"
    )
    from enrichflow.webhooks.sandbox import run_sandbox

    try:
        run_sandbox(
            host,
            port,
            delay_seconds=delay,
            fail_rate=fail_rate,
            duplicate_rate=duplicate_rate,
            late_seconds=late_seconds,
            late_rate=late_rate,
            auth_token=auth_token,
            seed=seed,
        )
    except ValueError as exc:
        raise _fail(str(exc)) from exc


config_app = typer.Typer(no_args_is_help=True, help="Clients' settings for workflows.")
app.add_typer(config_app, name="config")


def _settings_merged(
    values: list[str],
    database_url: str | None,
    merge: Callable[[Connection, Assignments], dict[str, Any]],
) -> dict[str, Any]:
    """Parse ``KEY=VALUE`` arguments and ``merge`` them in one transaction (migrating the
    database first); exit 2 naming what is wrong, with nothing written."""
    from enrichflow.api.client_config import parse_assignments
    from enrichflow.seed import init_database

    try:
        changes = parse_assignments(values)
    except ConfigError as exc:
        raise _fail(str(exc)) from exc
    engine = _engine(database_url)
    try:
        init_database(engine)
        with engine.begin() as conn:
            return merge(conn, changes)
    except (ConfigError, NotFoundError) as exc:
        raise _fail(str(exc)) from exc
    finally:
        engine.dispose()


def _shown(value: Any) -> str:
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
    from enrichflow.api.client_config import client_config_set, redact_config

    config = _settings_merged(
        values,
        database_url,
        lambda conn, changes: client_config_set(conn, client, workflow, workstream, changes),
    )
    console.print(f"config of client {client!r} for {workflow} in {workstream}:")
    for key, value in sorted(redact_config(config).items()):
        console.print(f"  {key} = {_shown(value)}")


@config_app.command("list")
def config_list(
    client: Annotated[str, typer.Argument(metavar="CLIENT")],
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """A client's workflow configs, with URLs and secrets redacted."""
    from enrichflow.api.client_config import client_configs_list, redact_config
    from enrichflow.seed import init_database

    engine = _engine(database_url)
    try:
        init_database(engine)
        with reading(engine) as conn:
            rows = client_configs_list(conn, client)
    except NotFoundError as exc:
        raise _fail(str(exc)) from exc
    finally:
        engine.dispose()
    shown: list[dict[str, Any]] = [
        {"workflow": w, "workstream": s, "config": redact_config(c)} for w, s, c in rows
    ]
    if as_json:
        out.print_json(json.dumps(shown))
        return
    table = Table(title=f"client {client}: {len(shown)} workflow config(s)")
    for column in ("workflow", "workstream", "setting", "value"):
        table.add_column(column, overflow="fold")
    for row in shown:
        for key, value in sorted(row["config"].items()):
            table.add_row(row["workflow"], row["workstream"], key, _shown(value))
    out.print(table)


workflow_app = typer.Typer(
    no_args_is_help=True, help="Workflows' own options, the same for every client."
)
app.add_typer(workflow_app, name="workflow")


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
    from enrichflow.api.workflow_config import workflow_config_set

    config = _settings_merged(
        values,
        database_url,
        lambda conn, changes: workflow_config_set(conn, workflow, workstream, changes),
    )
    console.print(f"options of workflow {workflow} in {workstream}:")
    for key, value in sorted(config.items()):
        console.print(f"  {key} = {_shown(value)}")


@workflow_app.command("show")
def workflow_show(
    workflow: Annotated[str, typer.Argument(metavar="WORKFLOW", help="Workflow (step) slug.")],
    workstream: Annotated[str, typer.Option(help="Workstream slug.")] = APOLLO,
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """A workflow's handler and options (unset ones take their defaults)."""
    from enrichflow.api.workflow_config import workflow_config_get
    from enrichflow.seed import init_database

    engine = _engine(database_url)
    try:
        init_database(engine)
        with reading(engine) as conn:
            handler, config = workflow_config_get(conn, workflow, workstream)
    except NotFoundError as exc:
        raise _fail(str(exc)) from exc
    finally:
        engine.dispose()
    if as_json:
        shown = {"workflow": workflow, "workstream": workstream, "handler": handler}
        out.print_json(json.dumps({**shown, "config": config}))
        return
    table = Table(title=f"workflow {workflow} ({workstream}, handler {handler})")
    for column in ("option", "value"):
        table.add_column(column, overflow="fold")
    for key, value in sorted(config.items()):
        table.add_row(key, _shown(value))
    out.print(table)


pipeline_app = typer.Typer(no_args_is_help=True, help="Clients' saved pipelines.")
app.add_typer(pipeline_app, name="pipeline")

PIPELINE_NAME_MAX = 200


def _pipeline_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise _fail("the pipeline name must not be empty")
    if len(cleaned) > PIPELINE_NAME_MAX:
        raise _fail(f"the pipeline name must be at most {PIPELINE_NAME_MAX} characters")
    if any(ord(c) < 32 for c in cleaned):
        raise _fail("the pipeline name must not contain control characters")
    return cleaned


def _client_id(conn: Connection, name: str) -> int | None:
    from enrichflow.db.models import Client

    return conn.execute(select(Client.id).where(Client.name == name)).scalar_one_or_none()


def _unknown_client(conn: Connection, name: str, hint: str = "") -> typer.Exit:
    from enrichflow.db.models import Client

    known = list(conn.execute(select(Client.name).order_by(Client.name).limit(20)).scalars())
    listed = ", ".join(known) if known else "none yet"
    return _fail(f"unknown client {name!r} (known: {listed}){hint}")


def _check_step_slugs(conn: Connection, workstream: str, steps: list[str]) -> None:
    """Exit 2 naming every step missing from the workstream's registry, with the known ones."""
    from enrichflow.db.models import EnrichmentRegistry

    known = list(
        conn.execute(
            select(EnrichmentRegistry.slug)
            .where(EnrichmentRegistry.workstream_slug == workstream)
            .order_by(EnrichmentRegistry.slug)
        ).scalars()
    )
    unknown = [s for s in steps if s not in known]
    if unknown and known:
        names = ", ".join(repr(s) for s in unknown)
        raise _fail(
            f"unknown step{'s' if len(unknown) > 1 else ''} {names} for workstream "
            f"{workstream!r} (known: {', '.join(known)})"
        )


def _saved_steps(conn: Connection, client_id: int, workstream: str, name: str) -> Any:
    from enrichflow.db.models import EnrichmentPipeline

    return conn.execute(
        select(EnrichmentPipeline.id, EnrichmentPipeline.steps).where(
            EnrichmentPipeline.client_id == client_id,
            EnrichmentPipeline.workstream_slug == workstream,
            EnrichmentPipeline.name == name,
        )
    ).first()


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
    from enrichflow.db.models import EnrichmentPipeline
    from enrichflow.doctor import preflight_batch
    from enrichflow.launch import client_get_or_create, resolve_steps
    from enrichflow.seed import BUILTIN_PIPELINES, init_database

    name = _pipeline_name(name)
    step_list = [s.strip() for s in steps.split(",") if s.strip()]
    if not step_list:
        raise _fail("--steps is empty: give the step slugs, comma-separated")
    engine = _engine(database_url)
    try:
        init_database(engine)
        with engine.begin() as conn:
            _check_step_slugs(conn, workstream, step_list)
            rows, _ = resolve_steps(conn, client, workstream, None, step_list)
            client_id = _client_id(conn, client)
            created = False
            if client_id is None:
                if not create_client:
                    raise _unknown_client(conn, client, "; pass --create-client to create it")
                client_id = client_get_or_create(conn, client)
                created = True
            existing = _saved_steps(conn, client_id, workstream, name)
            if existing is not None:
                conn.execute(
                    update(EnrichmentPipeline)
                    .where(EnrichmentPipeline.id == existing.id)
                    .values(steps=step_list)
                )
            else:
                conn.execute(
                    insert(EnrichmentPipeline).values(
                        client_id=client_id,
                        workstream_slug=workstream,
                        name=name,
                        steps=step_list,
                    )
                )
            missing_configs = [
                c.detail
                for c in preflight_batch(conn, client, workstream, rows)
                if c.name == "async configs"
            ]
    except IntegrityError as exc:
        raise _fail(
            f"pipeline {name!r} of client {client!r} was saved by someone else at the same "
            "time; run the command again to replace it"
        ) from exc
    except (ConfigError, NotFoundError) as exc:
        raise _fail(str(exc)) from exc
    finally:
        engine.dispose()
    if created:
        console.print(f"created client {client!r}")
    arrow = " → ".join(step_list)
    if existing is None:
        console.print(f"saved pipeline {name!r} of client {client!r} in {workstream}: {arrow}")
    elif list(existing.steps or []) == step_list:
        console.print(f"pipeline {name!r} of client {client!r} in {workstream} unchanged: {arrow}")
    else:
        console.print(
            f"updated pipeline {name!r} of client {client!r} in {workstream}: {arrow} "
            f"(was: {' → '.join(existing.steps or [])})"
        )
    if name in BUILTIN_PIPELINES.get(workstream, {}):
        console.print(
            f"[yellow]note: for client {client!r} this replaces the built-in pipeline {name!r}[/]"
        )
    for detail in missing_configs:
        console.print(f"[yellow]before running it: {detail}[/]")


def _pipelines_of(
    conn: Connection, client: str | None, workstream: str | None = None, name: str | None = None
) -> list[dict[str, Any]]:
    from enrichflow.db.models import Client, EnrichmentPipeline

    query = (
        select(
            Client.name,
            EnrichmentPipeline.workstream_slug,
            EnrichmentPipeline.name,
            EnrichmentPipeline.steps,
        )
        .join(Client, Client.id == EnrichmentPipeline.client_id)
        .order_by(Client.name, EnrichmentPipeline.workstream_slug, EnrichmentPipeline.name)
    )
    if client is not None:
        query = query.where(Client.name == client)
    if workstream is not None:
        query = query.where(EnrichmentPipeline.workstream_slug == workstream)
    if name is not None:
        query = query.where(EnrichmentPipeline.name == name)
    return [
        {"client": c, "workstream": w, "name": n, "steps": list(s or [])}
        for c, w, n, s in conn.execute(query)
    ]


@pipeline_app.command("list")
def pipeline_list(
    client: Annotated[
        str | None, typer.Argument(metavar="[CLIENT]", help="Only this client's pipelines.")
    ] = None,
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Saved pipelines (of every client, or of CLIENT), with their steps."""
    from enrichflow.seed import init_database

    engine = _engine(database_url)
    try:
        init_database(engine)
        with reading(engine) as conn:
            if client is not None and _client_id(conn, client) is None:
                raise _unknown_client(conn, client)
            rows = _pipelines_of(conn, client)
    finally:
        engine.dispose()
    if as_json:
        out.print_json(json.dumps(rows))
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
    from enrichflow.db.models import EnrichmentRegistry
    from enrichflow.seed import BUILTIN_PIPELINES, init_database

    engine = _engine(database_url)
    try:
        init_database(engine)
        with reading(engine) as conn:
            if _client_id(conn, client) is None:
                raise _unknown_client(conn, client)
            saved = _pipelines_of(conn, client, workstream, name)
            builtin = BUILTIN_PIPELINES.get(workstream, {}).get(name)
            if not saved and builtin is None:
                raise _fail(
                    f"no pipeline {name!r} for client {client!r} in workstream {workstream!r} "
                    f"(see: enrichflow pipeline list {client})"
                )
            steps = saved[0]["steps"] if saved else list(builtin or [])
            types = dict(
                conn.execute(
                    select(EnrichmentRegistry.slug, EnrichmentRegistry.type).where(
                        EnrichmentRegistry.workstream_slug == workstream,
                        EnrichmentRegistry.slug.in_(steps),
                    )
                ).all()
            )
    finally:
        engine.dispose()
    rows = [{"slug": s, "type": types.get(s, "MISSING")} for s in steps]
    shown = {
        "client": client,
        "workstream": workstream,
        "name": name,
        "builtin": not saved,
        "steps": rows,
    }
    if as_json:
        out.print_json(json.dumps(shown))
        return
    origin = "built-in" if not saved else "saved"
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
    from enrichflow.db.models import EnrichmentPipeline
    from enrichflow.seed import init_database

    engine = _engine(database_url)
    try:
        init_database(engine)
        with engine.begin() as conn:
            client_id = _client_id(conn, client)
            if client_id is None:
                raise _unknown_client(conn, client)
            gone = conn.execute(
                delete(EnrichmentPipeline).where(
                    EnrichmentPipeline.client_id == client_id,
                    EnrichmentPipeline.workstream_slug == workstream,
                    EnrichmentPipeline.name == name,
                )
            ).rowcount
    finally:
        engine.dispose()
    if not gone:
        raise _fail(f"no saved pipeline {name!r} for client {client!r} in {workstream!r}")
    console.print(f"deleted pipeline {name!r} of client {client!r} in {workstream}")


def main() -> None:
    try:
        app()
    except EnrichflowError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        sys.exit(EXIT_BAD_INPUT)
