"""The workflow registry's pages: the list, adding a workstream and a workflow of any loaded
handler, editing any workflow's name, description and options with typed inputs, and deleting
one after a confirmation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from enrichflow.api import auth
from enrichflow.api.dashboard import editing, service
from enrichflow.api.dashboard.pages import engine_of, redirect, render
from enrichflow.api.dashboard.workflow_form import (
    DEDUPE_SUGGESTIONS,
    fields_for,
    mode_read,
    option_text,
    options_read,
    other_options_text,
    webhook_only_refused,
)
from enrichflow.errors import ConfigError

__all__ = ["router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(auth.page_guard)])

Slug = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_]*$")]


def _options_context(handler: str, stored: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "option_fields": [(o, option_text(o, stored)) for o in fields_for(handler)],
        "other_options": other_options_text(handler, stored),
        "dedupe_suggestions": DEDUPE_SUGGESTIONS,
    }


def _workflows_page(
    request: Request,
    error: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
    workstream_error: str | None = None,
) -> HTMLResponse:
    """The list with its two forms; after a refused post, ``form`` holds what was typed and
    the error is shown by the form it belongs to."""
    engine = engine_of(request)
    submitted = form or {}
    options = _options_context("webhook", {"concurrency": 10})
    if form is not None and workstream_error is None:
        options["option_fields"] = [(o, form.get(o.input_name, "")) for o in fields_for("webhook")]
        options["other_options"] = form.get("other_options", "")
    return render(
        request,
        "workflows.html",
        status,
        workflows=service.workflows_list(engine),
        workstreams=service.workstreams_list(engine),
        handlers=service.handlers_list(),
        sources_near_limit=service.webhook_sources_near_limit(engine),
        error=error,
        workstream_error=workstream_error,
        form=submitted,
        **options,
    )


@router.get("/workflows")
def workflows_page(request: Request) -> Response:
    return _workflows_page(request)


async def _form(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.form()).items() if isinstance(v, str)}


@router.post("/workstreams")
async def workstream_create(request: Request) -> Response:
    form = await _form(request)
    try:
        created = service.workstream_add(
            engine_of(request),
            form.get("ws_slug", ""),
            form.get("ws_name", ""),
            form.get("ws_description", ""),
        )
    except ConfigError as exc:
        return _workflows_page(request, None, 422, form, editing.form_error(exc))
    return redirect("/workflows#workstreams", f"Workstream {created['slug']!r} added.")


@router.post("/workflows")
async def workflow_create(request: Request) -> Response:
    form = await _form(request)
    handler = form.get("handler", "webhook")
    try:
        values, _ = options_read(handler, form, {})
        webhook_only_refused(handler, form)
        created = service.workflow_create(
            engine_of(request),
            form.get("slug", ""),
            form.get("workstream", ""),
            handler,
            mode=mode_read(form.get("type", "")),
            name=form.get("name", ""),
            description=form.get("description", ""),
            config=values,
        )
    except ConfigError as exc:
        return _workflows_page(request, editing.form_error(exc), 422, form)
    return redirect("/workflows", f"Workflow {created['slug']!r} added.")


def _workflow_page(
    request: Request,
    workstream: str,
    slug: str,
    error: str | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    engine = engine_of(request)
    row = editing.workflow_get(engine, workstream, slug)
    using, configs = editing.workflow_usage(engine, workstream, slug)
    context = _options_context(row.handler, row.config)
    if form is not None:
        context["option_fields"] = [
            (o, form.get(o.input_name, "")) for o in fields_for(row.handler)
        ]
        context["other_options"] = form.get("other_options", "")
    return render(
        request,
        "workflow.html",
        status,
        workflow=row,
        name=row.name if form is None else form.get("name", ""),
        description=(row.description or "") if form is None else form.get("description", ""),
        using=using,
        configs=configs,
        error=error,
        **context,
    )


@router.get("/workflows/{workstream}/{slug}")
def workflow_page(request: Request, workstream: Slug, slug: Slug) -> Response:
    return _workflow_page(request, workstream, slug)


@router.post("/workflows/{workstream}/{slug}")
async def workflow_save(request: Request, workstream: Slug, slug: Slug) -> Response:
    form = {k: str(v) for k, v in (await request.form()).items() if isinstance(v, str)}
    engine = engine_of(request)
    row = editing.workflow_get(engine, workstream, slug)
    try:
        values, remove = options_read(row.handler, form, row.config)
        editing.workflow_edit(
            engine,
            workstream,
            slug,
            form.get("name", ""),
            form.get("description", ""),
            values,
            remove,
        )
    except ConfigError as exc:
        return _workflow_page(request, workstream, slug, str(exc), 422, form)
    return redirect(f"/workflows/{workstream}/{slug}", f"Workflow {slug!r} saved.")


@router.get("/workflows/{workstream}/{slug}/delete")
def workflow_delete_confirm(request: Request, workstream: Slug, slug: Slug) -> Response:
    engine = engine_of(request)
    row = editing.workflow_get(engine, workstream, slug)
    _, configs = editing.workflow_usage(engine, workstream, slug)
    consequences = [
        f"{configs} client config(s) for it (webhook URLs, tokens) are deleted with it."
        if configs
        else "No client has a config for it.",
        "Batches already launched keep running their own copy of it.",
    ]
    blocked = editing.workflow_delete_blocked(engine, workstream, slug)
    return render(
        request,
        "confirm.html",
        nav="workflows",
        title=f"Delete workflow {row.name}?",
        what=f"{row.name} ({row.slug}, {row.workstream_slug})",
        consequences=consequences,
        blocked=blocked,
        action=f"/workflows/{workstream}/{slug}/delete",
        button="Delete workflow",
        cancel=f"/workflows/{workstream}/{slug}",
    )


@router.post("/workflows/{workstream}/{slug}/delete")
def workflow_delete(
    request: Request, workstream: Slug, slug: Slug, confirm: Annotated[str, Form()] = ""
) -> Response:
    if confirm != "yes":
        return redirect(f"/workflows/{workstream}/{slug}/delete")
    try:
        configs = service.workflow_delete(engine_of(request), slug, workstream)
    except ConfigError as exc:
        return _workflow_page(request, workstream, slug, editing.form_error(exc), 422)
    return redirect("/workflows", f"Workflow {slug!r} deleted with {configs} client config(s).")
