"""Tests for the header alias table."""

from __future__ import annotations

from pathlib import Path

import pytest

from enrichflow.db.context import RowLayout
from enrichflow.ingest.aliases import (
    ALIASES,
    CANONICAL_FIELDS,
    map_headers,
    normalize_header,
)
from enrichflow.ingest.reader import open_csv

_CURRENT_APOLLO_LINE = (
    "First Name,Last Name,Title,Company Name,Company Name for Emails,Email,Email Status,"
    "Primary Email Source,Email Confidence,Primary Email Catch-all Status,"
    "Primary Email Last Verified At,Seniority,Departments,Contact Owner,Work Direct Phone,"
    "Home Phone,Mobile Phone,Corporate Phone,Other Phone,Stage,Lists,Last Contacted,"
    "Account Owner,# Employees,Industry,Keywords,Person Linkedin Url,Website,"
    "Company Linkedin Url,Facebook Url,Twitter Url,City,State,Country,Company Address,"
    "Company City,Company State,Company Country,Company Phone,Technologies,Annual Revenue,"
    "Total Funding,Latest Funding,Latest Funding Amount,Last Raised At,Subsidiary of,"
    "Email Sent,Email Open,Email Bounced,Replied,Demoed,Number of Retail Locations,"
    "Apollo Contact Id,Apollo Account Id,Secondary Email"
)
CURRENT_APOLLO = _CURRENT_APOLLO_LINE.split(",")


def test_canonical_names_are_exactly_the_agreed_ones() -> None:
    assert set(CANONICAL_FIELDS) == {
        "first_name", "last_name", "person_name", "title", "seniority", "departments",
        "email", "email_status", "phone_work_direct", "phone_mobile", "phone_corporate",
        "phone", "company_phone", "linkedin_url", "company_linkedin_url", "city", "state",
        "country", "company_name", "company_name_for_emails", "website", "industry",
        "employees", "annual_revenue", "total_funding", "company_city", "company_state",
        "company_country", "keywords", "technologies", "apollo_contact_id",
        "apollo_account_id", "email_catch_all_status", "phone_other", "phone_home",
        "do_not_call", "sub_departments", "company_address", "sic_codes", "naics_codes",
        "facebook_url", "twitter_url", "latest_funding", "latest_funding_amount",
        "last_raised_at",
    }  # fmt: skip
    assert set(ALIASES.values()) == set(CANONICAL_FIELDS)


def test_normalize_header() -> None:
    assert normalize_header("  # Employees ") == "employees"
    assert normalize_header("Person LinkedIn-URL") == "personlinkedinurl"
    assert normalize_header("E_mail") == "email"


def test_current_apollo_export() -> None:
    m = map_headers(CURRENT_APOLLO)
    assert m.canonical == {
        "first_name": "First Name",
        "last_name": "Last Name",
        "title": "Title",
        "company_name": "Company Name",
        "company_name_for_emails": "Company Name for Emails",
        "email": "Email",
        "email_status": "Email Status",
        "email_catch_all_status": "Primary Email Catch-all Status",
        "seniority": "Seniority",
        "departments": "Departments",
        "phone_work_direct": "Work Direct Phone",
        "phone_home": "Home Phone",
        "phone_mobile": "Mobile Phone",
        "phone_corporate": "Corporate Phone",
        "phone_other": "Other Phone",
        "employees": "# Employees",
        "industry": "Industry",
        "keywords": "Keywords",
        "linkedin_url": "Person Linkedin Url",
        "website": "Website",
        "company_linkedin_url": "Company Linkedin Url",
        "facebook_url": "Facebook Url",
        "twitter_url": "Twitter Url",
        "company_address": "Company Address",
        "latest_funding": "Latest Funding",
        "latest_funding_amount": "Latest Funding Amount",
        "last_raised_at": "Last Raised At",
        "city": "City",
        "state": "State",
        "country": "Country",
        "company_city": "Company City",
        "company_state": "Company State",
        "company_country": "Company Country",
        "company_phone": "Company Phone",
        "technologies": "Technologies",
        "annual_revenue": "Annual Revenue",
        "total_funding": "Total Funding",
        "apollo_contact_id": "Apollo Contact Id",
        "apollo_account_id": "Apollo Account Id",
    }
    assert m.conflicts == []
    # Different meanings stay unmapped, in file order.
    assert m.unmapped[:3] == [
        "Primary Email Source",
        "Email Confidence",
        "Primary Email Last Verified At",
    ]
    assert "Secondary Email" in m.unmapped
    assert len(m.canonical) + len(m.unmapped) == len(CURRENT_APOLLO)


def test_older_and_other_tool_exports() -> None:
    headers = [
        "Full Name", "Job Title", "Company", "Email Address", "First Phone", "LinkedIn Link",
        "Company Website Full", "Employee Count", "Revenue", "Company Industry",
        "Location Country", "Favourite Colour",
    ]  # fmt: skip
    m = map_headers(headers)
    assert m.canonical == {
        "person_name": "Full Name",
        "title": "Job Title",
        "company_name": "Company",
        "email": "Email Address",
        "phone": "First Phone",
        "linkedin_url": "LinkedIn Link",
        "website": "Company Website Full",
        "employees": "Employee Count",
        "annual_revenue": "Revenue",
        "industry": "Company Industry",
        "country": "Location Country",
    }
    assert m.unmapped == ["Favourite Colour"]


@pytest.mark.parametrize(
    ("header", "canonical"),
    [
        ("Name", "person_name"),
        ("Work Email", "email"),
        ("LinkedIn", "linkedin_url"),
        ("LinkedIn URL", "linkedin_url"),
        ("Person LinkedIn", "linkedin_url"),
        ("Company Website", "website"),
        ("Domain", "website"),
        ("Company Domain", "website"),
        ("Employees", "employees"),
        ("Number of Employees", "employees"),
        ("COMPANY  NAME", "company_name"),
        ("company_name", "company_name"),
        ("Company LinkedIn", "company_linkedin_url"),
        ("SIC Codes", "sic_codes"),
        ("NAICS Codes", "naics_codes"),
        ("Sub Departments", "sub_departments"),
        ("Do Not Call", "do_not_call"),
        ("Primary Email Catch-all Status", "email_catch_all_status"),
        ("Home Phone", "phone_home"),
    ],
)
def test_variants(header: str, canonical: str) -> None:
    assert map_headers([header]).canonical == {canonical: header}


def test_first_header_wins_conflicts_listed() -> None:
    m = map_headers(["Company Name", "Website", "Company", "Domain", "Email", "Email (2)"])
    assert m.canonical == {"company_name": "Company Name", "website": "Website", "email": "Email"}
    assert m.conflicts == [
        ("Company", "company_name"),
        ("Domain", "website"),
        ("Email (2)", "email"),
    ]
    assert m.unmapped == []


def test_distinct_meanings_are_not_merged() -> None:
    m = map_headers(
        ["Company Phone", "Corporate Phone", "Mobile Phone", "Work Direct Phone", "Phone"]
    )
    assert len(m.canonical) == 5
    m = map_headers(["City", "Company City", "Company Name", "Company Name for Emails"])
    assert len(m.canonical) == 4
    m = map_headers(["LinkedIn", "Company LinkedIn Url"])
    assert m.canonical == {
        "linkedin_url": "LinkedIn",
        "company_linkedin_url": "Company LinkedIn Url",
    }


def test_with_reader(tmp_path: Path) -> None:
    path = tmp_path / "apollo.csv"
    text = (
        "\ufeffFirst Name;Last Name;Company;First Phone;Unknown\r\n"
        "Jürgen;Müller;Café AG;+49 1;z\r\n"
    )
    path.write_bytes(text.encode())
    source = open_csv(path)
    m = map_headers(source.headers)
    assert m.unmapped == ["Unknown"]
    [record] = list(source.rows())
    assert RowLayout(source.headers, m.canonical).fields(record.cells) == {
        "first_name": "Jürgen",
        "last_name": "Müller",
        "company_name": "Café AG",
        "phone": "+49 1",
    }


@pytest.mark.parametrize(
    "names",
    [
        ("last_name", "email", "first_name"),  # every field has a column: one C pick
        ("first_name", "website", "company_name"),  # website was not uploaded
        ("last_name",),  # a single field
    ],
)
def test_values_pick_what_fields_gives(names: tuple[str, ...]) -> None:
    """``RowLayout.values`` agrees with ``fields.get`` for each name: empty cells and fields
    the upload lacks are None, in the order asked."""
    headers = ["Email", "First Name", "Last Name", "Company"]
    layout = RowLayout(headers, map_headers(headers).canonical)
    for cells in (["a@b.co", "Ada", "", "Acme"], ["", "", "Lovelace", ""]):
        fields = layout.fields(cells)
        assert layout.values(cells, names) == [fields.get(name) for name in names]
