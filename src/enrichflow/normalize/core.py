"""One-call normalization of a lead row's core values (the ``normalize_all_core_values`` step).

Input is a mapping keyed by canonical field names (already mapped from CSV headers); missing
keys mean the column is absent. Output is a flat dict; every value is None when absent or
unusable (lists are empty instead). All sub-normalizers are pure and cached, because lead
files repeat the same values on many rows.

``phones`` holds the E.164 of every phone column present, by canonical field: the direct line
is ``phone_work_direct``, the mobile ``phone_mobile``, the corporate line ``phone_corporate``
or else ``company_phone`` (`phone.PhoneChoice` names them so).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

from enrichflow.normalize._text import clean_cell
from enrichflow.normalize.contact import email_status, email_valid, normalize_email
from enrichflow.normalize.geo import country_code, state_code
from enrichflow.normalize.keywords import parse_keywords
from enrichflow.normalize.linkedin import (
    normalize_linkedin_company_url,
    normalize_linkedin_person_url,
)
from enrichflow.normalize.numbers import parse_int_amount, parse_list
from enrichflow.normalize.person import normalize_person_name
from enrichflow.normalize.phone import choose_phones
from enrichflow.normalize.seniority import (
    department_from_apollo,
    department_from_title,
    normalize_seniority,
)

# The phone columns the split reads for a person's phone before the core values exist;
# the core values choose with `phone.choose_phones`.
PHONE_FIELDS = ("phone_work_direct", "phone_mobile", "phone_corporate", "phone", "company_phone")

OUTPUT_KEYS = (
    "first_name",
    "last_name",
    "full_name",
    "title",
    "seniority",
    "department",
    "email",
    "email_valid",
    "phone",
    "phones",
    "person_linkedin_url",
    "city",
    "state",
    "country_code",
    "company_linkedin_url",
    "employees",
    "annual_revenue",
    "total_funding",
    "company_city",
    "company_state",
    "company_country_code",
    "keywords",
    "technologies",
    "industry",
    "apollo_contact_id",
    "apollo_account_id",
    # Last, so that readers of the earlier keys (SQLite's JSON paths scan in order) pay little.
    "email_status",
    "phone_type",
    "phone_extension",
    "state_code",
    "company_state_code",
)


class _Company(NamedTuple):
    linkedin_url: str | None
    employees: int | None
    annual_revenue: int | None
    total_funding: int | None
    city: str | None
    state: str | None
    state_code: str | None
    country_code: str | None
    keywords: tuple[str, ...]
    technologies: tuple[str, ...]


@lru_cache(maxsize=16384)
def _company_values(
    linkedin_url: str | None,
    employees: str | None,
    annual_revenue: str | None,
    total_funding: str | None,
    city: str | None,
    state: str | None,
    country: str | None,
    keywords: str | None,
    technologies: str | None,
) -> _Company:
    """The company-level outputs: every colleague repeats them, so they are cached together
    (lists as tuples, copied by the caller so no two results share a list)."""
    company_state = clean_cell(state)
    company_country = country_code(clean_cell(country))
    return _Company(
        normalize_linkedin_company_url(linkedin_url),
        parse_int_amount(employees),
        parse_int_amount(annual_revenue),
        parse_int_amount(total_funding),
        clean_cell(city),
        company_state,
        state_code(company_state, company_country),
        company_country,
        tuple(parse_keywords(keywords)),
        tuple(parse_list(technologies)),
    )


@lru_cache(maxsize=16384)
def person_place(
    city: str | None, state: str | None, country: str | None
) -> tuple[str | None, str | None, str | None]:
    """(city, state, country code) of a person from the raw cells: places repeat across
    people, so they are cached."""
    return clean_cell(city), clean_cell(state), country_code(clean_cell(country))


@lru_cache(maxsize=16384)
def _role(
    raw_title: str | None, seniority: str | None, departments: str | None
) -> tuple[str | None, str | None, str | None]:
    """(title, seniority, department): titles repeat across people."""
    title = clean_cell(raw_title)
    department = department_from_title(title) if title else None
    if department is None:
        department = department_from_apollo(departments)
    return title, normalize_seniority(clean_cell(seniority), title), department


def normalize_core_values(fields: Mapping[str, str | None]) -> dict[str, object]:
    """Normalize the core lead fields of one row; see `OUTPUT_KEYS` for the result keys."""
    get = fields.get
    person = normalize_person_name(get("first_name"), get("last_name"), get("person_name"))
    title, seniority, department = _role(get("title"), get("seniority"), get("departments"))
    email = normalize_email(get("email"))
    # No status column at all: the address's syntax alone decides whether it is valid.
    status = (
        email_status(get("email_status"), get("email_catch_all_status"))
        if "email_status" in fields or "email_catch_all_status" in fields
        else None
    )

    city, state, person_country = person_place(get("city"), get("state"), get("country"))
    company = _company_values(
        get("company_linkedin_url"),
        get("employees"),
        get("annual_revenue"),
        get("total_funding"),
        get("company_city"),
        get("company_state"),
        get("company_country"),
        get("keywords"),
        get("technologies"),
    )
    company_country = company.country_code
    phones = choose_phones(fields, person_country, company_country)

    return {
        "first_name": person.first_name,
        "last_name": person.last_name,
        "full_name": person.full_name,
        "title": title,
        "seniority": seniority,
        "department": department,
        "email": email.email if email.valid else None,
        "email_valid": email_valid(email, status),
        "phone": phones.phone,
        "phones": phones.by_field,
        "person_linkedin_url": normalize_linkedin_person_url(get("linkedin_url")),
        "city": city,
        "state": state,
        "country_code": person_country,
        "company_linkedin_url": company.linkedin_url,
        "employees": company.employees,
        "annual_revenue": company.annual_revenue,
        "total_funding": company.total_funding,
        "company_city": company.city,
        "company_state": company.state,
        "company_country_code": company_country,
        "keywords": list(company.keywords),
        "technologies": list(company.technologies),
        # Trimmed as they are: with them the consolidation needs nothing of the row itself.
        "industry": clean_cell(get("industry")),
        "apollo_contact_id": clean_cell(get("apollo_contact_id")),
        "apollo_account_id": clean_cell(get("apollo_account_id")),
        "email_status": status if email.email is not None else None,
        "phone_type": phones.phone_type,
        "phone_extension": phones.phone_extension,
        "state_code": state_code(state, person_country),
        "company_state_code": company.state_code,
    }
