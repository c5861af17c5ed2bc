"""``enrichflow cancel``, ``pause``, ``resume`` and ``resend``: an operator's controls on a
running batch, each recorded in the batch's history (``catalog.batch_controls``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from enrichflow.cli.root import DatabaseUrl, JsonFlag, console, engine_for, fail, json_print
from enrichflow.errors import ConflictError, InputError, NotFoundError

BatchArgument = Annotated[int, typer.Argument(metavar="BATCH")]


def _act(database_url: str | None, action: Callable[[Any], Any]) -> Any:
    """Run ``action`` with a writing connection; a refused control exits 2 with its reason."""
    engine = engine_for(database_url)
    try:
        with engine.begin() as conn:
            return action(conn)
    except (ConflictError, InputError, NotFoundError) as exc:
        raise fail(str(exc)) from exc
    finally:
        engine.dispose()


def _report(as_json: bool, answer: dict[str, Any], message: str) -> None:
    if as_json:
        json_print(answer)
    else:
        console.print(message)


def cancel(
    batch_id: BatchArgument, as_json: JsonFlag = False, database_url: DatabaseUrl = None
) -> None:
    """Cancel a running batch: its unfinished items end CANCELLED, nothing more is sent, and
    late callbacks are answered "cancelled" and stored nowhere."""
    from enrichflow.catalog.batch_controls import Actor, batch_cancel
    from enrichflow.db.engine import now_ms

    states = _act(database_url, lambda conn: batch_cancel(conn, batch_id, Actor.CLI, now_ms()))
    _report(
        as_json,
        {"batch_id": batch_id, "status": "CANCELLED", "cancelled_states": states},
        f"batch {batch_id} is CANCELLED; {states} unfinished state(s) will not run",
    )


def pause(
    batch_id: BatchArgument, as_json: JsonFlag = False, database_url: DatabaseUrl = None
) -> None:
    """Pause a running batch: nothing of it is dispatched or sent until enrichflow resume;
    callbacks of items already sent still land."""
    from enrichflow.catalog.batch_controls import Actor, batch_pause

    _act(database_url, lambda conn: batch_pause(conn, batch_id, Actor.CLI))
    _report(
        as_json,
        {"batch_id": batch_id, "paused": True},
        f"batch {batch_id} is paused; continue it with: enrichflow resume {batch_id}",
    )


def resume(
    batch_id: BatchArgument, as_json: JsonFlag = False, database_url: DatabaseUrl = None
) -> None:
    """Resume a batch paused by enrichflow pause or by the circuit breaker (fix the cause
    first, e.g. with enrichflow retry BATCH --step S --refresh-options)."""
    from enrichflow.catalog.batch_controls import Actor, batch_resume

    steps = _act(database_url, lambda conn: batch_resume(conn, batch_id, Actor.CLI))
    also = f"; the circuit breaker's pause of {', '.join(steps)} is lifted" if steps else ""
    _report(
        as_json,
        {"batch_id": batch_id, "paused": False, "breaker_cleared": steps},
        f"batch {batch_id} runs again{also}; a running conductor or `serve` picks it up",
    )


def resend(
    batch_id: BatchArgument,
    step: Annotated[str, typer.Option(help="The ASYNC step whose waiting items to re-send.")],
    older_than: Annotated[
        str,
        typer.Option(
            help="Only items sent at least this long ago: 30s, 15m, 2h, 1d (default: all)."
        ),
    ] = "0s",
    as_json: JsonFlag = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Re-send now, as a new attempt, a step's items still waiting on the external service
    (a lost callback); whichever attempt's callback lands first counts, the other is a
    duplicate."""
    from enrichflow.catalog.batch_controls import Actor, batch_resend, duration_seconds
    from enrichflow.db.engine import now_ms

    try:
        seconds = duration_seconds(older_than)
    except InputError as exc:
        raise fail(str(exc)) from exc
    moved = _act(
        database_url,
        lambda conn: batch_resend(conn, batch_id, step, seconds, Actor.CLI, now_ms()),
    )
    _report(
        as_json,
        {"batch_id": batch_id, "step": step, "resent": moved},
        f"{moved} waiting item(s) of {step} in batch {batch_id} will be sent again by the "
        "running conductor or `serve`",
    )
