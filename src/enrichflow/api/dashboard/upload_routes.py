"""Uploads: store a CSV (a binary file is named for what it is), then the inspector: the
identity columns recognised, what each pipeline reads, the batches already launched over the
same file (a relaunch must be confirmed: Clay charges for what reuse does not cover), the
mapping of unrecognised columns, and the launch, refused with the form that fixes each problem."""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from enrichflow.api import auth
from enrichflow.api.dashboard import inspector, service
from enrichflow.api.dashboard.client_routes import client_page_render
from enrichflow.api.dashboard.pages import Id, engine_of, redirect, render
from enrichflow.api.rest import rejected_response
from enrichflow.catalog.pipelines import PipelineChoice
from enrichflow.errors import ConfigError, InputError

__all__ = ["router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(auth.page_guard)])


@router.post("/clients/{client_id}/uploads")
async def upload_create(
    request: Request, client_id: Id, file: Annotated[UploadFile | None, File()] = None
) -> Response:
    engine = engine_of(request)
    await run_in_threadpool(service.client_name, engine, client_id)
    try:
        if file is None or not file.filename:
            raise ConfigError("choose a CSV file to upload")
        with tempfile.TemporaryDirectory(prefix="enrichflow-upload-") as tmp:
            path = await service.save_upload(
                file, FilePath(tmp), request.app.state.settings.upload_max_bytes
            )
            report = await run_in_threadpool(service.upload_ingest, engine, client_id, path)
    except (ConfigError, InputError) as exc:
        message = str(exc)
        return await run_in_threadpool(
            lambda: client_page_render(request, client_id, 422, upload_error=message)
        )
    rejected = f"; {len(report.bad_rows)} rejected (listed below)" if report.bad_rows else ""
    notice = f"Uploaded {report.rows} rows{rejected}."
    if not inspector.identity_columns(report.column_map):
        notice = (
            f"Uploaded {report.rows} rows{rejected}, but no column was recognised as identifying "
            "a person or company: map one below before launching."
        )
    return redirect(f"/uploads/{report.upload_id}", notice)


def _upload_page(
    request: Request,
    upload_id: int,
    chosen: dict[str, str] | None = None,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    engine = engine_of(request)
    upload = service.upload_detail(engine, upload_id, preview=10)
    client = None
    choices: dict[str, list[PipelineChoice]] = {}
    if upload["client_id"] is not None:
        client = {
            "id": upload["client_id"],
            "name": service.client_name(engine, upload["client_id"]),
        }
        choices = {
            s["slug"]: service.pipeline_choices(engine, upload["client_id"], s["slug"])
            for s in service.workstreams_list(engine)
        }
    facts = inspector.upload_inspect(engine, upload_id, upload["client_id"], chosen or {})
    return render(
        request,
        "upload.html",
        status,
        upload=upload,
        client=client,
        choices=choices,
        facts=facts,
        chosen=chosen or {},
        **extra,
    )


@router.get("/uploads/{upload_id}")
def upload_page(request: Request, upload_id: Id) -> Response:
    return _upload_page(request, upload_id)


@router.get("/uploads/{upload_id}/rejected.csv")
def upload_rejected(request: Request, upload_id: Id) -> Response:
    return rejected_response(engine_of(request), upload_id)


@router.post("/uploads/{upload_id}/launch")
async def upload_launch(request: Request, upload_id: Id) -> Response:
    """``choice`` is ``workstream/pipeline``; ``map_<i>`` maps the i-th column to a field;
    ``action`` ``check`` shows the page with the mapping applied instead of launching;
    ``relaunch`` confirms a launch over an upload that already ran."""
    form = await request.form()
    return await run_in_threadpool(_launch, request, upload_id, form)


def _launch(request: Request, upload_id: int, form: Any) -> Response:
    engine = engine_of(request)
    choice = str(form.get("choice", "") or "")
    upload = service.upload_detail(engine, upload_id, preview=0)
    chosen = inspector.mapping_from_form(form, upload["headers"])

    def again(status: int = 422, **extra: Any) -> HTMLResponse:
        return _upload_page(request, upload_id, chosen, status, choice=choice, **extra)

    if str(form.get("action", "")) == "check":
        return again(200)
    workstream, _, pipeline = choice.partition("/")
    try:
        if not pipeline:
            raise ConfigError("pick a pipeline")
        facts = inspector.upload_inspect(engine, upload_id, upload["client_id"], chosen)
        if facts.mapping_error:
            raise ConfigError(facts.mapping_error)
        if facts.earlier and form.get("relaunch") != "yes":
            listed = ", ".join(f"batch {b['id']}" for b in facts.earlier)
            raise ConfigError(
                f"this file was already launched as {listed}: launching it again reuses the "
                "Clay results they paid for (same client, within the workflow's reuse_days) "
                "and sends the rest; tick the box to confirm"
            )
        if upload["client_id"] is not None:
            problems = inspector.launch_problems(
                engine, upload["client_id"], workstream, pipeline, request.app.state.settings
            )
            if problems:
                listed = "; ".join(p.text for p in problems)
                return again(
                    launch_error=f"launch refused, {len(problems)} check(s) failed: {listed}",
                    problems=problems,
                )
        batch_id = service.batch_launch(
            engine,
            upload_id,
            workstream,
            pipeline,
            settings=request.app.state.settings,
            columns=chosen,
        )
    except ConfigError as exc:
        return again(launch_error=str(exc))
    request.app.state.wake()
    return redirect(f"/batches/{batch_id}", "Batch launched.")
