"""Rejected rows are loud and recoverable, and files that are not CSV are refused plainly, on
SQLite and Postgres: ``enrichflow run`` exits 1 and lists them, ``--json`` lists every one,
``export --rejected`` and the API's download hold their cells; UTF-16 files (Excel's "Unicode
Text") are read and a PDF, PNG or XLSX is named for what it is, by the CLI and the API."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

import enrichflow.cli as cli
from enrichflow.api.app import create_app
from enrichflow.cli import root
from enrichflow.config import Settings
from enrichflow.db.models import Batch, BatchItem, RawUpload
from not_csv_files import EXCEL_UNICODE_TEXT, NOT_CSV
from webhooks.webhook_servers import UvicornThread

TOKEN = "rejected-test-token-0123456789abcdef"
HEADER = "First Name,Last Name,Email,Company"


@pytest.fixture(autouse=True)
def _dispose_cli_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI leaves its engines to the process's end; close them before the test database
    is dropped."""
    made: list[Engine] = []
    real = root.make_engine

    def tracking(url: str, **kwargs: Any) -> Engine:
        engine = real(url, **kwargs)
        made.append(engine)
        return engine

    monkeypatch.setattr(root, "make_engine", tracking)
    yield
    for engine in made:
        engine.dispose()


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli.app, list(args), catch_exceptions=False)


def flat(text: str) -> str:
    return " ".join(text.split())


def leads_with_rejects(path: Path, bad: int) -> Path:
    """Three good rows, then ``bad`` rows with a fifth cell (lines 5 onwards), then one whose
    quoting cannot be parsed, then a good one."""
    lines = [HEADER]
    lines += [f"Good{i},Person,good{i}@example.com,Acme" for i in range(3)]
    lines += [f"Extra{i},Person,extra{i}@example.com,Acme,=HYPERLINK(1)" for i in range(bad)]
    lines += ['Broken,Quote,broken@example.com,Ac"me\rInc', "Last,Person,last@example.com,Acme"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_run_with_rejected_rows_exits_1_and_lists_them(db_url: str, tmp_path: Path) -> None:
    path = leads_with_rejects(tmp_path / "leads.csv", bad=24)
    result = invoke("run", str(path), "--steps", "noop", "--database-url", db_url)
    assert result.exit_code == 1, result.output
    err = result.stderr
    assert "25 row(s) of leads.csv were rejected and not enriched:" in err
    assert "line 5: expected 4 fields, found 5" in err
    assert "line 24: expected 4 fields, found 5" in err  # the 20th
    assert "line 25:" not in err
    assert "… and 5 more" in err
    assert "enrichflow export 1 --rejected --out rejected.csv" in err

    as_json = invoke("run", str(path), "--steps", "noop", "--json", "--database-url", db_url)
    assert as_json.exit_code == 1
    ingest = json.loads(as_json.stdout)["ingest"]
    assert (ingest["rows"], ingest["bad_rows"]) == (4, 25)
    assert len(ingest["rejected"]) == 25
    assert ingest["rejected"][0] == {
        "line": 5,
        "reason": "expected 4 fields, found 5",
        "field": None,
    }
    assert ingest["rejected"][-1]["line"] == 29
    assert ingest["rejected"][-1]["reason"].startswith("malformed CSV")


def test_export_rejected_writes_line_reason_and_cells(db_url: str, tmp_path: Path) -> None:
    path = leads_with_rejects(tmp_path / "leads.csv", bad=2)
    assert invoke("run", str(path), "--steps", "noop", "--database-url", db_url).exit_code == 1
    out = tmp_path / "rejected.csv"
    result = invoke("export", "1", "--rejected", "--out", str(out), "--database-url", db_url)
    assert result.exit_code == 0, result.output
    assert f"wrote 3 rejected rows to {out}" in flat(result.output)
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["line", "reason", "field", "excerpt", *HEADER.split(","), "column_5"]
    assert rows[1] == [
        "5",
        "expected 4 fields, found 5",
        "",
        "",
        "Extra0",
        "Person",
        "extra0@example.com",
        "Acme",
        "'=HYPERLINK(1)",  # the export's formula rule
    ]
    assert rows[2][0] == "6"
    assert rows[3][0] == "7" and rows[3][1].startswith("malformed CSV")
    assert rows[3][4:] == ["", "", "", "", ""]  # no cells: the line could not be split

    jsonl = invoke(
        "export",
        "1",
        "--rejected",
        "--format",
        "jsonl",
        "--out",
        str(out),
        "--database-url",
        db_url,
    )
    assert jsonl.exit_code == 2 and "--rejected writes CSV only" in flat(jsonl.output)
    missing = invoke("export", "99", "--rejected", "--out", str(out), "--database-url", db_url)
    assert missing.exit_code == 2 and "batch 99 does not exist" in flat(missing.output)


def test_run_without_rejected_rows_exits_0(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "leads.csv"
    path.write_text(f"{HEADER}\nAna,Lopez,ana@example.com,Acme\n", encoding="utf-8")
    result = invoke("run", str(path), "--steps", "noop", "--json", "--database-url", db_url)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ingest"]["rejected"] == []
    assert "rejected" not in result.stderr


@pytest.mark.parametrize("name", sorted(NOT_CSV))
def test_run_refuses_a_file_that_is_not_csv(
    db_url: str, engine: Engine, tmp_path: Path, name: str
) -> None:
    build, kind = NOT_CSV[name]
    path = tmp_path / name
    path.write_bytes(build())
    result = invoke("run", str(path), "--steps", "noop", "--database-url", db_url)
    assert result.exit_code == 2
    assert f"{name}: this is not a CSV file: it looks like {kind}" in flat(result.output)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RawUpload)).scalar_one() == 0


def test_run_reads_excel_unicode_text(db_url: str, engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "leads.txt"
    path.write_bytes(EXCEL_UNICODE_TEXT)
    result = invoke("run", str(path), "--steps", "noop", "--database-url", db_url)
    assert result.exit_code == 0, result.output
    assert "ingested 2 rows from leads.txt (utf-16-le, '\\t'); 0 rejected" in flat(result.output)
    with engine.connect() as conn:
        emails = conn.execute(select(BatchItem.email).order_by(BatchItem.id)).scalars().all()
    assert emails == ["ana@lopez-cafe.example", "bo@example.org"]


# --------------------------------------------------------------------------- the API


@pytest.fixture
def api(engine: Engine) -> Iterator[httpx.Client]:
    settings = Settings(
        _env_file=None, secret_key="rejected-secret-of-at-least-32-bytes", api_token=TOKEN
    )  # type: ignore[call-arg]
    with (
        UvicornThread(create_app(engine, settings)) as server,
        httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as client,
    ):
        yield client


def _upload(api: httpx.Client, client_id: int, name: str, content: bytes) -> httpx.Response:
    return api.post(
        "/api/uploads", data={"client_id": str(client_id)}, files={"file": (name, content)}
    )


def test_api_uploads_utf16_refuses_what_is_not_csv_and_serves_rejected_rows(
    api: httpx.Client, engine: Engine, tmp_path: Path
) -> None:
    client_id = api.post("/api/clients", json={"name": "acme"}).json()["id"]

    unicode_text = _upload(api, client_id, "leads.txt", EXCEL_UNICODE_TEXT)
    assert unicode_text.status_code == 201, unicode_text.text
    detail = unicode_text.json()
    assert (detail["encoding"], detail["delimiter"], detail["row_count"]) == ("utf-16-le", "\t", 2)
    assert detail["first_rows"][0]["values"][1] == "López"

    for name, (build, kind) in sorted(NOT_CSV.items()):
        refused = _upload(api, client_id, name, build())
        assert refused.status_code == 422
        assert refused.json()["detail"] == (
            f"{name}: this is not a CSV file: it looks like {kind}; save it as CSV"
        )

    path = leads_with_rejects(tmp_path / "leads.csv", bad=1)
    uploaded = _upload(api, client_id, "leads.csv", path.read_bytes())
    assert uploaded.status_code == 201, uploaded.text
    upload = uploaded.json()
    assert upload["bad_row_count"] == 2
    assert [(b["line"], b["field"]) for b in upload["bad_rows"]] == [(5, None), (6, None)]
    rejected = api.get(f"/api/uploads/{upload['id']}/rejected")
    assert rejected.status_code == 200
    assert rejected.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(rejected.text)))
    assert [r[0] for r in rows] == ["line", "5", "6"]
    assert rows[1][4:] == ["Extra0", "Person", "extra0@example.com", "Acme", "'=HYPERLINK(1)"]
    assert api.get("/api/uploads/999999/rejected").status_code == 404
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Batch)).scalar_one() == 0
