"""The batch page's controls: cancel (after a confirmation page), pause, resume and re-send
waiting items, each one the catalog's function the CLI and the REST API call, recorded in the
batch's history as done from the dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from enrichflow.api import auth
from enrichflow.api.dashboard.pages import Id, engine_of, redirect, render
from enrichflow.catalog import batch_controls
from enrichflow.catalog.batch_controls import Actor
from enrichflow.catalog.batches import batch_get
from enrichflow.db.engine import now_ms, reading
from enrichflow.errors import NotFoundError

__all__ = ["router"]

router = APIRouter(include_in_schema=False, dependencies=[Depends(auth.page_guard)])


@router.get("/batches/{batch_id}/cancel")
def cancel_confirm(request: Request, batch_id: Id) -> Response:
    with reading(engine_of(request)) as conn:
        batch = batch_get(conn, batch_id)
    if batch is None:
        raise NotFoundError(f"batch {batch_id} does not exist")
    blocked = None
    if batch["status"] != "RUNNING":
        blocked = f"Batch {batch_id} is {batch['status']}: only a running batch can be cancelled."
    return render(
        request,
        "confirm.html",
        nav="batches",
        title=f"Cancel batch {batch_id}?",
        what=f"Batch {batch_id} of {batch['client_name']} ({batch['item_count']:,} items)",
        consequences=[
            "Its unfinished items end CANCELLED: nothing more of it is sent to Clay or run.",
            "Results of items sent already are not stored when Clay calls back.",
            "A cancelled batch cannot be resumed or retried; launch its upload again instead.",
        ],
        blocked=blocked,
        action=f"/batches/{batch_id}/cancel",
        button="Cancel batch",
        cancel=f"/batches/{batch_id}",
        back_label="Keep it running",
    )


@router.post("/batches/{batch_id}/cancel")
def cancel(request: Request, batch_id: Id, confirm: Annotated[str, Form()] = "") -> Response:
    if confirm != "yes":
        return redirect(f"/batches/{batch_id}/cancel")
    with engine_of(request).begin() as conn:
        states = batch_controls.batch_cancel(conn, batch_id, Actor.DASHBOARD, now_ms())
    request.app.state.wake()
    return redirect(
        f"/batches/{batch_id}",
        f"Batch {batch_id} cancelled: {states:,} unfinished step run(s) will not run.",
    )


@router.post("/batches/{batch_id}/pause")
def pause(request: Request, batch_id: Id) -> Response:
    with engine_of(request).begin() as conn:
        batch_controls.batch_pause(conn, batch_id, Actor.DASHBOARD)
    return redirect(
        f"/batches/{batch_id}",
        f"Batch {batch_id} paused: nothing more is sent until it is resumed; callbacks still land.",
    )


@router.post("/batches/{batch_id}/resume")
def resume(request: Request, batch_id: Id) -> Response:
    with engine_of(request).begin() as conn:
        steps = batch_controls.batch_resume(conn, batch_id, Actor.DASHBOARD)
    request.app.state.wake()
    lifted = f"; the circuit breaker's pause of {', '.join(steps)} is lifted" if steps else ""
    return redirect(f"/batches/{batch_id}", f"Batch {batch_id} resumed{lifted}.")


@router.post("/batches/{batch_id}/resend")
def resend(
    request: Request,
    batch_id: Id,
    step: Annotated[str, Form(max_length=200)],
    older_than: Annotated[str, Form(max_length=20)] = "0s",
) -> Response:
    seconds = batch_controls.duration_seconds(older_than)
    with engine_of(request).begin() as conn:
        moved = batch_controls.batch_resend(
            conn, batch_id, step, seconds, Actor.DASHBOARD, now_ms()
        )
    request.app.state.wake()
    return redirect(
        f"/batches/{batch_id}",
        f"{moved:,} waiting item(s) of {step} will be sent again now, as a new attempt.",
    )
