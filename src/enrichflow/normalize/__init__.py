"""Pure normalization functions for B2B lead data (no database, no network)."""

from __future__ import annotations

from enrichflow.normalize.company import CompanyName, normalize_company_name
from enrichflow.normalize.contact import EmailResult, email_status, email_valid, normalize_email
from enrichflow.normalize.core import normalize_core_values
from enrichflow.normalize.domain import (
    DomainResult,
    company_domain,
    is_free_mail_domain,
    is_non_company_site,
    registrable_domain,
)
from enrichflow.normalize.geo import country_code, state_code
from enrichflow.normalize.keywords import parse_keywords
from enrichflow.normalize.linkedin import (
    normalize_linkedin_company_url,
    normalize_linkedin_person_url,
)
from enrichflow.normalize.numbers import parse_bool, parse_int_amount, parse_list
from enrichflow.normalize.person import PersonName, normalize_person_name
from enrichflow.normalize.phone import (
    Phone,
    PhoneChoice,
    choose_phones,
    normalize_phone,
    parse_phone,
)
from enrichflow.normalize.seniority import department_from_title, normalize_seniority

__all__ = [
    "CompanyName",
    "DomainResult",
    "EmailResult",
    "PersonName",
    "Phone",
    "PhoneChoice",
    "choose_phones",
    "company_domain",
    "country_code",
    "department_from_title",
    "email_status",
    "email_valid",
    "is_free_mail_domain",
    "is_non_company_site",
    "normalize_company_name",
    "normalize_core_values",
    "normalize_email",
    "normalize_linkedin_company_url",
    "normalize_linkedin_person_url",
    "normalize_person_name",
    "normalize_phone",
    "normalize_seniority",
    "parse_bool",
    "parse_int_amount",
    "parse_keywords",
    "parse_list",
    "parse_phone",
    "registrable_domain",
    "state_code",
]
