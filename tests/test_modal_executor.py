"""The Modal executor against a fake ``modal.Function`` at the SDK boundary, with the real
database checked after each scenario; and the Modal app module building its definitions.

Modal's cloud is never reached from here: ``modal.Function.from_name`` is replaced by a fake
whose ``spawn`` raises, is slow, or runs the chunk in a thread through the same code the
deployed function runs (``deploy/modal_app.run_chunk``)."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import modal
import pytest
from sqlalchemy import Engine, select

from enrichflow.conductor.loop import Conductor
from enrichflow.db.models import Batch, WorkflowState
from enrichflow.executors.modal import FUNCTION_NAME, ModalExecutor
from enrichflow.steps.plugins import discover
from handlers_for_tests import COUNTER, make_batch

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
