"""Hostile input gets a 4xx or a clear exit 2: deeply nested callback bodies, an upload whose
every row is unreadable, and one huge unterminated line, whose reading must stay within memory
bounded by the field-size limit (measured with psutil in a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from enrichflow.api.app import create_app
from enrichflow.api.callbacks import MAX_DEPTH
from enrichflow.cli import app
from enrichflow.config import Settings
from enrichflow.db.engine import now_ms
from enrichflow.db.models import Batch, EnrichmentResult, WorkflowState
from enrichflow.db.states import StepOutcome, outcomes_record, states_claim
from enrichflow.states import Status
from enrichflow.webhooks.signing import callback_token
from handlers_for_tests import make_batch
from webhooks.webhook_servers import UvicornThread

SECRET = "hostile-test-secret-0123456789abcdef"
CLAY_STEP = "enrich_company_via_waterfall_in_clay"
MB = 1024 * 1024
GROWTH_LIMIT = 100 * MB


def nested(depth: int) -> str:
    """A JSON object ``depth`` levels deep (the object itself is level 1), as text: the json
    module itself cannot write one this deep."""
    return '{"k":' * (depth - 1) + '{"leaf":1}' + "}" * (depth - 1)


@pytest.fixture
def callback_api(engine: Engine, tmp_path: Path) -> Iterator[tuple[str, list[Any]]]:
    batch_id = make_batch(engine, tmp_path, [CLAY_STEP, "noop"], n=2)
    with engine.begin() as conn:
        claims = states_claim(conn, batch_id, 0, 10, 60_000, now_ms(), start=True)
        outcomes_record(
            conn,
            [StepOutcome(c, Status.IN_PROGRESS, deadline_ms=now_ms() + 10**7) for c in claims],
            now_ms(),
        )
    settings = Settings(_env_file=None, secret_key=SECRET)  # type: ignore[call-arg]
    with UvicornThread(create_app(engine, settings)) as server:
        yield server.url, claims


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 255, 600, 950, 3000])
def test_a_callback_nested_too_deep_is_422_and_stores_nothing(
    engine: Engine, callback_api: tuple[str, list[Any]], depth: int
) -> None:
    url, claims = callback_api
    body = nested(depth)
    token = callback_token(claims[0].state_id, claims[0].attempt, SECRET)
    with httpx.Client(timeout=30) as http:
        response = http.post(f"{url}/callbacks/{token}", content=body)
    assert response.status_code == 422, response.text
    assert response.json() == {
        "status": "invalid_body",
        "detail": f"the JSON is nested too deeply (more than {MAX_DEPTH} levels)",
    }
    with engine.connect() as conn:
        status = conn.execute(
            select(WorkflowState.status).where(WorkflowState.id == claims[0].state_id)
        ).scalar_one()
        results = conn.execute(select(func.count()).select_from(EnrichmentResult)).scalar_one()
    assert (status, results) == ("IN_PROGRESS", 0)


def test_a_callback_at_the_depth_limit_is_stored(
    engine: Engine, callback_api: tuple[str, list[Any]]
) -> None:
    url, claims = callback_api
    body = nested(MAX_DEPTH)
    token = callback_token(claims[1].state_id, claims[1].attempt, SECRET)
    with httpx.Client(timeout=30) as http:
        response = http.post(f"{url}/callbacks/{token}", content=body)
    assert response.json() == {"status": "completed"}
    with engine.connect() as conn:
        stored = conn.execute(
            select(EnrichmentResult.payload).where(EnrichmentResult.item_id == claims[1].item_id)
        ).scalar_one()
    assert stored == json.loads(body)


def test_a_callback_with_an_integer_beyond_64_bits_is_422(
    callback_api: tuple[str, list[Any]],
) -> None:
    url, claims = callback_api
    token = callback_token(claims[0].state_id, claims[0].attempt, SECRET)
    with httpx.Client(timeout=30) as http:
        response = http.post(f"{url}/callbacks/{token}", content=b'{"n": 99999999999999999999}')
        fits = http.post(f"{url}/callbacks/{token}", content=b'{"n": 9223372036854775807}')
    assert response.status_code == 422 and "64 bits" in response.json()["detail"]
    assert fits.json() == {"status": "completed"}


def test_run_on_a_file_with_no_readable_row_exits_2_and_launches_nothing(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "all_bad.csv"
    path.write_bytes(
        b"First Name,Last Name,Email\n"
        b"Ann\n"
        b"Bob,Ray,bob@example.com,extra\n"
        b"Cid,Lee,c\x00d@example.com\n"
    )
    result = CliRunner().invoke(app, ["run", str(path), "--database-url", db_url])
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "all_bad.csv has no readable rows (3 unreadable); nothing was launched" in flat
    assert "line 2: expected 3 fields, found 1" in flat
    assert "line 3: expected 3 fields, found 4" in flat
    assert "line 4: NUL byte in record" in flat
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Batch)).scalar_one() == 0


# The child reads one file the way `enrichflow run` ingests it and reports its baseline and
# peak resident memory: VmHWM is the kernel's own peak of this program (sampling could miss a
# spike, and ru_maxrss keeps the peak of the forked test process from before the exec).
INGEST_CHILD = textwrap.dedent(
    """
    import json, re, shutil, sys
    import psutil
    from enrichflow.db.engine import make_engine
    from enrichflow.ingest.loader import ingest_csv

    template, database, path = sys.argv[1:4]
    shutil.copy(template, database)
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect():
        pass
    baseline = psutil.Process().memory_info().rss
    report = ingest_csv(engine, path)
    with open("/proc/self/status") as status:
        peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) * 1024
    print(json.dumps({
        "baseline": baseline,
        "peak": peak,
        "rows": report.rows,
        "bad": [[b.line_number, b.reason] for b in report.bad_rows[:3]],
        "bad_count": len(report.bad_rows),
    }))
    """
)


def write_file(path: Path, head: bytes, size: int, tail: bytes) -> Path:
    """``head``, then ``size`` bytes of one unterminated line in blocks, then ``tail``."""
    block = b"x" * MB
    with path.open("wb") as f:
        f.write(head)
        for _ in range(size // MB):
            f.write(block)
        f.write(tail)
    return path


def ingest_in_child(sqlite_template: Path, tmp_path: Path, csv_path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            INGEST_CHILD,
            str(sqlite_template),
            str(tmp_path / "m.db"),
            str(csv_path),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dict(json.loads(done.stdout))


def test_a_200_mb_unterminated_line_is_refused_in_bounded_memory(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = write_file(tmp_path / "huge.csv", b"Name,Note\nAnn,ok\nBob,", 200 * MB, b"\nCid,fine\n")
    found = ingest_in_child(sqlite_template, tmp_path, path)
    assert found["rows"] == 2
    assert found["bad_count"] == 1
    line, reason = found["bad"][0]
    assert line == 3 and "skipped to its line break" in reason, reason
    growth = found["peak"] - found["baseline"]
    assert growth < GROWTH_LIMIT, f"grew {growth / MB:.0f} MB reading a 200 MB line"


def test_a_quoted_field_that_never_closes_is_bounded_too(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """An opening quote and then 100 MB of lines: csv would make it one field of the rest of
    the file; its field limit stops it."""
    line = b"y" * 4000 + b"\n"
    path = tmp_path / "open_quote.csv"
    with path.open("wb") as f:
        f.write(b'Name,Note\nAnn,ok\nBob,"')
        for _ in range(100 * MB // len(line)):
            f.write(line)
    found = ingest_in_child(sqlite_template, tmp_path, path)
    assert found["rows"] == 1
    assert "field larger than field limit" in found["bad"][0][1]
    growth = found["peak"] - found["baseline"]
    assert growth < GROWTH_LIMIT, f"grew {growth / MB:.0f} MB reading an unclosed quote"


SERVE_CHILD = textwrap.dedent(
    """
    import shutil, sys
    import uvicorn
    from enrichflow.api.app import create_app
    from enrichflow.config import Settings
    from enrichflow.db.engine import make_engine
    from enrichflow.launch import client_get_or_create

    template, database, port, token, secret = sys.argv[1:6]
    shutil.copy(template, database)
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        client_get_or_create(conn, "acme")
    settings = Settings(_env_file=None, api_token=token, secret_key=secret)
    uvicorn.run(create_app(engine, settings), host="127.0.0.1", port=int(port), log_level="warning")
    """
)


class PeakSampler:
    """The highest resident memory of a process, sampled with psutil every few milliseconds."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.005)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def test_a_49_mb_one_line_upload_keeps_the_server_small(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """The dashboard's upload path, through the JSON API of a real server process."""
    from webhooks.webhook_servers import free_port

    token = "hostile-api-token-0123456789abcdef"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE_CHILD, str(sqlite_template), str(tmp_path / "s.db"),
         str(port), token, SECRET],
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    headers = {"authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as http:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client_id = http.get("/api/clients").json()[0]["id"]
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "the server did not start"
                    time.sleep(0.1)
            small = b"Name,Note\nAnn,ok\n"
            warm = http.post("/api/uploads", data={"client_id": client_id},
                             files={"file": ("warm.csv", small, "text/csv")})  # fmt: skip
            assert warm.status_code == 201, warm.text
            baseline = psutil.Process(server.pid).memory_info().rss
            path = write_file(tmp_path / "upload.csv", b"Name,Note\nAnn,ok\nBob,", 49 * MB, b"\n")
            with PeakSampler(server.pid) as sampler, path.open("rb") as f:
                answer = http.post("/api/uploads", data={"client_id": client_id},
                                   files={"file": ("upload.csv", f, "text/csv")})  # fmt: skip
    finally:
        server.terminate()
        server.wait(30)
    assert answer.status_code == 201, answer.text
    detail = answer.json()
    assert detail["row_count"] == 1, detail
    growth = sampler.peak - baseline
    assert growth < GROWTH_LIMIT, f"the server grew {growth / MB:.0f} MB for a 49 MB line"
