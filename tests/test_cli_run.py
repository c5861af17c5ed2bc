"""``enrichflow run`` end to end through Typer's CliRunner, on SQLite and Postgres."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, insert, select
from typer.testing import CliRunner

import enrichflow.cli as cli
from enrichflow.api.dashboard.service import webhook_sources_near_limit
from enrichflow.cli import root
from enrichflow.db.engine import make_engine
from enrichflow.db.models import (
    Batch,
    BatchItem,
    RawUpload,
    RawUploadRow,
    WebhookSubmission,
    WorkflowState,
)
from enrichflow.export import LEADING
from handlers_for_tests import make_batch, register_steps, write_csv


@pytest.fixture(autouse=True)
def _dispose_cli_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The CLI never disposes its engines; do it here so pooled connections are closed before
    the test database is dropped (and no ResourceWarning fires at garbage collection)."""
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
    """Rich wraps long lines; compare with whitespace collapsed."""
    return " ".join(text.split())


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            model.__tablename__: conn.execute(
                select(func.count()).select_from(model.__table__)
            ).scalar_one()
            for model in (RawUpload, RawUploadRow, Batch, BatchItem, WorkflowState)
        }


NOTHING = {
    "raw_uploads": 0,
    "raw_upload_rows": 0,
    "batches": 0,
    "batch_items": 0,
    "workflow_states": 0,
}


def test_unknown_step_exits_2_and_writes_nothing(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "leads.csv", 3)
    result = invoke("run", str(path), "--steps", "noop,nope", "--database-url", db_url)
    assert result.exit_code == 2
    assert "unknown step 'nope'" in flat(result.output)
    assert counts(engine) == NOTHING


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"First Name,Email\r\n", "has a header but no data rows")],
    ids=["empty", "header_only"],
)
def test_unusable_csv_exits_2_and_writes_nothing(
    db_url: str, engine: Engine, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    result = invoke("run", str(path), "--steps", "noop", "--database-url", db_url)
    assert result.exit_code == 2
    assert "error:" in result.output
    assert message in flat(result.output)
    assert "input.csv" in flat(result.output)
    assert counts(engine) == NOTHING


def test_good_run_prints_json_and_exports_every_item(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "leads.csv", 5)
    out = tmp_path / "x.csv"
    result = invoke(
        "run", str(path), "--steps", "noop", "--json", "--out", str(out), "--database-url", db_url
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    with engine.connect() as conn:
        batch_id = conn.execute(select(Batch.id)).scalar_one()
        item_ids = list(conn.execute(select(BatchItem.id).order_by(BatchItem.id)).scalars())
    assert summary["batch_id"] == batch_id
    assert summary["status"] == "COMPLETED"
    assert summary["items"] == 5
    assert summary["steps"] == {"noop": {"COMPLETED": 5}}
    assert summary["failed"] == []
    assert summary["exported"] == 5
    assert summary["ingest"]["rows"] == 5
    assert summary["ingest"]["bad_rows"] == 0

    with out.open(newline="", encoding="utf-8-sig") as f:
        exported = list(csv.DictReader(f))
    assert len(exported) == 5
    assert list(exported[0]) == LEADING  # noop adds no enrichment column
    assert [int(r["item_id"]) for r in exported] == item_ids
    assert [r["email"] for r in exported] == [f"person{i}@example{i}.com" for i in range(5)]
    assert {r["status"] for r in exported} == {"completed"}


def test_running_a_file_again_names_the_earlier_batches(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    """The same bytes under another name are the same file; a note on stderr (stdout stays
    JSON) names the batches that ran over it, and ``--fresh`` says it sends everything."""
    path = write_csv(tmp_path / "leads.csv", 3)
    first = invoke("run", str(path), "--steps", "noop", "--json", "--database-url", db_url)
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["earlier_batches"] == []
    assert "already launched" not in first.stderr

    copy = tmp_path / "copy.csv"
    copy.write_bytes(path.read_bytes())
    second = invoke("run", str(copy), "--steps", "noop", "--json", "--database-url", db_url)
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["earlier_batches"] == [1]
    note = flat(second.stderr)
    assert "this file was already launched as batch 1;" in note
    assert "Clay results are reused" in note and "--fresh would send everything" in note

    third = invoke("run", str(path), "--steps", "noop", "--fresh", "--database-url", db_url)
    assert third.exit_code == 0, third.output
    assert "already launched as batches 1, 2; --fresh sends every row to Clay again" in flat(
        third.stderr
    )

    other = write_csv(tmp_path / "other.csv", 4)
    fourth = invoke("run", str(other), "--steps", "noop", "--json", "--database-url", db_url)
    assert json.loads(fourth.stdout)["earlier_batches"] == []
    with engine.connect() as conn:
        hashes = conn.execute(select(RawUpload.content_sha256).order_by(RawUpload.id)).scalars()
        assert len(set(hashes)) == 2


def test_a_run_reads_the_registry_once_for_its_launch(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The launch checked before the ingest is the one the batch is created from: the registry
    is read by the seeding and once for the launch, not again by the preflight or the launch."""
    sent: list[str] = []
    tracking = root.make_engine

    def recording(url: str, **kwargs: Any) -> Engine:
        engine = tracking(url, **kwargs)
        event.listen(engine, "before_cursor_execute", lambda *a: sent.append(a[2]))
        return engine

    monkeypatch.setattr(root, "make_engine", recording)
    path = write_csv(tmp_path / "leads.csv", 3)
    result = invoke("run", str(path), "--steps", "noop", "--json", "--database-url", db_url)
    assert result.exit_code == 0, result.output
    reads = [sql for sql in sent if "FROM enrichment_registry" in sql]
    assert len(reads) == 2, reads
    assert "enrichment_registry.handler" not in reads[0]  # the seeding's check of its rows
    assert "enrichment_registry.handler" in reads[1]  # the launch's rows


def test_permanent_failure_exits_1_and_lists_the_item(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    register_steps(engine)
    path = tmp_path / "leads.csv"
    path.write_text("Email,Company\nok1@x.com,A\nfail-me@x.com,B\nok2@x.com,C\n", encoding="utf-8")
    result = invoke(
        "run", str(path), "--steps", "noop,test_fail_on_marker", "--database-url", db_url
    )
    assert result.exit_code == 1, result.output
    with engine.connect() as conn:
        failed_item = conn.execute(
            select(BatchItem.id).where(BatchItem.email == "fail-me@x.com")
        ).scalar_one()
        statuses = dict(
            conn.execute(
                select(WorkflowState.item_id, WorkflowState.status).where(
                    WorkflowState.step_name == "test_fail_on_marker"
                )
            ).all()
        )
    text = flat(result.output)
    assert f"item {failed_item} failed at test_fail_on_marker: refusing fail-me@x.com" in text
    assert statuses[failed_item] == "FAILED"
    assert sorted(statuses.values()) == ["COMPLETED", "COMPLETED", "FAILED"]

    status = invoke("status", str(_batch_id(engine)), "--json", "--database-url", db_url)
    assert status.exit_code == 0
    summary = json.loads(status.stdout)
    assert summary["status"] == "COMPLETED_WITH_ERRORS"
    assert summary["failed"] == [
        {"item_id": failed_item, "step": "test_fail_on_marker", "error": "refusing fail-me@x.com"}
    ]


def _batch_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(Batch.id)).scalar_one())


def test_status_warns_about_webhook_sources_near_their_limit(db_url: str, tmp_path: Path) -> None:
    """A Clay source past 45,000 of its 50,000 lifetime submissions shows in `status`
    (redacted), and one below the mark does not."""
    engine = make_engine(db_url)
    try:
        register_steps(engine)
        batch_id = make_batch(engine, tmp_path, ["test_count"], n=1)
        with engine.begin() as conn:
            conn.execute(
                insert(WebhookSubmission),
                [
                    {
                        "url_key": "a" * 64,
                        "url_redacted": "https://api.clay.com/…",
                        "submissions": 45_500,
                    },
                    {
                        "url_key": "b" * 64,
                        "url_redacted": "https://hooks.example/…",
                        "submissions": 44_999,
                    },
                ],
            )
        near = webhook_sources_near_limit(engine)
    finally:
        engine.dispose()
    assert near == [
        {"url_redacted": "https://api.clay.com/…", "submissions": 45_500, "limit": 50_000}
    ]
    result = invoke("status", str(batch_id), "--json", "--database-url", db_url)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["webhook_sources_near_limit"] == [
        {"webhook": "https://api.clay.com/…", "submissions": 45_500}
    ]
    text = flat(invoke("status", str(batch_id), "--database-url", db_url).output)
    assert "webhook https://api.clay.com/… has taken 45,500 of its 50,000 submissions" in text
    assert "hooks.example" not in text
