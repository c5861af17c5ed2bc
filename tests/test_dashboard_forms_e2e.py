"""The dashboard's forms and lists in a real headless Chromium, each flow at 1440x900 and at
390x844 (as a phone), every page on the way checked (fits the screen, no serious or critical
axe-core finding) and saved to ``test-artifacts/``:

* uploads: a PDF, a PNG and an XLSX are named for what they are; a file with no identity
  column is flagged and its launch refused until a column is mapped, and the batch reads the
  mapped column; a second launch of an upload must be confirmed;
* workflows: list and field-name options set with their own inputs, a bad number named, a
  secret refused with the form that takes it, delete confirmed (and refused while a pipeline
  runs the workflow);
* set-up: a workstream added (a taken slug refused), a workflow of the example plugin's
  handler added to it from the select of loaded handlers, a Clay-only option for another
  handler and a type the handler cannot run as refused with what was typed kept;
* pipelines: Save renames in place, Save as new keeps the original, a taken name and a step
  order that defeats the consolidation are refused, delete confirmed;
* lists: the batches list's status filter and keyset pages, the home page, the clients'
  running and failing counts, times with their zone;
* the nav folds behind the Menu button on the phone; the skip link leads to the content.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dashboard_browser import DESKTOP, PHONE, Page, Served, chromium, served, wait_for
from enrichflow.api.dashboard import service
from enrichflow.catalog.assignments import parse_assignments
from enrichflow.db.models import Batch, EnrichmentPipeline, EnrichmentRegistry
from enrichflow.launch import launch

__all__ = ["served"]  # fixture

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "apollo_people_sample.csv"
CLAY_COMPANY = "enrich_company_via_waterfall_in_clay"


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop", "phone"])
def page(request: pytest.FixtureRequest, tmp_path: Path, served: Served) -> Any:
    size = request.param
    test = request.node.originalname.removeprefix("test_")
    with chromium(tmp_path / "chromium", size) as driver:
        p = Page(driver, served.url, f"{test}_{size[0]}")
        p.login()
        yield p


def _client(served: Served, name: str = "Acme Corp") -> int:
    return int(service.client_create(served.engine, name)["id"])


def _upload(page: Page, client_id: int, path: Path) -> None:
    page.get(f"/clients/{client_id}")
    page.css("#upload-file").send_keys(str(path))
    page.submit(page.css("#upload"))


def test_uploads(page: Page, served: Served, tmp_path: Path) -> None:
    cid = _client(served)
    workbook = io.BytesIO()
    with zipfile.ZipFile(workbook, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
    binaries = {
        "leads.pdf": (b"%PDF-1.7\n\x81\x82\x83 stream", "a PDF document"),
        "leads.png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x81", "a PNG image"),
        "leads.xlsx": (workbook.getvalue(), "an Excel workbook (XLSX)"),
    }
    for name, (content, kind) in binaries.items():
        path = tmp_path / name
        path.write_bytes(content)
        _upload(page, cid, path)
        assert f"this is not a CSV file: it looks like {kind}" in page.text("#upload-error")
        assert "byte 0x" not in page.text("#upload-error")
    page.check("binary_refused")

    # ---- no identity column: flagged, launch refused, then a column is mapped
    anonymous = tmp_path / "anonymous.csv"
    anonymous.write_text("foo,bar,baz\nann@example.com,1,2\nbob@example.org,3,4\n")
    _upload(page, cid, anonymous)
    assert "no column was recognised" in page.text(".notice")
    assert "no identity column" in page.text("#identity-error")
    page.check("no_identity")
    page.select("#launch-choice", "apollo_scrape/apollo_default")
    page.submit(page.css("#launch-button"))
    assert "no identity column" in page.text("#launch-error")
    with served.engine.connect() as conn:
        assert conn.execute(select(Batch.id)).first() is None
    page.select("#map-0", "email")
    page.submit(page.css("#check-mapping"))
    assert "e-mail" in page.text("#identity-found") and "foo" in page.text("#identity-found")
    assert page.all("#identity-error") == []
    page.check("mapped")
    page.submit(page.css("#launch-button"))
    wait_for(lambda: "/batches/" in page.d.current_url, 20, "the batch page")
    with served.engine.connect() as conn:
        column_map = conn.execute(select(Batch.column_map)).scalar_one()
    assert column_map == {"email": "foo"}

    # ---- a second launch of the same upload needs the box ticked
    page.d.back()
    page.d.refresh()
    wait_for(lambda: bool(page.all("#already-launched")), 10, "the relaunch warning")
    assert "batch" in page.text("#already-launched")
    page.select("#map-0", "email")
    page.submit(page.css("#launch-button"))
    assert "already launched as batch" in page.text("#launch-error")
    page.check("relaunch_refused")
    page.select("#map-0", "email")
    page.css("#relaunch").click()
    page.submit(page.css("#launch-button"))
    wait_for(lambda: "/batches/" in page.d.current_url, 20, "the second batch")
    with served.engine.connect() as conn:
        assert len(conn.execute(select(Batch.id)).all()) == 2


def _registry_config(served: Served, slug: str) -> dict[str, Any]:
    with served.engine.connect() as conn:
        return dict(
            conn.execute(
                select(EnrichmentRegistry.config).where(EnrichmentRegistry.slug == slug)
            ).scalar_one()
        )


def test_workflow_forms(page: Page, served: Served) -> None:
    page.get(f"/workflows/apollo_scrape/{CLAY_COMPANY}")
    page.css("#opt_dedupe_by").clear()
    page.css("#opt_dedupe_by").send_keys("company_domain")
    page.css("#opt_fields").clear()
    page.css("#opt_fields").send_keys("Company\nWebsite\nnormalize_company_domain")
    page.css("#opt_rate_per_second").clear()
    page.css("#opt_rate_per_second").send_keys("2.5")
    page.check("edit")
    page.submit(page.css("#save-workflow"))
    assert "saved" in page.text(".notice")
    config = _registry_config(served, CLAY_COMPANY)
    assert config["dedupe_by"] == "company_domain"
    assert config["fields"] == ["Company", "Website", "normalize_company_domain"]
    assert config["rate_per_second"] == 2.5
    assert page.css("#opt_fields").get_attribute("value").splitlines() == config["fields"]

    # a bad number is named; a secret is refused and sent to the client's form
    page.d.execute_script("document.getElementById('opt_max_attempts').type = 'text'")
    page.css("#opt_max_attempts").send_keys("three")
    page.submit(page.css("#save-workflow"))
    assert "Max attempts (max_attempts) must be a whole number" in page.text("#workflow-error")
    page.css("#opt_max_attempts").clear()
    page.css("#other-options").send_keys("webhook_url=https://api.clay.com/v3/sources/x")
    page.submit(page.css("#save-workflow"))
    error = page.text("#workflow-error")
    assert "webhook_url" in error and "Workflow configs form" in error
    assert "enrichflow config set" not in error
    page.check("errors")
    assert _registry_config(served, CLAY_COMPANY) == config

    # ---- add a workflow, then delete it after the confirmation page
    page.get("/workflows")
    page.css("#workflow-slug").send_keys("enrich_tech_stack_in_clay")
    page.css("#workflow-name").send_keys("Tech stack via Clay")
    page.css("#opt_fields").send_keys("Website")
    page.submit(page.css("#add-workflow"))
    assert "enrich_tech_stack_in_clay" in page.text("#workflows")
    assert _registry_config(served, "enrich_tech_stack_in_clay")["fields"] == ["Website"]
    page.get("/workflows/apollo_scrape/enrich_tech_stack_in_clay")
    page.submit(page.css("#delete-workflow"))
    page.check("delete_confirm")
    page.submit(page.css("#confirm-delete"))
    assert "deleted" in page.text(".notice")
    assert "enrich_tech_stack_in_clay" not in page.text("#workflows")

    # a workflow a saved pipeline runs cannot be deleted
    cid = _client(served)
    service.pipeline_save(served.engine, cid, "apollo_scrape", "with_clay", [CLAY_COMPANY])
    page.get(f"/workflows/apollo_scrape/{CLAY_COMPANY}/delete")
    assert "with_clay" in page.text("#confirm-blocked")
    assert page.all("#confirm-delete") == []


def test_setup_forms(page: Page, served: Served) -> None:
    page.get("/workflows")
    page.css("#workstream-slug").send_keys("contacts")
    page.css("#workstream-description").send_keys("People from the CRM")
    page.submit(page.css("#add-workstream"))
    assert "Workstream 'contacts' added." in page.text(".notice")
    assert "contacts" in page.text("#workstream-list")
    page.css("#workstream-slug").send_keys("contacts")
    page.submit(page.css("#add-workstream"))
    assert "workstream 'contacts' already exists" in page.text("#workstream-error")
    assert page.css("#workstream-slug").get_attribute("value") == "contacts"
    page.check("workstream_refused")

    handlers = [o.get_attribute("value") for o in page.all("#workflow-handler option")]
    assert {"webhook", "http", "noop", "title_length"} <= set(handlers)
    assert page.css("#workflow-handler option:checked").get_attribute("value") == "webhook"

    # a Clay-only option for another handler, then a type the handler cannot run as
    page.css("#workflow-slug").send_keys("title_length")
    page.select("#workflow-workstream", "contacts")
    page.select("#workflow-handler", "noop")
    page.css("#opt_rate_per_second").send_keys("5")
    page.submit(page.css("#add-workflow"))
    error = page.text("#workflow-error")
    assert "Sends per second (rate_per_second): only webhook workflows read this" in error
    assert page.css("#opt_rate_per_second").get_attribute("value") == "5"
    assert page.css("#workflow-handler option:checked").get_attribute("value") == "noop"
    page.css("#opt_rate_per_second").clear()
    page.select("#workflow-type", "ASYNC")
    page.submit(page.css("#add-workflow"))
    assert "can only be SYNC, not ASYNC" in page.text("#workflow-error")
    page.check("workflow_refused")

    page.select("#workflow-handler", "title_length")
    page.select("#workflow-type", "")
    page.submit(page.css("#add-workflow"))
    assert "Workflow 'title_length' added." in page.text(".notice")
    assert "title_length" in page.text("#workflows")
    with served.engine.connect() as conn:
        row = conn.execute(
            select(EnrichmentRegistry).where(EnrichmentRegistry.slug == "title_length")
        ).one()
    assert (row.workstream_slug, row.type, row.handler, row.name) == (
        "contacts",
        "SYNC",
        "title_length",
        "Title length",
    )
    assert row.config == {"concurrency": 10}
    page.check("workflow_added")


def _pipelines(served: Served) -> list[tuple[int, str, list[str]]]:
    with served.engine.connect() as conn:
        return [
            (r.id, r.name, list(r.steps))
            for r in conn.execute(
                select(
                    EnrichmentPipeline.id, EnrichmentPipeline.name, EnrichmentPipeline.steps
                ).order_by(EnrichmentPipeline.id)
            )
        ]


def test_pipeline_forms(page: Page, served: Served) -> None:
    cid = _client(served)
    saved = service.pipeline_save(
        served.engine, cid, "apollo_scrape", "cleanup", ["normalize_company_name"]
    )
    service.pipeline_save(served.engine, cid, "apollo_scrape", "other", ["noop"])
    page.get(f"/pipelines/{saved['id']}/edit")
    page.check("edit")

    # ---- rename in place: the same pipeline, no copy
    page.css("#pipeline-name").clear()
    page.css("#pipeline-name").send_keys("cleanup_v2")
    page.submit(page.css("#save-pipeline"))
    assert "saved" in page.text(".notice")
    assert _pipelines(served)[0] == (saved["id"], "cleanup_v2", ["normalize_company_name"])
    assert len(_pipelines(served)) == 2

    # ---- save as new: the original stays; a taken name is refused
    page.get(f"/pipelines/{saved['id']}/edit")
    page.select("#add-step", "normalize_company_domain")
    page.submit(page.css("#add-step-button"))
    page.css("#pipeline-name").clear()
    page.css("#pipeline-name").send_keys("other")
    page.submit(page.css("#save-as-pipeline"))
    assert "already has a pipeline named 'other'" in page.text("#pipeline-error")
    page.css("#pipeline-name").clear()
    page.css("#pipeline-name").send_keys("with_domain")
    page.submit(page.css("#save-as-pipeline"))
    assert "saved as a new pipeline" in page.text(".notice")
    names = {name: steps for _, name, steps in _pipelines(served)}
    assert names["cleanup_v2"] == ["normalize_company_name"]
    assert names["with_domain"] == ["normalize_company_name", "normalize_company_domain"]

    # ---- the order is checked at save, and missing configs are named with their form
    page.get(f"/clients/{cid}/pipelines/new")
    for slug in ("consolidate_final_leads", CLAY_COMPANY):
        page.select("#add-step", slug)
        page.submit(page.css("#add-step-button"))
    page.css("#pipeline-name").send_keys("backwards")
    page.submit(page.css("#save-pipeline"))
    assert "consolidate_final_leads must be the last step" in page.text("#pipeline-error")
    page.check("order_refused")
    page.submit(page.css('button[value="up:1"]'))
    page.submit(page.css("#save-pipeline"))
    notice = page.text(".notice")
    assert "no webhook_url for enrich_company_via_waterfall_in_clay" in notice
    assert "Workflow configs" in notice and "enrichflow config" not in notice

    # ---- delete after the confirmation page
    page.get(f"/clients/{cid}")
    page.submit(page.css('a[aria-label="Delete pipeline other"]'))
    page.check("delete_confirm")
    page.submit(page.css("#cancel-delete"))
    assert f"/clients/{cid}" in page.d.current_url
    assert "other" in {name for _, name, _ in _pipelines(served)}
    page.get(f"/pipelines/{_pipelines(served)[1][0]}/delete")
    page.submit(page.css("#confirm-delete"))
    assert "deleted" in page.text(".notice")
    assert "other" not in {name for _, name, _ in _pipelines(served)}


def test_lists_and_home(page: Page, served: Served, tmp_path: Path) -> None:
    engine = served.engine
    acme, globex = _client(served, "Acme Corp"), _client(served, "Globex")
    small = tmp_path / "two.csv"
    small.write_text("Email,Company Name\nann@acme.test,Acme\nbob@acme.test,Acme\n")
    upload = service.upload_ingest(engine, acme, small).upload_id
    for _ in range(54):
        launch(engine, "Acme Corp", "apollo_scrape", upload, steps=["noop"])
    service.config_set(
        engine,
        globex,
        CLAY_COMPANY,
        "apollo_scrape",
        parse_assignments([f"webhook_url={served.sandbox_url}/no-such-table"]),
    )
    failing_upload = service.upload_ingest(engine, globex, small).upload_id
    failing = launch(
        engine,
        "Globex",
        "apollo_scrape",
        failing_upload,
        steps=[CLAY_COMPANY],
        settings=served.settings,
    )

    def status() -> str:
        with engine.connect() as conn:
            return str(conn.execute(select(Batch.status).where(Batch.id == failing)).scalar_one())

    wait_for(lambda: status() == "COMPLETED_WITH_ERRORS", 60, "the failing batch")

    page.get("/batches")
    rows = page.all("table.batches tbody tr")
    assert len(rows) == 50
    assert rows[0].find_element("css selector", "td").text == str(failing)
    assert "two.csv" in rows[0].text and "UTC" in rows[0].text
    page.check("batches")
    page.submit(page.css("#older-batches"))
    assert len(page.all("table.batches tbody tr")) == 5
    page.check("batches_older")
    page.submit(page.css("#newer-batches"))
    assert len(page.all("table.batches tbody tr")) == 50
    page.select("#batch-status-filter", "COMPLETED_WITH_ERRORS")
    page.submit(page.css("#filter-batches"))
    filtered = page.all("table.batches tbody tr")
    assert [r.find_element("css selector", "td").text for r in filtered] == [str(failing)]
    assert "2" in filtered[0].find_elements("css selector", "td")[6].text

    page.get("/")
    assert str(failing) in page.text("#failing") and "Globex" in page.text("#failing")
    page.check("home")
    page.get("/clients")
    cells = {
        r.find_element("css selector", "td").text: r.text for r in page.all("#clients tbody tr")
    }
    assert cells["Globex"].split()[1:3] == ["0", "1"]  # running, with failures
    page.check("clients")


def test_nav_and_skip_link(served: Served, tmp_path: Path) -> None:
    from selenium.webdriver.common.keys import Keys

    with chromium(tmp_path / "phone", PHONE) as driver:
        page = Page(driver, served.url, "nav_390")
        page.login()
        page.get("/clients")
        toggle = page.css("#nav-toggle")
        assert toggle.is_displayed() and not page.css("#site-nav").is_displayed()
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        assert page.css("#site-nav").is_displayed()
        page.check("menu_open")
        page.css('#site-nav a[href="/batches"]').click()
        wait_for(lambda: driver.current_url.endswith("/batches"), 10, "the batches page")
    with chromium(tmp_path / "desktop", DESKTOP) as driver:
        page = Page(driver, served.url, "nav_1440")
        page.login()
        page.get("/clients")
        assert not page.css("#nav-toggle").is_displayed()
        assert page.css("#site-nav").is_displayed()
        page.css("body").send_keys(Keys.TAB)
        skip = driver.switch_to.active_element
        assert skip.text == "Skip to content" and skip.is_displayed()
        skip.send_keys(Keys.ENTER)
        wait_for(
            lambda: driver.switch_to.active_element.get_attribute("id") == "main",
            5,
            "focus on the content",
        )
