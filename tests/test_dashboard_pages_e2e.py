"""Every dashboard page in a real headless Chromium at 1440x900 and at 390x844 (as a phone):
no page is wider than the screen, axe-core finds nothing serious or critical, the nav
collapses into a menu button on the phone, the skip link leads to the content, and every page
is saved as a screenshot in ``test-artifacts/``.

The data (a client with a pipeline, a config, an upload and a finished batch, one failing
batch) is made through the same service functions the pages call, so the test spends its time
on the pages rather than on typing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from dashboard_browser import DESKTOP, PHONE, Page, Served, browser, phone, served, wait_for
from enrichflow.api.dashboard import service
from enrichflow.catalog.assignments import parse_assignments
from enrichflow.catalog.batches import batch_get

__all__ = ["browser", "phone", "served"]  # fixtures

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "apollo_people_sample.csv"
CLAY_COMPANY = "enrich_company_via_waterfall_in_clay"


def _settled(engine: Engine, batch_id: int) -> bool:
    with engine.connect() as conn:
        found = batch_get(conn, batch_id)
    return found is not None and found["status"] != "RUNNING"


def seed(served: Served) -> dict[str, Any]:
    """A client with a saved pipeline, a masked config, an upload, a finished batch and a
    batch whose every item failed at a Clay table that answers 404."""
    engine = served.engine
    client = service.client_create(engine, "Acme Corp")
    cid = client["id"]
    steps = ["normalize_company_name", CLAY_COMPANY]
    pipeline = service.pipeline_save(engine, cid, "apollo_scrape", "with_clay", steps)
    service.config_set(
        engine,
        cid,
        CLAY_COMPANY,
        "apollo_scrape",
        parse_assignments([f"webhook_url={served.sandbox_url}/no-such-table"]),
    )
    report = service.upload_ingest(engine, cid, EXAMPLE)
    settings = served.settings
    done = service.batch_launch(
        engine, report.upload_id, "apollo_scrape", "apollo_default", settings=settings
    )
    failing = service.batch_launch(
        engine, report.upload_id, "apollo_scrape", "with_clay", settings=settings
    )
    deadline = time.monotonic() + 120
    while not (_settled(engine, done) and _settled(engine, failing)):
        assert time.monotonic() < deadline, "the seeded batches did not settle"
        time.sleep(0.2)
    return {
        "client": cid,
        "pipeline": pipeline["id"],
        "upload": report.upload_id,
        "batch": done,
        "failing": failing,
    }


def pages(ids: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("home", "/"),
        ("clients", "/clients"),
        ("client", f"/clients/{ids['client']}"),
        ("workflows", "/workflows"),
        ("workflow_edit", f"/workflows/apollo_scrape/{CLAY_COMPANY}"),
        ("pipeline_new", f"/clients/{ids['client']}/pipelines/new"),
        ("pipeline_edit", f"/pipelines/{ids['pipeline']}/edit"),
        ("pipeline_delete", f"/pipelines/{ids['pipeline']}/delete"),
        ("upload", f"/uploads/{ids['upload']}"),
        ("batches", "/batches"),
        ("batch", f"/batches/{ids['batch']}"),
        ("batch_failing", f"/batches/{ids['failing']}"),
    ]


def _visit_all(page: Page, ids: dict[str, Any]) -> None:
    page.get("/login")
    page.check("login")
    page.login()
    for name, path in pages(ids):
        page.get(path)
        wait_for(lambda: page.css("main") is not None, 10, name)
        page.check(name)


def test_every_page_fits_and_is_accessible(browser: Any, phone: Any, served: Served) -> None:
    ids = seed(served)
    _visit_all(Page(browser, served.url, f"desktop_{DESKTOP[0]}"), ids)
    _visit_all(Page(phone, served.url, f"phone_{PHONE[0]}"), ids)
