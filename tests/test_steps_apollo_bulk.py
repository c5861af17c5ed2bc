"""The chunk steps' set-based writes store exactly the values the steps compute, on SQLite and
Postgres: generated rows (unicode, quotes, long and empty values, lists, booleans, nested
enrichment) go through split and consolidation, and every stored column is compared with
``lead_values`` / the split's own values read back through SQLAlchemy."""

from __future__ import annotations

import csv
import json
import logging
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text

from enrichflow.columns import LEAD_COLUMNS, PERSON_COLUMNS
from enrichflow.db.context import ChunkData, RowLayout, step_setting_load
from enrichflow.db.engine import is_postgres, now_ms
from enrichflow.db.models import (
    BatchItem,
    Company,
    FinalLead,
    Person,
    PersonWorkHistory,
    WorkflowState,
)
from enrichflow.db.states import results_insert, states_claim
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.normalize.core import normalize_core_values
from enrichflow.runner import run_claims
from enrichflow.seed import APOLLO
from enrichflow.steps import consolidate
from enrichflow.steps.apollo_split import split_raw_apollo_scrape_data_into_two_tables
from enrichflow.steps.base import StepContext
from enrichflow.steps.consolidate import consolidate_final_leads, enrichment_of, lead_values
from test_steps_apollo import CONSOLIDATE, DEFAULT, SPLIT, context, launched

N = 40
_WORDS = ["Globex", "Ünïcödé", "O'Brien", 'Quote "Q"', "x" * 120, "  padded  ", "'=1+2", "日本"]


def _fields(rng: random.Random, i: int) -> dict[str, str]:
    word = rng.choice(_WORDS)
    fields = {
        "first_name": f"{rng.choice(_WORDS)}{i}",
        "last_name": rng.choice(_WORDS),
        "email": rng.choice([f"p{i}@globex{i % 5}.com", "not-an-email", f"p{i}@gmail.com"]),
        "company_name": f"{word} {i % 7} Ltd",
        "website": rng.choice([f"https://www.site{i % 5}.co.uk/about", "", "linkedin.com/x"]),
        "title": rng.choice(["CEO", "VP Sales", "Engineer", "Head of " + "Data " * 30]),
        "seniority": rng.choice(["", "c_suite", "a very long seniority value indeed"]),
        "country": rng.choice(["Germany", "UK", "United States", ""]),
        "phone_mobile": rng.choice(["'+44 20 7946 0018", "", "n/a"]),
        "industry": rng.choice(["Retail", "", word]),
        "keywords": rng.choice(["a, b, c", "", "ü; ß"]),
        "employees": rng.choice(["51-200", "1,000", ""]),
        "apollo_contact_id": "c" * rng.choice([5, 150]),
    }
    return {k: v for k, v in fields.items() if v}


def _results(rng: random.Random, fields: dict[str, str]) -> dict[str, Any]:
    results: dict[str, Any] = {"normalize_all_core_values": normalize_core_values(fields)}
    if rng.random() < 0.5:
        results["enrich_person"] = {
            "person": {"positions": [{"company": {"name": "Acme"}, "title": "CTO", "from": 2020}]},
            "score": rng.random(),
            "flag": rng.random() < 0.5,
            "nothing": None,
            "text": 'ünï "quoted" \\ back',
        }
    return results


def test_bulk_writes_store_what_the_steps_compute(engine: Engine, tmp_path: Path) -> None:
    rng = random.Random(7)
    batch_id, ids = launched(engine, tmp_path, ["Fay,Qu,,,,,,,"] * N)
    all_fields = [_fields(rng, i) for i in range(N)]
    contexts: list[StepContext] = [
        context(engine, batch_id, item, f, _results(rng, f))
        for item, f in zip(ids, all_fields, strict=True)
    ]
    before = datetime.now(UTC) - timedelta(minutes=1)
    split = split_raw_apollo_scrape_data_into_two_tables(contexts)
    for _ in range(2):  # a re-run writes the same rows again, never new ones
        outcomes = consolidate_final_leads(contexts)
    with engine.connect() as conn:
        leads = {r.item_id: r for r in conn.execute(select(FinalLead.__table__).where(FinalLead.batch_id == batch_id))}  # fmt: skip
        people = {r.item_id: r for r in conn.execute(select(Person.__table__).where(Person.batch_id == batch_id))}  # fmt: skip
        companies = {r.id: r for r in conn.execute(select(Company.__table__).where(Company.batch_id == batch_id))}  # fmt: skip
        history = list(conn.execute(select(PersonWorkHistory.__table__).where(PersonWorkHistory.batch_id == batch_id)))  # fmt: skip
    assert len(leads) == len(people) == N
    for ctx, outcome, split_outcome in zip(contexts, outcomes, split, strict=True):
        assert isinstance(outcome, dict) and isinstance(split_outcome, dict)
        lead = leads[ctx.item_id]
        expected = lead_values(ctx)
        assert {c: getattr(lead, c) for c in LEAD_COLUMNS} == expected
        assert lead.enrichment == enrichment_of(ctx)
        assert outcome["final_lead_id"] == lead.id
        assert before <= lead.created_at <= datetime.now(UTC)
        person = people[ctx.item_id]
        assert split_outcome["person_id"] == person.id
        assert person.company_id == split_outcome["company_id"]
        for column in PERSON_COLUMNS:
            source = "person_linkedin_url" if column == "linkedin_url" else column
            assert getattr(person, column) == expected[source], column
        if person.company_id is not None:
            company = companies[person.company_id]
            assert company.company_key == split_outcome["company_key"]
            assert before <= company.created_at <= datetime.now(UTC)
    assert len(history) == sum(1 for c in contexts if "enrich_person" in c.results)
    assert {(h.company, h.title, h.start_date) for h in history} <= {("Acme", "CTO", "2020")}


SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "apollo_people_sample.csv"
_EDGES = {  # sample row -> cells replaced: bounded columns, unicode, quotes, padding, nulls
    0: {"Apollo Contact Id": "c" * 150, "Industry": "  padded  ", "Keywords": "ü; ß, 日本"},
    1: {"Title": "Head of " + "Data " * 30, "Seniority": "", "Technologies": ""},
    2: {"First Name": 'Quote "Q"', "Last Name": "O'Brien", "Industry": "n/a", "Country": ""},
    6: {"Apollo Account Id": "'=1+2", "# Employees": "", "Annual Revenue": "$1.2M"},
    9: {"Company Name": "", "Company Name for Emails": ""},
}


def _edge_sample(path: Path) -> Path:
    """The sample export with the edge cases of ``_EDGES`` written into some of its rows."""
    with SAMPLE.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for index, cells in _EDGES.items():
        rows[index].update(cells)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


ENRICHED = {"person": {"positions": [{"company": "Acme", "title": "CTO", "from": 2020}]}}


def _run_step(engine: Engine, batch_id: int, position: int) -> None:
    """Every state of one step through the real claim and runner, in this thread."""
    while True:
        with engine.begin() as conn:
            claims = states_claim(conn, batch_id, position, 1000, 60_000, now_ms(), start=True)
        if not claims:
            return
        run_claims(engine, claims, {}, started=True)


def _launched_through(engine: Engine, tmp_path: Path, steps: list[str]) -> tuple[int, list[int]]:
    """The edge-case sample launched with ``steps``, run up to its last step (consolidation)."""
    report = ingest_csv(engine, _edge_sample(tmp_path / "edges.csv"))
    batch_id = launch(engine, "acme", APOLLO, report.upload_id, steps=steps, create_client=True)
    with engine.connect() as conn:
        ids = list(conn.execute(select(BatchItem.id).where(BatchItem.batch_id == batch_id).order_by(BatchItem.id)).scalars())  # fmt: skip
    for position in range(len(steps) - 1):
        _run_step(engine, batch_id, position)
    return batch_id, ids


def _consolidate_tracking_python(
    engine: Engine, batch_id: int, position: int, monkeypatch: pytest.MonkeyPatch
) -> list[int]:
    """Run the consolidation; the items it computed through ``_lead_row``."""
    in_python: list[int] = []
    lead_row = consolidate._lead_row
    monkeypatch.setattr(consolidate, "_lead_row", lambda ctx: in_python.append(ctx.item_id) or lead_row(ctx))  # fmt: skip
    _run_step(engine, batch_id, position)
    monkeypatch.undo()  # lead_values, in the checks, calls _lead_row too
    return in_python


def _assert_leads_match_python(
    engine: Engine, batch_id: int, ids: list[int], steps: list[str]
) -> dict[int, Any]:
    """Every stored lead and person column equals what ``lead_values`` computes for the item,
    read back through the runner's own loader; the leads by item."""
    with engine.connect() as conn:
        setting = step_setting_load(conn, batch_id, len(steps) - 1)
        chunk = ChunkData(engine, conn, ids, RowLayout(setting.headers, setting.column_map))
        leads = {r.item_id: r for r in conn.execute(select(FinalLead.__table__).where(FinalLead.batch_id == batch_id))}  # fmt: skip
        people = {r.item_id: r for r in conn.execute(select(Person.__table__).where(Person.batch_id == batch_id))}  # fmt: skip
    assert len(leads) == len(ids) == 200
    assert len(people) == (200 if SPLIT in steps else 0)
    for item_id in ids:
        ctx = StepContext(state_id=0, batch_id=batch_id, item_id=item_id, step=CONSOLIDATE, workstream=APOLLO, client="acme", attempt=1, row_number=None, identity=None, original_data=None, results=None, workflow_config={}, client_config={}, logger=logging.getLogger("test"), fields=None, source=chunk)  # fmt: skip
        expected = lead_values(ctx)
        lead = leads[item_id]
        assert {c: getattr(lead, c) for c in LEAD_COLUMNS} == expected, item_id
        assert lead.enrichment == enrichment_of(ctx)
        for column in PERSON_COLUMNS if people else ():
            source = "person_linkedin_url" if column == "linkedin_url" else column
            assert getattr(people[item_id], column) == expected[source], (item_id, column)
    return leads


@pytest.mark.parametrize(
    "steps", [DEFAULT, ["normalize_all_core_values", CONSOLIDATE]], ids=["default", "core-only"]
)
def test_sql_consolidation_stores_what_the_python_path_computes(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, steps: list[str]
) -> None:
    """On SQLite, the items whose only results are the cleaning steps' are consolidated in SQL
    from the stored results (with the company name or domain computed from the row where that
    step was skipped or is not in the pipeline); every column written must equal what
    ``lead_values`` computes in Python for the same item. Items with an enrichment result take
    the Python path in the same chunk; on Postgres every item does."""
    batch_id, ids = _launched_through(engine, tmp_path, steps)
    enriched = set(ids[3:5])
    with engine.begin() as conn:
        results_insert(conn, [(batch_id, i, "enrich_person", ENRICHED) for i in enriched], now_ms())
    in_python = _consolidate_tracking_python(engine, batch_id, len(steps) - 1, monkeypatch)

    _assert_leads_match_python(engine, batch_id, ids, steps)
    for item_id in ids:
        taken = item_id in in_python
        assert taken is (item_id in enriched or is_postgres(engine)), item_id
    with engine.connect() as conn:
        history = list(conn.execute(select(PersonWorkHistory.item_id).where(PersonWorkHistory.batch_id == batch_id)).scalars())  # fmt: skip
    assert sorted(history) == sorted(enriched)
    if steps == DEFAULT:  # the SQL path also met items whose name or domain step was skipped
        with engine.connect() as conn:
            skipped = conn.execute(select(WorkflowState.step_name).where(WorkflowState.batch_id == batch_id, WorkflowState.status == "SKIPPED")).scalars().all()  # fmt: skip
        assert {"normalize_company_name", "normalize_company_domain"} <= set(skipped)


def test_sql_consolidation_leaves_to_python_what_it_cannot_write(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Items the SQL cannot write are consolidated in Python, in the same chunk and with the
    same values: a core result stored before it carried the Apollo ids, a company name result
    without a value, and an enrichment result stored after the chunk looked at the items'
    results (so they went to SQL). Everything else still goes through SQL on SQLite."""
    batch_id, ids = _launched_through(engine, tmp_path, DEFAULT)
    legacy, empty_name, late = ids[10], ids[11], ids[12]
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE enrichment_results SET payload = :p WHERE item_id = :i AND step_name = :s"
            ),
            [
                {"i": legacy, "s": "normalize_all_core_values", "p": json.dumps({"email": "a@b.co"})},
                {"i": empty_name, "s": "normalize_company_name", "p": json.dumps({"company_name": ""})},
            ],
        )  # fmt: skip
    looked = consolidate.result_kinds

    def then_a_result_arrives(conn: Any, item_ids: list[int]) -> Any:
        kinds = looked(conn, item_ids)
        if late in item_ids:
            with engine.begin() as writer:
                results_insert(writer, [(batch_id, late, "enrich_person", ENRICHED)], now_ms())
        return kinds

    if is_postgres(engine):  # no look at the results: every item takes the Python path
        with engine.begin() as writer:
            results_insert(writer, [(batch_id, late, "enrich_person", ENRICHED)], now_ms())
    monkeypatch.setattr(consolidate, "result_kinds", then_a_result_arrives)
    in_python = _consolidate_tracking_python(engine, batch_id, len(DEFAULT) - 1, monkeypatch)

    leads = _assert_leads_match_python(engine, batch_id, ids, DEFAULT)
    expected_python = set(ids) if is_postgres(engine) else {legacy, empty_name, late}
    assert set(in_python) == expected_python
    assert leads[late].enrichment == {"enrich_person": ENRICHED}
    assert leads[legacy].email == "a@b.co"  # the legacy core result was read
