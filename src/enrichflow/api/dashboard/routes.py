"""The dashboard pages: server-rendered Jinja2, forms posting back with a CSRF token.

Every route here depends on :func:`enrichflow.api.auth.page_guard` (login, and the CSRF
token on POST). State-changing forms answer with a 303 redirect (post/redirect/get) or, when
the input is wrong, re-render the page with the error next to the form (status 422).
"""

from __future__ import annotations

import tempfile
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from enrichflow.api import auth
from enrichflow.api.dashboard import service
from enrichflow.api.rest import MAX_ID, export_response
from enrichflow.catalog.pipelines import PipelineChoice
from enrichflow.errors import ConfigError, InputError, NotFoundError

__all__ = ["router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(auth.page_guard)])

Id = Annotated[int, Path(ge=1, le=MAX_ID)]
REFRESH_SECONDS = 2
NAV = {"workflows.html": "workflows", "batches.html": "batches", "batch.html": "batches"}


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    templates = request.app.state.templates
    context.setdefault("notice", request.query_params.get("notice"))
    context.setdefault("nav", NAV.get(template, "clients"))
    response: HTMLResponse = templates.TemplateResponse(
        request,
        template,
        {**context, "csrf_token": auth.csrf_token(request), "user": "admin"},
        status_code=status,
    )
    response.headers["cache-control"] = "no-store"
    return response


def redirect(path: str, notice: str | None = None) -> RedirectResponse:
    if notice:
        path = f"{path}?notice={quote(notice)}"
    return RedirectResponse(path, status_code=303)


# --------------------------------------------------------------------------- clients


@router.get("/")
def home() -> Response:
    return redirect("/clients")


def _clients_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    return render(
        request,
        "clients.html",
        status,
        clients=service.clients_list(_engine(request)),
        error=error,
    )


@router.get("/clients")
def clients_page(request: Request) -> Response:
    return _clients_page(request)


@router.post("/clients")
def client_create(request: Request, name: Annotated[str, Form()] = "") -> Response:
    try:
        client = service.client_create(_engine(request), name)
    except ConfigError as exc:
        return _clients_page(request, error=str(exc), status=422)
    return redirect(f"/clients/{client['id']}", "Client created.")


def _client_page(
    request: Request, client_id: Id, status: int = 200, **errors: str | None
) -> HTMLResponse:
    engine = _engine(request)
    detail = service.client_detail(engine, client_id)
    workflows = service.workflows_list(engine)
    return render(
        request,
        "client.html",
        status,
        client=detail,
        workstreams=service.workstreams_list(engine),
        workflows=workflows,
        async_workflows=[w for w in workflows if w["type"] == "ASYNC"],
        **errors,
    )


@router.get("/clients/{client_id}")
def client_page(request: Request, client_id: Id) -> Response:
    return _client_page(request, client_id)


# --------------------------------------------------------------------------- pipelines


def _builder(
    request: Request,
    client_id: Id,
    workstream: str,
    name: str,
    steps: list[str],
    error: str | None = None,
    status: int = 200,
    saved: bool = False,
) -> HTMLResponse:
    engine = _engine(request)
    client = service.client_name(engine, client_id)
    registry = service.workflows_list(engine, workstream)
    problem = error
    if problem is None and steps:
        try:
            service.pipeline_validate(engine, client_id, workstream, steps)
        except ConfigError as exc:
            problem = str(exc)
    by_slug = {w["slug"]: w for w in registry}
    return render(
        request,
        "pipeline.html",
        status,
        client={"id": client_id, "name": client},
        workstream=workstream,
        workstreams=service.workstreams_list(engine),
        name=name,
        steps=[{"slug": s, "workflow": by_slug.get(s)} for s in steps],
        available=[w for w in registry if w["slug"] not in steps],
        error=problem,
        saved=saved,
    )


@router.get("/clients/{client_id}/pipelines/new")
def pipeline_new(
    request: Request,
    client_id: Id,
    workstream: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    engine = _engine(request)
    streams = service.workstreams_list(engine)
    chosen = workstream or (streams[0]["slug"] if streams else "")
    return _builder(request, client_id, chosen, "", [])


@router.get("/pipelines/{pipeline_id}/edit")
def pipeline_edit(request: Request, pipeline_id: Id) -> Response:
    p = service.pipeline_get(_engine(request), pipeline_id)
    return _builder(request, p["client_id"], p["workstream"], p["name"], p["steps"])


@router.post("/clients/{client_id}/pipelines/builder")
def pipeline_builder(
    request: Request,
    client_id: Id,
    workstream: Annotated[str, Form()],
    action: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
    steps: Annotated[list[str] | None, Form()] = None,
    add: Annotated[str, Form()] = "",
) -> Response:
    """Edit the step list held in the form (add, up, down, remove, switch workstream), or save."""
    current = [s for s in (steps or []) if s]
    verb, _, arg = action.partition(":")
    index = int(arg) if arg.isdigit() else -1
    if verb == "add" and add and add not in current:
        current.append(add)
    elif verb == "up" and 0 < index < len(current):
        current[index - 1], current[index] = current[index], current[index - 1]
    elif verb == "down" and 0 <= index < len(current) - 1:
        current[index + 1], current[index] = current[index], current[index + 1]
    elif verb == "remove" and 0 <= index < len(current):
        del current[index]
    elif verb == "workstream":
        current = []
    elif verb == "save":
        try:
            service.pipeline_save(_engine(request), client_id, workstream, name, current)
        except ConfigError as exc:
            return _builder(request, client_id, workstream, name, current, str(exc), 422)
        return redirect(f"/clients/{client_id}", f"Pipeline {name.strip()!r} saved.")
    return _builder(request, client_id, workstream, name, current)


@router.post("/pipelines/{pipeline_id}/delete")
def pipeline_delete(request: Request, pipeline_id: Id) -> Response:
    engine = _engine(request)
    p = service.pipeline_get(engine, pipeline_id)
    service.pipeline_delete(engine, pipeline_id)
    return redirect(f"/clients/{p['client_id']}", f"Pipeline {p['name']!r} deleted.")


# --------------------------------------------------------------------------- workflows


def _workflows_page(
    request: Request,
    error: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    engine = _engine(request)
    return render(
        request,
        "workflows.html",
        status,
        workflows=service.workflows_list(engine),
        workstreams=service.workstreams_list(engine),
        sources_near_limit=service.webhook_sources_near_limit(engine),
        error=error,
        form=form or {},
    )


@router.get("/workflows")
def workflows_page(request: Request) -> Response:
    return _workflows_page(request)


def _parse_options(text: str) -> dict[str, float]:
    options: dict[str, float] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ConfigError(f"expected KEY=NUMBER, got {line!r}")
        try:
            options[key.strip()] = float(value) if "." in value else int(value)
        except ValueError:
            raise ConfigError(f"{key.strip()!r} must be a number, got {value.strip()!r}") from None
    return options


@router.post("/workflows")
def workflow_create(
    request: Request,
    slug: Annotated[str, Form()] = "",
    workstream: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    options: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "slug": slug,
        "workstream": workstream,
        "name": name,
        "description": description,
        "options": options,
    }
    try:
        config = _parse_options(options)
        created = service.workflow_create(
            _engine(request), slug, workstream, name, description, config
        )
    except ConfigError as exc:
        return _workflows_page(request, str(exc), 422, form)
    return redirect("/workflows", f"Workflow {created['slug']!r} added.")


# --------------------------------------------------------------------------- configs


@router.post("/clients/{client_id}/configs")
def config_set(
    request: Request,
    client_id: Id,
    target: Annotated[str, Form()] = "",
    settings: Annotated[str, Form()] = "",
) -> Response:
    """``target`` is ``workstream/workflow``; ``settings`` holds KEY=VALUE lines."""
    workstream, _, workflow = target.partition("/")
    try:
        if not workflow:
            raise ConfigError("pick a workflow")
        service.config_set_lines(
            _engine(request), client_id, workflow, workstream, settings.splitlines()
        )
    except (ConfigError, NotFoundError) as exc:
        # an unknown workflow is shown next to the form, not as a 404 page
        return _client_page(request, client_id, 422, config_error=str(exc))
    return redirect(f"/clients/{client_id}", f"Config for {workflow} saved.")


# --------------------------------------------------------------------------- uploads


@router.post("/clients/{client_id}/uploads")
async def upload_create(
    request: Request, client_id: Id, file: Annotated[UploadFile | None, File()] = None
) -> Response:
    engine = _engine(request)
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
            lambda: _client_page(request, client_id, 422, upload_error=message)
        )
    return redirect(f"/uploads/{report.upload_id}", f"Uploaded {report.rows} rows.")


def _upload_page(request: Request, upload_id: Id, **extra: Any) -> HTMLResponse:
    engine = _engine(request)
    upload = service.upload_detail(engine, upload_id, preview=10)
    client = None
    choices: dict[str, list[PipelineChoice]] = {}
    streams = service.workstreams_list(engine)
    if upload["client_id"] is not None:
        client = {
            "id": upload["client_id"],
            "name": service.client_name(engine, upload["client_id"]),
        }
        choices = {
            s["slug"]: service.pipeline_choices(engine, upload["client_id"], s["slug"])
            for s in streams
        }
    status = extra.pop("status", 200)
    return render(
        request,
        "upload.html",
        status,
        upload=upload,
        client=client,
        choices=choices,
        **extra,
    )


@router.get("/uploads/{upload_id}")
def upload_page(request: Request, upload_id: Id) -> Response:
    return _upload_page(request, upload_id)


@router.post("/uploads/{upload_id}/launch")
def upload_launch(request: Request, upload_id: Id, choice: Annotated[str, Form()] = "") -> Response:
    """``choice`` is ``workstream/pipeline``."""
    workstream, _, pipeline = choice.partition("/")
    try:
        if not pipeline:
            raise ConfigError("pick a pipeline")
        batch_id = service.batch_launch(
            _engine(request), upload_id, workstream, pipeline, settings=request.app.state.settings
        )
    except ConfigError as exc:
        return _upload_page(request, upload_id, launch_error=str(exc), status=422)
    request.app.state.wake()
    return redirect(f"/batches/{batch_id}", "Batch launched.")


# --------------------------------------------------------------------------- batches


@router.get("/batches")
def batches_page(request: Request) -> Response:
    return render(request, "batches.html", batches=service.batches_list(_engine(request)))


@router.get("/batches/{batch_id}")
def batch_page(request: Request, batch_id: Id) -> Response:
    batch = service.batch_detail(_engine(request), batch_id)
    return render(
        request,
        "batch.html",
        batch=batch,
        refresh=REFRESH_SECONDS if batch["status"] == "RUNNING" else None,
        eta=service.format_duration(batch["eta_seconds"]),
        colors=service.STATUS_COLORS,
        statuses=service.STATUSES,
    )


@router.post("/batches/{batch_id}/retry")
def batch_retry(
    request: Request,
    batch_id: Id,
    step: Annotated[str, Form()] = "",
    item_id: Annotated[str, Form()] = "",
) -> Response:
    item = int(item_id) if item_id.isdigit() and 0 < int(item_id) <= MAX_ID else None
    moved = service.batch_retry(_engine(request), batch_id, step or None, item)
    if moved:
        request.app.state.wake()
    return redirect(f"/batches/{batch_id}", f"{moved} failed state(s) queued for retry.")


@router.get("/batches/{batch_id}/export.{fmt}")
def batch_export(request: Request, batch_id: Id, fmt: str) -> Response:
    if fmt not in ("csv", "jsonl"):
        raise ConfigError("export as csv or jsonl")
    return export_response(_engine(request), batch_id, fmt)
