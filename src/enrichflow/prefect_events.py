"""Prefect events for launches and callbacks, so a Prefect deployment can react to them.

Emitted only when Prefect is configured (``PREFECT_API_URL`` set) and installed in the
process's environment (``.venv-prefect/``, never the main one: docs/prefect.md); otherwise
every call is a no-op. ``PREFECT_API_URL`` is checked first because without it Prefect would
start a temporary server of its own just to take the event. Prefect is imported lazily (its
import is slow) and only once. Emitting never raises into
the caller: a launch or a callback must not fail because Prefect is unreachable; failures are
logged. Delivery is Prefect's background events worker, so the caller does not wait for it.

Event names (the deployment trigger in ``deploy/prefect_flow.py`` expects the first):

* ``enrichflow.batch.launched``: resource ``enrichflow.batch.<id>``
* ``enrichflow.callback.received``: resource ``enrichflow.state.<id>``
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from typing import Any

log = logging.getLogger(__name__)

BATCH_LAUNCHED = "enrichflow.batch.launched"
CALLBACK_RECEIVED = "enrichflow.callback.received"

_lock = threading.Lock()
_emit: Any = None
_unavailable = False


def configured() -> bool:
    """True when ``PREFECT_API_URL`` names a Prefect server (or Prefect Cloud)."""
    return bool(os.environ.get("PREFECT_API_URL", "").strip())


def _emitter() -> Any:
    """``prefect.events.emit_event``, imported once; None when Prefect is not installed."""
    global _emit, _unavailable
    if _emit is not None or _unavailable:
        return _emit
    with _lock:
        if _emit is None and not _unavailable:
            try:
                _emit = importlib.import_module("prefect.events").emit_event
            except ImportError:
                _unavailable = True
                log.warning(
                    "PREFECT_API_URL is set but prefect is not installed in this environment; "
                    "no Prefect events are sent. Prefect has its own environment, "
                    ".venv-prefect/ (make it with `make prefect-venv`): run the process that "
                    "should send events from there, e.g. `.venv-prefect/bin/enrichflow serve` "
                    "(docs/prefect.md)"
                )
    return _emit


def emit(event: str, resource: dict[str, str], payload: dict[str, Any] | None = None) -> bool:
    """Emit one event; True when it was handed to Prefect's events worker."""
    if not configured():
        return False
    try:
        emit_event = _emitter()
        if emit_event is None:
            return False
        return emit_event(event=event, resource=resource, payload=payload) is not None
    except Exception:
        log.warning("could not emit Prefect event %s", event, exc_info=True)
        return False


def batch_launched(batch_id: int, client: str, workstream: str) -> bool:
    """A batch was created RUNNING; a deployment triggered by this event will run it."""
    return emit(
        BATCH_LAUNCHED,
        {
            "prefect.resource.id": f"enrichflow.batch.{batch_id}",
            "prefect.resource.name": f"batch {batch_id}",
            "enrichflow.batch.id": str(batch_id),
            "enrichflow.client": client,
            "enrichflow.workstream": workstream,
        },
    )


def callback_received(state_id: int, outcome: str) -> bool:
    """A callback for ``state_id`` was landed with ``outcome`` (a ``CallbackOutcome``)."""
    return emit(
        CALLBACK_RECEIVED,
        {
            "prefect.resource.id": f"enrichflow.state.{state_id}",
            "enrichflow.state.id": str(state_id),
        },
        {"outcome": str(outcome)},
    )
