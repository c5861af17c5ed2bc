"""Rejected rows in the dashboard, in a real headless Chromium at desktop and phone sizes: the
upload page counts them, lists them with the field at fault and links their download; the
batch page over that upload links the same download, which holds every rejected row's cells."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from dashboard_browser import DESKTOP, PHONE, Page, Served, chromium, served
from enrichflow.api.dashboard import service
from enrichflow.launch import launch

__all__ = ["served"]  # fixture


@pytest.fixture(params=[DESKTOP, PHONE], ids=["desktop", "phone"])
def page(request: pytest.FixtureRequest, tmp_path: Path, served: Served) -> Any:
    size = request.param
    with chromium(tmp_path / "chromium", size) as driver:
        p = Page(driver, served.url, f"rejected_rows_{size[0]}")
        p.login()
        yield p


def _fetch(page: Page, href: str) -> str:
    """The body at ``href``, fetched by the page itself (with its session)."""
    return str(
        page.d.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(r => r.text()).then(done);",
            href,
        )
    )


def test_rejected_rows_are_counted_listed_and_downloadable(
    page: Page, served: Served, tmp_path: Path
) -> None:
    client_id = int(service.client_create(served.engine, "Acme Corp")["id"])
    path = tmp_path / "leads.csv"
    path.write_bytes(
        b"First Name,Last Name,Email,Company\n"
        b"Ana,Lopez,ana@example.com,Caf\xc3\xa9 Ana\n"
        b"Bob,Smith,bob@example.com,Acme,extra cell\n"
        b"Cid,Doe,cid@example.com,Doe \x00Tools\n"
    )
    page.get(f"/clients/{client_id}")
    page.css("#upload-file").send_keys(str(path))
    page.submit(page.css("#upload"))
    assert page.text("#rejected-count") == "2"
    table = page.text("#bad-rows")
    assert "expected 4 fields, found 5" in table and "NUL byte in record" in table
    assert "Company" in table  # the field at fault of the NUL row
    link = page.css("#rejected-download")
    upload_id = int(urlsplit(page.d.current_url).path.rsplit("/", 1)[1])
    assert "Uploaded 1 rows; 2 rejected" in page.text(".notice")
    assert link.get_attribute("href").endswith(f"/uploads/{upload_id}/rejected.csv")
    page.check("upload")
    rows = list(csv.reader(io.StringIO(_fetch(page, link.get_attribute("href")))))
    assert rows == [
        [
            "line",
            "reason",
            "field",
            "excerpt",
            "First Name",
            "Last Name",
            "Email",
            "Company",
            "column_5",
        ],
        [
            "3",
            "expected 4 fields, found 5",
            "",
            "",
            "Bob",
            "Smith",
            "bob@example.com",
            "Acme",
            "extra cell",
        ],
        [
            "4",
            "NUL byte in record",
            "Company",
            "",
            "Cid",
            "Doe",
            "cid@example.com",
            "Doe \ufffdTools",
            "",
        ],
    ]

    batch_id = launch(served.engine, "Acme Corp", "apollo_scrape", upload_id, steps=["noop"])
    page.get(f"/batches/{batch_id}")
    assert page.text("#rejected-rows") == "2 rejected rows (CSV)"
    assert (
        page.css("#rejected-rows")
        .get_attribute("href")
        .endswith(f"/uploads/{upload_id}/rejected.csv")
    )
    page.check("batch")
