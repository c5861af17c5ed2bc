"""What the dashboard pages and the JSON API do, as plain functions over an engine.

Both front ends call these, so a page and its API twin cannot drift apart. Each function owns
one transaction and calls the catalog (:mod:`enrichflow.catalog`) inside it. Errors are
:class:`~enrichflow.errors.ConfigError` (the request is wrong: 422) and
:class:`~enrichflow.errors.NotFoundError` (404). Configs leave this module redacted only.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from enrichflow.api.dashboard import batch_service
from enrichflow.catalog import (
    batch_view,
    batches,
    clients,
    credits,
    pipelines,
    registry,
    uploads,
    workflow_options,
    workflow_setup,
    workstreams,
)
from enrichflow.catalog.assignments import Assignments, parse_assignments
from enrichflow.catalog.batch_controls import batch_controls_read
from enrichflow.catalog.batch_reports import STUCK_PENDING_MS, waiting_steps
from enrichflow.catalog.batch_steps import batch_step_options_refresh
from enrichflow.catalog.client_configs import (
    client_config_set,
    client_configs_list,
    redact_config,
)
from enrichflow.config import Settings
from enrichflow.db.engine import now_ms, reading
from enrichflow.db.states import states_retry_failed
from enrichflow.db.states.triage import states_overdue
from enrichflow.defaults import DEFAULT_MAX_SUBMISSIONS
from enrichflow.errors import ConfigError, NotFoundError
from enrichflow.ingest.loader import IngestReport, ingest_csv
from enrichflow.launch import launch, resolve_steps
from enrichflow.states import BatchStatus, Status, StepType
from enrichflow.steps.registry import handler_modes
from enrichflow.webhooks.ledger import sources_near_limit

STATUSES = [s.value for s in Status]
# Each at least 3:1 against white and the bars' track, and of its own hue, so stacked
# segments stay apart for readers with low vision.
STATUS_COLORS = {
    "COMPLETED": "#23845a",
    "SKIPPED": "#6c7d2a",
    "FAILED": "#c8372f",
    "IN_PROGRESS": "#2f6fcf",
    "QUEUED": "#7a5cc7",
    "PENDING": "#7b8494",
}


# --------------------------------------------------------------------------- clients


def clients_list(engine: Engine) -> list[dict[str, Any]]:
    """Every client, with its Clay items sent, de-duplicated and reused over all batches."""
    none = credits.Credits(sent=0, deduplicated=0, reused=0)
    with reading(engine) as conn:
        spent = credits.client_credits(conn)
        return [{**c, "credits": spent.get(c["id"], none)} for c in clients.clients_list(conn)]


def client_create(engine: Engine, name: str) -> clients.ClientRow:
    with engine.begin() as conn:
        return clients.client_create(conn, name)


def client_name(engine: Engine, client_id: int) -> str:
    with reading(engine) as conn:
        return clients.client_get_name(conn, client_id)


def client_detail(engine: Engine, client_id: int) -> dict[str, Any]:
    with reading(engine) as conn:
        name = clients.client_get_name(conn, client_id)
        return {
            "id": client_id,
            "name": name,
            "pipelines": _by_workstream(pipelines.pipelines_list(conn, client_id=client_id)),
            "configs": _configs_redacted(conn, client_id),
            "uploads": uploads.uploads_list(conn, client_id),
            "batches": batches.batches_list(conn, client_id),
        }


# --------------------------------------------------------------------------- registry


def workstreams_list(engine: Engine) -> list[workstreams.WorkstreamRow]:
    with reading(engine) as conn:
        return workstreams.workstreams_list(conn)


def workstream_add(
    engine: Engine, slug: str, name: str | None, description: str | None
) -> workstreams.WorkstreamRow:
    with engine.begin() as conn:
        return workstreams.workstream_add(conn, slug, name, description)


def handlers_list() -> list[dict[str, Any]]:
    """The handlers this process has loaded (built-in and plugins'), each with the step types
    a workflow of it may have."""
    return [
        {"name": name, "types": sorted(t.value for t in modes)}
        for name, modes in handler_modes().items()
    ]


def webhook_sources_near_limit(engine: Engine) -> list[dict[str, Any]]:
    """Clay webhook sources past the warning mark of their lifetime submission limit."""
    with reading(engine) as conn:
        return [
            {
                "url_redacted": s.url_redacted,
                "submissions": s.submissions,
                "limit": DEFAULT_MAX_SUBMISSIONS,
            }
            for s in sources_near_limit(conn)
        ]


def _workflow(r: registry.RegistryRow) -> dict[str, Any]:
    return {
        "id": r.id,
        "slug": r.slug,
        "workstream": r.workstream_slug,
        "name": r.name,
        "type": r.type,
        "handler": r.handler,
        "description": r.description,
        "config": redact_config(r.config),
    }


def workflow_options_set(
    engine: Engine,
    workflow: str,
    workstream: str,
    values: dict[str, Any],
    remove: list[str] | None = None,
) -> dict[str, Any]:
    """Set and remove the workflow's options (the one validator's checks; :class:`ConfigError`
    naming the key); the workflow as listed."""
    with engine.begin() as conn:
        workflow_options.workflow_options_update(conn, workflow, workstream, values, remove or ())
        return _workflow(registry.registry_get(conn, workflow, workstream))


def workflows_list(engine: Engine, workstream: str | None = None) -> list[dict[str, Any]]:
    with reading(engine) as conn:
        return [_workflow(r) for r in registry.registry_list(conn, workstream)]


def workflow_create(
    engine: Engine,
    slug: str,
    workstream: str,
    handler: str,
    *,
    mode: StepType | None = None,
    name: str | None = None,
    description: str | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A new workflow run by any loaded handler (:func:`workflow_setup.workflow_add`), usable
    at once; the workflow as listed."""
    with engine.begin() as conn:
        row = workflow_setup.workflow_add(
            conn,
            slug,
            workstream,
            handler,
            handler_modes(),
            mode=mode,
            name=name,
            description=description,
            config=config,
        )
        return _workflow(row)


def workflow_delete(engine: Engine, workflow: str, workstream: str) -> int:
    """Delete the workflow and its client configs (how many); :class:`ConfigError` saying why
    when a pipeline runs it or it is built in."""
    with engine.begin() as conn:
        return workflow_setup.workflow_remove(conn, workflow, workstream)


# --------------------------------------------------------------------------- pipelines


def _by_workstream(rows: list[pipelines.PipelineRow]) -> list[pipelines.PipelineRow]:
    """The dashboard lists pipelines by workstream and name (then client)."""
    return sorted(rows, key=lambda p: (p["workstream"], p["name"]))


def pipelines_list(engine: Engine, client_id: int | None = None) -> list[pipelines.PipelineRow]:
    with reading(engine) as conn:
        return _by_workstream(pipelines.pipelines_list(conn, client_id=client_id))


def _pipeline(conn: Any, pipeline_id: int) -> pipelines.PipelineRow:
    found = pipelines.pipeline_get(conn, pipeline_id)
    if found is None:
        raise NotFoundError(f"pipeline {pipeline_id} does not exist")
    return found


def pipeline_get(engine: Engine, pipeline_id: int) -> pipelines.PipelineRow:
    with reading(engine) as conn:
        return _pipeline(conn, pipeline_id)


def pipeline_validate(engine: Engine, client_id: int, workstream: str, steps: list[str]) -> None:
    """:class:`ConfigError` naming what is wrong with ``steps`` (launch's own checks)."""
    with reading(engine) as conn:
        resolve_steps(conn, clients.client_get_name(conn, client_id), workstream, None, steps)


def pipeline_save(
    engine: Engine, client_id: int, workstream: str, name: str, steps: list[str]
) -> pipelines.PipelineRow:
    """Create or replace the client's pipeline ``name`` in ``workstream``."""
    name = clients.name_clean(name, "pipeline name")
    pipeline_validate(engine, client_id, workstream, steps)
    with engine.begin() as conn:
        pipeline_id, _ = pipelines.pipeline_save(conn, client_id, workstream, name, steps)
        return _pipeline(conn, pipeline_id)


def pipeline_delete(engine: Engine, pipeline_id: int) -> None:
    with engine.begin() as conn:
        gone = pipelines.pipeline_delete(conn, pipeline_id)
    if not gone:
        raise NotFoundError(f"pipeline {pipeline_id} does not exist")


def pipeline_choices(
    engine: Engine, client_id: int, workstream: str
) -> list[pipelines.PipelineChoice]:
    """Saved pipelines of the client, then the built-in ones, for a launch."""
    with reading(engine) as conn:
        return pipelines.pipeline_choices(conn, client_id, workstream)


# --------------------------------------------------------------------------- configs


def _configs_redacted(conn: Any, client_id: int) -> list[dict[str, Any]]:
    return [
        {**row, "config": redact_config(row["config"])}
        for row in client_configs_list(conn, client_id)
    ]


def configs_list(engine: Engine, client_id: int) -> list[dict[str, Any]]:
    """Every config of the client, redacted; :class:`NotFoundError` for an unknown client."""
    with reading(engine) as conn:
        clients.client_get_name(conn, client_id)
        return _configs_redacted(conn, client_id)


def config_set(
    engine: Engine, client_id: int, workflow: str, workstream: str, changes: Assignments
) -> dict[str, Any]:
    """Apply ``changes`` to the client's config for the workflow; the redacted result."""
    with engine.begin() as conn:
        name = clients.client_get_name(conn, client_id)
        stored = client_config_set(conn, name, workflow, workstream, changes)
    return {
        "client_id": client_id,
        "workflow": workflow,
        "workstream": workstream,
        "config": redact_config(stored),
    }


def config_set_lines(
    engine: Engine, client_id: int, workflow: str, workstream: str, lines: list[str]
) -> dict[str, Any]:
    """:func:`config_set` with the ``KEY=VALUE`` / ``KEY+=VALUE`` / ``KEY=`` lines of a form
    (an unknown client is reported before the lines are read)."""
    client_name(engine, client_id)
    changes = parse_assignments([line.strip() for line in lines if line.strip()])
    return config_set(engine, client_id, workflow, workstream, changes)


# --------------------------------------------------------------------------- uploads


def upload_ingest(engine: Engine, client_id: int, path: Path) -> IngestReport:
    client_name(engine, client_id)
    return ingest_csv(engine, path, client_id=client_id)


def uploads_list(engine: Engine, client_id: int | None = None) -> list[uploads.UploadRow]:
    with reading(engine) as conn:
        return uploads.uploads_list(conn, client_id)


def upload_detail(engine: Engine, upload_id: int, preview: int = 10) -> uploads.UploadDetail:
    with reading(engine) as conn:
        found = uploads.upload_get(conn, upload_id, preview)
    if found is None:
        raise NotFoundError(f"upload {upload_id} does not exist")
    return found


# --------------------------------------------------------------------------- batches


def batch_launch(
    engine: Engine,
    upload_id: int,
    workstream: str,
    pipeline: str,
    client_id: int | None = None,
    settings: Settings | None = None,
    columns: dict[str, str] | None = None,
    fresh: bool = False,
) -> int:
    """Launch after the preflight, checked against the serving app's ``settings``;
    ``columns`` maps columns the aliases did not recognise to fields (column -> field);
    ``fresh``: reuse no earlier Clay result."""
    detail = upload_detail(engine, upload_id, preview=0)
    owner = detail["client_id"] if client_id is None else client_id
    if owner is None:
        raise ConfigError("the upload belongs to no client; pick one")
    if detail["row_count"] == 0:
        raise ConfigError("the upload has no readable rows")
    return launch(
        engine,
        client_name(engine, owner),
        workstream,
        upload_id,
        pipeline=pipeline,
        settings=settings,
        columns=columns,
        fresh=fresh,
    )


def upload_batches(engine: Engine, upload_id: int) -> list[int]:
    """The batches already launched over ``upload_id``'s file (a relaunch warns with them)."""
    with reading(engine) as conn:
        return [b["id"] for b in batches.batches_of_upload(conn, upload_id)]


def batches_list(engine: Engine, client_id: int | None = None) -> list[batches.BatchRow]:
    with reading(engine) as conn:
        return batches.batches_list(conn, client_id)


STUCK_LISTED = 100
"""The overdue states the REST batch listing names (the page counts them all)."""


def batch_detail(engine: Engine, batch_id: int, now: int | None = None) -> dict[str, Any]:
    """The batch, its steps' counts and the progress its page shows
    (:func:`~enrichflow.api.dashboard.batch_service.overview`), the first page of its failed
    states and the overdue ones."""
    now = now_ms() if now is None else now
    with reading(engine) as conn:
        r = batches.batch_get(conn, batch_id)
        if r is None:
            raise NotFoundError(f"batch {batch_id} does not exist")
        view = batch_service.overview(conn, r, now)
        failed = batch_view.batch_failed_page(conn, batch_id)
        stuck = states_overdue(conn, batch_id, now, STUCK_PENDING_MS, STUCK_LISTED)
        spent = credits.batch_credits(conn, batch_id)
        controls = batch_controls_read(conn, batch_id)
    ended = view.completed + view.skipped + view.failed + view.not_run
    started = batch_service.started_ms(r)
    elapsed_s = (now - started) / 1000 if started is not None else 0.0
    running = r["status"] == BatchStatus.RUNNING.value
    rate = ended / elapsed_s if running and ended and elapsed_s > 0 else None
    return {
        **r,
        "progress": round(view.processed_percent, 1),
        "done_items": view.items_done,
        "steps": [
            {"name": s.name, "type": s.type, "counts": s.counts, "total": sum(s.counts.values())}
            for s in view.steps
        ],
        "credits": spent,
        "waiting": waiting_steps(view.waits, now),
        "controls": controls,
        "throughput_per_second": None if rate is None else round(rate, 2),
        "eta_seconds": None if view.eta_ms is None else round(view.eta_ms / 1000, 1),
        "failed": [
            {
                "state_id": f["state_id"],
                "item_id": f["item_id"],
                "row_number": f["row_number"],
                "step": f["step"],
                "attempt": f["attempt"],
                "error": f["error"],
                "label": f["label"],
            }
            for f in failed.rows
        ],
        "stuck": [
            {
                "state_id": s.id,
                "item_id": s.item_id,
                "step": s.step_name,
                "status": s.status,
                "attempt": s.attempt,
                "overdue_seconds": round(
                    (
                        now
                        - (
                            s.lease_until
                            if s.status != Status.PENDING.value
                            else s.not_before + STUCK_PENDING_MS
                        )
                    )
                    / 1000.0,
                    1,
                ),
            }
            for s in stuck
        ],
    }


def batch_retry(
    engine: Engine,
    batch_id: int,
    step: str | None = None,
    item_id: int | None = None,
    refresh_options: bool = False,
) -> int:
    """FAILED -> PENDING (all, one step, or one item); the number of states moved. With
    ``refresh_options`` the step's current registry options replace the batch's snapshot
    first (checked; :class:`ConfigError` and nothing moved when they could not run)."""
    if refresh_options and not step:
        raise ConfigError("refresh_options needs a step: the step whose options to re-read")
    with engine.begin() as conn:
        if not batches.batch_exists(conn, batch_id):
            raise NotFoundError(f"batch {batch_id} does not exist")
        if refresh_options and step:
            batch_step_options_refresh(conn, batch_id, step)
        return states_retry_failed(conn, batch_id, now_ms(), step or None, item_id)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, sec = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# --------------------------------------------------------------------------- files


SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str | None) -> str:
    """A plain file name for the stored upload (no directories, no odd characters)."""
    base = Path(name or "upload.csv").name
    cleaned = SAFE_FILENAME.sub("_", base).strip("._") or "upload"
    return cleaned[:120]


async def save_upload(upload: Any, directory: Path, limit: int) -> Path:
    """Stream ``upload`` (a Starlette ``UploadFile``) into ``directory``, at most ``limit``
    bytes; :class:`ConfigError` when it is larger. The file is only ever read as CSV."""
    target = directory / safe_filename(upload.filename)
    size = 0
    with target.open("wb") as out:
        while chunk := await upload.read(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise ConfigError(f"the file is larger than the limit of {limit} bytes")
            out.write(chunk)
    if size == 0:
        raise ConfigError("the file is empty")
    return target
