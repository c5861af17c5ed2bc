"""Clay credits end to end on SQLite and Postgres, with the sandbox as Clay (real HTTP sender,
real callback receiver on loopback): each company is sent once per batch, paid results are
reused by the same client's later batches, and never by another client's unless it opts in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from enrichflow.api.app import create_app
from enrichflow.catalog.batch_reports import batch_summary
from enrichflow.catalog.batches import batches_of_upload
from enrichflow.catalog.credits import client_credits
from enrichflow.db.models import Batch
from enrichflow.normalize.company import normalize_company_name
from enrichflow.webhooks.sandbox import enrich_row
from test_async_pipeline import (  # noqa: F401 (fixtures)
    COMPANY,
    Service,
    _fresh_limits,
    batch_status,
    results_of,
    sandbox,
    service,
    set_webhook,
    start,
    states,
    tune,
)
from test_dashboard_auth import login, make_settings, serve
from webhooks.webhook_servers import UvicornThread

STEPS = ["normalize_company_name", "normalize_company_domain", COMPANY]
TABLE = "company-table"


def people(companies: range, per_company: int | None = None, total: int | None = None) -> list[str]:
    """Rows of people spread over ``companies``; the Website cell of one company is written
    several ways, which the normalized domain makes one."""
    count = total if total is not None else len(companies) * (per_company or 1)
    sites = ["https://www.acme{c}.com/", "acme{c}.com", "http://acme{c}.com/about", "ACME{c}.COM"]
    rows = []
    for i in range(count):
        c = companies[i % len(companies)]
        site = sites[i % len(sites)].format(c=c)
        rows.append(f"P{i},L{i},p{i}@acme{c}.com,Acme {c} Inc.,{site},CEO")
    return rows


def expected(company: int) -> dict[str, Any]:
    """The company result an item of ``company`` would have had if sent on its own."""
    name = normalize_company_name(f"Acme {company} Inc.", None).name
    row = {"company_name": name, "company_domain": f"acme{company}.com"}
    return {k: v for k, v in enrich_row(TABLE, row).items() if k != "item_id"}


def received(sandbox_url: str) -> int:
    with httpx.Client() as client:
        return int(client.get(f"{sandbox_url}/stats").json()["received"])


def run_batch(
    engine: Engine,
    tmp_path: Path,
    service: Service,  # noqa: F811
    rows: list[str],
    client: str,
) -> int:
    tmp_path.mkdir(parents=True, exist_ok=True)
    batch_id = start(engine, tmp_path, STEPS, rows, client=client)
    service.drive(batch_id, timeout=240)
    assert batch_status(engine, batch_id) == "COMPLETED"
    return batch_id


def check_results(engine: Engine, batch_id: int, rows: list[str]) -> list[Any]:
    """Every item ends with its company's result; the batch's company states."""
    company_states = states(engine, batch_id, COMPANY)
    results = results_of(engine, batch_id, COMPANY)
    assert len(results) == len(rows) == len(company_states)
    by_item = {s.item_id: s for s in company_states}
    for n, (item_id, payload) in enumerate(sorted(results.items())):
        company = int(rows[n].split(",")[3].split()[1])
        assert {k: v for k, v in payload.items() if k != "item_id"} == expected(company), item_id
        assert by_item[item_id].status == "COMPLETED"
    return company_states


def test_reuse_sends_each_company_once_per_client(
    engine: Engine,
    tmp_path: Path,
    service: Service,  # noqa: F811
    sandbox: UvicornThread,  # noqa: F811
) -> None:
    for client in ("acme", "globex"):
        set_webhook(engine, client, COMPANY, f"{sandbox.url}/webhook/{TABLE}")
    tune(engine, COMPANY)

    first_rows = people(range(60), total=500)
    first = run_batch(engine, tmp_path / "a", service, first_rows, "acme")
    assert received(sandbox.url) == 60
    first_states = check_results(engine, first, first_rows)
    assert sum(1 for s in first_states if s.dedupe_key is not None) == 60
    assert {s.dedupe_key for s in first_states if s.dedupe_key} == {
        f"domain:acme{c}.com" for c in range(60)
    }

    second_rows = people(range(70), per_company=1)
    second = run_batch(engine, tmp_path / "b", service, second_rows, "acme")
    assert received(sandbox.url) == 70
    second_states = check_results(engine, second, second_rows)
    reused = [s for s in second_states if s.meta and "reused_from" in s.meta]
    assert len(reused) == 60
    leaders = {s.id: s for s in first_states if s.dedupe_key}
    for state in reused:
        source = leaders[state.meta["reused_from"]]
        assert state.meta["reused_from_batch"] == first
        assert state.meta["dedupe_key"] == source.dedupe_key

    other = run_batch(engine, tmp_path / "c", service, second_rows, "globex")
    assert received(sandbox.url) == 140
    other_states = check_results(engine, other, second_rows)
    assert not [s for s in other_states if s.meta and "reused_from" in s.meta]
    assert sum(1 for s in other_states if s.dedupe_key is not None) == 70

    with engine.connect() as conn:
        spent = {b: batch_summary(conn, b)["credits"][COMPANY] for b in (first, second, other)}
        by_client = client_credits(conn)
        rows = conn.execute(select(Batch.id, Batch.upload_id).where(Batch.id.in_([first, other])))
        uploads = {batch: upload for batch, upload in rows}
        assert [b["id"] for b in batches_of_upload(conn, uploads[first])] == [first]
        # the third batch's file has the second one's bytes
        assert [b["id"] for b in batches_of_upload(conn, uploads[other])] == [second, other]
    with serve(create_app(engine, make_settings())) as dashboard:
        login(dashboard)
        page = dashboard.get(f"/batches/{first}")
        live = dashboard.get(f"/batches/{second}/fragments/steps")
    assert page.status_code == live.status_code == 200
    assert page_credits(page.text) == {
        COMPANY: f"{COMPANY}: 60 sent to Clay, 440 de-duplicated, 0 reused from earlier batches"
    }
    assert page_credits(live.text) == {
        COMPANY: f"{COMPANY}: 10 sent to Clay, 0 de-duplicated, 60 reused from earlier batches"
    }

    assert spent[first] == {"sent": 60, "deduplicated": 440, "reused": 0}
    assert spent[second] == {"sent": 10, "deduplicated": 0, "reused": 60}
    assert spent[other] == {"sent": 70, "deduplicated": 0, "reused": 0}
    assert sorted(by_client.values(), key=lambda c: c["reused"]) == [
        {"sent": 70, "deduplicated": 0, "reused": 0},
        {"sent": 70, "deduplicated": 440, "reused": 60},
    ]


def page_credits(html: str) -> dict[str, str]:
    """Clay step -> its credits line on the batch page (text, tags and spacing removed)."""
    found = re.search(r'<ul class="legend-counts" id="clay-credits">(.*?)</ul>', html, re.S)
    assert found, "no Clay credits on the batch page"
    lines = re.findall(r'<li data-step="([^"]+)">(.*?)</li>', found.group(1), re.S)
    return {step: " ".join(re.sub(r"<[^>]+>", "", text).split()) for step, text in lines}


def test_across_clients_opt_in_and_fresh(
    engine: Engine,
    tmp_path: Path,
    service: Service,  # noqa: F811
    sandbox: UvicornThread,  # noqa: F811
) -> None:
    for client in ("acme", "globex"):
        set_webhook(engine, client, COMPANY, f"{sandbox.url}/webhook/{TABLE}")
    rows = people(range(5), per_company=2)
    tune(engine, COMPANY)
    run_batch(engine, tmp_path / "a", service, rows, "acme")
    assert received(sandbox.url) == 5

    tune(engine, COMPANY, reuse_across_clients=True)
    shared = run_batch(engine, tmp_path / "b", service, rows, "globex")
    assert received(sandbox.url) == 5
    assert all(s.meta and "reused_from" in s.meta for s in check_results(engine, shared, rows))

    tune(engine, COMPANY, reuse_days=0)
    again = run_batch(engine, tmp_path / "c", service, rows, "acme")
    assert received(sandbox.url) == 10
    check_results(engine, again, rows)


def test_an_item_too_big_to_send_does_not_lead_its_company(
    engine: Engine,
    tmp_path: Path,
    service: Service,  # noqa: F811
    sandbox: UvicornThread,  # noqa: F811
) -> None:
    """A chunk's new leaders are chosen at its first item that joins, before the others are
    looked at by their own calls: a later row whose payload is over ``max_payload_bytes`` (it
    will fail, unsent) is passed over, and the next row of its company leads and is sent."""
    set_webhook(engine, "acme", COMPANY, f"{sandbox.url}/webhook/{TABLE}")
    tune(engine, COMPANY, max_payload_bytes=4000)
    rows = [
        "P0,L0,p0@acme1.com,Acme 1 Inc.,acme1.com,CEO",
        f"P1,L1,p1@acme2.com,Acme 2 Inc.,acme2.com,{'Head of ' * 600}Sales",
        "P2,L2,p2@acme2.com,Acme 2 Inc.,acme2.com,CTO",
        "P3,L3,p3@acme2.com,Acme 2 Inc.,acme2.com,CFO",
    ]
    batch_id = start(engine, tmp_path, STEPS, rows)
    service.drive(batch_id, timeout=120)
    company_states = states(engine, batch_id, COMPANY)
    assert [s.status for s in company_states] == ["COMPLETED", "FAILED", "COMPLETED", "COMPLETED"]
    assert "more than the 4,000 allowed (max_payload_bytes)" in company_states[1].error
    assert company_states[2].waiting_on is None and company_states[3].waiting_on == (
        company_states[2].id
    )
    assert received(sandbox.url) == 2
