"""Apollo exports end to end, on SQLite and Postgres: ``enrichflow run`` over the Apollo-shaped
sample files, then ``enrichflow export`` (``--all-columns``, ``--table``), checking the
exported values of specific rows: e-mail status and validity, the phone chosen and its kind,
extensions, company names, the company columns that pass through, and what the consolidated
tables hold."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

import enrichflow.cli as cli
from enrichflow.cli import root
from enrichflow.db.models import Batch
from enrichflow.export import LEADING
from handlers_for_tests import register_steps

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "apollo_export_sample.csv"
EXAMPLE = ROOT / "examples" / "apollo_people_sample.csv"
CHECKED = (
    "company_name",
    "company_domain",
    "first_name",
    "last_name",
    "email",
    "email_status",
    "email_valid",
    "phone",
    "phone_type",
    "phone_extension",
    "corporate_phone",
    "seniority",
    "department",
    "state_code",
    "country_code",
    "company_state_code",
    "company_country_code",
)
"""The fields the sample labels with an ``expected <field>`` column (keywords aside)."""
PHONES = ("phone", "direct_phone", "mobile_phone", "corporate_phone")


@pytest.fixture(autouse=True)
def _dispose_cli_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI never disposes its engines; do it so the test database can be dropped."""
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


def invoke(*args: str) -> Any:
    result = CliRunner().invoke(cli.app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def last_batch(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.max(Batch.id))).scalar_one())


def by_company(rows: list[dict[str, str]], raw_name: str) -> dict[str, str]:
    return next(row for row in rows if row["original.Company Name"] == raw_name)


def test_apollo_sample_through_run(db_url: str, engine: Engine, tmp_path: Path) -> None:
    out = tmp_path / "leads.csv"
    invoke("run", str(SAMPLE), "--out", str(out), "--all-columns", "--database-url", db_url)
    rows = read(out)
    assert len(rows) == 35
    header = list(rows[0])
    with SAMPLE.open(newline="", encoding="utf-8") as f:
        uploaded = next(csv.reader(f))
    assert header[: len(LEADING)] == LEADING
    assert header[len(LEADING) :] == [f"original.{h}" for h in uploaded]
    # every labelled value of the sample, through the whole pipeline
    for row in rows:
        for field in CHECKED:
            assert row[field] == row[f"original.expected {field}"], (row["row_number"], field)
        assert row["keywords"].split("; ") == row["original.expected keywords"].split("|")

    catch_all = by_company(rows, "ENVOCORE")
    assert (catch_all["email_status"], catch_all["email_valid"]) == ("catch_all", "false")
    guessed = by_company(rows, "Spellbinders Paper Arts Company, LLC-Mesa")
    assert (guessed["email_status"], guessed["email_valid"]) == ("guessed", "false")
    assert guessed["company_name"] == "Spellbinders Paper Arts Company"  # office dropped
    verified = by_company(rows, "Easy Aerial Inc.")
    assert (verified["email_status"], verified["email_valid"]) == ("verified", "true")

    office = by_company(rows, "GGO, INC.-Texarkana")
    assert office["company_name"] == "GGO"
    assert (office["phone"], office["phone_type"], office["phone_extension"]) == (
        "+19035550111",
        "direct",
        "204",
    )
    assert (office["direct_phone"], office["corporate_phone"]) == ("+19035550111", "+19035550100")

    acronym = by_company(rows, "MTE Corp")
    assert acronym["company_name"] == "MTE"  # ALL-CAPS acronym kept
    assert acronym["phone"] == "+14145550123" and acronym["phone_type"] == "direct"
    assert acronym["phone_extension"] == "31"
    assert (acronym["mobile_phone"], acronym["corporate_phone"]) == ("+14145550124", "+14145550100")
    assert acronym["original.Work Direct Phone"] == "'+1 414-555-0123 ext. 31"  # verbatim

    for row in rows:
        for column in PHONES:
            assert row[column] == "" or row[column].startswith("+"), (row["row_number"], column)
    # the plain numbers have no quote in the file itself
    text = out.read_text(encoding="utf-8")
    assert ",+14145550123,direct,31,+14145550123,+14145550124,+14145550100," in text


def test_example_sample_company_columns_and_tables(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    """The examples/ file carries Apollo's company columns (address, social pages, funding);
    they reach the export, ``companies`` and ``people``, and ``--table`` writes each table."""
    register_steps(engine)
    out = tmp_path / "leads.csv"
    steps = (
        "split_raw_apollo_scrape_data_into_two_tables,normalize_company_name,"
        "normalize_company_domain,normalize_all_core_values,test_positions,"
        "consolidate_final_leads"
    )
    invoke("run", str(EXAMPLE), "--steps", steps, "--out", str(out), "--database-url", db_url)
    batch_id = last_batch(engine)
    rows = read(out)
    assert len(rows) == 200 and "original.First Name" not in rows[0]
    imani, jordy = rows[0], rows[1]
    assert imani["twitter_url"] == "https://twitter.com/redwillow"
    assert (imani["latest_funding"], imani["latest_funding_amount"]) == ("Series C", "5500000")
    assert imani["last_raised_at"] == "2021-10-17T09:30:00+00:00"
    assert imani["email_status"] == "unknown" and imani["email_valid"] == "false"
    # mobile before the corporate line, from Excel's quoted '+1 ... cells
    assert (imani["phone"], imani["phone_type"]) == ("+15125550176", "mobile")
    assert jordy["company_address"] == "1765 Main St, Raleigh, North Carolina, United States"
    assert (jordy["email_status"], jordy["email_valid"]) == ("guessed", "false")
    assert jordy["company_state_code"] == "US-NC" and jordy["state_code"] == "US-OH"
    assert jordy["test_positions.person.positions"].startswith('{"company": "Pinecrest')

    companies = tmp_path / "companies.csv"
    invoke("export", str(batch_id), "--table", "companies", "--out", str(companies),
           "--database-url", db_url)  # fmt: skip
    pinecrest = next(c for c in read(companies) if c["name"] == "Pinecrest Home Health")
    assert pinecrest["address"] == "1765 Main St, Raleigh, North Carolina, United States"
    assert pinecrest["twitter_url"] == "https://twitter.com/pinecresthomehe"
    assert (pinecrest["state_code"], pinecrest["phone"]) == ("US-NC", "+19195550136")
    assert pinecrest["company_key"] == "domain:pinecresthh.com"

    people = tmp_path / "people.jsonl"
    invoke("export", str(batch_id), "--table", "people", "--format", "jsonl", "--out",
           str(people), "--database-url", db_url)  # fmt: skip
    lines = people.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 200
    person = next(p for p in read_jsonl(people) if p["last_name"] == "Marchetti")
    assert person["email_status"] == "unknown" and person["phone_type"] == "mobile"
    assert person["mobile_phone"] == "+15125550176" and person["sub_departments"] == []

    history = tmp_path / "history.csv"
    invoke("export", str(batch_id), "--table", "work_history", "--out", str(history),
           "--database-url", db_url)  # fmt: skip
    positions = read(history)
    assert len(positions) == 400
    first = [p for p in positions if p["item_id"] == rows[1]["item_id"]]
    assert [(p["position"], p["company"], p["title"], p["start_date"], p["end_date"])
            for p in first] == [
        ("0", "Pinecrest Home Health", "VP of Sales", "2021-03", ""),
        ("1", "Initech", "Analyst", "2016", "2021-02"),
    ]  # fmt: skip
    assert {p["source_step"] for p in positions} == {"test_positions"}


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


INLINE = (
    "First Name,Last Name,Email,Email Status,Company Name,Website,Sub Departments,Do Not Call,"
    "SIC Codes,NAICS Codes,Facebook Url,Latest Funding Amount,Corporate Phone\n"
    'Ann,Lee,ann@globex.com,,Globex,globex.com,"Sales Operations, Business Development",'
    'true,"7372, 7379",511210,https://facebook.com/globex,$5.5M,+1 866-555-0100\n'
    "Bo,Kim,bo@globex.com,Verified,Globex,globex.com,,false,,,,,\n"
)


def test_columns_of_newer_exports_and_an_empty_status(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    """Sub-departments, Do Not Call, SIC / NAICS codes; an empty status cell in a file that
    has the column means unknown, not valid."""
    path = tmp_path / "newer.csv"
    path.write_text(INLINE, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    invoke("run", str(path), "--out", str(out), "--database-url", db_url)
    ann, bo = read_jsonl(out)
    assert ann["sub_departments"] == ["Sales Operations", "Business Development"]
    assert ann["do_not_call"] is True and bo["do_not_call"] is False
    assert ann["sic_codes"] == ["7372", "7379"] and ann["naics_codes"] == ["511210"]
    assert bo["sic_codes"] == [] and bo["naics_codes"] == []
    assert ann["facebook_url"] == "https://facebook.com/globex"
    assert ann["latest_funding_amount"] == 5500000
    assert (ann["phone"], ann["phone_type"]) == ("+18665550100", "corporate")
    assert (ann["email_status"], ann["email_valid"]) == ("unknown", False)
    assert (bo["email_status"], bo["email_valid"]) == ("verified", True)

    companies = tmp_path / "companies.jsonl"
    invoke("export", str(last_batch(engine)), "--table", "companies", "--format", "jsonl",
           "--out", str(companies), "--database-url", db_url)  # fmt: skip
    (globex,) = read_jsonl(companies)
    assert globex["sic_codes"] == ["7372", "7379"] and globex["naics_codes"] == ["511210"]
    assert globex["latest_funding_amount"] == 5500000 and globex["phone"] == "+18665550100"


def test_export_refuses_what_it_cannot_write(db_url: str, engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "newer.csv"
    path.write_text(INLINE, encoding="utf-8")
    invoke("run", str(path), "--database-url", db_url)
    batch = str(last_batch(engine))
    out = str(tmp_path / "x.csv")
    runner = CliRunner()
    for args, message in (
        (["--table", "deals"], "unknown table 'deals'"),
        (["--table", "people", "--all-columns"], "part of the leads export"),
        (["--format", "xlsx"], "unknown export format"),
    ):
        result = runner.invoke(cli.app, ["export", batch, "--out", out, *args,
                                         "--database-url", db_url])  # fmt: skip
        assert result.exit_code != 0 and message in " ".join(result.output.split()), args
    result = runner.invoke(cli.app, ["export", "999", "--out", out, "--database-url", db_url])
    assert result.exit_code != 0 and "batch 999 does not exist" in result.output
