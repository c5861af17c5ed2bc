"""The Modal executor against a fake ``modal.Function`` at the SDK boundary, with the real
database checked after each scenario; and the Modal app module building its definitions.

The fake stands for Modal's cloud only, which cannot run here: ``modal.Function.from_name`` is
replaced by a fake whose ``spawn`` raises, is slow, or runs the chunk in a thread through the
same code the deployed function runs (``deploy/modal_app.run_chunk``). Everything else (the
conductor, the database, the callback receiver, the sandbox standing in for Clay) is real."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import modal
import pytest
from sqlalchemy import Engine, select

from enrichflow.api.app import create_app
from enrichflow.catalog.assignments import parse_assignments
from enrichflow.catalog.client_configs import client_config_set
from enrichflow.conductor.assembly import conductor_for, executor_for
from enrichflow.conductor.loop import Conductor
from enrichflow.config import Settings, get_settings
from enrichflow.db.models import Batch, EnrichmentResult, WorkflowState
from enrichflow.executors.modal import FUNCTION_NAME, ModalExecutor
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.seed import APOLLO
from enrichflow.steps.plugins import discover
from enrichflow.webhooks.sandbox import create_sandbox_app
from handlers_for_tests import COUNTER, make_batch
from webhooks.webhook_servers import UvicornThread

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import deploy.modal_app as modal_app

ws = WorkflowState.__table__


class FakeCall:
    def __init__(self, thread: threading.Thread | None) -> None:
        self.thread = thread


class FakeFunction:
    """Stands in for a deployed ``modal.Function``: only ``spawn`` is used."""

    def __init__(self, spawn: Callable[[list[int]], Any]) -> None:
        self._spawn = spawn
        self.spawns: list[list[int]] = []

    def spawn(self, state_ids: list[int]) -> Any:
        self.spawns.append(list(state_ids))
        return self._spawn(state_ids)


@pytest.fixture
def fake_modal(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Install a fake ``modal.Function.from_name``; tests put the FakeFunction in it."""
    registry: dict[str, Any] = {}
    looked_up: list[tuple[str, str]] = []

    def from_name(app_name: str, name: str, **_: Any) -> Any:
        looked_up.append((app_name, name))
        return registry["function"]

    monkeypatch.setattr(modal.Function, "from_name", staticmethod(from_name))
    registry["looked_up"] = looked_up
    yield registry


def _states(engine: Engine, batch_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(ws).where(ws.c.batch_id == batch_id).order_by(ws.c.id)))


def _drive(engine: Engine, executor: ModalExecutor, batch_id: int, timeout: float = 60) -> None:
    conductor = Conductor(engine, executor, chunk_size=50, poll_interval=0.01, listen=False)
    done = threading.Event()
    thread = threading.Thread(
        target=lambda: (conductor.run_until_finished([batch_id]), done.set()), daemon=True
    )
    thread.start()
    thread.join(timeout)
    assert done.is_set(), f"batch {batch_id} did not finish within {timeout} s"


def _run_remote(engine: Engine, delay: float = 0.0) -> Callable[[list[int]], Any]:
    """A spawn that runs the chunk in a thread, as the deployed function would."""

    def spawn(state_ids: list[int]) -> FakeCall:
        def body() -> None:
            time.sleep(delay)
            modal_app.run_chunk(state_ids)

        thread = threading.Thread(target=body, daemon=True)
        thread.start()
        return FakeCall(thread)

    modal_app._engine = engine
    return spawn


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    COUNTER.reset()
    yield
    modal_app._engine = None


def test_app_module_builds_without_contacting_modal() -> None:
    assert modal_app.app.name == "data-enrichment-workers"
    assert modal_app.run_chunk_function is not None
    assert modal_app.web_function is not None
    assert FUNCTION_NAME == "run_chunk"
    assert callable(modal_app.run_chunk) and callable(modal_app.web)


def test_the_image_carries_the_step_plugins_this_environment_loads() -> None:
    """The container has the plugins' source but no installed entry points, so the image
    names every plugin module in ENRICHFLOW_PLUGINS; requirements skip enrichflow itself."""
    layers = modal_app.plugin_layers(discover("team_steps.scoring"))
    assert layers.packages == ["enrichflow_title_length", "team_steps"]
    assert layers.env == {"ENRICHFLOW_PLUGINS": "enrichflow_title_length,team_steps.scoring"}
    assert layers.requirements == []
    assert modal_app.plugin_layers([]) == modal_app.PluginLayers([], [], {})


def test_spawn_raising_puts_states_back_then_fails_them(
    engine: Engine, tmp_path: Path, fake_modal: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(state_ids: list[int]) -> Any:
        raise RuntimeError("Token missing. Could not authenticate client.")

    fake_modal["function"] = FakeFunction(refuse)
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=3)
    executor = ModalExecutor(engine, "data-enrichment-workers", chunk_size=50)
    conductor = Conductor(engine, executor, chunk_size=50, listen=False)
    with caplog.at_level(logging.ERROR, logger="enrichflow.executors.modal"):
        assert conductor.tick().dispatched == 3
        executor.close()
    # after one failed dispatch: PENDING again, attempt 1 used, the error stored and logged
    rows = _states(engine, batch_id)
    assert {r.status for r in rows} == {"PENDING"}
    assert {r.attempt for r in rows} == {1}
    assert all(
        "could not dispatch to Modal" in r.error and "Token missing" in r.error for r in rows
    )
    assert any("could not dispatch to Modal" in r.message for r in caplog.records)
    assert fake_modal["looked_up"][0] == ("data-enrichment-workers", "run_chunk")

    executor = ModalExecutor(engine, "data-enrichment-workers", chunk_size=50)
    try:
        _drive(engine, executor, batch_id)
    finally:
        executor.close()
    rows = _states(engine, batch_id)
    assert {r.status for r in rows} == {"FAILED"}
    assert {r.attempt for r in rows} == {3}  # the step's max_attempts
    assert all("Token missing" in r.error for r in rows)
    assert COUNTER.snapshot() == {}
    with engine.connect() as conn:
        status = conn.execute(select(Batch.status).where(Batch.id == batch_id)).scalar_one()
    assert status == "COMPLETED_WITH_ERRORS"


def test_spawn_succeeding_runs_every_item_once(
    engine: Engine, tmp_path: Path, fake_modal: dict[str, Any]
) -> None:
    fake_modal["function"] = FakeFunction(_run_remote(engine))
    batch_id = make_batch(engine, tmp_path, ["test_count", "test_count_b"], n=20)
    executor = ModalExecutor(engine, "data-enrichment-workers", chunk_size=50)
    try:
        _drive(engine, executor, batch_id)
    finally:
        executor.close()
    rows = _states(engine, batch_id)
    assert len(rows) == 40
    assert {r.status for r in rows} == {"COMPLETED"}
    assert {r.attempt for r in rows} == {1}
    assert set(COUNTER.snapshot().values()) == {1}
    assert executor.failures == []


def test_slow_spawn_does_not_block_the_conductor(
    engine: Engine, tmp_path: Path, fake_modal: dict[str, Any]
) -> None:
    """The spawn call is held open until the test releases it, so the check
    does not depend on machine speed: a tick that waited on it would only
    return after the spawn had finished."""
    run = _run_remote(engine)
    release = threading.Event()
    spawn_finished = threading.Event()

    def slow(state_ids: list[int]) -> Any:
        release.wait(timeout=30)  # a slow network call
        spawn_finished.set()
        return run(state_ids)

    fake_modal["function"] = FakeFunction(slow)
    batch_id = make_batch(engine, tmp_path, ["test_count"], n=5)
    executor = ModalExecutor(engine, "data-enrichment-workers", chunk_size=50)
    conductor = Conductor(engine, executor, chunk_size=50, listen=False)
    try:
        assert conductor.tick().dispatched == 5
        assert not spawn_finished.is_set()
        # claimed but not started: QUEUED with a lease, attempt 1
        rows = _states(engine, batch_id)
        assert {r.status for r in rows} == {"QUEUED"}
        assert all(r.lease_until is not None for r in rows)
        assert executor.busy()
        release.set()
        _drive(engine, executor, batch_id)
    finally:
        release.set()
        executor.close()
    rows = _states(engine, batch_id)
    assert {r.status for r in rows} == {"COMPLETED"}
    assert {r.attempt for r in rows} == {1}


def test_an_async_batch_completes_through_the_modal_executor(
    engine: Engine, tmp_path: Path, fake_modal: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ENRICHFLOW_EXECUTOR=modal``: the executor and conductor come from the assembly the CLI
    and the Prefect flow use; each chunk runs as the deployed function runs it, whose handlers
    build their services (public URL, secret key, webhook ledger) from the container's settings
    and send every row to the sandbox standing in for Clay; the sandbox calls back a real
    receiver on loopback, whose wake-ups bring the next step's dispatch."""
    company, person = "enrich_company_via_waterfall_in_clay", "enrich_person_via_waterfall_in_clay"
    secret = "modal-async-test-secret-of-32-bytes-long"
    fake_modal["function"] = FakeFunction(_run_remote(engine))
    with (
        UvicornThread(create_sandbox_app(delay_seconds=0.05)) as clay,
        UvicornThread(create_app(engine, Settings(_env_file=None, secret_key=secret))) as receiver,  # type: ignore[call-arg]
    ):
        for name, value in {
            "ENRICHFLOW_EXECUTOR": "modal",
            "ENRICHFLOW_PUBLIC_URL": receiver.url,
            "ENRICHFLOW_SECRET_KEY": secret,
            "ENRICHFLOW_CHUNK_SIZE": "4",
            "ENRICHFLOW_POLL_INTERVAL": "0.05",
            "ENRICHFLOW_ALLOW_PRIVATE_TARGETS": "1",  # the sandbox and the receiver: loopback
            # for launch's preflight; only the fake sees them
            "MODAL_TOKEN_ID": "ak-test",
            "MODAL_TOKEN_SECRET": "as-test",
        }.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        try:
            settings = get_settings()
            with engine.begin() as conn:
                for slug, table in ((company, "company-table"), (person, "person-table")):
                    assignment = f"webhook_url={clay.url}/webhook/{table}"
                    client_config_set(conn, "modal", slug, APOLLO, parse_assignments([assignment]))
            csv_path = tmp_path / "leads.csv"
            lines = [
                f"First{i},Last{i},p{i}@example{i}.com,Company {i},example{i}.com,CEO"
                for i in range(6)
            ]
            csv_path.write_text(
                "First Name,Last Name,Email,Company,Website,Title\n" + "\n".join(lines) + "\n"
            )
            upload = ingest_csv(engine, csv_path).upload_id
            batch_id = launch(
                engine, "modal", APOLLO, upload, steps=["normalize_company_name", company, person],
                create_client=True, settings=settings,
            )  # fmt: skip
            executor = executor_for(engine, settings)
            assert isinstance(executor, ModalExecutor)
            conductor = conductor_for(engine, executor, settings)
            done = threading.Event()
            thread = threading.Thread(
                target=lambda: (conductor.run_until_finished([batch_id]), done.set()), daemon=True
            )
            thread.start()
            thread.join(60)
            executor.close()
            assert done.is_set(), f"batch {batch_id} did not finish within 60 s"
            stats = httpx.get(f"{clay.url}/stats", trust_env=False).json()
        finally:
            get_settings.cache_clear()
    states = _states(engine, batch_id)
    assert len(states) == 18
    assert {r.status for r in states} == {"COMPLETED"}
    assert executor.failures == []
    with engine.connect() as conn:
        status = conn.execute(select(Batch.status).where(Batch.id == batch_id)).scalar_one()
        rs = EnrichmentResult.__table__
        payloads = conn.execute(
            select(rs.c.step_name, rs.c.payload).where(
                rs.c.batch_id == batch_id, rs.c.step_name.in_([company, person])
            )
        ).all()
    assert status == "COMPLETED"
    assert sorted(step for step, _ in payloads) == [company] * 6 + [person] * 6
    assert all(payload["sandbox"] is True for _, payload in payloads)
    assert stats["called_back"] == 12
    # every state went out in exactly one spawn of the fake, and ran once
    spawned = sorted(i for chunk in fake_modal["function"].spawns for i in chunk)
    assert spawned == sorted(r.id for r in states)
    assert {r.attempt for r in states} == {1}
