"""Ingest a CSV and launch it: identity columns, original data, line numbers, CSV quirks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from enrichflow.catalog.assignments import parse_assignments
from enrichflow.catalog.client_configs import client_config_set
from enrichflow.config import Settings
from enrichflow.db.models import (
    Batch,
    BatchItem,
    BatchStep,
    Client,
    RawUpload,
    RawUploadError,
    RawUploadRow,
    WorkflowState,
)
from enrichflow.errors import ConfigError, InputError
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.seed import APOLLO
from handlers_for_tests import register_steps

LEADS = (
    "First Name,Last Name,Email,Company,Website,Title,Favourite Colour,Notes\n"
    "Ann,Lee,ann@acme.com,Acme Inc,https://acme.com,CEO,blue,plain\n"
    '  Bob  ,Stone,bob@beta.io, Beta GmbH ,beta.io,CTO,,"two\nlines"\n'
    ",Solo,,Gamma,,,green,\n"
    "Dee,,dee@delta.org,Delta,www.delta.org,   ,red,last\n"
)


def rows_of(engine: Engine, table: Any, **where: Any) -> list[Any]:
    t = table.__table__
    query = select(t).where(*(t.c[k] == v for k, v in where.items()))
    order = t.c.line_number if "line_number" in t.c else t.c.id
    with engine.connect() as conn:
        return list(conn.execute(query.order_by(order)))


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table.__table__)).scalar_one()


def test_ingest_and_launch_identity_and_original_data(engine: Engine, tmp_path: Path) -> None:
    register_steps(engine)
    path = tmp_path / "leads.csv"
    path.write_text(LEADS, encoding="utf-8")
    report = ingest_csv(engine, path)
    assert (report.rows, report.bad_rows, report.delimiter) == (4, [], ",")
    assert report.unmapped_columns == ["Favourite Colour", "Notes"]
    assert report.column_map == {
        "first_name": "First Name",
        "last_name": "Last Name",
        "email": "Email",
        "company_name": "Company",
        "website": "Website",
        "title": "Title",
    }

    batch_id = launch(
        engine,
        "acme",
        APOLLO,
        report.upload_id,
        steps=["test_count", "test_count_b"],
        create_client=True,
    )
    items = rows_of(engine, BatchItem, batch_id=batch_id)
    identity = [
        (i.row_number, i.company_name, i.company_domain, i.person_name, i.email, i.title)
        for i in items
    ]
    assert identity == [
        (2, "Acme Inc", "https://acme.com", "Ann Lee", "ann@acme.com", "CEO"),
        (3, "Beta GmbH", "beta.io", "Bob Stone", "bob@beta.io", "CTO"),
        (5, "Gamma", None, "Solo", None, None),
        (6, "Delta", "www.delta.org", "Dee", "dee@delta.org", None),
    ]
    headers = LEADS.split("\n", 1)[0].split(",")
    # every cell, as uploaded, in the file's column order; the headers once, on the batch
    assert items[1].original_data == [
        "  Bob  ", "Stone", "bob@beta.io", " Beta GmbH ", "beta.io", "CTO", "", "two\nlines"
    ]  # fmt: skip
    assert items[2].original_data[headers.index("Favourite Colour")] == "green"

    with engine.connect() as conn:
        batch = conn.execute(select(Batch.__table__).where(Batch.id == batch_id)).one()
        steps = list(
            conn.execute(
                select(BatchStep.step_name, BatchStep.max_attempts, BatchStep.backoff_base_ms)
                .where(BatchStep.batch_id == batch_id)
                .order_by(BatchStep.position)
            )
        )
        states = list(
            conn.execute(
                select(
                    WorkflowState.item_id,
                    WorkflowState.step_name,
                    WorkflowState.status,
                    WorkflowState.step_index,
                    WorkflowState.attempt,
                    WorkflowState.retry_floor,
                    WorkflowState.not_before == WorkflowState.created_at,
                    WorkflowState.created_at > 1_700_000_000_000,  # epoch ms
                )
                .where(WorkflowState.batch_id == batch_id)
                .order_by(WorkflowState.item_id)
            )
        )
    assert (batch.status, batch.item_count, batch.upload_id) == ("RUNNING", 4, report.upload_id)
    assert [b["step_name"] for b in batch.blueprint] == ["test_count", "test_count_b"]
    assert batch.column_map == report.column_map
    assert batch.headers == headers
    assert [tuple(s) for s in steps] == [("test_count", 3, 1), ("test_count_b", 3, 1)]
    # only the first step exists at launch, one PENDING state per item
    assert [tuple(s) for s in states] == [
        (i.id, "test_count", "PENDING", 0, 0, 0, True, True) for i in items
    ]
    assert [i.row_number for i in items] == [2, 3, 5, 6]  # ids follow the line order


def test_full_name_column_is_used_as_is(engine: Engine, tmp_path: Path) -> None:
    register_steps(engine)
    path = tmp_path / "names.csv"
    path.write_text("Full Name,Company Website\n Jane Q. Doe ,example.com\n", encoding="utf-8")
    report = ingest_csv(engine, path)
    batch_id = launch(
        engine, "acme", APOLLO, report.upload_id, steps=["test_count"], create_client=True
    )
    (item,) = rows_of(engine, BatchItem, batch_id=batch_id)
    assert (item.person_name, item.company_domain, item.company_name) == (
        "Jane Q. Doe",
        "example.com",
        None,
    )


def test_launch_refuses_unknown_step_and_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("Email\na@x.com\n", encoding="utf-8")
    report = ingest_csv(engine, path)
    with pytest.raises(ConfigError, match="unknown step 'nope'"):
        launch(engine, "acme", APOLLO, report.upload_id, steps=["noop", "nope"], create_client=True)
    with pytest.raises(ConfigError, match="appears twice"):
        launch(engine, "acme", APOLLO, report.upload_id, steps=["noop", "noop"], create_client=True)
    assert count(engine, Batch) == 0
    assert count(engine, BatchItem) == 0


CLAY = "enrich_company_via_waterfall_in_clay"


def test_launch_refuses_failing_preflight_checks_and_writes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    """The checks of ``enrichflow doctor`` for this batch: each failing one is named."""
    path = tmp_path / "a.csv"
    path.write_text("Email,Company\na@x.com,Acme\n", encoding="utf-8")
    report = ingest_csv(engine, path)
    unset = Settings(_env_file=None, executor="local")  # type: ignore[call-arg]
    with pytest.raises(ConfigError) as refused:
        launch(engine, "acme", APOLLO, report.upload_id, steps=["noop", CLAY],
               create_client=True, settings=unset)  # fmt: skip
    message = str(refused.value)
    assert "2 preflight check(s) failed" in message
    assert f"async configs: client 'acme' has no webhook_url for {CLAY}" in message
    assert "public url: ASYNC steps need ENRICHFLOW_PUBLIC_URL" in message
    with pytest.raises(ConfigError, match="executor: unknown executor 'bogus'"):
        launch(engine, "acme", APOLLO, report.upload_id, steps=["noop"], create_client=True,
               settings=unset, executor="bogus")  # fmt: skip
    assert (count(engine, Batch), count(engine, BatchItem), count(engine, WorkflowState)) == (
        0,
    ) * 3
    assert count(engine, Client) == 0  # not even the client launch would have created

    with engine.begin() as conn:
        client_config_set(
            conn, "acme", CLAY, APOLLO, parse_assignments(["webhook_url=https://hook.example/a"])
        )
    public = Settings(_env_file=None, executor="local", public_url="https://enrich.example.com")  # type: ignore[call-arg]
    with pytest.raises(ConfigError) as refused:
        launch(engine, "acme", APOLLO, report.upload_id, steps=["noop", CLAY], settings=unset)
    assert "1 preflight check(s) failed: public url" in str(refused.value)
    batch_id = launch(engine, "acme", APOLLO, report.upload_id, steps=["noop", CLAY],
                      settings=public)  # fmt: skip
    assert len(rows_of(engine, BatchItem, batch_id=batch_id)) == 1


CSV_CASES: dict[str, tuple[bytes, str, list[tuple[int, dict[str, str]]], list[tuple[int, str]]]] = {
    "bom": (
        b"\xef\xbb\xbfEmail,Company\r\na@x.com,Acme\r\n",
        ",",
        [(2, {"Email": "a@x.com", "Company": "Acme"})],
        [],
    ),
    "cp1252": (
        "Company,City\nCafé Müller – €,Köln\nBeta,Zürich\n".encode("cp1252"),
        ",",
        [
            (2, {"Company": "Café Müller – €", "City": "Köln"}),
            (3, {"Company": "Beta", "City": "Zürich"}),
        ],
        [],
    ),
    "semicolon": (
        b"Name;Company;Email\nAnn;Acme, Inc.;a@x.com\nBob;Beta;b@y.com\n",
        ";",
        [
            (2, {"Name": "Ann", "Company": "Acme, Inc.", "Email": "a@x.com"}),
            (3, {"Name": "Bob", "Company": "Beta", "Email": "b@y.com"}),
        ],
        [],
    ),
    "tab": (
        b"Name\tCompany\nAnn\tAcme; Inc.\nBob\tBeta\n",
        "\t",
        [(2, {"Name": "Ann", "Company": "Acme; Inc."}), (3, {"Name": "Bob", "Company": "Beta"})],
        [],
    ),
    "quoted_newline": (
        b'Name,Notes\n"Ann","line1\nline2"\nBob,x\n',
        ",",
        [(2, {"Name": "Ann", "Notes": "line1\nline2"}), (4, {"Name": "Bob", "Notes": "x"})],
        [],
    ),
    "crlf": (
        b'Name,Notes\r\nAnn,"a\r\nb"\r\nBob,c\r\n',
        ",",
        [(2, {"Name": "Ann", "Notes": "a\r\nb"}), (4, {"Name": "Bob", "Notes": "c"})],
        [],
    ),
    "bad_row": (
        b"a,b,c\n1,2,3\n1,2\n4,5,6\n",
        ",",
        [(2, {"a": "1", "b": "2", "c": "3"}), (4, {"a": "4", "b": "5", "c": "6"})],
        [(3, "expected 3 fields, found 2")],
    ),
    # what COPY's text format escapes (backslash, tab, line breaks) and what JSON escapes
    "copy_escapes": (
        b'Path,Notes\nC:\\new\\table,"tab\there ""q"" \\N \\\\ \xc3\xa9\x01 \\u0041"\n'
        b'\\.,"a\r\nb"\n',
        ",",
        [
            (2, {"Path": "C:\\new\\table", "Notes": 'tab\there "q" \\N \\\\ \u00e9\x01 \\u0041'}),
            (3, {"Path": "\\.", "Notes": "a\r\nb"}),
        ],
        [],
    ),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_csv_quirks_end_to_end(engine: Engine, tmp_path: Path, case: str) -> None:
    raw, delimiter, expected_rows, expected_bad = CSV_CASES[case]
    path = tmp_path / f"{case}.csv"
    path.write_bytes(raw)
    report = ingest_csv(engine, path)

    assert report.delimiter == delimiter
    assert report.rows == len(expected_rows)
    assert [(b.line_number, b.reason) for b in report.bad_rows] == expected_bad
    if case == "cp1252":
        assert report.encoding.replace("-", "").lower() in {"cp1252", "windows1252"}
    (upload,) = rows_of(engine, RawUpload, id=report.upload_id)
    assert (upload.row_count, upload.bad_row_count, upload.delimiter) == (
        len(expected_rows),
        len(expected_bad),
        delimiter,
    )
    assert upload.headers == list(expected_rows[0][1])
    stored = [(r.line_number, r.data) for r in rows_of(engine, RawUploadRow, upload_id=upload.id)]
    assert stored == [(line, list(values.values())) for line, values in expected_rows]
    errors = rows_of(engine, RawUploadError, upload_id=upload.id)
    assert [(e.line_number, e.reason) for e in errors] == expected_bad
    if expected_bad:
        assert errors[0].excerpt == "1,2"


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty"), (b"   \n\n", "empty"), (b"Email,Company\n", "header but no data rows")],
    ids=["empty", "blank", "header_only"],
)
def test_unusable_file_writes_nothing(
    engine: Engine, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        ingest_csv(engine, path)
    assert message in str(info.value)
    assert count(engine, RawUpload) == 0
    assert count(engine, RawUploadRow) == 0
