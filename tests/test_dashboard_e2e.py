"""The dashboard end to end in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium; nothing is downloaded): log in, create a client,
build and save a pipeline (with an inline validation error on the way), configure a webhook
(masked once saved), add a workflow, upload the example CSV, launch, watch the batch page
reach 100%, export, see a launch refused by the preflight (an ASYNC step without its webhook),
make items fail, retry one item and then all. The app runs as
``enrichflow serve`` does: uvicorn plus the conductor in a background thread, with the
sandbox standing in for Clay. Screenshots of every page go to ``test-artifacts/``.

Without the browser the test is skipped loudly, except under CI=true, where it fails.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from dashboard_browser import (
    ARTIFACTS,
    PASSWORD,
    Served,
    browser,
    served,
    wait_for,
)
from dashboard_browser import is_stale as _is_stale
from enrichflow.db.models import Batch, WorkflowState
from enrichflow.states import Status

__all__ = ["browser", "served"]  # fixtures

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "apollo_people_sample.csv"
CLAY_COMPANY = "enrich_company_via_waterfall_in_clay"
CLAY_PERSON = "enrich_person_via_waterfall_in_clay"


def test_dashboard_end_to_end(browser: Any, served: Served) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    ARTIFACTS.mkdir(exist_ok=True)
    d = browser
    base = served.url

    def shot(name: str) -> None:
        d.save_screenshot(str(ARTIFACTS / f"dashboard_{name}.png"))

    def css(selector: str) -> Any:
        return d.find_element(By.CSS_SELECTOR, selector)

    def text(selector: str) -> str:
        return str(css(selector).text)

    def submit(element: Any) -> None:
        """Click a submit button or link and wait until the next page replaced this one, so
        no later look-up can find an element of the page that is going away."""
        page = d.find_element(By.TAG_NAME, "html")
        element.click()
        wait_for(lambda: _is_stale(page), 20, "the next page after a click")

    # ---- anonymous: sent to the login page; a wrong password is refused
    d.get(f"{base}/clients")
    assert "/login" in d.current_url
    shot("01_login")
    css("#password").send_keys("wrong password")
    submit(css("#login"))
    assert "Wrong password" in text("#login-error")
    css("#password").send_keys(PASSWORD)
    submit(css("#login"))
    wait_for(lambda: d.current_url.endswith("/clients"), 10, "the clients page")

    # ---- clients: create one
    css("#client-name").send_keys("Acme Corp")
    submit(css("#create-client"))
    wait_for(lambda: text("#client-title") == "Acme Corp", 10, "the client page")
    client_url = d.current_url
    d.get(f"{base}/clients")
    assert "Acme Corp" in d.page_source
    shot("02_clients")
    d.get(client_url)

    # ---- pipeline builder: add, reorder, an inline error, save
    submit(css("#new-pipeline"))
    for slug in ("normalize_company_name", "normalize_company_domain", CLAY_COMPANY):
        Select(css("#add-step")).select_by_value(slug)
        submit(css("#add-step-button"))
    submit(d.find_element(By.CSS_SELECTOR, 'button[value="up:2"]'))
    order = [li.get_attribute("data-slug") for li in d.find_elements(By.CSS_SELECTOR, "#steps li")]
    assert order == ["normalize_company_name", CLAY_COMPANY, "normalize_company_domain"]
    submit(css("#save-pipeline"))
    assert "name must not be empty" in text("#pipeline-error")
    shot("03_pipeline_builder")
    css("#pipeline-name").send_keys("with_clay")
    submit(css("#save-pipeline"))
    wait_for(lambda: "with_clay" in text("#pipelines"), 10, "the saved pipeline")

    # ---- workflow config: saved, then shown masked
    Select(css("#config-target")).select_by_value(f"apollo_scrape/{CLAY_PERSON}")
    css("#config-settings").send_keys(
        "webhook_url=https://api.clay.com/v3/sources/webhook/pull-in-SECRETPATH\n"
        "auth_token=SECRET-TOKEN-123"
    )
    submit(css("#save-config"))
    wait_for(lambda: CLAY_PERSON in text("#configs"), 10, "the saved config")
    assert "SECRET" not in d.page_source
    assert "api.clay.com" in text("#configs")
    shot("04_client")

    # ---- workflow registry: add a webhook workflow, no restart
    d.get(f"{base}/workflows")
    css("#workflow-slug").send_keys("enrich_tech_stack_in_clay")
    css("#workflow-name").send_keys("Tech stack via Clay")
    submit(css("#add-workflow"))
    wait_for(lambda: "enrich_tech_stack_in_clay" in text("#workflows"), 10, "the new workflow")
    shot("05_workflows")

    # ---- upload the example CSV: the inspector
    d.get(client_url)
    css("#upload-file").send_keys(str(EXAMPLE))
    submit(css("#upload"))
    wait_for(lambda: "/uploads/" in d.current_url, 20, "the upload inspector")
    upload_url = d.current_url
    rows = int(text("#row-count"))
    assert rows > 0
    assert (
        "company_name" in d.page_source
        and len(d.find_elements(By.CSS_SELECTOR, "#first-rows tbody tr")) > 0
    )
    shot("06_upload")

    # ---- launch the built-in pipeline; the batch page refreshes itself up to 100%
    Select(css("#launch-choice")).select_by_value("apollo_scrape/apollo_default")
    submit(css("#launch-button"))
    wait_for(lambda: "/batches/" in d.current_url, 20, "the batch page")
    batch_url = d.current_url
    shot("07_batch_running")
    wait_for(lambda: text("#progress") == "100%", 120, "the batch to reach 100%")
    wait_for(lambda: text("#batch-status") == "COMPLETED", 20, "COMPLETED")
    shot("08_batch_done")

    # ---- export (with the browser's session cookie)
    cookie = d.get_cookie("enrichflow_session")["value"]
    with httpx.Client(cookies={"enrichflow_session": cookie}, timeout=30) as http:
        exported = http.get(css("#export-csv").get_attribute("href"))
        assert exported.status_code == 200
        assert len(list(csv.DictReader(io.StringIO(exported.text)))) == rows
        jsonl = http.get(css("#export-jsonl").get_attribute("href"))
        assert len(jsonl.text.splitlines()) == rows
        every = http.get(css("#export-csv-all").get_attribute("href"))
        every_rows = list(csv.DictReader(io.StringIO(every.text)))
        assert len(every_rows) == rows and "original.Company Name" in every_rows[0]

    def batches() -> int:
        with served.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Batch)).scalar_one())

    def set_company_webhook(url: str) -> None:
        d.get(client_url)
        Select(css("#config-target")).select_by_value(f"apollo_scrape/{CLAY_COMPANY}")
        css("#config-settings").send_keys(f"webhook_url={url}")
        submit(css("#save-config"))
        wait_for(lambda: CLAY_COMPANY in text("#configs"), 10, "the company config")

    # ---- the saved pipeline has an ASYNC step without a config: the preflight refuses it
    d.get(upload_url)
    Select(css("#launch-choice")).select_by_value("apollo_scrape/with_clay")
    # a second launch of the same upload must be confirmed: Clay would be paid again
    assert "batch 1" in text("#already-launched")
    submit(css("#launch-button"))
    assert "already launched as batch 1" in text("#launch-error") and batches() == 1
    css("#relaunch").click()
    submit(css("#launch-button"))
    refusal = text("#launch-error")
    assert "async configs" in refusal and CLAY_COMPANY in refusal and "webhook_url" in refusal
    assert "/uploads/" in d.current_url and batches() == 1
    shot("09_launch_refused")

    # ---- a webhook the target rejects (404) passes the preflight; every item fails there
    set_company_webhook(f"{served.sandbox_url}/no-such-table")
    d.get(upload_url)
    Select(css("#launch-choice")).select_by_value("apollo_scrape/with_clay")
    css("#relaunch").click()
    submit(css("#launch-button"))
    wait_for(lambda: "/batches/" in d.current_url and d.current_url != batch_url, 20, "batch 2")
    failing_url = d.current_url
    wait_for(
        lambda: text("#batch-status") == "COMPLETED_WITH_ERRORS", 120, "the failures to settle"
    )
    assert "HTTP 404" in text("#failed")
    shot("10_batch_failed")

    # ---- point the webhook at the sandbox's table, then retry one item, then all
    set_company_webhook(f"{served.sandbox_url}/webhook/company-table")

    d.get(failing_url)
    # one failure group holds every row; the failed list shows its first page
    assert [e.text for e in d.find_elements(By.CSS_SELECTOR, ".group-count")] == [f"{rows:,}"]
    assert "bad" in (css("#headline").get_attribute("class") or "")
    assert f"{rows} of {rows} items failed" in text("#progress-text")
    buttons = d.find_elements(By.CSS_SELECTOR, ".retry-item")
    assert len(buttons) == min(rows, 50)
    item_id = int(buttons[0].get_attribute("data-item"))
    submit(buttons[0])
    wait_for(lambda: "1 failed state(s) queued" in d.page_source, 10, "the retry notice")

    def item_state() -> str:
        with served.engine.connect() as conn:
            return str(
                conn.execute(
                    select(WorkflowState.status).where(
                        WorkflowState.item_id == item_id, WorkflowState.step_name == CLAY_COMPANY
                    )
                ).scalar_one()
            )

    assert item_state() != Status.FAILED.value
    wait_for(lambda: item_state() == Status.COMPLETED.value, 60, "the retried item")
    d.get(failing_url)
    wait_for(lambda: text(".group-count") == f"{rows - 1:,}", 60, "one fewer failure")
    submit(css("#retry-all"))
    wait_for(
        lambda: text("#progress") == "100%" and text("#batch-status") == "COMPLETED",
        120,
        "all retried",
    )
    assert "No failed items" in text("#failed")
    shot("11_batch_retried")

    # ---- logout
    submit(css("#logout"))
    wait_for(lambda: "/login" in d.current_url, 10, "the login page")
    d.get(f"{base}/batches")
    assert "/login" in d.current_url
