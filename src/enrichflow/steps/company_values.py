"""An item's company name and domain as the split and consolidation steps see them: the
normalization steps' results when those ran, else the same computation on the row."""

from __future__ import annotations

from functools import lru_cache

from enrichflow.columns import DOMAIN_STEP, NAME_STEP
from enrichflow.normalize.company import normalize_company_name
from enrichflow.normalize.domain import company_domain
from enrichflow.steps.base import StepContext


def company_name_of(ctx: StepContext) -> tuple[str | None, str | None]:
    """(display name, match key): the normalization step's result, else computed here."""
    done = ctx.results.get(NAME_STEP)
    if done and done.get("company_name"):
        return done.get("company_name"), done.get("match_key") or None
    return company_name_of_row(ctx)


def company_name_of_row(ctx: StepContext) -> tuple[str | None, str | None]:
    raw = ctx.fields.get("company_name") or ctx.identity.company_name
    if not raw:
        return None, None
    cleaned = normalize_company_name(raw, ctx.fields.get("company_name_for_emails"))
    return cleaned.name or None, cleaned.match_key or None


def company_domain_of(ctx: StepContext) -> str | None:
    done = ctx.results.get(DOMAIN_STEP)
    if done and done.get("company_domain"):
        return str(done["company_domain"])
    return company_domain_of_row(ctx)


def company_domain_of_row(ctx: StepContext) -> str | None:
    # Not run yet, or skipped (no result is stored then): the same computation gives the answer.
    website = ctx.fields.get("website") or ctx.identity.company_domain
    email = ctx.fields.get("email") or ctx.identity.email or ""
    _, at, tail = email.rpartition("@")
    return domain_of(website, tail if at else email, bool(at))


@lru_cache(maxsize=65536)
def domain_of(website: str | None, mail_tail: str, has_at: bool) -> str | None:
    """``company_domain`` depends on the e-mail only through its domain: cached on that, so the
    colleagues of one company cost one computation, since it is the split's costliest call."""
    return company_domain(website, f"x@{mail_tail}" if has_at else mail_tail or None).domain
