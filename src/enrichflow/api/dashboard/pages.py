"""What every dashboard route uses to answer: render a template with the session's CSRF token
and the nav state, or redirect after a post (post/redirect/get) with a one-line notice."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import Engine

from enrichflow.api import auth
from enrichflow.api.rest import MAX_ID

__all__ = ["Id", "engine_of", "redirect", "render"]

Id = Annotated[int, Path(ge=1, le=MAX_ID)]

NAV = {
    "home.html": "home",
    "workflows.html": "workflows",
    "workflow.html": "workflows",
    "batches.html": "batches",
    "batch.html": "batches",
}
"""The nav entry each page belongs to (the clients' otherwise)."""


def engine_of(request: Request) -> Engine:
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
        path, _, fragment = path.partition("#")
        sep = "&" if "?" in path else "?"
        path = f"{path}{sep}notice={quote(notice)}" + (f"#{fragment}" if fragment else "")
    return RedirectResponse(path, status_code=303)
