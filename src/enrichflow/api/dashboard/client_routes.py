"""The clients' pages: the list (with running and failing work), creating a client, a
client's page (pipelines, configs, uploads, batches) and its config form."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from enrichflow.api import auth
from enrichflow.api.dashboard import editing, listings, service
from enrichflow.api.dashboard.pages import Id, engine_of, redirect, render
from enrichflow.errors import ConfigError, NotFoundError

__all__ = ["client_page_render", "router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(auth.page_guard)])


def _clients_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    return render(
        request,
        "clients.html",
        status,
        clients=service.clients_list(engine_of(request)),
        error=error,
    )


@router.get("/clients")
def clients_page(request: Request) -> Response:
    return _clients_page(request)


@router.post("/clients")
def client_create(request: Request, name: Annotated[str, Form()] = "") -> Response:
    try:
        client = service.client_create(engine_of(request), name)
    except ConfigError as exc:
        return _clients_page(request, error=str(exc), status=422)
    return redirect(f"/clients/{client['id']}", "Client created.")


def client_page_render(
    request: Request,
    client_id: int,
    status: int = 200,
    configure: str | None = None,
    **errors: str | None,
) -> HTMLResponse:
    engine = engine_of(request)
    detail = service.client_detail(engine, client_id)
    workflows = service.workflows_list(engine)
    return render(
        request,
        "client.html",
        status,
        client=detail,
        batches=listings.batches_page(engine, client_id=client_id, limit=20),
        workstreams=service.workstreams_list(engine),
        workflows=workflows,
        async_workflows=[w for w in workflows if w["type"] == "ASYNC"],
        configure=configure,
        **errors,
    )


@router.get("/clients/{client_id}")
def client_page(
    request: Request,
    client_id: Id,
    configure: Annotated[str | None, Query(max_length=220)] = None,
) -> Response:
    return client_page_render(request, client_id, configure=configure)


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
            engine_of(request), client_id, workflow, workstream, settings.splitlines()
        )
    except (ConfigError, NotFoundError) as exc:
        # an unknown workflow is shown next to the form, not as a 404 page
        message = (
            editing.form_message(
                str(exc), "Workflow options are set on the workflow's page (Workflows)."
            )
            if "workflow option" in str(exc)
            else str(exc)
        )
        return client_page_render(request, client_id, 422, configure=target, config_error=message)
    return redirect(f"/clients/{client_id}#configs", f"Config for {workflow} saved.")
