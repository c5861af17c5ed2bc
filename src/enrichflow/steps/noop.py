"""A step that does nothing but succeed: for wiring checks and the engine benchmark."""

from __future__ import annotations

from enrichflow.steps.base import JSON, StepContext
from enrichflow.steps.registry import handler


@handler("noop")
def noop(ctx: StepContext) -> JSON:
    """Return an empty result at once."""
    return {}
