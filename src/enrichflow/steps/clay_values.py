"""The values a Clay workflow is sent and de-duplicated on: the normalization steps' results
when they ran, so Clay's look-ups and our de-duplication see clean values, not raw cells."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enrichflow.columns import CORE_STEP, DOMAIN_STEP, NAME_STEP
from enrichflow.normalize.linkedin import normalize_linkedin_company_url
from enrichflow.steps.base import StepContext
from enrichflow.steps.company_values import company_domain_of, company_name_of

__all__ = ["COMPANY_KEY", "company_key", "payload_values"]

COMPANY_KEY = "company"
"""The ``dedupe_by`` value naming the company key of :func:`company_key`."""

# payload key -> (step, its result key); the raw value comes from the identity or the row.
_NORMALIZED: dict[str, tuple[str, str]] = {
    "company_name": (NAME_STEP, "company_name"),
    "company_domain": (DOMAIN_STEP, "company_domain"),
    "company_linkedin_url": (CORE_STEP, "company_linkedin_url"),
    "linkedin_url": (CORE_STEP, "person_linkedin_url"),
    "industry": (CORE_STEP, "industry"),
    "person_name": (CORE_STEP, "full_name"),
    "first_name": (CORE_STEP, "first_name"),
    "last_name": (CORE_STEP, "last_name"),
    "email": (CORE_STEP, "email"),
    "title": (CORE_STEP, "title"),
}


def _raw(ctx: StepContext, name: str) -> Any:
    if name in ctx.identity._fields:
        value = getattr(ctx.identity, name)
        if value:
            return value
    return ctx.fields.get(name) or None


def payload_values(ctx: StepContext) -> dict[str, Any]:
    """The top-level identity fields of a Clay payload: each the earlier step's normalized
    value when there is one, else the raw cell, else ``None``."""
    results = ctx.results
    values: dict[str, Any] = {}
    for name, (step, key) in _NORMALIZED.items():
        done = results.get(step)
        value = done.get(key) if isinstance(done, Mapping) else None
        values[name] = value if value else _raw(ctx, name)
    return values


def company_key(ctx: StepContext) -> str | None:
    """The item's company: ``domain:<registrable domain>``, else
    ``linkedin:<company page URL>``, else ``name:<name match key>``, all normalized (from the
    normalization steps' results, or computed the same way when they did not run)."""
    domain = company_domain_of(ctx)
    if domain:
        return f"domain:{domain}"
    core = ctx.results.get(CORE_STEP)
    linkedin = core.get("company_linkedin_url") if isinstance(core, Mapping) else None
    if not linkedin:
        linkedin = normalize_linkedin_company_url(ctx.fields.get("company_linkedin_url"))
    if linkedin:
        return f"linkedin:{linkedin}"
    name, match_key = company_name_of(ctx)
    if match_key or name:
        return f"name:{match_key or name}"
    return None
