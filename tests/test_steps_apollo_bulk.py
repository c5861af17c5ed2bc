"""The chunk steps' set-based writes store exactly the values the steps compute, on SQLite and
Postgres: generated rows (unicode, quotes, long and empty values, lists, booleans, nested
enrichment) go through split and consolidation, and every stored column is compared with
``lead_values`` / the split's own values read back through SQLAlchemy."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from enrichflow.db.models import Company, FinalLead, Person, PersonWorkHistory
from enrichflow.normalize.core import normalize_core_values
from enrichflow.steps.apollo import (
    LEAD_COLUMNS,
    PERSON_COLUMNS,
    consolidate_final_leads,
    enrichment_of,
    lead_values,
    split_raw_apollo_scrape_data_into_two_tables,
)
from enrichflow.steps.base import StepContext
from test_steps_apollo import context, launched

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
