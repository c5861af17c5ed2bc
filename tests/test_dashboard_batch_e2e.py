"""The batch pages in a real headless Chromium at 1440x900 and 390x844: a batch whose every item
failed at a Clay table answering 404 reads red (never a green 100%), its failures form one group,
the failed list pages by key and filters, failures export as CSV, the lead browser and the item
page show each step's status and error, an item's step is retried from its page, and a group
retry runs to the end through live updates that swap fragments in place (no reload: focus and a
text selection stay, the one-time notice leaves the address). Every page passes the shared checks
(fits the screen, no serious or critical axe-core finding) and is saved in ``test-artifacts/``.
The sandbox stands in for Clay.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from dashboard_browser import DESKTOP, PHONE, Page, Served, browser, phone, served, wait_for
from enrichflow.api.dashboard import service
from enrichflow.catalog.assignments import parse_assignments
from test_dashboard_pages_e2e import CLAY_COMPANY, seed

__all__ = ["browser", "phone", "served"]  # fixtures


def _rows(served: Served, batch_id: int) -> int:
    return int(service.batch_detail(served.engine, batch_id)["item_count"])


def _pages(page: Page, batch_id: int, rows: int) -> int:
    """The failing batch's pages as they read before any retry; an item id that failed."""
    page.get(f"/batches/{batch_id}")
    page.check("batch_all_failed")
    assert "bad" in (page.css("#headline").get_attribute("class") or "")
    assert f"{rows} of {rows} items failed" in page.text("#progress-text")
    assert page.text("#count-failed") == f"{rows:,}"
    assert [e.text for e in page.all(".group-count")] == [f"{rows:,}"]
    assert "HTTP 404" in page.text("#groups")
    first = [e.get_attribute("data-item") for e in page.all(".retry-item")]
    assert len(first) == min(rows, 50)
    assert all(e.text.endswith(" of 3") for e in page.all("#failed-list .attempts"))

    page.d.get(page.css("#failed-next").get_attribute("href"))
    second = [e.get_attribute("data-item") for e in page.all(".retry-item")]
    assert second and not set(first) & set(second)
    page.check("batch_failed_page_2")

    page.get(f"/batches/{batch_id}/items?step={CLAY_COMPANY}&status=FAILED")
    page.check("lead_browser_failed")
    assert len(page.all("#items tbody tr")) == min(rows, 50)
    assert "failed" in page.text("#items tbody tr")
    page.d.get(page.css("#items tbody tr a").get_attribute("href"))
    page.check("item_failed")
    assert "HTTP 404" in page.text(".step-error")
    assert page.all(".retry-item-step")
    return int(first[0] or 0)


def test_batch_pages_triage_and_live_updates(browser: Any, phone: Any, served: Served) -> None:
    ids = seed(served)
    batch_id = ids["failing"]
    rows = _rows(served, batch_id)
    desk = Page(browser, served.url, f"batch_desktop_{DESKTOP[0]}")
    desk.login()
    _pages(desk, batch_id, rows)
    small = Page(phone, served.url, f"batch_phone_{PHONE[0]}")
    small.login()
    item_id = _pages(small, batch_id, rows)

    # ---- failures as CSV, one line per failed state, through the browser's session
    cookie = desk.d.get_cookie("enrichflow_session")["value"]
    with httpx.Client(cookies={"enrichflow_session": cookie}, timeout=30) as http:
        exported = http.get(f"{served.url}/batches/{batch_id}/failures.csv")
    assert exported.status_code == 200
    failures = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(failures) == rows and {f["step"] for f in failures} == {CLAY_COMPANY}

    # ---- retry one item's step from its page (the table still answers 404)
    desk.get(f"/batches/{batch_id}/items/{item_id}")
    desk.submit(desk.css(".retry-item-step"))
    wait_for(lambda: "1 failed state(s) queued" in desk.text(".notice"), 10, "the notice")
    assert f"/batches/{batch_id}/items/{item_id}" in desk.d.current_url
    wait_for(lambda: "notice=" not in desk.d.current_url, 10, "the notice to leave the address")

    # ---- point the webhook at the sandbox's table and retry the group; watch it finish live
    service.config_set(
        served.engine,
        ids["client"],
        CLAY_COMPANY,
        "apollo_scrape",
        parse_assignments([f"webhook_url={served.sandbox_url}/webhook/company-table"]),
    )
    desk.get(f"/batches/{batch_id}")
    wait_for(lambda: desk.text(".group-count") == f"{rows:,}", 60, "the item to fail again")
    desk.submit(desk.css(".retry-group"))
    wait_for(lambda: "queued for retry" in desk.text(".notice"), 10, "the retry notice")
    wait_for(lambda: "notice=" not in desk.d.current_url, 10, "the notice to leave the address")
    desk.d.execute_script(
        "window.stillThisPage = true;"
        "document.getElementById('export-failures').focus();"
        "const r = document.createRange();"
        "r.selectNodeContents(document.querySelector('.page-head h1'));"
        "getSelection().removeAllRanges(); getSelection().addRange(r);"
    )
    wait_for(
        lambda: desk.text("#batch-status") == "COMPLETED" and desk.text("#progress") == "100%",
        120,
        "the retried batch to complete, live",
    )
    assert desk.d.execute_script("return window.stillThisPage === true")
    assert desk.d.execute_script("return document.activeElement.id") == "export-failures"
    assert desk.d.execute_script("return getSelection().toString()") == f"Batch {batch_id}"
    wait_for(lambda: "No failed items" in desk.text("#failed"), 20, "the failed list to empty")
    assert "headline ok" in (desk.css("#headline").get_attribute("class") or "")
    desk.check("batch_retried_live")
