"""``enrichflow run`` (ingest, launch, drive, export), ``status``, ``retry`` and ``export``."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
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

from enrichflow.cli.conductor import Interrupt, conductor_for, executor_for
from enrichflow.cli.root import (
    EXIT_FAILED_ITEMS,
    EXIT_OK,
    DatabaseUrl,
    JsonFlag,
    console,
    engine_for,
    error_reporting,
    fail,
    json_print,
)
from enrichflow.config import get_settings
from enrichflow.db.engine import now_ms, reading
from enrichflow.defaults import APOLLO, DEFAULT_MAX_SUBMISSIONS
from enrichflow.errors import ConfigError, InputError, NotFoundError
from enrichflow.states import Status

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from enrichflow.conductor.loop import TickReport
    from enrichflow.ingest.loader import IngestReport

PROGRESS_SECONDS = 0.25
"""Shortest interval between two refreshes of `enrichflow run`'s progress bars."""
REJECTED_SHOWN = 20
"""How many rejected rows `enrichflow run` lists on the terminal; --json lists every one."""


def drive(
    engine: Engine,
    batch_id: int,
    steps: list[str],
    total: int,
    quiet: bool,
    serve_on: tuple[str, int] | None = None,
    named_database: bool = False,
) -> None:
    """Run the conductor in this process until the batch is finished, with a bar per step.

    ``serve_on``: also serve the callback endpoint there while it runs (ASYNC steps);
    ``named_database``: the database was named by ``--database-url``, not the environment
    (for the resume advice)."""
    from enrichflow.api.server import CallbackServer
    from enrichflow.db.states import batch_counts

    executor = executor_for(engine, batch_ids=[batch_id])
    conductor = conductor_for(engine, executor)
    server: CallbackServer | None = None
    if serve_on is not None:
        from enrichflow.api.app import create_app  # the web stack, only when serving

        try:
            app = create_app(engine, get_settings(), executor.wake)
            server = CallbackServer(app, *serve_on)
            server.__enter__()
        except ConfigError as exc:
            executor.close()
            raise fail(str(exc)) from exc
        if not quiet:
            console.print(
                f"serving callbacks on http://{serve_on[0]}:{serve_on[1]}/callbacks/ "
                f"(public URL {executor.services['public_url']})"
            )
    interrupt = Interrupt()
    previous = signal.signal(signal.SIGINT, interrupt)
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
        # Counting walks every state of the batch, so the bars take at most a tenth of the
        # run, however large the batch.
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
            f"interrupted; batch {batch_id} resumes with: {resume_command(engine, serve_on, named_database)}"
        )
        raise typer.Exit(130)


def resume_command(engine: Engine, serve_on: tuple[str, int] | None, named_database: bool) -> str:
    """The command that finishes an interrupted run's batch. With ASYNC steps that is ``serve``
    on the run's own address, since Clay calls back there and ``conductor`` receives nothing."""
    database = ""
    if named_database:  # else the environment that named it names it again
        database = f" --database-url '{engine.url.render_as_string(hide_password=True)}'"
    if serve_on is None:
        return f"enrichflow conductor --until-idle{database}"
    public = get_settings().public_url
    host, port = serve_on
    return (
        f"ENRICHFLOW_PUBLIC_URL={public} enrichflow serve --host {host} --port {port}{database} "
        "(it receives the callbacks of the rows sent to Clay; stop it once the batch is finished)"
    )


def summary_read(engine: Engine, batch_id: int) -> dict[str, Any]:
    """The batch's summary (:func:`~enrichflow.catalog.batch_reports.batch_summary`), read
    through a read-only connection so that it never waits for the runners' writer lock."""
    from enrichflow.catalog.batch_reports import batch_summary

    with reading(engine) as conn:
        return dict(batch_summary(conn, batch_id))


def print_summary(summary: dict[str, Any]) -> None:
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
    for step, spent in summary.get("credits", {}).items():
        console.print(
            f"{step}: {spent['sent']:,} sent to Clay, {spent['deduplicated']:,} de-duplicated, "
            f"{spent['reused']:,} reused from earlier batches"
        )
    print_waiting(summary.get("waiting", []))
    for f in summary["failed"]:
        console.print(f"[red]item {f['item_id']}[/] failed at [bold]{f['step']}[/]: {f['error']}")
    controls = summary["controls"]
    if controls["paused"]:
        console.print(
            f"[yellow]paused by an operator; continue with: enrichflow resume {summary['batch_id']}[/]"
        )
    for tripped in controls["breaker"]:
        console.print(
            f"[yellow]{tripped['step']} paused by the circuit breaker: {tripped['reason']}; "
            f"fix the cause, then: enrichflow resume {summary['batch_id']}[/]"
        )


def duration(seconds: float) -> str:
    """A duration in its two largest units (``3 h 12 min``, ``42 s``)."""
    whole = int(abs(seconds))
    days, hours, minutes = whole // 86400, whole // 3600 % 24, whole // 60 % 60
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (whole % 60, "s")]
    shown = [f"{n} {unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0 s"


def print_waiting(waiting: list[dict[str, Any]]) -> None:
    """One line per ASYNC step with states waiting on their callback (Clay)."""
    for w in waiting:
        due = w["next_deadline_in_seconds"]
        deadline = (
            f"next deadline in {duration(due)}"
            if due >= 0
            else f"[yellow]next deadline passed {duration(due)} ago (is a conductor running?)[/]"
        )
        console.print(
            f"{w['step']}: {w['waiting']:,} waiting on Clay's callback, oldest sent "
            f"{duration(w['oldest_wait_seconds'])} ago, {deadline}"
        )


def exit_code(summary: dict[str, Any]) -> int:
    """1 when an item failed or, for ``run``, a row of the file was rejected; else 0."""
    failed = sum(c.get(Status.FAILED.value, 0) for c in summary["steps"].values())
    rejected = summary.get("ingest", {}).get("bad_rows", 0)
    return EXIT_FAILED_ITEMS if failed or rejected else EXIT_OK


def print_rejected(report: IngestReport, batch_id: int) -> None:
    """The first rejected rows with their line and reason, on stderr, and how to get them all."""
    bad = report.bad_rows
    if not bad:
        return
    console.print(
        f"[yellow]{len(bad):,} row(s) of {report.filename} were rejected and not enriched:[/]"
    )
    for row in bad[:REJECTED_SHOWN]:
        console.print(f"  line {row.line_number}: {row.reason}", markup=False, highlight=False)
    if len(bad) > REJECTED_SHOWN:
        console.print(f"  … and {len(bad) - REJECTED_SHOWN:,} more")
    console.print(
        f"  write them all, with their cells: enrichflow export {batch_id} --rejected "
        "--out rejected.csv",
        markup=False,
        soft_wrap=True,
    )


def ingest_with_progress(engine: Engine, csv_path: Path, quiet: bool) -> IngestReport:
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


AllColumns = Annotated[
    bool,
    typer.Option(
        "--all-columns",
        help="Append every uploaded column as it was, as a column named original.HEADER (HEADER is the uploaded column's name).",
    ),
]


def relaunch_note(earlier: list[int], fresh: bool) -> str:
    """What launching a file that already ran costs: the earlier batches, and whether reuse
    spares what they paid Clay for."""
    listed = ", ".join(str(b) for b in earlier)
    noun = "batch" if len(earlier) == 1 else "batches"
    what = f"note: this file was already launched as {noun} {listed}; "
    if fresh:
        return what + "--fresh sends every row to Clay again."
    return what + (
        "its Clay results are reused (same client, within the workflow's reuse_days), so only "
        "what they did not pay for is sent; --fresh would send everything again."
    )


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
    all_columns: AllColumns = False,
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Send to Clay again: reuse no earlier batch's Clay results."),
    ] = False,
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
    from enrichflow.catalog.batches import batches_of_upload
    from enrichflow.export import write_export
    from enrichflow.launch import check_launch, launch
    from enrichflow.seed import DEFAULT_PIPELINE, init_database

    error_reporting()
    step_list = [s.strip() for s in steps.split(",") if s.strip()] if steps else None
    if pipeline is None and not step_list:
        pipeline = DEFAULT_PIPELINE
    engine: Engine | None = None
    try:
        engine = engine_for(database_url)
        init_database(engine)
        with reading(engine) as conn:  # refuse before ingesting: no orphan upload
            plan = check_launch(conn, client, workstream, pipeline, step_list)
        report = ingest_with_progress(engine, csv_path, quiet=as_json)
        if report.rows == 0:  # the dashboard refuses to launch such an upload too
            first = "; ".join(f"line {b.line_number}: {b.reason}" for b in report.bad_rows[:5])
            raise InputError(
                f"{report.filename} has no readable rows ({len(report.bad_rows):,} unreadable); "
                f"nothing was launched. First bad lines: {first}"
            )
        with reading(engine) as conn:
            earlier = [b["id"] for b in batches_of_upload(conn, report.upload_id)]
        batch_id = launch(
            engine,
            client,
            workstream,
            report.upload_id,
            pipeline if not step_list else None,
            step_list,
            create_client=True,
            plan=plan,
            fresh=fresh,
        )
    except (ConfigError, InputError, NotFoundError) as exc:
        if engine is not None:
            engine.dispose()
        raise fail(str(exc)) from exc
    if earlier:
        console.print(relaunch_note(earlier, fresh), highlight=False)
    if not as_json:
        console.print(
            f"ingested {report.rows} rows from {report.filename} "
            f"({report.encoding}, {report.delimiter!r}); {len(report.bad_rows)} rejected"
        )
        if report.unmapped_columns:
            console.print(f"  columns kept but not mapped: {', '.join(report.unmapped_columns)}")
    drive(
        engine,
        batch_id,
        [row.slug for row in plan.steps],
        report.rows,
        quiet=as_json,
        serve_on=(host, port) if plan.has_async else None,
        named_database=database_url not in (None, get_settings().database_url),
    )
    summary = summary_read(engine, batch_id)
    summary["ingest"] = {
        "rows": report.rows,
        "bad_rows": len(report.bad_rows),
        "upload_id": report.upload_id,
        "rejected": [
            {"line": b.line_number, "reason": b.reason, "field": b.field} for b in report.bad_rows
        ],
    }
    summary["earlier_batches"] = earlier
    if out_path is not None:
        fmt = "jsonl" if out_path.suffix == ".jsonl" else "csv"
        summary["exported"] = write_export(engine, batch_id, out_path, fmt, all_columns)
        if not as_json:
            console.print(f"wrote {summary['exported']} rows to {out_path}")
    if as_json:
        json_print(summary)
    else:
        print_summary(summary)
    print_rejected(report, batch_id)
    raise typer.Exit(exit_code(summary))


def status(
    batch_id: Annotated[int, typer.Argument(metavar="BATCH")],
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Counts per step and status for a batch, its failed items, and Clay webhook sources
    close to their 50,000-submission lifetime limit."""
    from enrichflow.catalog.batches import batch_exists
    from enrichflow.webhooks.ledger import sources_near_limit

    engine = engine_for(database_url)
    try:
        with reading(engine) as conn:
            if not batch_exists(conn, batch_id):
                raise fail(f"batch {batch_id} does not exist")
            near = sources_near_limit(conn)
        summary = summary_read(engine, batch_id)
    finally:
        engine.dispose()
    summary["webhook_sources_near_limit"] = [
        {"webhook": s.url_redacted, "submissions": s.submissions} for s in near
    ]
    if as_json:
        json_print(summary)
        return
    print_summary(summary)
    for source in near:
        console.print(
            f"[yellow]webhook {source.url_redacted} has taken {source.submissions:,} of its "
            f"{DEFAULT_MAX_SUBMISSIONS:,} submissions: add a fresh webhook URL "
            "(enrichflow config set ... 'webhook_url+=<url>')[/]"
        )


def retry(
    batch_id: Annotated[int, typer.Argument(metavar="BATCH")],
    step: Annotated[str | None, typer.Option(help="Only this step.")] = None,
    item: Annotated[int | None, typer.Option(help="Only this item.")] = None,
    refresh_options: Annotated[
        bool,
        typer.Option(
            "--refresh-options",
            help="First copy the step's current options from the registry into the batch "
            "(checked), so a corrected option serves the retries. Needs --step.",
        ),
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Move FAILED states back to PENDING with a fresh attempt budget."""
    from enrichflow.catalog.batch_steps import batch_step_options_refresh
    from enrichflow.catalog.batches import batch_exists
    from enrichflow.db.states import states_retry_failed

    if refresh_options and not step:
        raise fail("--refresh-options needs --step STEP: the step whose options to re-read")
    engine = engine_for(database_url)
    options: dict[str, Any] | None = None
    try:
        with engine.begin() as conn:
            if not batch_exists(conn, batch_id):
                raise fail(f"batch {batch_id} does not exist")
            if refresh_options and step:
                options = batch_step_options_refresh(conn, batch_id, step)
            moved = states_retry_failed(conn, batch_id, now_ms(), step, item)
    except (ConfigError, NotFoundError) as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()
    if options is not None:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(options.items())) or "none"
        console.print(f"batch {batch_id} now runs {step} with the registry's options: {shown}")
    console.print(
        f"{moved} failed state(s) of batch {batch_id} are PENDING again; "
        "run `enrichflow conductor --until-idle` to process them (`enrichflow serve` for ASYNC "
        "steps, which need a process that receives their callbacks)"
    )


def export(
    batch_id: Annotated[int, typer.Argument(metavar="BATCH")],
    out_path: Annotated[Path, typer.Option("--out", help="File to write.")],
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl")] = "csv",
    all_columns: AllColumns = False,
    table: Annotated[
        str,
        typer.Option(
            help="leads (one row per item), or the batch's companies, people or work_history."
        ),
    ] = "leads",
    rejected: Annotated[
        bool,
        typer.Option(
            "--rejected",
            help="Write the rows of the batch's file that were rejected (line, reason, field, "
            "cells) instead of its leads; CSV only.",
        ),
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Write a batch's export: one row per item, failed items included (or another of its
    consolidated tables with --table, or with --rejected the rows of its file that could not
    be read)."""
    from enrichflow.catalog.batches import batch_exists
    from enrichflow.export_rejected import write_rejected
    from enrichflow.export_tables import LEADS, write_table

    if rejected and fmt != "csv":
        raise fail("--rejected writes CSV only: leave out --format or use --format csv")
    if rejected and (table != LEADS or all_columns):
        raise fail(
            "--rejected writes the file's rejected rows: leave out --table and --all-columns"
        )
    engine = engine_for(database_url)
    try:
        with reading(engine) as conn:
            if not batch_exists(conn, batch_id):
                raise fail(f"batch {batch_id} does not exist")
        if rejected:
            n = write_rejected(engine, batch_id, out_path)
        else:
            n = write_table(engine, batch_id, out_path, fmt, table, all_columns)
    except (InputError, NotFoundError) as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()
    console.print(f"wrote {n} {'rejected ' if rejected else ''}rows to {out_path}")
