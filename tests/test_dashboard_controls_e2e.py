"""The batch page's controls in a real headless Chromium at 1440x900 and 390x844: a Clay table
answering 404 trips the circuit breaker, whose alert appears live; after the webhook is fixed,
Retry all and Resume send the rest; Pause holds it, Re-send puts the rows waiting on Clay back,
and Cancel (after its confirmation page) ends the batch. Every page passes the shared checks
(fits the screen, no serious or critical axe-core finding) and is saved in ``test-artifacts/``.
The sandbox stands in for Clay.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from dashboard_browser import DESKTOP, PHONE, Page, Served, browser, phone, served, wait_for
from enrichflow.api.dashboard import service
from enrichflow.catalog.assignments import parse_assignments
from enrichflow.catalog.workflow_options import workflow_options_update
from enrichflow.db.models import BatchEvent
from enrichflow.webhooks.sandbox import create_sandbox_app
from test_dashboard_pages_e2e import CLAY_COMPANY, EXAMPLE
from webhooks.webhook_servers import UvicornThread

__all__ = ["browser", "phone", "served"]  # fixtures


def _webhook(served: Served, client_id: int, url: str) -> None:
    service.config_set(
        served.engine,
        client_id,
        CLAY_COMPANY,
        "apollo_scrape",
        parse_assignments([f"webhook_url={url}"]),
    )


def _launch(served: Served) -> tuple[int, int]:
    """A 200-row batch through a Clay table that answers 404, with the breaker on."""
    engine = served.engine
    with engine.begin() as conn:
        workflow_options_update(
            conn, CLAY_COMPANY, "apollo_scrape", {}, {"breaker_failures", "breaker_window_seconds"}
        )
    client_id = service.client_create(engine, "Acme Corp")["id"]
    service.pipeline_save(
        engine, client_id, "apollo_scrape", "with_clay", ["normalize_company_name", CLAY_COMPANY]
    )
    _webhook(served, client_id, f"{served.sandbox_url}/no-such-table")
    upload = service.upload_ingest(engine, client_id, EXAMPLE).upload_id
    batch_id = service.batch_launch(
        engine, upload, "apollo_scrape", "with_clay", settings=served.settings
    )
    return client_id, batch_id


def test_batch_controls_in_the_browser(browser: Any, phone: Any, served: Served) -> None:
    client_id, batch_id = _launch(served)
    page = f"/batches/{batch_id}"
    desk = Page(browser, served.url, f"controls_desktop_{DESKTOP[0]}")
    desk.login()
    small = Page(phone, served.url, f"controls_phone_{PHONE[0]}")
    small.login()

    # ---- the breaker's alert arrives through the live fragment, without a reload
    desk.get(page)
    desk.d.execute_script("window.stillThisPage = true;")
    wait_for(lambda: desk.all("#breaker-alert"), 90, "the circuit breaker's alert")
    assert desk.d.execute_script("return window.stillThisPage === true")
    alert = desk.text("#breaker-alert")
    assert CLAY_COMPANY in alert and "HTTP 404" in alert and "20 sends in a row" in alert
    assert desk.text("#batch-status") == "RUNNING"
    # the headline says the batch sends nothing, not only the controls card
    wait_for(lambda: desk.all("#batch-paused"), 30, "the step-paused badge")
    assert desk.text("#batch-paused") == "STEP PAUSED"
    assert desk.all("#resume-batch") and not desk.all("#pause-batch")
    desk.check("breaker")
    small.get(page)
    assert small.all("#breaker-alert")
    small.check("breaker")

    # ---- fix the webhook (a table that calls back late), retry the failures, resume
    with UvicornThread(create_sandbox_app(delay_seconds=0.05, late_seconds=60)) as late:
        _webhook(served, client_id, f"{late.url}/webhook/company-table")
        desk.get(page)
        desk.submit(desk.css("#retry-all"))
        wait_for(lambda: "queued for retry" in desk.text(".notice"), 10, "the retry notice")
        desk.submit(desk.css("#resume-batch"))
        notice = desk.text(".notice")
        assert "resumed" in notice and "circuit breaker" in notice
        assert not desk.all("#breaker-alert")
        assert not desk.all("#batch-paused")

        # ---- pause while it sends; then re-send what waits on Clay
        wait_for(lambda: _waiting(served, batch_id) >= 5, 30, "rows waiting on Clay")
        desk.submit(desk.css("#pause-batch"))
        assert "paused" in desk.text(".notice")
        assert "Paused" in desk.text("#controls-state") and desk.all("#resume-batch")
        assert desk.text("#batch-paused") == "PAUSED"
        desk.check("paused")
        desk.get("/batches")
        row = desk.text(f"tr:has(a[href='/batches/{batch_id}'])")
        assert "running" in row and "paused" in row
        desk.get(page)
        small.get(page)
        small.check("paused")
        waiting = _waiting(served, batch_id)
        assert waiting >= 5
        desk.select("#older-than-1", "0s")
        desk.submit(desk.css(".resend-form button"))
        assert f"{waiting:,} waiting item(s) of {CLAY_COMPANY}" in desk.text(".notice")

        # ---- cancel, through its confirmation page
        desk.submit(desk.css("#cancel-batch"))
        assert f"Cancel batch {batch_id}?" in desk.text("h1")
        desk.check("cancel_confirm")
        small.get(f"{page}/cancel")
        small.check("cancel_confirm")
        desk.submit(desk.css("#confirm-delete"))
        assert "cancelled" in desk.text(".notice")
        assert desk.text("#batch-status") == "CANCELLED"
        assert "CANCELLED" in desk.text("#controls-state")
        desk.css("#batch-history summary").click()
        history = desk.text("#batch-history")
        for kind in ("cancelled by dashboard", "resent by dashboard", "paused by dashboard"):
            assert kind in history
        desk.check("cancelled")
        small.get(page)
        small.check("cancelled")
    with served.engine.connect() as conn:
        kinds = list(
            conn.execute(
                select(BatchEvent.kind, BatchEvent.actor)
                .where(BatchEvent.batch_id == batch_id)
                .order_by(BatchEvent.id)
            )
        )
    assert [tuple(k) for k in kinds] == [
        ("breaker_tripped", "system"),
        ("resumed", "dashboard"),
        ("paused", "dashboard"),
        ("resent", "dashboard"),
        ("cancelled", "dashboard"),
    ]


def _waiting(served: Served, batch_id: int) -> int:
    steps = service.batch_detail(served.engine, batch_id)["steps"]
    counts = next(s["counts"] for s in steps if s["name"] == CLAY_COMPANY)
    return int(counts.get("IN_PROGRESS", 0))
