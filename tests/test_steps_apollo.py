"""The Apollo chunk steps on SQLite and Postgres: split (companies de-duplicated per batch, people
linked, re-runs and concurrent chunks never duplicate) and consolidation (final leads, work
history, re-runs)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from enrichflow.conductor.loop import Conductor
from enrichflow.db.models import Batch, BatchItem, Company, FinalLead, Person, PersonWorkHistory
from enrichflow.executors.local import LocalExecutor
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.seed import APOLLO
from enrichflow.steps.apollo_split import split_raw_apollo_scrape_data_into_two_tables
from enrichflow.steps.base import ItemIdentity, StepContext
from enrichflow.steps.consolidate import consolidate_final_leads
from statements_sent import statements_sent

SPLIT = "split_raw_apollo_scrape_data_into_two_tables"
CONSOLIDATE = "consolidate_final_leads"
DEFAULT = [
    SPLIT,
    "normalize_company_name",
    "normalize_company_domain",
    "normalize_all_core_values",
    CONSOLIDATE,
]

HEADER = "First Name,Last Name,Email,Company Name,Website,Title,Country,Mobile Phone,Industry"
ROWS = [
    # two people at Globex (same registrable domain through different sub-domains/paths)
    "Ann,Lee,ann@globex.co.uk,Globex Ltd,https://www.globex.co.uk/about,CEO,UK,'+44 20 7946 0018,Retail",
    "Bob,Ray,bob@globex.co.uk,GLOBEX LIMITED,shop.globex.co.uk,VP Sales,UK,,",
    # a website that is a LinkedIn page: the work e-mail gives the domain
    "Cy,Ng,cy@initech.com,Initech,https://linkedin.com/company/initech,CTO,USA,,Software",
    # no website, free mail: falls back to the name key
    "Di,Ox,di.ox@gmail.com,Umbrella Corp.,,Founder,Germany,,",
    "Ed,Po,ed.po@yahoo.com,Umbrella Corporation,,Engineer,Germany,,",
    # no company at all
    "Fay,Qu,,,,,,,",
]


def write(path: Path, rows: Sequence[str] = ROWS) -> Path:
    path.write_text(HEADER + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def run_batch(
    engine: Engine, tmp_path: Path, steps: Sequence[str], rows: Sequence[str] = ROWS
) -> int:
    report = ingest_csv(engine, write(tmp_path / "leads.csv", rows))
    batch_id = launch(
        engine, "acme", APOLLO, report.upload_id, steps=list(steps), create_client=True
    )
    executor = LocalExecutor(engine, 2)
    try:
        Conductor(engine, executor, chunk_size=4, poll_interval=0.01).run_until_finished([batch_id])
    finally:
        executor.close()
    with engine.connect() as conn:
        assert conn.execute(select(Batch.status).where(Batch.id == batch_id)).scalar_one() == (
            "COMPLETED"
        )
    return batch_id


def launched(engine: Engine, tmp_path: Path, rows: Sequence[str] = ROWS) -> tuple[int, list[int]]:
    """A batch whose items exist, for calling the handlers directly."""
    report = ingest_csv(engine, write(tmp_path / "direct.csv", rows))
    batch_id = launch(engine, "acme", APOLLO, report.upload_id, steps=["noop"], create_client=True)
    with engine.connect() as conn:
        ids = list(
            conn.execute(
                select(BatchItem.id).where(BatchItem.batch_id == batch_id).order_by(BatchItem.id)
            ).scalars()
        )
    return batch_id, ids


def context(
    engine: Engine,
    batch_id: int,
    item_id: int,
    fields: Mapping[str, str],
    results: Mapping[str, dict[str, Any]] | None = None,
) -> StepContext:
    return StepContext(
        state_id=0,
        batch_id=batch_id,
        item_id=item_id,
        step="test",
        workstream=APOLLO,
        client="acme",
        attempt=1,
        row_number=None,
        identity=ItemIdentity(),
        original_data=dict(fields),
        results=dict(results or {}),
        workflow_config={},
        client_config={},
        logger=logging.getLogger("test"),
        services={"engine": engine},
        fields=dict(fields),
    )


def count(engine: Engine, model: Any, batch_id: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(model).where(model.batch_id == batch_id)
            ).scalar_one()
        )


def companies_of(engine: Engine, batch_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return {
            r.company_key: r
            for r in conn.execute(select(Company.__table__).where(Company.batch_id == batch_id))
        }


def test_default_pipeline_splits_and_consolidates(engine: Engine, tmp_path: Path) -> None:
    batch_id = run_batch(engine, tmp_path, DEFAULT)
    found = companies_of(engine, batch_id)
    assert sorted(found) == ["domain:globex.co.uk", "domain:initech.com", "name:umbrella"]
    globex = found["domain:globex.co.uk"]
    assert globex.name == "Globex"
    assert globex.domain == "globex.co.uk"
    assert globex.industry == "Retail"
    assert found["domain:initech.com"].industry == "Software"
    with engine.connect() as conn:
        people = {
            r.first_name: r
            for r in conn.execute(select(Person.__table__).where(Person.batch_id == batch_id))
        }
        leads = {
            r.first_name: r
            for r in conn.execute(select(FinalLead.__table__).where(FinalLead.batch_id == batch_id))
        }
    assert len(people) == 6
    assert people["Ann"].company_id == people["Bob"].company_id == globex.id
    assert people["Di"].company_id == people["Ed"].company_id == found["name:umbrella"].id
    assert people["Fay"].company_id is None
    # consolidation refreshed the person with the normalized phone and country
    assert people["Ann"].phone == "+442079460018"
    assert people["Ann"].country_code == "GB"
    assert len(leads) == 6
    ann = leads["Ann"]
    assert (ann.company_name, ann.company_domain, ann.country_code) == (
        "Globex",
        "globex.co.uk",
        "GB",
    )
    assert ann.email == "ann@globex.co.uk" and ann.email_valid is True
    assert ann.seniority == "c_suite"
    assert ann.enrichment == {}
    assert leads["Di"].company_domain is None
    assert leads["Di"].company_name == "Umbrella"


def test_split_rerun_and_second_chunk_never_duplicate(engine: Engine, tmp_path: Path) -> None:
    batch_id, ids = launched(engine, tmp_path)
    rows = [
        {"company_name": "Globex Ltd", "website": "globex.co.uk", "email": "a@globex.co.uk"},
        {"company_name": "Globex", "email": "b@globex.co.uk"},
        {"company_name": "Umbrella Corp."},
        {"company_name": "Umbrella Corporation", "first_name": "Ed"},
    ]
    contexts = [context(engine, batch_id, i, f) for i, f in zip(ids, rows, strict=False)]
    first = split_raw_apollo_scrape_data_into_two_tables(contexts[:2])
    second = split_raw_apollo_scrape_data_into_two_tables(contexts[1:])  # overlaps, new company
    again = split_raw_apollo_scrape_data_into_two_tables(contexts)  # whole re-run
    assert count(engine, Company, batch_id) == 2
    assert count(engine, Person, batch_id) == 4
    assert isinstance(first[0], dict) and isinstance(again[0], dict)
    assert first[0]["company_key"] == "domain:globex.co.uk"
    assert first[0]["company_id"] == first[1]["company_id"] == again[1]["company_id"]  # type: ignore[index]
    assert first[1]["person_id"] == second[0]["person_id"] == again[1]["person_id"]  # type: ignore[index]
    assert again[2]["company_key"] == again[3]["company_key"] == "name:umbrella"  # type: ignore[index]
    # every payload names its own person row
    with engine.connect() as conn:
        by_item = dict(conn.execute(select(Person.item_id, Person.id)).all())
    assert [r["person_id"] for r in again] == [by_item[i] for i in ids[:4]]  # type: ignore[index]


def test_split_later_chunks_fill_only_what_a_company_lacks(engine: Engine, tmp_path: Path) -> None:
    batch_id, ids = launched(engine, tmp_path)
    globex = {"company_name": "Globex", "website": "globex.co.uk"}
    rows = [
        globex,
        globex | {"industry": "Retail", "employees": "50"},  # fills two empty columns
        globex | {"industry": "Mining", "employees": "7"},  # changes nothing
        globex,
    ]
    outcomes = [
        split_raw_apollo_scrape_data_into_two_tables([context(engine, batch_id, item, fields)])
        for item, fields in zip(ids, rows, strict=False)
    ]
    company = companies_of(engine, batch_id)["domain:globex.co.uk"]
    assert (company.name, company.industry, company.employees) == ("Globex", "Retail", 50)
    assert {o[0]["company_id"] for o in outcomes} == {company.id}  # type: ignore[index]


def test_split_uses_earlier_normalization_results(engine: Engine, tmp_path: Path) -> None:
    batch_id, ids = launched(engine, tmp_path)
    ctx = context(
        engine,
        batch_id,
        ids[0],
        {"company_name": "whatever", "website": "other.com"},
        {
            "normalize_company_name": {"company_name": "Acme", "match_key": "acme"},
            "normalize_company_domain": {"company_domain": "acme.io", "source": "website"},
            "normalize_all_core_values": {"first_name": "Zoe", "phone": "+14155550132"},
        },
    )
    (result,) = split_raw_apollo_scrape_data_into_two_tables([ctx])
    assert isinstance(result, dict) and result["company_key"] == "domain:acme.io"
    company = companies_of(engine, batch_id)["domain:acme.io"]
    assert company.name == "Acme"
    with engine.connect() as conn:
        person = conn.execute(select(Person.__table__).where(Person.item_id == ids[0])).one()
    assert (person.first_name, person.phone) == ("Zoe", "+14155550132")


def test_split_two_concurrent_chunks_share_companies(engine: Engine, tmp_path: Path) -> None:
    rows = [f"P{i},L{i},p{i}@c{i % 5}.com,Company {i % 5},c{i % 5}.com,CEO,US,," for i in range(40)]
    batch_id, ids = launched(engine, tmp_path, rows)
    contexts = [
        context(
            engine,
            batch_id,
            item,
            {"company_name": f"Company {i % 5}", "website": f"c{i % 5}.com", "first_name": f"P{i}"},
        )
        for i, item in enumerate(ids)
    ]
    # interleave so both chunks carry every company, in opposite orders
    chunks = [contexts[0::2], list(reversed(contexts[1::2]))]
    barrier = threading.Barrier(2)
    outcomes: list[Any] = [None, None]
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            barrier.wait()
            outcomes[n] = split_raw_apollo_scrape_data_into_two_tables(chunks[n])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert count(engine, Company, batch_id) == 5
    assert count(engine, Person, batch_id) == 40
    company_ids = {r["company_key"]: r["company_id"] for outcome in outcomes for r in outcome}
    assert len(company_ids) == 5
    assert {k: c.id for k, c in companies_of(engine, batch_id).items()} == company_ids


POSITIONS = {
    "person": {
        "positions": [
            {
                "company": {"name": "Globex"},
                "title": "CEO",
                "start_date": {"year": 2020, "month": 3},
            },
            {"organization_name": "Initech", "job_title": "CTO", "start": "2015", "end": "2019-12"},
            {"title": "Intern"},
            {"unknown": "nothing useful"},
            "not a dict",
        ]
    },
    "score": 7,
}


def test_consolidate_rows_work_history_and_rerun(engine: Engine, tmp_path: Path) -> None:
    batch_id, ids = launched(engine, tmp_path)
    fields = {
        "first_name": "DR. ALAN",
        "last_name": "TURING JR.",
        "email": " Alan@Globex.co.uk ",
        "company_name": "GLOBEX LTD",
        "website": "https://www.globex.co.uk",
        "country": "UK",
        "phone_mobile": "'+44 20 7946 0018",
        "keywords": "a, b",
        "apollo_contact_id": "c1",
    }
    ctx = context(engine, batch_id, ids[0], fields, {"enrich_person": POSITIONS})
    other = context(
        engine, batch_id, ids[1], {"email": "x@y.com"}, {"enrich_person": {"work_history": []}}
    )
    (first, _) = consolidate_final_leads([ctx, other])
    assert isinstance(first, dict) and first["work_history"] == 3
    assert first["enrichment_steps"] == ["enrich_person"]
    (again, _) = consolidate_final_leads([ctx, other])
    assert isinstance(again, dict) and again["final_lead_id"] == first["final_lead_id"]
    assert count(engine, FinalLead, batch_id) == 2
    assert count(engine, PersonWorkHistory, batch_id) == 3
    with engine.connect() as conn:
        lead = conn.execute(select(FinalLead.__table__).where(FinalLead.item_id == ids[0])).one()
        history = list(
            conn.execute(
                select(
                    PersonWorkHistory.source_step,
                    PersonWorkHistory.company,
                    PersonWorkHistory.title,
                    PersonWorkHistory.start_date,
                    PersonWorkHistory.end_date,
                )
                .where(PersonWorkHistory.item_id == ids[0])
                .order_by(PersonWorkHistory.position)
            ).all()
        )
    assert (lead.first_name, lead.last_name) == ("Alan", "Turing")
    assert (lead.company_name, lead.company_domain) == ("Globex", "globex.co.uk")
    assert (lead.email, lead.phone, lead.country_code) == (
        "alan@globex.co.uk",
        "+442079460018",
        "GB",
    )
    assert lead.keywords == ["a", "b"] and lead.technologies == []
    assert lead.apollo_contact_id == "c1"
    assert lead.enrichment == {"enrich_person": POSITIONS}
    assert history == [
        ("enrich_person", "Globex", "CEO", "2020-03", None),
        ("enrich_person", "Initech", "CTO", "2015", "2019-12"),
        ("enrich_person", None, "Intern", None, None),
    ]
    # a re-run whose result lost the positions replaces the rows
    shorter = context(
        engine, batch_id, ids[0], fields, {"enrich_person": {"positions": [{"title": "X"}]}}
    )
    consolidate_final_leads([shorter])
    assert count(engine, PersonWorkHistory, batch_id) == 1


def test_split_row_without_domain_joins_the_named_company(engine: Engine, tmp_path: Path) -> None:
    batch_id, ids = launched(engine, tmp_path)
    with_domain = context(
        engine, batch_id, ids[0], {"company_name": "Globex Ltd", "website": "globex.co.uk"}
    )
    free_mail = context(
        engine, batch_id, ids[1], {"company_name": "GLOBEX", "email": "a@gmail.com"}
    )
    later = context(
        engine, batch_id, ids[2], {"company_name": "Globex, Inc.", "email": "b@gmail.com"}
    )
    split_raw_apollo_scrape_data_into_two_tables([with_domain, free_mail])  # same chunk
    (result,) = split_raw_apollo_scrape_data_into_two_tables([later])  # a later chunk
    assert isinstance(result, dict) and result["company_key"] == "domain:globex.co.uk"
    assert sorted(companies_of(engine, batch_id)) == ["domain:globex.co.uk"]


def test_split_sends_a_known_company_only_when_it_brings_a_value(
    engine: Engine, tmp_path: Path
) -> None:
    """A company an earlier chunk of this process wrote is not upserted again unless the chunk
    fills one of its empty columns (the statements sent to the database are recorded)."""
    batch_id, ids = launched(engine, tmp_path)
    globex = {"company_name": "Globex", "website": "globex.co.uk"}

    def companies_upserted(fields: Mapping[str, str], item: int) -> int:
        with statements_sent(engine) as sent:
            (outcome,) = split_raw_apollo_scrape_data_into_two_tables(
                [context(engine, batch_id, item, fields)]
            )
        assert isinstance(outcome, dict)
        return sum(sql.startswith("INSERT INTO companies") for sql, _ in sent)

    assert companies_upserted(globex, ids[0]) == 1
    assert companies_upserted(globex | {"industry": "Mining"}, ids[1]) == 1  # fills
    assert companies_upserted(globex | {"industry": "Retail"}, ids[2]) == 0  # no gain
    assert companies_upserted(globex, ids[3]) == 0
    company = companies_of(engine, batch_id)["domain:globex.co.uk"]
    assert company.industry == "Mining"
    with engine.connect() as conn:
        linked = conn.execute(select(Person.company_id).where(Person.item_id.in_(ids[:4])))
        assert set(linked.scalars()) == {company.id}


def test_split_recovers_when_a_known_company_was_deleted(engine: Engine, tmp_path: Path) -> None:
    """Companies are never deleted by enrichflow; if someone deletes one by hand, the chunk that
    trusted the remembered id fails on the foreign key (nothing silent) and its retry, which no
    longer trusts any remembered id, writes the company again."""
    batch_id, ids = launched(engine, tmp_path)
    globex = {"company_name": "Globex", "website": "globex.co.uk"}
    split_raw_apollo_scrape_data_into_two_tables([context(engine, batch_id, ids[0], globex)])
    with engine.begin() as conn:
        conn.execute(Company.__table__.delete().where(Company.batch_id == batch_id))
    chunk = [context(engine, batch_id, ids[1], globex)]
    with pytest.raises(IntegrityError):
        split_raw_apollo_scrape_data_into_two_tables(chunk)
    (outcome,) = split_raw_apollo_scrape_data_into_two_tables(chunk)
    company = companies_of(engine, batch_id)["domain:globex.co.uk"]
    assert isinstance(outcome, dict) and outcome["company_id"] == company.id
