"""An enrichflow step plugin: ``title_length``, the number of characters in a lead's title.

A SYNC step written against enrichflow's public step API only (``from enrichflow import ...``).
"""

from __future__ import annotations

from enrichflow import PermanentStepError, Skip, StepContext, handler

MAX_TITLE = 500
"""Longer than any real job title: such a cell holds something else (a pasted paragraph)."""


@handler("title_length")
def title_length(ctx: StepContext) -> dict[str, int] | Skip:
    """The title's length in characters; skipped when the row has no title."""
    title = ctx.fields.get("title")
    if title is None:
        return Skip("no title")
    if len(title) > MAX_TITLE:
        raise PermanentStepError(
            f"title of row {ctx.row_number} is {len(title)} characters long (most {MAX_TITLE})"
        )
    return {"length": len(title)}
