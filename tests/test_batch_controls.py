"""An operator's controls on a running batch, end to end on SQLite and Postgres: the real
conductor, local executor, Clay sender and callback receiver on 127.0.0.1, with the sandbox
standing in for Clay (which cannot run here). Cancel, pause/resume and resend through the CLI
and the REST API; the step circuit breaker on a 1,000-row batch whose webhook answers 404."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from enrichflow.api.app import create_app
from enrichflow.cli import app, root
from enrichflow.conductor.loop import Conductor
from enrichflow.config import Settings
from enrichflow.db.models import BatchEvent, BatchStep, WorkflowState
from enrichflow.executors.local import LocalExecutor
from enrichflow.services import build_services
from enrichflow.webhooks.ratelimit import reset_limits
from enrichflow.webhooks.sandbox import create_sandbox_app
from enrichflow.webhooks.signing import callback_token
from test_async_pipeline import (
    COMPANY,
    SECRET,
    batch_status,
    people,
    results_of,
    start,
    states,
    wait_until,
)
from webhooks.webhook_servers import UvicornThread

TOKEN = "controls-test-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    reset_limits()
    yield
    reset_limits()


@pytest.fixture(autouse=True)
def _dispose_cli_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``status`` does not dispose its engine; close its pooled connections before the test
    database is dropped (and no ResourceWarning fires at garbage collection)."""
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


class Operated:
    """The callback app (with the REST API) on loopback, a local executor whose handlers call
    back to it, and a conductor running in a thread until the test stops it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        settings = Settings(_env_file=None, secret_key=SECRET, api_token=TOKEN)  # type: ignore[call-arg]
        self.executor: LocalExecutor | None = None
        self.http = httpx.Client(timeout=10)
        web = create_app(engine, settings, lambda: self.executor and self.executor.wake())
        self.server = UvicornThread(web)
        services = build_services(engine, settings, self.server.url)
        self.executor = LocalExecutor(engine, 4, {**services, "http_client": self.http})
        self.api = httpx.Client(
            base_url=self.server.url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    def start_conductor(self) -> None:
        assert self.executor is not None
        conductor = Conductor(self.engine, self.executor, chunk_size=50, poll_interval=0.02)

        def target() -> None:
            try:
                conductor.run(lambda: self._stop.is_set())
            except BaseException as exc:
                self.errors.append(exc)

        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    def stop_conductor(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            assert not self._thread.is_alive()
        assert self.errors == []


@pytest.fixture
def operated(engine: Engine) -> Iterator[Operated]:
    svc = Operated(engine)
    with svc.server:
        try:
            yield svc
        finally:
            svc.stop_conductor()
            assert svc.executor is not None
            svc.executor.close()
            svc.http.close()
            svc.api.close()


def cli(db_url: str, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--database-url", db_url])
    assert result.exit_code == 0, result.output
    return result.output


def received(sandbox: UvicornThread) -> int:
    count: int = httpx.get(f"{sandbox.url}/stats").json()["received"]
    return count


def stats(sandbox: UvicornThread) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{sandbox.url}/stats").json()
    return answer


def quiet_for(sandbox: UvicornThread, seconds: float) -> int:
    """The sandbox's request count once nothing arrived for ``seconds`` (sends in flight when
    a control took effect have landed), asserting it then stays put as long again."""
    deadline = time.monotonic() + 20
    last = received(sandbox)
    while True:
        time.sleep(seconds)
        now = received(sandbox)
        if now == last:
            break
        assert time.monotonic() < deadline, "the sandbox kept receiving rows"
        last = now
    time.sleep(seconds)
    assert received(sandbox) == last
    return last


def events(engine: Engine, batch_id: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [
            (kind, actor)
            for kind, actor in conn.execute(
                select(BatchEvent.kind, BatchEvent.actor)
                .where(BatchEvent.batch_id == batch_id)
                .order_by(BatchEvent.id)
            )
        ]


def statuses(engine: Engine, batch_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            status: n
            for status, n in conn.execute(
                select(WorkflowState.status, func.count())
                .where(WorkflowState.batch_id == batch_id)
                .group_by(WorkflowState.status)
            )
        }


def test_cancel_stops_sending_and_late_callbacks_store_nothing(
    db_url: str, engine: Engine, tmp_path: Path, operated: Operated
) -> None:
    """Clay calls back two seconds late here: the rows sent before the cancel call back after
    it, and are answered 200 cancelled without a result stored."""
    with UvicornThread(create_sandbox_app(delay_seconds=0.05, late_seconds=2.0)) as sandbox:
        cli(db_url, "workflow", "set", COMPANY, "rate_per_second=5", "burst=1", "reuse_days=0")
        cli(db_url, "config", "set", "acme", COMPANY, f"webhook_url={sandbox.url}/webhook/t")
        batch_id = start(engine, tmp_path, [COMPANY], people(40))
        operated.start_conductor()
        wait_until(lambda: received(sandbox) >= 3, what="the first sends")
        output = cli(db_url, "cancel", str(batch_id))
        assert f"batch {batch_id} is CANCELLED" in output
        sent = quiet_for(sandbox, 0.5)
        assert 3 <= sent < 40
        assert batch_status(engine, batch_id) == "CANCELLED"
        assert statuses(engine, batch_id) == {"CANCELLED": 40}
        # the late callbacks of the rows sent before the cancel all reach the receiver
        wait_until(lambda: stats(sandbox)["pending"] == 0, what="the late callbacks")
        assert stats(sandbox)["called_back"] == sent
    assert results_of(engine, batch_id, COMPANY) == {}
    assert statuses(engine, batch_id) == {"CANCELLED": 40}
    assert batch_status(engine, batch_id) == "CANCELLED"
    # what a late callback is answered
    state = states(engine, batch_id)[0]
    token = callback_token(state.id, max(state.attempt, 1), SECRET)
    answer = operated.http.post(f"{operated.server.url}/callbacks/{token}", json={"x": 1})
    assert (answer.status_code, answer.json()) == (200, {"status": "cancelled"})
    assert results_of(engine, batch_id, COMPANY) == {}
    # a finished batch cannot be cancelled, paused or retried into life again
    refused = CliRunner().invoke(app, ["pause", str(batch_id), "--database-url", db_url])
    assert refused.exit_code == 2 and "only a running batch" in refused.output
    assert operated.api.post(f"/api/batches/{batch_id}/cancel").status_code == 409
    assert "0 failed state(s)" in cli(db_url, "retry", str(batch_id))
    assert events(engine, batch_id) == [("cancelled", "cli")]


def test_pause_holds_sends_while_callbacks_land_and_resume_finishes(
    db_url: str, engine: Engine, tmp_path: Path, operated: Operated
) -> None:
    with UvicornThread(create_sandbox_app(delay_seconds=0.05)) as sandbox:
        cli(db_url, "workflow", "set", COMPANY, "rate_per_second=5", "burst=1", "reuse_days=0")
        cli(db_url, "config", "set", "acme", COMPANY, f"webhook_url={sandbox.url}/webhook/t")
        batch_id = start(engine, tmp_path, [COMPANY], people(20))
        operated.start_conductor()
        wait_until(lambda: received(sandbox) >= 3, what="the first sends")
        paused = operated.api.post(f"/api/batches/{batch_id}/pause")
        assert paused.status_code == 200, paused.text
        assert paused.json()["batch"]["controls"]["paused"] is True
        sent = quiet_for(sandbox, 0.5)
        assert sent < 20
        # callbacks of the rows sent before the pause still land
        wait_until(
            lambda: len(results_of(engine, batch_id, COMPANY)) == sent, what="their callbacks"
        )
        assert batch_status(engine, batch_id) == "RUNNING"
        output = CliRunner().invoke(app, ["status", str(batch_id), "--database-url", db_url])
        assert "paused by an operator" in output.output
        assert operated.api.post(f"/api/batches/{batch_id}/pause").status_code == 409
        cli(db_url, "resume", str(batch_id))
        wait_until(lambda: batch_status(engine, batch_id) == "COMPLETED", timeout=60)
        assert received(sandbox) == 20
    assert len(results_of(engine, batch_id, COMPANY)) == 20
    assert events(engine, batch_id) == [("paused", "api"), ("resumed", "cli")]
    detail = operated.api.get(f"/api/batches/{batch_id}").json()
    assert [e["kind"] for e in detail["controls"]["events"]] == ["resumed", "paused"]
    assert detail["controls"]["paused"] is False


def test_resend_sends_waiting_items_again_and_the_late_callback_is_a_duplicate(
    db_url: str, engine: Engine, tmp_path: Path, operated: Operated
) -> None:
    """The first Clay table calls back after 4 s; the operator points the workflow at a fast
    one and re-sends what waits. Each item lands once, from the new attempt; the first
    attempt's late callback is then a duplicate that changes nothing."""
    slow_app = create_sandbox_app(delay_seconds=0.05, late_seconds=4.0)
    with UvicornThread(slow_app) as slow, UvicornThread(create_sandbox_app(0.05)) as fast:
        cli(db_url, "workflow", "set", COMPANY, "reuse_days=0")
        cli(db_url, "config", "set", "acme", COMPANY, f"webhook_url={slow.url}/webhook/slow")
        batch_id = start(engine, tmp_path, [COMPANY], people(6))
        operated.start_conductor()
        wait_until(lambda: stats(slow)["accepted"] == 6, what="the first sends")
        wait_until(
            lambda: statuses(engine, batch_id) == {"IN_PROGRESS": 6}, what="the sends recorded"
        )
        refused = CliRunner().invoke(
            app, ["resend", str(batch_id), "--step", COMPANY, "--older-than", "1h",
                  "--database-url", db_url],
        )  # fmt: skip
        assert refused.exit_code == 0 and "0 waiting item(s)" in refused.output
        cli(db_url, "config", "set", "acme", COMPANY, f"webhook_url={fast.url}/webhook/fast")
        answer = operated.api.post(
            f"/api/batches/{batch_id}/resend", json={"step": COMPANY, "older_than": "0s"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["states"] == 6
        wait_until(lambda: batch_status(engine, batch_id) == "COMPLETED", what="the new sends")
        landed = results_of(engine, batch_id, COMPANY)
        assert {p["table"] for p in landed.values()} == {"fast"}
        wait_until(lambda: stats(slow)["pending"] == 0, timeout=20, what="the late callbacks")
        assert stats(slow)["called_back"] == 6  # answered 200 duplicate
    assert results_of(engine, batch_id, COMPANY) == landed
    assert [s.attempt for s in states(engine, batch_id)] == [2] * 6
    assert events(engine, batch_id) == [("resent", "cli"), ("resent", "api")]
    bad = operated.api.post(f"/api/batches/{batch_id}/resend", json={"step": COMPANY, "x": 1})
    assert bad.status_code == 422


def test_the_breaker_pauses_a_step_whose_webhook_answers_404(
    db_url: str, engine: Engine, tmp_path: Path, operated: Operated, capsys: Any
) -> None:
    """A deleted Clay table answers 404 to every row: after 20 in a row the step pauses for
    the batch, the other rows are not sent, and once the URL is fixed, retry and resume
    finish the batch."""
    rows = 1000
    with (
        UvicornThread(create_sandbox_app(delay_seconds=0.01, refuse_status=404)) as gone,
        UvicornThread(create_sandbox_app(delay_seconds=0.01)) as fixed,
    ):
        cli(db_url, "workflow", "set", COMPANY, "rate_per_second=200", "burst=50",
            "reuse_days=0", "dedupe_by=off")  # fmt: skip
        cli(db_url, "config", "set", "acme", COMPANY, f"webhook_url={gone.url}/webhook/t")
        batch_id = start(engine, tmp_path, [COMPANY], people(rows))
        operated.start_conductor()
        wait_until(lambda: paused_reason(engine, batch_id) is not None, what="the breaker")
        sent = quiet_for(gone, 0.5)
        with capsys.disabled():
            print(f"\n[{engine.dialect.name}] {sent} of {rows} rows sent before the step paused")
        assert 20 <= sent <= 60
        reason = paused_reason(engine, batch_id)
        assert (
            reason is not None
            and "20 sends in a row failed the same way" in reason
            and "HTTP 404" in reason
        )
        assert batch_status(engine, batch_id) == "RUNNING"
        counts = statuses(engine, batch_id)
        assert counts["FAILED"] == sent and counts["PENDING"] == rows - sent
        shown = CliRunner().invoke(app, ["status", str(batch_id), "--database-url", db_url])
        assert "paused by the circuit breaker" in shown.output and "HTTP 404" in shown.output
        detail = operated.api.get(f"/api/batches/{batch_id}").json()
        assert detail["controls"]["breaker"] == [{"step": COMPANY, "reason": reason}]

        cli(db_url, "config", "set", "acme", COMPANY, f"webhook_url={fixed.url}/webhook/t")
        cli(db_url, "retry", str(batch_id), "--step", COMPANY)
        resumed = cli(db_url, "resume", str(batch_id))
        assert "circuit breaker's pause" in resumed
        wait_until(lambda: batch_status(engine, batch_id) == "COMPLETED", timeout=120)
        assert stats(fixed)["accepted"] == rows
        assert received(gone) == sent
    assert [k for k, _ in events(engine, batch_id)] == ["breaker_tripped", "resumed"]


def paused_reason(engine: Engine, batch_id: int) -> str | None:
    with engine.connect() as conn:
        reason: str | None = conn.execute(
            select(BatchStep.paused_reason).where(BatchStep.batch_id == batch_id)
        ).scalar_one()
        return reason
