from __future__ import annotations

import pytest

from enrichflow.normalize import normalize_core_values
from enrichflow.normalize._text import clean_cell
from enrichflow.normalize.core import OUTPUT_KEYS

ROW: dict[str, str | None] = {
    "first_name": "DR. ALAN",
    "last_name": "TURING JR.",
    "title": "VP Engineering",
    "seniority": "Vp",
    "email": " Alan.Turing@Acme.COM ",
    "phone_work_direct": "n/a",
    "phone_mobile": "'+1 510-944-3940",
    "company_phone": "020 7946 0958",
    "linkedin_url": "uk.linkedin.com/in/alan-turing/?trk=x",
    "company_linkedin_url": "http://linkedin.com/company/acme/about",
    "city": " Berkeley ",
    "state": "California",
    "country": "United States",
    "company_country": "UK",
    "employees": "1,200",
    "annual_revenue": "$1.2M",
    "total_funding": "",
    "keywords": "ai, saas; AI",
    "technologies": "Salesforce;HubSpot",
}


def test_core_values() -> None:
    out = normalize_core_values(ROW)
    assert set(out) == set(OUTPUT_KEYS)
    assert out["first_name"] == "Alan"
    assert out["last_name"] == "Turing"
    assert out["full_name"] == "Alan Turing"
    assert out["seniority"] == "vp"
    assert out["department"] == "engineering"
    assert out["email"] == "alan.turing@acme.com"
    assert out["email_valid"] is True
    assert out["phone"] == "+15109443940"
    assert (out["direct_phone"], out["mobile_phone"], out["company_phone"]) == (
        None,
        "+15109443940",
        "+442079460958",
    )
    assert out["person_linkedin_url"] == "https://www.linkedin.com/in/alan-turing"
    assert out["company_linkedin_url"] == "https://www.linkedin.com/company/acme"
    assert out["city"] == "Berkeley"
    assert out["country_code"] == "US"
    assert out["company_country_code"] == "GB"
    assert out["employees"] == 1200
    assert out["annual_revenue"] == 1_200_000
    assert out["total_funding"] is None
    assert out["keywords"] == ["ai", "saas"]
    assert out["technologies"] == ["Salesforce", "HubSpot"]
    # No Email Status column: the syntax decides, and no status is reported.
    assert out["email_status"] is None
    assert (out["phone_type"], out["phone_extension"]) == ("mobile", None)
    assert out["state_code"] == "US-CA"
    assert out["company_state_code"] is None


@pytest.mark.parametrize(
    ("status", "catch_all", "expected"),
    [
        ("Verified", "Not Catch-all", ("verified", True)),
        ("Likely to engage", None, ("verified", True)),
        ("Verified", "Catch-all", ("catch_all", False)),
        ("Extrapolated", None, ("guessed", False)),
        ("Unverified", None, ("unverified", False)),
        ("", None, ("unknown", False)),
    ],
)
def test_email_status_decides_email_valid(
    status: str, catch_all: str | None, expected: tuple[str, bool]
) -> None:
    row = ROW | {"email_status": status}
    if catch_all is not None:
        row["email_catch_all_status"] = catch_all
    out = normalize_core_values(row)
    assert (out["email_status"], out["email_valid"]) == expected
    assert out["email"] == "alan.turing@acme.com"  # the address itself is still given


def test_apollo_phones_and_state_codes() -> None:
    row = ROW | {
        "phone_mobile": "",
        "phone_other": "'+1 818-555-0118 ext 159",
        "phone_corporate": "'+1 818-555-0145",
        "company_phone": "'+1 818-555-0145",
        "company_country": "Canada",
        "company_state": "British Columbia",
    }
    out = normalize_core_values(row)
    assert (out["phone"], out["phone_type"], out["phone_extension"]) == (
        "+18185550118",
        "other",
        "159",
    )
    assert out["corporate_phone"] == out["company_phone"] == "+18185550145"
    assert out["company_state_code"] == "CA-BC"


def test_best_phone_priority_and_country_fallback() -> None:
    out = normalize_core_values(
        {"phone": "020 7946 0958", "phone_corporate": "030 123456789", "company_country": "DE"}
    )
    # No person country: the company country is used for every phone.
    assert out["phone"] == "+4930123456789"
    assert (out["corporate_phone"], out["company_phone"]) == ("+4930123456789", None)


def test_empty_row() -> None:
    out = normalize_core_values({})
    assert set(out) == set(OUTPUT_KEYS)
    assert out["keywords"] == []
    lists = {"keywords", "technologies", "sub_departments", "sic_codes", "naics_codes"}
    assert all(out[key] == [] for key in lists)
    assert all(out[key] is None for key in OUTPUT_KEYS if key not in lists)


def test_invalid_email_is_flagged() -> None:
    out = normalize_core_values({"email": "jane@acme"})
    assert out["email"] is None
    assert out["email_valid"] is False


def test_industry_and_apollo_ids_are_trimmed_and_nulls_dropped() -> None:
    """The consolidation takes them from here instead of decoding the row again."""
    out = normalize_core_values(
        {"industry": "  Retail ", "apollo_contact_id": "'5f2a9c", "apollo_account_id": "n/a"}
    )
    assert (out["industry"], out["apollo_contact_id"], out["apollo_account_id"]) == (
        "Retail",
        "5f2a9c",
        None,
    )


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("  Acme  ", "Acme"),
        ("San  Francisco", "San Francisco"),
        ("San\u00a0Francisco", "San Francisco"),
        ("Line\r\nbreak\tand tab", "Line break and tab"),
        ("Em\u2003space", "Em space"),
        ("'+1 510-944-3940", "+1 510-944-3940"),
        ("N/A", None),
        ("#N/A", None),
        ("' -", None),
        ("", None),
        (None, None),
        ("Nonesuch Ltd", "Nonesuch Ltd"),
        ("Zero\u200bwidth", "Zero\u200bwidth"),
    ],
)
def test_clean_cell(raw: str | None, cleaned: str | None) -> None:
    """Whitespace of every kind collapses, Excel's apostrophe goes, null tokens become None,
    and text that only starts like a null token stays."""
    assert clean_cell(raw) == cleaned


def test_text_repair_runs_before_cleaning_and_costs_ascii_nothing() -> None:
    assert clean_cell("  CafÃ© Brasil ") == "Café Brasil"
    assert clean_cell("Â© Acme") == "© Acme"  # the sign survives repair; removing it is later
    assert clean_cell("Müller") == "Müller"  # proper text is left alone
    row = ROW | {"first_name": "FranÃ§ois", "city": "SÃ£o Paulo", "country": "Brazil",
                 "state": "SÃ£o Paulo"}  # fmt: skip
    out = normalize_core_values(row)
    assert (out["first_name"], out["city"], out["state_code"]) == ("François", "São Paulo", "BR-SP")


def test_apollo_departments_cell_is_read_function_first() -> None:
    out = normalize_core_values(ROW | {"title": "VP", "departments": "C-Suite, Marketing"})
    assert (out["seniority"], out["department"]) == ("vp", "marketing")
