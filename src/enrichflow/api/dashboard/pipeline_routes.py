"""The pipeline builder: the step list lives in the form (add, move, remove, switch workstream)
until it is saved, in place (a rename keeps the pipeline) or as a new pipeline; a delete asks
first. Saving makes launch's checks and the step-order check, and says which client configs
the pipeline's Clay steps still need."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from enrichflow.api import auth
from enrichflow.api.dashboard import editing, service
from enrichflow.api.dashboard.pages import Id, engine_of, redirect, render
from enrichflow.api.rest import MAX_ID
from enrichflow.errors import ConfigError

__all__ = ["router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(auth.page_guard)])


def _builder(
    request: Request,
    client_id: int,
    workstream: str,
    name: str,
    steps: list[str],
    pipeline_id: int | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    engine = engine_of(request)
    client = service.client_name(engine, client_id)
    registry = service.workflows_list(engine, workstream)
    problem = error
    if problem is None and steps:
        try:
            editing.pipeline_check(engine, client_id, workstream, steps)
        except ConfigError as exc:
            problem = str(exc)
    saved = service.pipeline_get(engine, pipeline_id) if pipeline_id is not None else None
    by_slug = {w["slug"]: w for w in registry}
    return render(
        request,
        "pipeline.html",
        status,
        client={"id": client_id, "name": client},
        workstream=workstream,
        workstreams=service.workstreams_list(engine),
        name=name,
        pipeline=saved,
        steps=[{"slug": s, "workflow": by_slug.get(s)} for s in steps],
        available=[w for w in registry if w["slug"] not in steps],
        error=problem,
    )


@router.get("/clients/{client_id}/pipelines/new")
def pipeline_new(
    request: Request,
    client_id: Id,
    workstream: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    streams = service.workstreams_list(engine_of(request))
    chosen = workstream or (streams[0]["slug"] if streams else "")
    return _builder(request, client_id, chosen, "", [])


@router.get("/pipelines/{pipeline_id}/edit")
def pipeline_edit(request: Request, pipeline_id: Id) -> Response:
    p = service.pipeline_get(engine_of(request), pipeline_id)
    return _builder(request, p["client_id"], p["workstream"], p["name"], p["steps"], p["id"])


@router.post("/clients/{client_id}/pipelines/builder")
def pipeline_builder(
    request: Request,
    client_id: Id,
    workstream: Annotated[str, Form()],
    action: Annotated[str, Form()],
    name: Annotated[str, Form()] = "",
    steps: Annotated[list[str] | None, Form()] = None,
    add: Annotated[str, Form()] = "",
    pipeline_id: Annotated[str, Form()] = "",
) -> Response:
    """Edit the step list held in the form (add, up, down, remove, switch workstream), or
    save it: ``save`` in place of the pipeline being edited (or as a new one), ``save_as`` as
    a new pipeline whatever is being edited."""
    current = [s for s in (steps or []) if s]
    editing_id = (
        int(pipeline_id) if pipeline_id.isdigit() and 0 < int(pipeline_id) <= MAX_ID else None
    )
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
    elif verb in ("save", "save_as"):
        target = editing_id if verb == "save" else None
        try:
            saved, missing = editing.pipeline_store(
                engine_of(request), client_id, workstream, name, current, target
            )
        except ConfigError as exc:
            return _builder(
                request, client_id, workstream, name, current, editing_id, str(exc), 422
            )
        done = "saved as a new pipeline" if verb == "save_as" else "saved"
        notice = f"Pipeline {saved['name']!r} {done}."
        if missing:
            notice += " Before launching it: " + "; ".join(missing) + " (Workflow configs below)."
        return redirect(f"/clients/{client_id}#pipelines", notice)
    return _builder(request, client_id, workstream, name, current, editing_id)


@router.get("/pipelines/{pipeline_id}/delete")
def pipeline_delete_confirm(request: Request, pipeline_id: Id) -> Response:
    p = service.pipeline_get(engine_of(request), pipeline_id)
    return render(
        request,
        "confirm.html",
        title=f"Delete pipeline {p['name']}?",
        what=f"{p['name']} of {p['client']} ({p['workstream']}): {' → '.join(p['steps'])}",
        consequences=["Batches already launched with it keep running."],
        blocked=None,
        action=f"/pipelines/{pipeline_id}/delete",
        button="Delete pipeline",
        cancel=f"/clients/{p['client_id']}#pipelines",
    )


@router.post("/pipelines/{pipeline_id}/delete")
def pipeline_delete(
    request: Request, pipeline_id: Id, confirm: Annotated[str, Form()] = ""
) -> Response:
    engine = engine_of(request)
    p = service.pipeline_get(engine, pipeline_id)
    if confirm != "yes":
        return redirect(f"/pipelines/{pipeline_id}/delete")
    service.pipeline_delete(engine, pipeline_id)
    return redirect(f"/clients/{p['client_id']}#pipelines", f"Pipeline {p['name']!r} deleted.")
