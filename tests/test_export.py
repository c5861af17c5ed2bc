"""The final-leads export on SQLite and Postgres: exact leading columns, flattened enrichment
columns, failed items, cell formatting, formula neutralisation and JSONL."""

from __future__ import annotations

import csv
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from enrichflow import export
from enrichflow.api.dashboard.service import batch_detail
from enrichflow.cli.run import summary_read
from enrichflow.conductor.loop import Conductor
from enrichflow.db.models import BatchItem, EnrichmentResult, FinalLead
from enrichflow.errors import InputError
from enrichflow.executors.local import LocalExecutor
from enrichflow.export import LEADING, cell, safe_cell, write_export
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.seed import APOLLO
from enrichflow.webhooks.ledger import DatabaseLedger
from handlers_for_tests import register_steps

EXPECTED_LEADING = [
    "item_id",
    "row_number",
    "status",
    "failed_step",
    "error",
    "first_name",
    "last_name",
    "full_name",
    "title",
    "seniority",
    "department",
    "sub_departments",
    "email",
    "email_status",
    "email_valid",
    "phone",
    "phone_type",
    "phone_extension",
    "direct_phone",
    "mobile_phone",
    "corporate_phone",
    "do_not_call",
    "person_linkedin_url",
    "city",
    "state",
    "state_code",
    "country_code",
    "company_name",
    "company_domain",
    "company_linkedin_url",
    "industry",
    "employees",
    "annual_revenue",
    "total_funding",
    "latest_funding",
    "latest_funding_amount",
    "last_raised_at",
    "company_address",
    "company_city",
    "company_state",
    "company_state_code",
    "company_country_code",
    "sic_codes",
    "naics_codes",
    "facebook_url",
    "twitter_url",
    "keywords",
    "technologies",
    "apollo_contact_id",
    "apollo_account_id",
]

DEFAULT = [
    "split_raw_apollo_scrape_data_into_two_tables",
    "normalize_company_name",
    "normalize_company_domain",
    "normalize_all_core_values",
]

CSV_TEXT = (
    "First Name,Last Name,Email,Company Name,Website,Title,Country,Mobile Phone,Keywords,"
    "Technologies,Apollo Contact Id\n"
    "Ann,Lee,ann@globex.co.uk,Globex Ltd,globex.co.uk,CEO,UK,'+1 415-555-0132,"
    '"saas, b2b",,c-1\n'
    "=cmd|' /C calc'!A0,@SUM(1),fail-me@x.com,-Evil Corp,,-2+3,US,,,,\n"
)


def run(
    engine: Engine, tmp_path: Path, steps: list[str], text: str = CSV_TEXT
) -> tuple[int, list[int]]:
    register_steps(engine)
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    report = ingest_csv(engine, path)
    batch_id = launch(engine, "acme", APOLLO, report.upload_id, steps=steps, create_client=True)
    executor = LocalExecutor(engine, 2)
    try:
        Conductor(engine, executor, chunk_size=10, poll_interval=0.01).run_until_finished(
            [batch_id]
        )
    finally:
        executor.close()
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                select(BatchItem.id).where(BatchItem.batch_id == batch_id).order_by(BatchItem.id)
            ).scalars()
        )
    return batch_id, ids


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [dict(zip(header, row, strict=True)) for row in reader]


def add_result(engine: Engine, batch_id: int, item_id: int, step: str, payload: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            EnrichmentResult.__table__.insert(),
            [
                {
                    "batch_id": batch_id,
                    "item_id": item_id,
                    "step_name": step,
                    "payload": payload,
                    "created_at": 0,
                }
            ],
        )


def test_leading_columns_are_exactly_the_issues() -> None:
    assert EXPECTED_LEADING == LEADING


def test_consolidated_export(engine: Engine, tmp_path: Path) -> None:
    steps = [*DEFAULT, "test_fail_on_marker", "consolidate_final_leads"]
    batch_id, (ann_id, _) = run(engine, tmp_path, steps)
    out = tmp_path / "out.csv"
    assert write_export(engine, batch_id, out) == 2
    header, rows = read_csv(out)
    assert header == [*EXPECTED_LEADING, "test_fail_on_marker.ok"]
    ann, evil = rows
    assert ann["item_id"] == str(ann_id)
    assert ann["status"] == "completed" and ann["failed_step"] == "" and ann["error"] == ""
    assert (ann["first_name"], ann["company_name"], ann["company_domain"]) == (
        "Ann",
        "Globex",
        "globex.co.uk",
    )
    assert ann["email_valid"] == "true"
    assert ann["phone"] == "+14155550132"  # a plain number: no formula, no quote
    assert ann["country_code"] == "GB"
    assert ann["keywords"] == "saas; b2b"
    assert ann["technologies"] == "" and ann["employees"] == ""
    assert ann["apollo_contact_id"] == "c-1"
    assert ann["test_fail_on_marker.ok"] == "true"
    # the failed item is exported with its error, and its formula cells are neutralised
    assert evil["status"] == "failed"
    assert evil["failed_step"] == "test_fail_on_marker"
    assert evil["error"] == "refusing fail-me@x.com"
    assert evil["first_name"].startswith("'=")
    assert evil["title"] == "'-2+3"
    assert evil["company_name"] == "Evil"  # cleaned by normalize_company_name
    assert evil["test_fail_on_marker.ok"] == ""
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(FinalLead.item_id).where(FinalLead.batch_id == batch_id)
            ).scalar_one()
            == ann_id
        )


def test_unconsolidated_items_fall_back_and_nested_results_flatten(
    engine: Engine, tmp_path: Path
) -> None:
    batch_id, (ann_id, evil_id) = run(engine, tmp_path, ["noop"])
    add_result(
        engine,
        batch_id,
        ann_id,
        "enrich_person",
        {"score": 0.5, "verified": False, "person": {"city": "Leeds", "tags": ["a", "b"]}},
    )
    add_result(engine, batch_id, evil_id, "enrich_company", {"size": 10})
    out = tmp_path / "out.csv"
    write_export(engine, batch_id, out)
    header, (ann, evil) = read_csv(out)
    assert header == [
        *EXPECTED_LEADING,
        "enrich_company.size",
        "enrich_person.person.city",
        "enrich_person.person.tags",
        "enrich_person.score",
        "enrich_person.verified",
    ]
    assert ann["first_name"] == "Ann" and ann["email"] == "ann@globex.co.uk"
    assert ann["phone"] == "+1 415-555-0132"  # raw, not normalized: no step normalized it
    assert ann["country_code"] == "" and ann["keywords"] == "saas; b2b"
    assert ann["enrich_person.verified"] == "false"
    assert ann["enrich_person.person.tags"] == "a; b"
    assert ann["enrich_person.score"] == "0.5"
    assert ann["enrich_company.size"] == ""
    assert evil["enrich_company.size"] == "10"

    jsonl = tmp_path / "out.jsonl"
    assert write_export(engine, batch_id, jsonl, "jsonl") == 2
    records = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [list(r) for r in records] == [header, header]
    first = records[0]
    assert first["item_id"] == ann_id and isinstance(first["row_number"], int)
    assert first["phone"] == "+1 415-555-0132"  # JSON is data, not a spreadsheet: no quote
    assert first["keywords"] == ["saas", "b2b"]
    assert first["enrich_person.verified"] is False
    assert first["enrich_person.person.tags"] == ["a", "b"]
    assert first["email_valid"] is None and first["enrich_company.size"] is None


def test_jsonl_of_consolidated_items_has_real_types(engine: Engine, tmp_path: Path) -> None:
    batch_id, (ann_id, _) = run(engine, tmp_path, [*DEFAULT, "consolidate_final_leads"])
    with engine.begin() as conn:
        conn.execute(update(FinalLead).where(FinalLead.item_id == ann_id).values(employees=1200))
    out = tmp_path / "out.jsonl"
    write_export(engine, batch_id, out, "jsonl")
    ann = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert list(ann) == EXPECTED_LEADING
    assert ann["email_valid"] is True
    assert ann["employees"] == 1200
    assert ann["technologies"] == []
    assert ann["phone"] == "+14155550132"


def test_cell_formatting() -> None:
    assert cell(None) == "" and cell("") == ""
    assert cell(True) == "true" and cell(False) == "false"
    assert cell(["x", "y"]) == "x; y" and cell([]) == ""
    assert cell(-5) == "-5" and cell(1.5) == "1.5"  # numbers are not formulas
    assert cell({"b": 1}) == '{"b": 1}'
    for dangerous in (
        "=1+1",
        "@A1",
        "\tx",
        "\rx",
        "-2+3",
        "+A1",
        "-Evil Corp",
        "+1 866-555-0100 ext 286",
        "-1e5",
        "+",
        "- ",
        "-cmd|' /C calc'!A0",
        "+SUM(1)",
        "-1,2;3",
        "+1\n=2",
    ):
        assert cell(dangerous) == "'" + dangerous, dangerous
    assert cell(["=HYPERLINK()", "x"]) == "'=HYPERLINK(); x"
    for plain in ("+14155550132", "+1 866-555-0100", "-12.5", "-1,234.50", "+44 (20) 7946 0018"):
        assert cell(plain) == safe_cell(plain) == plain
    assert safe_cell("Acme") == "Acme"


def test_unknown_format_is_refused(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(InputError):
        write_export(engine, 1, tmp_path / "x", "xlsx")


def test_export_pages_through_its_own_batch_only(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages walk the primary key from the batch's first item; with one item a page, the
    items of the batches before and after it are never exported."""
    batches = [run(engine, tmp_path, ["noop"]) for _ in range(3)]
    monkeypatch.setattr(export, "PAGE", 1)
    for batch_id, ids in batches:
        out = tmp_path / f"{batch_id}.csv"
        assert write_export(engine, batch_id, out) == 2
        _, rows = read_csv(out)
        assert [int(row["item_id"]) for row in rows] == ids


def test_reads_go_on_while_a_writer_holds_the_lock(engine: Engine, tmp_path: Path) -> None:
    """The export, ``enrichflow status``, the dashboard's batch page and the webhook ledger
    read through read-only connections. On SQLite a plain connection takes the writer lock
    (``BEGIN IMMEDIATE``), so each of them would wait for every runner's transaction, and the
    runners for them."""
    batch_id, _ = run(engine, tmp_path, [*DEFAULT, "consolidate_final_leads"])
    held, release = threading.Event(), threading.Event()
    read: dict[str, Any] = {}

    def writer() -> None:
        with engine.begin() as conn:
            conn.execute(select(BatchItem.id).limit(1))
            held.set()
            release.wait(30)

    def reader() -> None:
        read["rows"] = write_export(engine, batch_id, tmp_path / "out.csv")
        read["status"] = summary_read(engine, batch_id)["status"]
        read["page"] = batch_detail(engine, batch_id)["id"]
        read["submissions"] = DatabaseLedger(engine).submissions("nothing-sent")

    holder = threading.Thread(target=writer)
    holder.start()
    try:
        assert held.wait(10)
        reading = threading.Thread(target=reader)
        reading.start()
        reading.join(20)
        assert not reading.is_alive(), "a read waited for the writer"
    finally:
        release.set()
        holder.join(10)
    assert read == {"rows": 2, "status": "COMPLETED", "page": batch_id, "submissions": 0}
