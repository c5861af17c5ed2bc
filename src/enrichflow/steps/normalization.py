"""Built-in SYNC steps that clean a row's company and person values (``normalize`` does the work)."""

from __future__ import annotations

from enrichflow.normalize.company import normalize_company_name as clean_company_name
from enrichflow.normalize.core import normalize_core_values
from enrichflow.normalize.domain import company_domain
from enrichflow.steps.base import JSON, Skip, StepContext
from enrichflow.steps.registry import handler


@handler("normalize_company_name")
def normalize_company_name(ctx: StepContext) -> JSON | Skip:
    """Legal forms, symbols and casing cleaned; Apollo's short name used as evidence."""
    raw = ctx.fields.get("company_name") or ctx.identity.company_name
    if not raw:
        return Skip("the row has no company name")
    cleaned = clean_company_name(raw, ctx.fields.get("company_name_for_emails"))
    if not cleaned.name:
        return Skip(f"nothing is left of company name {raw!r} once cleaned")
    return {"company_name": cleaned.name, "match_key": cleaned.match_key, "original": raw}


@handler("normalize_company_domain")
def normalize_company_domain(ctx: StepContext) -> JSON | Skip:
    """The registrable domain from the website, else from a non-free-mail work e-mail."""
    found = company_domain(ctx.fields.get("website"), ctx.fields.get("email"))
    if found.domain is None:
        return Skip(found.reason or "no usable website or work e-mail")
    return {"company_domain": found.domain, "source": found.source}


@handler("normalize_all_core_values")
def normalize_all_core_values(ctx: StepContext) -> JSON:
    """Names, e-mail and its status, phones, LinkedIn URLs, countries, amounts, lists,
    seniority, and the company columns that pass through."""
    return normalize_core_values(ctx.fields, status_column=has_status_column(ctx))


def has_status_column(ctx: StepContext) -> bool:
    """Whether the file says how verified its e-mails are (an empty cell then means unknown)."""
    return ctx.has_column("email_status") or ctx.has_column("email_catch_all_status")
