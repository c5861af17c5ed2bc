"""Error classes: a failed state's error text with its ids and numbers masked, so two hundred
``HTTP 404 for item 81234`` failures are one group with one retry. Every statement that fails a
state stores the class beside the error (``workflow_states.error_class``)."""

from __future__ import annotations

import re

from enrichflow.db.models import ERROR_CLASS_CHARS
from enrichflow.db.states.transition import status_unchanged

__all__ = ["MASKS", "NO_ERROR", "error_class"]

MASKS = (
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<id>"),
    (r"[0-9a-fA-F]{16,}", "<id>"),
    (r"(?<!HTTP )(?<!status )(?<![0-9])[0-9]+", "<n>"),
)
"""Applied in this order."""
NO_ERROR = "(no error text)"
_COMPILED = [(re.compile(pattern), mask) for pattern, mask in MASKS]


@status_unchanged
def error_class(error: str | None) -> str:
    """The error text with ids and numbers masked, except an HTTP status (``HTTP 404``)."""
    if not error:
        return NO_ERROR
    for pattern, mask in _COMPILED:
        error = pattern.sub(mask, error)
    return error[:ERROR_CLASS_CHARS] or NO_ERROR
