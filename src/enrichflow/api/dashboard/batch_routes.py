"""The batch pages: progress, failure triage, the lead browser and one item, plus the HTML
fragments ``static/batch.js`` swaps in place for live updates (no reload, so focus,
selection and scroll stay where the operator left them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response, StreamingResponse

from enrichflow.api import auth
from enrichflow.api.dashboard import batch_service, service
from enrichflow.api.dashboard.pages import Id, redirect, render
from enrichflow.api.rest import MAX_ID
from enrichflow.catalog.batch_view import SEGMENTS, parse_after
from enrichflow.errors import ConfigError

__all__ = ["router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(auth.page_guard)])

LIVE_SECONDS = 2
FRAGMENTS = {
    "summary": frozenset({"progress"}),
    "steps": frozenset({"progress", "credits"}),
    "groups": frozenset({"groups"}),
    "failed": frozenset(),
    "controls": frozenset({"controls"}),
}
"""Each live part of the batch page, and the reads it needs."""
SEGMENT_LABELS = {
    "completed": "completed",
    "skipped": "skipped",
    "failed": "failed",
    "not_run": "not run after a failure",
    "waiting": "waiting on Clay",
    "todo": "to do",
}
Text = Annotated[str, Query(max_length=300)]


def _engine(request: Request) -> Any:
    return request.app.state.engine


def _context(
    request: Request, batch_id: int, parts: frozenset[str] = batch_service.PARTS
) -> dict[str, Any]:
    page = batch_service.batch_page(_engine(request), batch_id, parts)
    if parts is batch_service.PARTS or "controls" in parts:
        page |= batch_service.batch_controls(_engine(request), batch_id)
    return {
        **page,
        "live": LIVE_SECONDS if page["running"] else None,
        "segments": SEGMENTS,
        "segment_labels": SEGMENT_LABELS,
        "statuses": service.STATUSES,
        "colors": service.STATUS_COLORS,
        "when": batch_service.when,
        "span": batch_service.span,
        "nav": "batches",
    }


def _failed(
    request: Request, batch_id: int, step: str, error_class: str, status: str, after: str
) -> dict[str, Any]:
    """The failed list's page and the filters it was asked with."""
    status = status or "FAILED"
    failed = batch_service.failed_page(
        _engine(request),
        batch_id,
        after=parse_after(after),
        step=step or None,
        klass=error_class or None,
        status=status,
    )
    filters = {"step": step, "error_class": error_class, "status": status, "after": after}
    return {"failed": failed, "filters": filters}


@router.get("/batches/{batch_id}")
def batch_page(
    request: Request,
    batch_id: Id,
    step: Text = "",
    error_class: Text = "",
    status: Text = "FAILED",
    after: Text = "",
) -> Response:
    context = _context(request, batch_id)
    listed = _failed(request, batch_id, step, error_class, status, after)
    rejected = batch_service.rejected_rows(_engine(request), context["batch"]["upload_id"])
    return render(request, "batch.html", **context, **listed, rejected_rows=rejected)


@router.get("/batches/{batch_id}/fragments/{part}")
def batch_fragment(
    request: Request,
    batch_id: Id,
    part: str,
    step: Text = "",
    error_class: Text = "",
    status: Text = "FAILED",
    after: Text = "",
) -> Response:
    """One part of the batch page, for ``batch.js`` to swap in (the failed list with the
    page's own filters)."""
    if part not in FRAGMENTS:
        raise ConfigError(f"part must be one of {', '.join(FRAGMENTS)}, got {part!r}")
    context = _context(request, batch_id, FRAGMENTS[part])
    if part == "failed":
        context |= _failed(request, batch_id, step, error_class, status, after)
        part = "failed_rows"
    elif part == "controls":
        part = "control_forms"
    return render(request, f"_batch_{part}.html", **context)


@router.post("/batches/{batch_id}/retry")
def batch_retry(
    request: Request,
    batch_id: Id,
    step: Annotated[str, Form(max_length=200)] = "",
    item_id: Annotated[str, Form(max_length=20)] = "",
    error_class: Annotated[str, Form(max_length=300)] = "",
    back: Annotated[str, Form(max_length=300)] = "",
) -> Response:
    """Retry all failures, one step's, one failure group (``step`` + ``error_class``), or one
    item's; back to the batch page (or the item page it came from) with what moved."""
    item = int(item_id) if item_id.isdigit() and 0 < int(item_id) <= MAX_ID else None
    engine = _engine(request)
    if error_class and step:
        moved = batch_service.retry_class(engine, batch_id, step, error_class)
    else:
        moved = service.batch_retry(engine, batch_id, step or None, item)
    if moved:
        request.app.state.wake()
    target = back if back.startswith(f"/batches/{batch_id}/") else f"/batches/{batch_id}"
    return redirect(
        target,
        f"{moved} failed state(s) queued for retry; progress moves back by as many until they run.",
    )


@router.get("/batches/{batch_id}/failures.csv")
def failures_export(request: Request, batch_id: Id) -> Response:
    engine = _engine(request)
    batch_service.failed_page(engine, batch_id)  # 404 before the stream starts
    return StreamingResponse(
        batch_service.failures_csv(engine, batch_id),
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="batch-{batch_id}-failures.csv"',
            "cache-control": "no-store",
        },
    )


@router.get("/batches/{batch_id}/items")
def items_page(
    request: Request,
    batch_id: Id,
    step: Text = "",
    status: Text = "",
    q: Text = "",
    after: Text = "",
) -> Response:
    engine = _engine(request)
    page = batch_service.batch_page(engine, batch_id, frozenset())
    items = batch_service.items_page(
        engine,
        batch_id,
        after=parse_after(after),
        step=step or None,
        status=status or None,
        search=q or None,
    )
    return render(
        request,
        "batch_items.html",
        batch=page["batch"],
        blueprint=page["blueprint"],
        items=items,
        filters={"step": step, "status": status, "q": q},
        statuses=service.STATUSES,
        nav="batches",
    )


@router.get("/batches/{batch_id}/items/{item_id}")
def item_page(request: Request, batch_id: Id, item_id: Id) -> Response:
    found = batch_service.item_detail(_engine(request), batch_id, item_id)
    return render(
        request,
        "batch_item.html",
        **found,
        when=batch_service.when,
        nav="batches",
    )
