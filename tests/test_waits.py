"""No silent waits, on SQLite and Postgres, through the real sender, receiver and CLI processes,
with the sandbox standing in for Clay (which cannot run here): a process refuses to send when
Clay could not call it back, `doctor` and the launch say so, an interrupted `run` names a command
that finishes its ASYNC steps, and what waits on a callback shows on `status` and the batch API."""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from enrichflow.api.app import create_app
from enrichflow.cli import app as cli_app
from enrichflow.cli import root
from enrichflow.conductor.assembly import executor_for
from enrichflow.conductor.loop import Conductor
from enrichflow.config import Settings
from enrichflow.db.models import Batch, WebhookSubmission
from enrichflow.doctor import preflight_batch, run_checks
from enrichflow.executors.local import LocalExecutor
from enrichflow.services import build_services
from enrichflow.webhooks.callback_base import CallbackBaseUnreachable
from enrichflow.webhooks.sandbox import create_sandbox_app
from reliability.processes import cli_env, start_cli, stop
from test_async_pipeline import (
    COMPANY,
    SECRET,
    batch_status,
    people,
    set_webhook,
    start,
    states,
    tune,
    wait_until,
)
from webhooks.webhook_servers import UvicornThread, free_port

CLAY = "https://api.clay.com/v3/sources/webhook/pull-in-data-0123456789abcdef"
LOOPBACK_BASE = "http://127.0.0.1:8000"
PUBLIC = Settings(_env_file=None, public_url="https://flow.example.com")  # type: ignore[call-arg]
TOKEN = "waits-api-token"


def settings(public_url: str | None) -> Settings:
    return Settings(_env_file=None, public_url=public_url, secret_key=SECRET)  # type: ignore[call-arg]


def flat(text: str) -> str:
    """Rich wraps long lines; compare with whitespace collapsed."""
    return " ".join(text.split())


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> tuple[int, str]:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("enrichflow")), *args],
        env={**env, "COLUMNS": "400"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, flat(done.stdout + done.stderr)


def sent_count(engine: Engine) -> int:
    with engine.connect() as conn:
        total = conn.execute(select(func.sum(WebhookSubmission.submissions))).scalar_one()
    return int(total or 0)


def statuses(engine: Engine, batch_id: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in states(engine, batch_id):
        out[s.status] = out.get(s.status, 0) + 1
    return out


@pytest.fixture(autouse=True)
def _dispose_cli_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In-process CLI commands never dispose their engines: close them before the database is
    dropped."""
    made: list[Engine] = []
    real = root.make_engine

    def tracking(url: str, **kwargs: Any) -> Engine:
        made.append(real(url, **kwargs))
        return made[-1]

    monkeypatch.setattr(root, "make_engine", tracking)
    yield
    for engine in made:
        engine.dispose()


@pytest.fixture
def sandbox() -> Iterator[UvicornThread]:
    with UvicornThread(create_sandbox_app(delay_seconds=0.02)) as server:
        yield server


@pytest.mark.parametrize("public_url", [None, LOOPBACK_BASE])
@pytest.mark.parametrize("command", [["conductor", "--until-idle"], ["serve"]])
def test_a_sender_refuses_to_start_when_clay_could_not_call_back(
    db_url: str, engine: Engine, tmp_path: Path, public_url: str | None, command: list[str]
) -> None:
    set_webhook(engine, "acme", COMPANY, CLAY)
    # launched by a process whose public URL Clay reaches; this one's does not
    batch_id = start(engine, tmp_path, [COMPANY], people(3), settings=PUBLIC)
    extra = {"ENRICHFLOW_PUBLIC_URL": public_url} if public_url else {}
    args = [*command, "--port", str(free_port())] if command == ["serve"] else command
    code, output = run_cli(args, cli_env(db_url, ENRICHFLOW_SECRET_KEY=SECRET, **extra), tmp_path)
    assert code == 2, output
    assert "refusing to send to Clay" in output and "nothing was sent" in output
    if public_url is None:
        assert "ENRICHFLOW_PUBLIC_URL is not set" in output
    else:
        assert f"ENRICHFLOW_PUBLIC_URL={LOOPBACK_BASE} is a loopback address" in output
    assert "client 'acme', workflow 'enrich_company_via_waterfall_in_clay'" in output
    assert "https://api.clay.com/…" in output and "0123456789abcdef" not in output
    assert statuses(engine, batch_id) == {"PENDING": 3}
    assert sent_count(engine) == 0


def test_the_executor_checks_only_the_batches_it_drives(
    db_url: str, engine: Engine, tmp_path: Path, sandbox: UvicornThread
) -> None:
    set_webhook(engine, "acme", COMPANY, CLAY)
    set_webhook(engine, "local", COMPANY, f"{sandbox.url}/webhook/companies")
    clay_batch = start(engine, tmp_path, [COMPANY], people(2), settings=PUBLIC)
    local_batch = start(engine, tmp_path, [COMPANY], people(2), client="local")
    loopback = settings(LOOPBACK_BASE)
    with pytest.raises(CallbackBaseUnreachable, match="client 'acme'"):
        executor_for(engine, loopback)
    with pytest.raises(CallbackBaseUnreachable):
        executor_for(engine, loopback, batch_ids=[clay_batch])
    executor_for(engine, loopback, batch_ids=[local_batch]).close()
    executor_for(engine, settings("https://flow.example.com")).close()


def test_the_sender_refuses_each_row_when_the_base_is_unset(
    db_url: str, engine: Engine, tmp_path: Path, sandbox: UvicornThread
) -> None:
    """A batch launched elsewhere reaches a process without ENRICHFLOW_PUBLIC_URL that started
    before it (so its start-up check saw nothing to send): each row fails at once, unsent."""
    tune(engine, COMPANY, dedupe_by="off", reuse_days=0)
    executor = LocalExecutor(engine, 2, build_services(engine, settings(None)))
    set_webhook(engine, "acme", COMPANY, f"{sandbox.url}/webhook/companies")
    batch_id = start(engine, tmp_path, [COMPANY], people(4))
    try:
        Conductor(engine, executor, chunk_size=10, poll_interval=0.02).run_until_finished(
            [batch_id]
        )
    finally:
        executor.close()
    failed = states(engine, batch_id)
    assert {s.status for s in failed} == {"FAILED"}
    assert all(
        s.error.startswith("ENRICHFLOW_PUBLIC_URL is not set") and "nothing was sent" in s.error
        for s in failed
    )
    assert httpx.get(f"{sandbox.url}/stats").json()["received"] == 0
    assert sent_count(engine) == 0


def test_doctor_and_the_launch_refuse_a_base_clay_could_not_reach(
    db_url: str, engine: Engine, tmp_path: Path, sandbox: UvicornThread
) -> None:
    set_webhook(engine, "local", COMPANY, f"{sandbox.url}/webhook/companies")

    def public_url_check(base: str | None) -> Any:
        return {c.name: c for c in run_checks(engine, settings(base), "local")}["public url"]

    # the sandbox on loopback with a loopback base is fine; an unset base is not
    assert public_url_check(LOOPBACK_BASE).ok
    unset = public_url_check(None)
    assert not unset.ok and "ENRICHFLOW_PUBLIC_URL" in unset.detail

    set_webhook(engine, "acme", COMPANY, CLAY)
    loopback = public_url_check(LOOPBACK_BASE)
    assert not loopback.ok
    assert f"ENRICHFLOW_PUBLIC_URL={LOOPBACK_BASE} is a loopback address" in loopback.detail
    assert "client 'acme'" in loopback.detail and "0123456789abcdef" not in loopback.detail
    assert public_url_check("https://flow.example.com").ok

    with engine.connect() as conn:
        assert (
            preflight_batch(conn, "local", "apollo_scrape", [COMPANY], settings(LOOPBACK_BASE))
            == []
        )
        refused = preflight_batch(conn, "acme", "apollo_scrape", [COMPANY], settings(LOOPBACK_BASE))
    assert [c.name for c in refused] == ["public url"]

    env = cli_env(db_url, ENRICHFLOW_SECRET_KEY=SECRET, ENRICHFLOW_PUBLIC_URL=LOOPBACK_BASE)
    code, output = run_cli(["doctor"], env, tmp_path)
    assert code != 0 and "is a loopback address" in output, output
    leads = tmp_path / "leads.csv"
    leads.write_text("First Name,Last Name,Email,Company\nA,B,a@b.com,C\n", encoding="utf-8")
    code, output = run_cli(
        ["run", str(leads), "--client", "acme", "--steps", COMPANY], env, tmp_path
    )
    assert code == 2 and "public url: ENRICHFLOW_PUBLIC_URL=" in output, output


def test_what_waits_on_clay_shows_on_status_and_the_batch_api(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    """The sandbox loses a share of its callbacks: those rows wait, and `status` (text and
    JSON) and GET /api/batches/{id} say how many, since when and until when, per step."""
    n = 40
    tune(engine, COMPANY, dedupe_by="off", reuse_days=0, callback_timeout_seconds=3600)
    with UvicornThread(create_sandbox_app(delay_seconds=0.02, loss_rate=0.3, seed=3)) as sandbox:
        base = settings(None)
        api_settings = Settings(_env_file=None, secret_key=SECRET, api_token=TOKEN)  # type: ignore[call-arg]
        holder: dict[str, LocalExecutor] = {}
        receiver = UvicornThread(create_app(engine, api_settings, lambda: holder["x"].wake()))
        executor = LocalExecutor(engine, 4, build_services(engine, base, receiver.url))
        holder["x"] = executor
        set_webhook(engine, "acme", COMPANY, f"{sandbox.url}/webhook/companies")
        batch_id = start(engine, tmp_path, [COMPANY], people(n))
        stopped = threading.Event()
        conductor = Conductor(engine, executor, chunk_size=50, poll_interval=0.02)
        thread = threading.Thread(
            target=conductor.run_until_finished, args=([batch_id],),
            kwargs={"interrupted": stopped.is_set}, daemon=True,
        )  # fmt: skip
        with receiver:
            thread.start()
            try:

                def settled() -> bool:
                    stats = httpx.get(f"{sandbox.url}/stats").json()
                    done = statuses(engine, batch_id).get("COMPLETED", 0)
                    return stats["accepted"] == n and done + stats["lost"] == n

                wait_until(settled, 60, "every row sent and every kept callback landed")
                lost = httpx.get(f"{sandbox.url}/stats").json()["lost"]
                assert 0 < lost < n
                with httpx.Client(
                    base_url=receiver.url, headers={"authorization": f"Bearer {TOKEN}"}
                ) as api:
                    detail = api.get(f"/api/batches/{batch_id}").json()
            finally:
                stopped.set()
                thread.join(30)
                executor.close()

    [waiting] = detail["waiting"]
    assert waiting["step"] == COMPANY and waiting["waiting"] == lost
    assert 0 <= waiting["oldest_wait_seconds"] < 60
    assert 3500 < waiting["next_deadline_in_seconds"] <= 3600
    assert waiting["oldest_sent_at"] and waiting["next_deadline_at"]

    result = CliRunner().invoke(
        cli_app, ["status", str(batch_id), "--json", "--database-url", db_url]
    )
    assert result.exit_code == 0, result.output
    [shown] = json.loads(result.output)["waiting"]
    assert shown["step"] == COMPANY and shown["waiting"] == lost
    assert 3500 < shown["next_deadline_in_seconds"] <= 3600
    result = CliRunner().invoke(cli_app, ["status", str(batch_id), "--database-url", db_url])
    text = flat(result.output)
    assert f"{COMPANY}: {lost} waiting on Clay's callback, oldest sent" in text
    assert "next deadline in 59 min" in text or "next deadline in 1 h" in text


def test_an_interrupted_run_names_the_command_that_finishes_it(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    """SIGINT to a real `enrichflow run` while its rows wait on late callbacks: the advice is
    `serve` on the run's address, and running it finishes the batch, each row once."""
    n = 12
    tune(engine, COMPANY, dedupe_by="off", reuse_days=0, callback_timeout_seconds=300)
    port = free_port()
    env = cli_env(
        db_url, ENRICHFLOW_SECRET_KEY=SECRET, ENRICHFLOW_PUBLIC_URL=f"http://127.0.0.1:{port}"
    )
    env["COLUMNS"] = "400"
    leads = tmp_path / "leads.csv"
    lines = ["First Name,Last Name,Email,Company,Website,Title", *people(n)]
    leads.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log = tmp_path / "run.log"
    # Clay calls back late, and keeps trying for a while, as long as `run` takes to stop
    # and `serve` to start on this machine.
    app = create_sandbox_app(delay_seconds=0.02, late_seconds=6.0, callback_attempts=12)
    with UvicornThread(app) as sandbox:
        set_webhook(engine, "acme", COMPANY, f"{sandbox.url}/webhook/companies")
        run = start_cli(
            ["run", str(leads), "--client", "acme", "--steps", COMPANY, "--port", str(port)],
            env,
            log,
        )
        serve: subprocess.Popen[bytes] | None = None
        try:
            wait_until(
                lambda: httpx.get(f"{sandbox.url}/stats").json()["accepted"] == n,
                30,
                "every row sent",
            )
            run.send_signal(signal.SIGINT)
            assert run.wait(timeout=30) == 130
            output = flat(log.read_text())
            found = re.search(r"resumes with: (.*?) \(it receives", output)
            assert found, output
            advice = shlex.split(found.group(1))
            assert advice[:2] == [f"ENRICHFLOW_PUBLIC_URL=http://127.0.0.1:{port}", "enrichflow"]
            assert advice[2:] == ["serve", "--host", "127.0.0.1", "--port", str(port)]
            with engine.connect() as conn:
                batch_id = conn.execute(select(func.max(Batch.id))).scalar_one()
            assert batch_status(engine, batch_id) == "RUNNING"
            serve = start_cli(advice[2:], env, tmp_path / "serve.log")
            wait_until(
                lambda: batch_status(engine, batch_id) == "COMPLETED", 90, "the batch to finish"
            )
        finally:
            stop(run)
            if serve is not None:
                stop(serve)
        assert statuses(engine, batch_id) == {"COMPLETED": n}
        stats = httpx.get(f"{sandbox.url}/stats").json()
        assert stats["received"] == n, stats
