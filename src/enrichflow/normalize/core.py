"""One-call normalization of a lead row's core values (the ``normalize_all_core_values`` step).

Input is a mapping keyed by canonical field names (already mapped from CSV headers); missing
keys mean the column is absent. Output is a flat dict; every value is None when absent or
unusable (lists are empty instead). All sub-normalizers are pure and cached, because lead
files repeat the same values on many rows.

The phones are kept by kind (``direct_phone``, ``mobile_phone``, ``corporate_phone`` and the
company column's ``company_phone``: `phone.PhoneChoice`) besides the chosen ``phone``, like
every value the consolidated lead has, so the consolidation needs nothing of the row itself;
the other, home and generic columns only feed the choice.
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
from enrichflow.normalize.numbers import parse_bool, parse_int_amount, parse_list
from enrichflow.normalize.person import normalize_person_name
from enrichflow.normalize.phone import ALL_PHONE_FIELDS, choose_phones
from enrichflow.normalize.seniority import (
    department_from_apollo,
    department_from_title,
    normalize_seniority,
)

# The phone columns in the order a lead's phone is chosen (`phone.choose_phones`): the split
# and the export of an item without core values take the first non-empty one.
PHONE_FIELDS = ALL_PHONE_FIELDS

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
    "direct_phone",
    "mobile_phone",
    "corporate_phone",
    "sub_departments",
    "do_not_call",
    "company_address",
    "sic_codes",
    "naics_codes",
    "facebook_url",
    "twitter_url",
    "latest_funding",
    "latest_funding_amount",
    "last_raised_at",
    "company_phone",
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


class _CompanyExtras(NamedTuple):
    address: str | None
    sic_codes: tuple[str, ...]
    naics_codes: tuple[str, ...]
    facebook_url: str | None
    twitter_url: str | None
    latest_funding: str | None
    latest_funding_amount: int | None
    last_raised_at: str | None


COMPANY_EXTRA_FIELDS = (
    "company_address",
    "sic_codes",
    "naics_codes",
    "facebook_url",
    "twitter_url",
    "latest_funding",
    "latest_funding_amount",
    "last_raised_at",
)
"""The company columns of an Apollo export that pass through trimmed (codes as lists, the
amount as an integer), in `company_extras` argument order."""


@lru_cache(maxsize=16384)
def company_extras(
    address: str | None,
    sic_codes: str | None,
    naics_codes: str | None,
    facebook_url: str | None,
    twitter_url: str | None,
    latest_funding: str | None,
    latest_funding_amount: str | None,
    last_raised_at: str | None,
) -> _CompanyExtras:
    """The pass-through company values of `COMPANY_EXTRA_FIELDS`' cells: colleagues repeat
    them, so they are cached (lists as tuples)."""
    return _CompanyExtras(
        clean_cell(address),
        tuple(parse_list(sic_codes)),
        tuple(parse_list(naics_codes)),
        clean_cell(facebook_url),
        clean_cell(twitter_url),
        clean_cell(latest_funding),
        parse_int_amount(latest_funding_amount),
        clean_cell(last_raised_at),
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


def normalize_core_values(
    fields: Mapping[str, str | None], status_column: bool | None = None
) -> dict[str, object]:
    """Normalize the core lead fields of one row; see `OUTPUT_KEYS` for the result keys.

    `status_column` says whether the file has an e-mail status column; None reads it from
    `fields` (whose empty cells may be absent, so a caller that knows should say)."""
    get = fields.get
    person = normalize_person_name(get("first_name"), get("last_name"), get("person_name"))
    title, seniority, department = _role(get("title"), get("seniority"), get("departments"))
    email = normalize_email(get("email"))
    if status_column is None:
        status_column = "email_status" in fields or "email_catch_all_status" in fields
    # No status column at all: the address's syntax alone decides whether it is valid.
    status = (
        email_status(get("email_status"), get("email_catch_all_status")) if status_column else None
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
    extras = company_extras(*map(get, COMPANY_EXTRA_FIELDS))

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
        "direct_phone": phones.direct_phone,
        "mobile_phone": phones.mobile_phone,
        "corporate_phone": phones.corporate_phone,
        "sub_departments": parse_list(get("sub_departments")),
        "do_not_call": parse_bool(clean_cell(get("do_not_call"))),
        "company_address": extras.address,
        "sic_codes": list(extras.sic_codes),
        "naics_codes": list(extras.naics_codes),
        "facebook_url": extras.facebook_url,
        "twitter_url": extras.twitter_url,
        "latest_funding": extras.latest_funding,
        "latest_funding_amount": extras.latest_funding_amount,
        "last_raised_at": extras.last_raised_at,
        "company_phone": phones.company_phone,
    }
