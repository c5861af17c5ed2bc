"""The JSON API under ``/api/``: everything the dashboard pages do, for scripts.

Authentication is :func:`enrichflow.api.auth.api_guard` (a bearer token or the dashboard
session with an ``X-CSRF-Token`` header). Errors: 404 ``{"detail": ...}`` for what does not
exist, 422 for a request that is wrong (a bad pipeline, an unknown workflow, a bad CSV).
Configs are only ever returned redacted.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
)
from sqlalchemy import Engine
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from enrichflow.api.auth import api_guard
from enrichflow.api.dashboard import service
from enrichflow.catalog import batch_controls
from enrichflow.catalog.assignments import assignments_build
from enrichflow.catalog.batch_controls import Actor
from enrichflow.db.engine import now_ms
from enrichflow.export_rejected import rejected_csv
from enrichflow.export_tables import LEADS, write_table
from enrichflow.states import StepType

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["api"], dependencies=[Depends(api_guard)])

MAX_ID = 2**53
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_]*$")]
Value = Annotated[str, StringConstraints(max_length=4000, pattern=r"^[^\x00]*$")]
OptionValue = StrictBool | StrictInt | StrictFloat | Value | list[Value] | dict[str, JsonValue]
"""A workflow option: a number, true/false, a name, a list of names (``fields``), or an
object (an ``http`` workflow's ``headers``, ``body``, ``keep``)."""


class Strict(BaseModel):
    """A request body: a key the API does not know is a 422, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ClientIn(Strict):
    name: Name


class CreditsOut(BaseModel):
    sent: int
    deduplicated: int
    reused: int


class ClientOut(BaseModel):
    id: int
    name: str
    created_at: datetime | None = None
    batch_count: int = 0
    credits: CreditsOut | None = None
    """Clay items sent, de-duplicated and reused over all the client's batches."""


class PipelineIn(Strict):
    client_id: int = Field(ge=1, le=MAX_ID)
    workstream: Slug
    name: Name
    steps: list[Slug] = Field(min_length=1, max_length=100)


class PipelineOut(BaseModel):
    id: int
    client_id: int
    workstream: str
    name: str
    steps: list[str]


class ConfigIn(Strict):
    """``set``: values to store (a list for several URLs); ``remove``: keys to delete."""

    client_id: int = Field(ge=1, le=MAX_ID)
    workflow: Slug
    workstream: Slug
    set: dict[Slug, Value | list[Value]] = Field(default_factory=dict, max_length=50)
    remove: list[Slug] = Field(default_factory=list, max_length=50)


class ConfigOut(BaseModel):
    client_id: int
    workflow: str
    workstream: str
    config: dict[str, Any]
    updated_at: datetime | None = None


class WorkstreamIn(Strict):
    """A new, empty workstream; ``name`` defaults to the slug."""

    slug: Slug
    name: Name | None = None
    description: Value | None = None


class WorkstreamOut(BaseModel):
    slug: str
    name: str
    description: str | None


class HandlerOut(BaseModel):
    name: str
    types: list[str]
    """The step types a workflow of this handler may have (SYNC, ASYNC)."""


class WorkflowIn(Strict):
    """A new workflow, like ``enrichflow workflow add``: ``handler`` is any loaded handler
    (``GET /api/handlers``; ``webhook``, a Clay table, when left out), ``mode`` defaults to
    what the handler runs as, ``name`` to the slug in words. ``config`` holds its options
    (``concurrency``, ``max_attempts``, for Clay ``rate_per_second``, ``dedupe_by``,
    ``fields``, ...), checked like ``enrichflow workflow set``."""

    slug: Slug
    workstream: Slug
    handler: Slug = "webhook"
    mode: Literal["sync", "async"] | None = None
    name: Name | None = None
    description: Value | None = None
    config: dict[Slug, OptionValue] = Field(default_factory=dict, max_length=30)


class WorkflowOptionsIn(Strict):
    """``set``: options to store (typed: numbers, true/false, names, lists of names);
    ``remove``: options to delete. Checked like ``enrichflow workflow set``."""

    set: dict[Slug, OptionValue] = Field(default_factory=dict, max_length=30)
    remove: list[Slug] = Field(default_factory=list, max_length=30)


class WorkflowOut(BaseModel):
    id: int
    slug: str
    workstream: str
    name: str
    type: str
    handler: str
    description: str | None
    config: dict[str, Any]


class UploadOut(BaseModel):
    id: int
    client_id: int | None
    filename: str
    encoding: str
    delimiter: str
    row_count: int
    bad_row_count: int
    created_at: datetime | None = None


class BadRowOut(BaseModel):
    line: int
    reason: str
    field: str | None
    excerpt: str


class PreviewRowOut(BaseModel):
    line: int
    values: list[str]


class UploadDetail(UploadOut):
    headers: list[str]
    column_map: dict[str, str]
    unmapped_columns: list[str]
    first_rows: list[PreviewRowOut]
    bad_rows: list[BadRowOut]


class ClientDetail(BaseModel):
    id: int
    name: str
    pipelines: list[PipelineOut]
    configs: list[ConfigOut]
    uploads: list[UploadOut]
    batches: list[BatchOut]


class LaunchIn(Strict):
    upload_id: int = Field(ge=1, le=MAX_ID)
    workstream: Slug
    pipeline: Name
    client_id: int | None = Field(None, ge=1, le=MAX_ID)
    fresh: bool = False
    """Send to Clay again rather than reuse earlier batches' results."""


class BatchOut(BaseModel):
    id: int
    client_id: int
    client_name: str
    workstream: str
    upload_id: int | None
    pipeline_name: str | None
    status: str
    item_count: int
    created_at: datetime | None = None
    finished_at: datetime | None = None


class StepStatusOut(BaseModel):
    name: str
    type: str
    counts: dict[str, int]
    total: int


class FailedOut(BaseModel):
    state_id: int
    item_id: int
    row_number: int | None
    step: str
    attempt: int
    error: str


class StuckOut(BaseModel):
    state_id: int
    item_id: int
    step: str
    status: str
    attempt: int
    overdue_seconds: float


class WaitingOut(BaseModel):
    """One ASYNC step's states waiting on an external service (Clay) for their callback."""

    step: str
    waiting: int
    oldest_sent_at: datetime | None
    oldest_wait_seconds: float | None
    next_deadline_at: datetime | None
    next_deadline_in_seconds: float | None
    """Negative once the deadline has passed and no conductor has acted on it yet."""


class BreakerOut(BaseModel):
    step: str
    reason: str


class BatchEventOut(BaseModel):
    at: datetime
    kind: str
    """cancelled, paused, resumed, resent or breaker_tripped."""
    actor: str
    """cli, api, dashboard or system (the circuit breaker)."""
    detail: dict[str, Any]


class ControlsOut(BaseModel):
    paused: bool
    paused_at: datetime | None
    breaker: list[BreakerOut]
    """Steps the circuit breaker paused, with why; ``resume`` lifts them."""
    events: list[BatchEventOut]
    """The batch's history, newest first."""


class BatchDetail(BatchOut):
    progress: float
    done_items: int
    steps: list[StepStatusOut]
    throughput_per_second: float | None
    eta_seconds: float | None
    failed: list[FailedOut]
    stuck: list[StuckOut]
    credits: dict[str, CreditsOut] = {}
    """Clay step -> items sent, de-duplicated and reused."""
    waiting: list[WaitingOut] = []
    """ASYNC steps with states waiting on their callback."""
    controls: ControlsOut


class LaunchOut(BatchDetail):
    earlier_batches: list[int]
    """Batches already launched over the same upload: this launch pays again for what reuse
    does not cover."""


class RetryIn(Strict):
    """Nothing: every failed state; ``step``: that step's; ``item_id``: that item's.
    ``refresh_options`` (with ``step``): first copy the step's current registry options into
    the batch, so a corrected option serves the retries."""

    step: Slug | None = None
    item_id: int | None = Field(None, ge=1, le=MAX_ID)
    refresh_options: bool = False


class RetryOut(BaseModel):
    moved: int


class ResendIn(Strict):
    """Re-send the waiting items of ASYNC ``step`` sent at least ``older_than`` ago (a
    duration: ``30s``, ``15m``, ``2h``, ``1d``; default all)."""

    step: Slug
    older_than: Annotated[str, StringConstraints(max_length=20)] = "0s"


class ControlOut(BaseModel):
    batch: BatchDetail
    states: int = 0
    """cancel: states cancelled; resend: items re-sent; resume: steps whose circuit-breaker
    pause it lifted."""


ClientDetail.model_rebuild()


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


@router.get("/clients", response_model=list[ClientOut])
def clients(request: Request) -> Any:
    return service.clients_list(_engine(request))


@router.post("/clients", response_model=ClientOut, status_code=201)
def client_create(body: ClientIn, request: Request) -> Any:
    return service.client_create(_engine(request), body.name)


@router.get("/clients/{client_id}", response_model=ClientDetail)
def client_get(client_id: IdPath, request: Request) -> Any:
    return service.client_detail(_engine(request), client_id)


@router.get("/workflows", response_model=list[WorkflowOut])
def workflows(
    request: Request,
    workstream: Annotated[str | None, Query(max_length=100, pattern=r"^[a-z0-9_]+$")] = None,
) -> Any:
    return service.workflows_list(_engine(request), workstream)


@router.post("/workflows", response_model=WorkflowOut, status_code=201)
def workflow_create(body: WorkflowIn, request: Request) -> Any:
    """Add a workflow; 422 naming what is wrong (an unknown handler lists the loaded ones)."""
    return service.workflow_create(
        _engine(request),
        body.slug,
        body.workstream,
        body.handler,
        mode=None if body.mode is None else StepType(body.mode.upper()),
        name=body.name,
        description=body.description,
        config=body.config,
    )


@router.delete("/workflows/{workstream}/{slug}", status_code=204)
def workflow_delete(
    workstream: Annotated[str, Path(max_length=100, pattern=r"^[a-z][a-z0-9_]*$")],
    slug: Annotated[str, Path(max_length=100, pattern=r"^[a-z][a-z0-9_]*$")],
    request: Request,
) -> None:
    """Delete the workflow and its client configs; 422 saying why when a saved pipeline runs
    it (named) or it is built in."""
    service.workflow_delete(_engine(request), slug, workstream)


@router.get("/handlers", response_model=list[HandlerOut])
def handlers() -> Any:
    """The handlers this server has loaded, built-in and plugins'."""
    return service.handlers_list()


@router.get("/workstreams", response_model=list[WorkstreamOut])
def workstreams(request: Request) -> Any:
    return service.workstreams_list(_engine(request))


@router.post("/workstreams", response_model=WorkstreamOut, status_code=201)
def workstream_create(body: WorkstreamIn, request: Request) -> Any:
    return service.workstream_add(_engine(request), body.slug, body.name, body.description)


@router.patch("/workflows/{workstream}/{slug}", response_model=WorkflowOut)
def workflow_options_set(
    workstream: Annotated[str, Path(max_length=100, pattern=r"^[a-z][a-z0-9_]*$")],
    slug: Annotated[str, Path(max_length=100, pattern=r"^[a-z][a-z0-9_]*$")],
    body: WorkflowOptionsIn,
    request: Request,
) -> Any:
    """Change the workflow's options; batches launched afterwards use them (a running batch:
    ``POST /api/batches/{id}/retry`` with ``refresh_options``)."""
    return service.workflow_options_set(_engine(request), slug, workstream, body.set, body.remove)


@router.get("/pipelines", response_model=list[PipelineOut])
def pipelines(request: Request, client_id: IdQuery = None) -> Any:
    return service.pipelines_list(_engine(request), client_id)


@router.post("/pipelines", response_model=PipelineOut, status_code=201)
def pipeline_save(body: PipelineIn, request: Request) -> Any:
    """Create the pipeline, or replace the steps of the client's pipeline of that name."""
    return service.pipeline_save(
        _engine(request), body.client_id, body.workstream, body.name, body.steps
    )


@router.get("/pipelines/{pipeline_id}", response_model=PipelineOut)
def pipeline_get(pipeline_id: IdPath, request: Request) -> Any:
    return service.pipeline_get(_engine(request), pipeline_id)


@router.delete("/pipelines/{pipeline_id}", status_code=204)
def pipeline_delete(pipeline_id: IdPath, request: Request) -> None:
    service.pipeline_delete(_engine(request), pipeline_id)


@router.get("/configs", response_model=list[ConfigOut])
def configs(client_id: Annotated[int, Query(ge=1, le=MAX_ID)], request: Request) -> Any:
    """The client's configs, secrets redacted."""
    return service.configs_list(_engine(request), client_id)


@router.put("/configs", response_model=ConfigOut)
def config_set(body: ConfigIn, request: Request) -> Any:
    """Merge ``set`` into the client's config for the workflow and drop ``remove``."""
    sets = {key: value if isinstance(value, list) else [value] for key, value in body.set.items()}
    changes = assignments_build(sets, body.remove)
    return service.config_set(
        _engine(request), body.client_id, body.workflow, body.workstream, changes
    )


@router.get("/uploads", response_model=list[UploadOut])
def uploads(request: Request, client_id: IdQuery = None) -> Any:
    return service.uploads_list(_engine(request), client_id)


@router.post("/uploads", response_model=UploadDetail, status_code=201)
async def upload_create(
    request: Request,
    client_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    file: Annotated[UploadFile, File()],
) -> Any:
    """Store a CSV (at most ``ENRICHFLOW_UPLOAD_MAX_BYTES``) and return its inspection."""
    engine = _engine(request)
    await run_in_threadpool(service.client_name, engine, client_id)
    with tempfile.TemporaryDirectory(prefix="enrichflow-upload-") as tmp:
        path = await service.save_upload(
            file, FilePath(tmp), request.app.state.settings.upload_max_bytes
        )
        report = await run_in_threadpool(service.upload_ingest, engine, client_id, path)
    return await run_in_threadpool(service.upload_detail, engine, report.upload_id)


@router.get("/uploads/{upload_id}", response_model=UploadDetail)
def upload_get(upload_id: IdPath, request: Request) -> Any:
    return service.upload_detail(_engine(request), upload_id)


def rejected_response(engine: Engine, upload_id: int) -> StreamingResponse:
    """The upload's rejected rows as a CSV download (404 before it starts for an unknown
    upload)."""
    return StreamingResponse(
        rejected_csv(engine, upload_id),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="upload-{upload_id}-rejected.csv"',
            "cache-control": "no-store",
        },
    )


@router.get(
    "/uploads/{upload_id}/rejected",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
def upload_rejected(upload_id: IdPath, request: Request) -> StreamingResponse:
    """The rows of the upload that could not be read: line, reason, field, excerpt, then the
    row's cells under the upload's headers (docs/usage.md)."""
    return rejected_response(_engine(request), upload_id)


@router.get("/batches", response_model=list[BatchOut])
def batches(request: Request, client_id: IdQuery = None) -> Any:
    return service.batches_list(_engine(request), client_id)


@router.post("/batches", response_model=LaunchOut, status_code=201)
def batch_launch(body: LaunchIn, request: Request) -> Any:
    """Launch a pipeline (saved for the client, or built in) over an upload;
    ``earlier_batches`` lists the batches that already ran over it."""
    engine = _engine(request)
    earlier = service.upload_batches(engine, body.upload_id)
    batch_id = service.batch_launch(
        engine,
        body.upload_id,
        body.workstream,
        body.pipeline,
        body.client_id,
        request.app.state.settings,
        fresh=body.fresh,
    )
    request.app.state.wake()
    return {**service.batch_detail(engine, batch_id), "earlier_batches": earlier}


@router.get("/batches/{batch_id}", response_model=BatchDetail)
def batch_get(batch_id: IdPath, request: Request) -> Any:
    return service.batch_detail(_engine(request), batch_id)


@router.post("/batches/{batch_id}/retry", response_model=RetryOut)
def batch_retry(batch_id: IdPath, body: RetryIn, request: Request) -> Any:
    moved = service.batch_retry(
        _engine(request), batch_id, body.step, body.item_id, body.refresh_options
    )
    if moved:
        request.app.state.wake()
    return {"moved": moved}


def _control(request: Request, batch_id: int, act: Any) -> dict[str, Any]:
    engine = _engine(request)
    with engine.begin() as conn:
        states = act(conn)
    request.app.state.wake()
    return {"batch": service.batch_detail(engine, batch_id), "states": int(states or 0)}


@router.post("/batches/{batch_id}/cancel", response_model=ControlOut)
def batch_cancel(batch_id: IdPath, request: Request) -> Any:
    """Cancel a running batch: its unfinished states end CANCELLED, nothing more is sent, late
    callbacks store nothing. 409 when the batch is not running."""
    return _control(
        request,
        batch_id,
        lambda conn: batch_controls.batch_cancel(conn, batch_id, Actor.API, now_ms()),
    )


@router.post("/batches/{batch_id}/pause", response_model=ControlOut)
def batch_pause(batch_id: IdPath, request: Request) -> Any:
    """Pause a running batch: nothing is dispatched or sent; callbacks still land."""
    return _control(
        request, batch_id, lambda conn: batch_controls.batch_pause(conn, batch_id, Actor.API)
    )


@router.post("/batches/{batch_id}/resume", response_model=ControlOut)
def batch_resume(batch_id: IdPath, request: Request) -> Any:
    """Resume a batch paused by an operator or by the circuit breaker."""
    return _control(
        request,
        batch_id,
        lambda conn: len(batch_controls.batch_resume(conn, batch_id, Actor.API)),
    )


@router.post("/batches/{batch_id}/resend", response_model=ControlOut)
def batch_resend(batch_id: IdPath, body: ResendIn, request: Request) -> Any:
    """Re-send now, as a new attempt, the step's items waiting on the external service."""
    seconds = batch_controls.duration_seconds(body.older_than)
    return _control(
        request,
        batch_id,
        lambda conn: batch_controls.batch_resend(
            conn, batch_id, body.step, seconds, Actor.API, now_ms()
        ),
    )


def export_response(
    engine: Engine, batch_id: int, fmt: str, table: str = LEADS, all_columns: bool = False
) -> FileResponse:
    """The export (or another consolidated table of the batch) as a download; the temporary
    file is removed once sent."""
    service.batch_detail(engine, batch_id)  # 404 for an unknown batch
    tmp = tempfile.TemporaryDirectory(prefix="enrichflow-export-")
    name = f"batch_{batch_id}" if table == LEADS else f"batch_{batch_id}_{table}"
    path = FilePath(tmp.name) / f"{name}.{fmt}"
    try:
        write_table(engine, batch_id, path, fmt, table, all_columns)
    except BaseException:
        tmp.cleanup()
        raise
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/x-ndjson"
    return FileResponse(
        path,
        media_type=media,
        filename=path.name,
        background=BackgroundTask(tmp.cleanup),
    )


@router.get(
    "/batches/{batch_id}/export",
    response_class=FileResponse,
    responses={200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
def batch_export(
    batch_id: IdPath,
    request: Request,
    format: Literal["csv", "jsonl"] = "csv",
    table: Literal["leads", "companies", "people", "work_history"] = "leads",
    all_columns: bool = False,
) -> FileResponse:
    """One row per item, failed items included, with ``all_columns`` every uploaded column
    too (``original.<header>``); or the batch's companies, people or work history with
    ``table`` (see docs/steps.md for the columns)."""
    return export_response(_engine(request), batch_id, format, table, all_columns)
