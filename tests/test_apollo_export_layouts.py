"""Header rows of public Apollo exports from 2022 to 2026 (49 to 71 columns, plus a
hand-picked 21-column selection), each read by the real reader, mapped by the aliases and run
through the default pipeline on SQLite and Postgres, with rows of invented people and
businesses written in that export's own cell style (quoted empty cells, ``FALSE`` or
``false``, ``'+1`` phones, US or ISO dates, a multi-line cell).

The headers are copied verbatim from the exports; no value of theirs is.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

import enrichflow.cli as cli
from enrichflow.cli import root
from enrichflow.db.models import RawUpload
from enrichflow.ingest.aliases import map_headers
from enrichflow.ingest.reader import open_csv


@dataclass(frozen=True)
class Layout:
    """An export's header row and how that export writes its cells."""

    headers: str
    empty: str = ""
    """How an empty cell is written: nothing, or ``""``."""
    true_false: tuple[str, str] = ("true", "false")
    date: str = "2021-03-01T00:00:00+00:00"
    newline: str = "\n"


LAYOUTS = {
    "2022-50-columns": Layout(
        "First Name,Last Name,Title,Company,Company Name for Emails,Email,Email Status,"
        "Email Confidence,Contact Owner,First Phone,Work Direct Phone,Home Phone,Mobile Phone,"
        "Corporate Phone,Other Phone,Stage,Lists,Last Contacted,Account Owner,# Employees,"
        "Industry,Keywords,Person Linkedin Url,Website,Company Linkedin Url,Facebook Url,"
        "Twitter Url,City,State,Country,Company Address,Company City,Company State,"
        "Company Country,Company Phone,SEO Description,Technologies,Annual Revenue,"
        "Total Funding,Latest Funding,Latest Funding Amount,Last Raised At,Email Sent,"
        "Email Open,Email Bounced,Replied,Demoed,Number of Retail Locations,Apollo Contact Id,"
        "Apollo Account Id",
        empty='""',
    ),
    "2024-49-columns": Layout(
        "First Name,Last Name,Title,Company,Company Name for Emails,Email,Email Status,"
        "Email Confidence,Seniority,Departments,First Phone,Work Direct Phone,Corporate Phone,"
        "Other Phone,Stage,Lists,Last Contacted,# Employees,Industry,Keywords,"
        "Person Linkedin Url,Website,Company Linkedin Url,Facebook Url,Twitter Url,City,State,"
        "Country,Company Address,Company City,Company State,Company Country,Company Phone,"
        "SEO Description,Technologies,Annual Revenue,Total Funding,Latest Funding,"
        "Latest Funding Amount,Last Raised At,Email Sent,Email Open,Email Bounced,Replied,"
        "Demoed,Number of Retail Locations,Apollo Contact Id,Apollo Account Id,User Managed",
        true_false=("TRUE", "FALSE"),
        date="10/1/2023",
        newline="\r\n",
    ),
    "2024-52-columns": Layout(
        "First Name,Last Name,Title,Company,Company Name for Emails,Email,Email Status,"
        "Email Confidence,Seniority,Departments,Contact Owner,First Phone,Work Direct Phone,"
        "Home Phone,Mobile Phone,Corporate Phone,Other Phone,Stage,Lists,Last Contacted,"
        "Account Owner,# Employees,Industry,Keywords,Person Linkedin Url,Website,"
        "Company Linkedin Url,Facebook Url,Twitter Url,City,State,Country,Company Address,"
        "Company City,Company State,Company Country,Company Phone,SEO Description,"
        "Technologies,Annual Revenue,Total Funding,Latest Funding,Latest Funding Amount,"
        "Last Raised At,Email Sent,Email Open,Email Bounced,Replied,Demoed,"
        "Number of Retail Locations,Apollo Contact Id,Apollo Account Id",
        empty='""',
    ),
    "2024-59-columns": Layout(
        "First Name,Last Name,Title,Company,Company Name for Emails,Email,Email Status,"
        "Email Confidence,Catch-all Status,Email Last Verified At,Seniority,Departments,"
        "Contact Owner,First Phone,Work Direct Phone,Home Phone,Mobile Phone,Corporate Phone,"
        "Other Phone,Stage,Lists,Last Contacted,Account Owner,# Employees,Industry,Keywords,"
        "Person Linkedin Url,Website,Company Linkedin Url,Facebook Url,Twitter Url,City,State,"
        "Country,Company Address,Company City,Company State,Company Country,Company Phone,"
        "SEO Description,Technologies,Annual Revenue,Total Funding,Latest Funding,"
        "Latest Funding Amount,Last Raised At,Email Sent,Email Open,Email Bounced,Replied,"
        "Demoed,Number of Retail Locations,Apollo Contact Id,Apollo Account Id,User Managed,"
        "Primary Intent Topic,Primary Intent Score,Secondary Intent Topic,"
        "Secondary Intent Score",
        empty='""',
    ),
    "2025-62-columns": Layout(
        "First Name,Last Name,Title,Company,Company Name for Emails,Email,Email Status,"
        "Primary Email Source,Email Confidence,Primary Email Catch-all Status,"
        "Primary Email Last Verified At,Seniority,Departments,Contact Owner,Work Direct Phone,"
        "Home Phone,Mobile Phone,Corporate Phone,Other Phone,Stage,Lists,Last Contacted,"
        "Account Owner,# Employees,Industry,Keywords,Person Linkedin Url,Website,"
        "Company Linkedin Url,Facebook Url,Twitter Url,City,State,Country,Company Address,"
        "Company City,Company State,Company Country,Company Phone,Technologies,"
        "Annual Revenue,Total Funding,Latest Funding,Latest Funding Amount,Last Raised At,"
        "Subsidiary of,Email Sent,Email Open,Email Bounced,Replied,Demoed,"
        "Number of Retail Locations,Apollo Contact Id,Apollo Account Id,Secondary Email,"
        "Secondary Email Source,Tertiary Email,Tertiary Email Source,Primary Intent Topic,"
        "Primary Intent Score,Secondary Intent Topic,Secondary Intent Score",
        true_false=("TRUE", "FALSE"),
    ),
    "2025-60-columns-custom-field": Layout(
        "First Name,Last Name,Title,Company,Company Name for Emails,Email,Email Status,"
        "Primary Email Source,Email Confidence,Primary Email Catch-all Status,"
        "Primary Email Last Verified At,Seniority,Departments,Contact Owner,Work Direct Phone,"
        "Home Phone,Mobile Phone,Corporate Phone,Other Phone,Stage,Lists,Last Contacted,"
        "Account Owner,# Employees,Industry,Keywords,Person Linkedin Url,Website,"
        "Company Linkedin Url,Facebook Url,Twitter Url,City,State,Country,Company Address,"
        "Company City,Company State,Company Country,Company Phone,SEO Description,"
        "Technologies,Annual Revenue,Total Funding,Latest Funding,Latest Funding Amount,"
        "Last Raised At,Subsidiary of,Email Sent,Email Open,Email Bounced,Replied,Demoed,"
        "Number of Retail Locations,Apollo Contact Id,Apollo Account Id,Secondary Email,"
        "Secondary Email Source,Tertiary Email,Tertiary Email Source,tracking_url",
    ),
    "2026-64-columns": Layout(
        "First Name,Last Name,Title,Company Name,Company Name for Emails,Email,Email Status,"
        "Primary Email Source,Primary Email Verification Source,Email Confidence,"
        "Primary Email Catch-all Status,Primary Email Last Verified At,Seniority,Departments,"
        "Contact Owner,Work Direct Phone,Home Phone,Mobile Phone,Corporate Phone,Other Phone,"
        "Stage,Lists,Last Contacted,Account Owner,# Employees,Industry,Keywords,"
        "Person Linkedin Url,Website,Company Linkedin Url,Facebook Url,Twitter Url,City,State,"
        "Country,Company Address,Company City,Company State,Company Country,Company Phone,"
        "Technologies,Annual Revenue,Total Funding,Latest Funding,Latest Funding Amount,"
        "Last Raised At,Subsidiary of,Email Sent,Email Open,Email Bounced,Replied,Demoed,"
        "Number of Retail Locations,Apollo Contact Id,Apollo Account Id,Secondary Email,"
        "Secondary Email Source,Secondary Email Status,Secondary Email Verification Source,"
        "Tertiary Email,Tertiary Email Source,Tertiary Email Status,"
        "Tertiary Email Verification Source,Qualify Contact",
        empty='""',
    ),
    "2026-68-columns-intent": Layout(
        "First Name,Last Name,Title,Company Name,Company Name for Emails,Email,Email Status,"
        "Primary Email Source,Primary Email Verification Source,Email Confidence,"
        "Primary Email Catch-all Status,Primary Email Last Verified At,Seniority,Departments,"
        "Contact Owner,Work Direct Phone,Home Phone,Mobile Phone,Corporate Phone,Other Phone,"
        "Stage,Lists,Last Contacted,Account Owner,# Employees,Industry,Keywords,"
        "Person Linkedin Url,Website,Company Linkedin Url,Facebook Url,Twitter Url,City,State,"
        "Country,Company Address,Company City,Company State,Company Country,Company Phone,"
        "Technologies,Annual Revenue,Total Funding,Latest Funding,Latest Funding Amount,"
        "Last Raised At,Subsidiary of,Email Sent,Email Open,Email Bounced,Replied,Demoed,"
        "Number of Retail Locations,Apollo Contact Id,Apollo Account Id,Secondary Email,"
        "Secondary Email Source,Secondary Email Status,Secondary Email Verification Source,"
        "Tertiary Email,Tertiary Email Source,Tertiary Email Status,"
        "Tertiary Email Verification Source,Primary Intent Topic,Primary Intent Score,"
        "Secondary Intent Topic,Secondary Intent Score,Qualify Contact",
        empty='""',
    ),
    "2026-70-columns": Layout(
        "First Name,Last Name,Title,Company Name,Company Name for Emails,Email,Email Status,"
        "Primary Email Source,Primary Email Verification Source,Email Confidence,"
        "Primary Email Catch-all Status,Primary Email Last Verified At,Seniority,Departments,"
        "Sub Departments,Contact Owner,Work Direct Phone,Home Phone,Mobile Phone,"
        "Corporate Phone,Other Phone,Do Not Call,Stage,Lists,Last Contacted,Account Owner,"
        "# Employees,Industry,Keywords,Person Linkedin Url,Website,Company Linkedin Url,"
        "Facebook Url,Twitter Url,City,State,Country,Company Address,Company City,"
        "Company State,Company Country,Company Phone,Technologies,Annual Revenue,"
        "Total Funding,Latest Funding,Latest Funding Amount,Last Raised At,Subsidiary of,"
        "Subsidiary of (Organization ID),Email Sent,Email Open,Email Bounced,Replied,Demoed,"
        "Number of Retail Locations,SIC Codes,NAICS Codes,Apollo Contact Id,Apollo Account Id,"
        "Apollo Record Id,Secondary Email,Secondary Email Source,Secondary Email Status,"
        "Secondary Email Verification Source,Tertiary Email,Tertiary Email Source,"
        "Tertiary Email Status,Tertiary Email Verification Source,Qualify Contact",
        empty='""',
    ),
    "2026-71-columns-parent-company": Layout(
        "First Name,Last Name,Title,Company Name,Company Name for Emails,Email,Email Status,"
        "Primary Email Source,Primary Email Verification Source,Email Confidence,"
        "Primary Email Catch-all Status,Primary Email Last Verified At,Seniority,Departments,"
        "Sub Departments,Contact Owner,Work Direct Phone,Home Phone,Mobile Phone,"
        "Corporate Phone,Other Phone,Do Not Call,Stage,Lists,Last Contacted,Account Owner,"
        "# Employees,Industry,Keywords,Person Linkedin Url,Website,Company Linkedin Url,"
        "Facebook Url,Twitter Url,Address,City,State,Country,Company Address,Company City,"
        "Company State,Company Country,Company Phone,Technologies,Annual Revenue,"
        "Total Funding,Latest Funding,Latest Funding Amount,Last Raised At,"
        "Parent company (Apollo data),Parent company (Apollo data - Organization ID),"
        "Email Sent,Email Open,Email Bounced,Replied,Demoed,Number of Retail Locations,"
        "SIC Codes,NAICS Codes,Apollo Contact Id,Apollo Account Id,Apollo Record Id,"
        "Secondary Email,Secondary Email Source,Secondary Email Status,"
        "Secondary Email Verification Source,Tertiary Email,Tertiary Email Source,"
        "Tertiary Email Status,Tertiary Email Verification Source,Qualify Contact",
        empty='""',
    ),
    "2025-21-chosen-columns": Layout(
        "First Name,Last Name,Title,Company Name,Email,Email Status,Sub Departments,"
        "Mobile Phone,# Employees,Industry,Person Linkedin Url,Website,Company Linkedin Url,"
        "Twitter Url,City,Company Address,Annual Revenue,Email Open,Secondary Email,"
        "Qualify Contact,ICP RANK",
        empty='""',
    ),
}

PEOPLE: list[dict[str, str]] = [
    {
        "First Name": "Ada",
        "Last Name": "Quill",
        "Title": "Head of Growth",
        "Company": "Brightwater Analytics, Inc.",
        "Company Name for Emails": "Brightwater Analytics",
        "Email": "ada.quill@brightwater-analytics.com",
        "Email Status": "Verified",
        "Primary Email Catch-all Status": "Not Catch-all",
        "Seniority": "Head",
        "Departments": "Marketing",
        "Sub Departments": "Growth",
        "Corporate Phone": "'+1 415-555-0132",
        "Company Phone": "'+1 415-555-0132",
        "# Employees": "120",
        "Industry": "information technology & services",
        "Keywords": "saas, analytics, health, wellness & fitness",
        "Person Linkedin Url": "http://www.linkedin.com/in/ada-quill-0000",
        "Website": "https://www.brightwater-analytics.com",
        "Company Linkedin Url": "http://www.linkedin.com/company/brightwater-analytics",
        "City": "Oakland",
        "State": "California",
        "Country": "United States",
        "Address": "Oakland, California, United States",
        "Company Address": "1 Harbor Way, Oakland, California, United States, 94607",
        "Parent company (Apollo data)": "Brightwater Holdings (brightwater-holdings.com)",
        "Company City": "Oakland",
        "Company State": "California",
        "Company Country": "United States",
        "Technologies": "Gmail, Google Apps, Mobile Friendly",
        "Annual Revenue": "12500000",
        "Total Funding": "4000000",
        "Latest Funding": "Seed",
        "Latest Funding Amount": "4000000",
        "SIC Codes": "7372",
        "NAICS Codes": "541511, 518210",
        "Apollo Contact Id": "6a00000000000000000000a1",
        "Apollo Account Id": "6a00000000000000000000b1",
        "Apollo Record Id": "6a00000000000000000000a1",
        "ICP RANK": "ICP_SCORE: 80\nFIT: HIGH\nREASON: an invented analytics firm",
    },
    {
        "First Name": "Bruno",
        "Last Name": "Tavares",
        "Title": "Sócio proprietário",
        "Company": "Fazenda Nova Engenharia Ltda",
        "Company Name for Emails": "Fazenda Nova Engenharia",
        "Email": "bruno@fazendanova-eng.com.br",
        "Email Status": "Verified",
        "Seniority": "Owner",
        "Departments": "C-Suite",
        "First Phone": "5541999990000",
        "Corporate Phone": "5541999990000",
        "# Employees": "28",
        "Industry": "civil engineering",
        "Keywords": "terraplenagem, obras industriais, drenagem",
        "Person Linkedin Url": "http://www.linkedin.com/in/bruno-tavares-0000",
        "Website": "http://www.fazendanova-eng.com.br",
        "Company Linkedin Url": "http://www.linkedin.com/company/fazenda-nova-engenharia",
        "City": "Curitiba",
        "State": "Paraná",
        "Country": "Brazil",
        "Company Address": "Cascavel, Paraná, Brazil",
        "Company City": "Cascavel",
        "Company State": "Paraná",
        "Company Country": "Brazil",
        "Apollo Contact Id": "6a00000000000000000000a2",
        "Apollo Account Id": "6a00000000000000000000b2",
    },
    {
        "First Name": "Chloe",
        "Last Name": "Ng",
        "Title": "Logistics and Purchasing Manager",
        "Company": "Quokka Freight Pty Ltd",
        "Company Name for Emails": "Quokka Freight",
        "Email": "chloe.ng@quokkafreight.com.au",
        "Email Status": "Likely to engage",
        "Seniority": "Manager",
        "Departments": "Finance, Operations",
        "Work Direct Phone": "'+61 2 5550 1234 ext 159",
        "Corporate Phone": "'+61 2 5550 1200",
        "# Employees": "22",
        "Industry": "logistics & supply chain",
        "Person Linkedin Url": "http://www.linkedin.com/in/chloe-ng-0000",
        "Website": "http://www.quokkafreight.com.au",
        "City": "Perth",
        "State": "Western Australia",
        "Country": "Australia",
        "Company City": "Perth",
        "Company State": "Western Australia",
        "Company Country": "Australia",
        "Apollo Contact Id": "6a00000000000000000000a3",
        "Apollo Account Id": "6a00000000000000000000b3",
    },
]
EXPECTED = [
    ("ada.quill@brightwater-analytics.com", "Ada", "brightwater-analytics.com"),
    ("bruno@fazendanova-eng.com.br", "Bruno", "fazendanova-eng.com.br"),
    ("chloe.ng@quokkafreight.com.au", "Chloe", "quokkafreight.com.au"),
]
"""Per person: the e-mail, first name and company domain the export must hold."""


def _cell(value: str, empty: str) -> str:
    if value == "":
        return empty
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def export_text(layout: Layout) -> str:
    """The layout's header row and one row per invented person, in its cell style."""
    headers = layout.headers.split(",")
    company = "Company Name" if "Company Name" in headers else "Company"
    lines = [layout.headers]
    for person in PEOPLE:
        values = {**person, company: person["Company"]}
        for flag in ("Email Sent", "Email Open", "Email Bounced", "Replied", "Demoed"):
            values[flag] = layout.true_false[1]
        values["User Managed"] = layout.true_false[1]
        values["Do Not Call"] = layout.true_false[1]
        values["Last Raised At"] = layout.date if person.get("Latest Funding") else ""
        lines.append(",".join(_cell(values.get(h, ""), layout.empty) for h in headers))
    return layout.newline.join(lines) + layout.newline


@pytest.mark.parametrize("name", LAYOUTS)
def test_layout_is_read_and_mapped(name: str, tmp_path: Path) -> None:
    layout = LAYOUTS[name]
    path = tmp_path / "apollo-contacts-export.csv"
    path.write_text(export_text(layout), encoding="utf-8", newline="")
    source = open_csv(path)
    headers = layout.headers.split(",")
    assert source.headers == headers
    rows = list(source.rows())
    assert source.bad_rows == []
    assert [r.cells[headers.index("Email")] for r in rows] == [e for e, _, _ in EXPECTED]
    mapped = map_headers(source.headers)
    assert mapped.conflicts == []
    company = "Company Name" if "Company Name" in headers else "Company"
    wanted = {
        "first_name": "First Name",
        "last_name": "Last Name",
        "title": "Title",
        "company_name": company,
        "email": "Email",
        "email_status": "Email Status",
        "linkedin_url": "Person Linkedin Url",
        "website": "Website",
        "company_linkedin_url": "Company Linkedin Url",
        "employees": "# Employees",
        "industry": "Industry",
        "city": "City",
        "annual_revenue": "Annual Revenue",
    }
    for optional in (
        ("company_name_for_emails", "Company Name for Emails"),
        ("phone", "First Phone"),
        ("phone_work_direct", "Work Direct Phone"),
        ("phone_mobile", "Mobile Phone"),
        ("phone_corporate", "Corporate Phone"),
        ("company_phone", "Company Phone"),
        ("apollo_contact_id", "Apollo Contact Id"),
        ("apollo_account_id", "Apollo Account Id"),
        ("keywords", "Keywords"),
        ("technologies", "Technologies"),
    ):
        if optional[1] in headers:
            wanted[optional[0]] = optional[1]
    assert {k: mapped.canonical.get(k) for k in wanted} == wanted
    assert len(mapped.canonical) + len(mapped.unmapped) == len(headers)


@pytest.fixture
def dispose_cli_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close the CLI's engines before the test database is dropped."""
    made: list[Engine] = []
    real = root.make_engine

    def tracking(url: str, **kwargs: Any) -> Engine:
        engine = real(url, **kwargs)
        made.append(engine)
        return engine

    monkeypatch.setattr(root, "make_engine", tracking)
    yield
    for engine in made:
        engine.dispose()


@pytest.mark.parametrize("name", LAYOUTS)
def test_layout_runs_through_the_default_pipeline(
    name: str, db_url: str, engine: Engine, tmp_path: Path, dispose_cli_engines: None
) -> None:
    layout = LAYOUTS[name]
    path = tmp_path / "apollo-contacts-export.csv"
    path.write_text(export_text(layout), encoding="utf-8", newline="")
    out = tmp_path / "leads.csv"
    result = CliRunner().invoke(
        cli.app,
        ["run", str(path), "--json", "--out", str(out), "--database-url", db_url],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "COMPLETED"
    assert summary["ingest"]["rejected"] == []
    with out.open(newline="", encoding="utf-8") as f:
        leads = list(csv.DictReader(f))
    assert [(r["email"], r["first_name"], r["company_domain"]) for r in leads] == EXPECTED
    assert leads[0]["company_name"] == "Brightwater Analytics"
    with engine.connect() as conn:
        stored = conn.execute(select(RawUpload.headers)).scalar_one()
    assert stored == layout.headers.split(",")  # every column kept, known or not


def test_layouts_span_the_column_counts_seen() -> None:
    counts = sorted(len(layout.headers.split(",")) for layout in LAYOUTS.values())
    assert counts[0] == 21 and counts[1] == 49 and counts[-1] == 71
    assert len({layout.headers for layout in LAYOUTS.values()}) == len(LAYOUTS)


def test_multi_line_cells_keep_their_lines(tmp_path: Path) -> None:
    """The chosen-columns export carries a multi-line note: one record, line numbers after
    it moved on by its extra lines."""
    path = tmp_path / "apollo-contacts-export.csv"
    path.write_text(export_text(LAYOUTS["2025-21-chosen-columns"]), encoding="utf-8")
    source = open_csv(path)
    rows = list(source.rows())
    assert [r.line_number for r in rows] == [2, 5, 6]
    icp = source.headers.index("ICP RANK")
    assert rows[0].cells[icp].splitlines()[1] == "FIT: HIGH"
    assert rows[0].cells[icp].count("\n") == 2
