"""How the pages write times and spans: every time with its zone (UTC), in a ``<time>``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from markupsafe import Markup, escape

__all__ = ["FILTERS", "span", "when"]


def when(moment: datetime | None) -> Markup:
    """``2025-03-01 14:03 UTC`` in a ``<time>`` element (empty for no time)."""
    if moment is None:
        return Markup("")
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return Markup('<time datetime="{}">{}</time>').format(
        escape(utc.isoformat(timespec="seconds")), utc.strftime("%Y-%m-%d %H:%M UTC")
    )


def span(start: datetime | None, end: datetime | None, now: datetime | None = None) -> str:
    """How long from ``start`` to ``end`` (to now while there is no end): ``3 min 05 s``."""
    if start is None:
        return "—"
    finish = end or now or datetime.now(UTC)
    seconds = max((finish - start).total_seconds(), 0.0)
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, sec = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


FILTERS: dict[str, Callable[..., Any]] = {"when": when, "span": span}
