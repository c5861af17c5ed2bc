"""``kill -9`` of a real ``enrichflow conductor`` process in the middle of a 20,000-item batch;
a restarted ``enrichflow conductor --until-idle`` finishes it with the invariants intact."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from invariants import batch_status, check_invariants, count_status
from processes import cli_env, kill_9, start_cli, stop, tune
from sqlalchemy import Engine

from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.seed import APOLLO
from handlers_for_tests import write_csv

N = 20_000
STEPS = ["normalize_company_name", "normalize_company_domain"]


@pytest.mark.slow
def test_conductor_killed_mid_batch_then_restarted(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    for slug in STEPS:
        tune(engine, slug, lease_seconds=2, backoff_base_seconds=0.05)
    report = ingest_csv(engine, write_csv(tmp_path / "leads.csv", N))
    batch_id = launch(engine, "acme", APOLLO, report.upload_id, steps=STEPS, create_client=True)
    env = cli_env(db_url)
    log = tmp_path / "conductor.log"
    first = start_cli(["conductor"], env, log)
    try:
        deadline = time.monotonic() + 120
        while count_status(engine, batch_id, "COMPLETED") < 3_000:
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the first conductor made no progress"
            time.sleep(0.02)
        kill_9(first)
    finally:
        stop(first)
    done_at_kill = count_status(engine, batch_id, "COMPLETED")
    assert done_at_kill < 2 * N, "the batch finished before the kill; make it bigger"
    assert batch_status(engine, batch_id) == "RUNNING"

    started = time.monotonic()
    proc = start_cli(["conductor", "--until-idle"], env, log)
    try:
        proc.wait(timeout=240)
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert batch_status(engine, batch_id) == "COMPLETED"
    counts = check_invariants(engine, batch_id, N)
    assert counts == {"COMPLETED": N * len(STEPS)}
    print(f"killed at {done_at_kill} done; restart finished in {time.monotonic() - started:.1f} s")
