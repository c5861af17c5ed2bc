"""The dashboard pages: server-rendered Jinja2, forms posting back with a CSRF token.

Every route here depends on :func:`enrichflow.api.auth.page_guard` (login, and the CSRF
token on POST). State-changing forms answer with a 303 redirect (post/redirect/get) or, when
the input is wrong, re-render the page with the error next to the form (status 422). This
module holds the home page and the batches, and includes the routers of the other pages
(clients, workflows, pipelines, uploads, one batch's pages).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import Engine

from enrichflow.api import auth
from enrichflow.api.dashboard import listings, service
from enrichflow.api.dashboard.batch_routes import router as batch_router
from enrichflow.api.dashboard.client_routes import router as client_router
from enrichflow.api.dashboard.control_routes import router as control_router
from enrichflow.api.dashboard.pages import Id, engine_of, redirect, render
from enrichflow.api.dashboard.pipeline_routes import router as pipeline_router
from enrichflow.api.dashboard.upload_routes import router as upload_router
from enrichflow.api.dashboard.workflow_routes import router as workflow_router
from enrichflow.api.rest import MAX_ID, export_response
from enrichflow.errors import ConfigError
from enrichflow.export_tables import LEADS, TABLE_NAMES

__all__ = ["redirect", "render", "router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(auth.page_guard)])
for _pages in (
    client_router,
    workflow_router,
    pipeline_router,
    upload_router,
    batch_router,
    control_router,
):
    router.include_router(_pages)

PageKey = Annotated[int | None, Query(ge=1, le=MAX_ID)]


def _engine(request: Request) -> Engine:
    return engine_of(request)


@router.get("/")
def home(request: Request) -> Response:
    engine = engine_of(request)
    return render(
        request,
        "home.html",
        lists=listings.home(engine),
        sources_near_limit=service.webhook_sources_near_limit(engine),
    )


@router.get("/batches")
def batches_page(
    request: Request,
    status: Annotated[str | None, Query(max_length=40)] = None,
    client: PageKey = None,
    before: PageKey = None,
    after: PageKey = None,
) -> Response:
    chosen = status if status in listings.BATCH_STATUSES else None
    return render(
        request,
        "batches.html",
        listing=listings.batches_page(
            engine_of(request), status=chosen, client_id=client, before=before, after=after
        ),
        statuses=listings.BATCH_STATUSES,
        chosen_status=chosen,
        client=client,
    )


# --------------------------------------------------------------------------- batches


@router.get("/batches/{batch_id}/export.{fmt}")
def batch_export(
    request: Request, batch_id: Id, fmt: str, table: str = LEADS, all_columns: bool = False
) -> Response:
    if fmt not in ("csv", "jsonl"):
        raise ConfigError("export as csv or jsonl")
    if table not in TABLE_NAMES:
        raise ConfigError(f"export one of the tables {', '.join(TABLE_NAMES)}")
    return export_response(_engine(request), batch_id, fmt, table, all_columns)
