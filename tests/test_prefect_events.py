"""enrichflow.prefect_events never gets in a launch's or a callback's way: a no-op unless
PREFECT_API_URL is set, and a missing or failing Prefect is logged, never raised. (Real
emission to a real server is tested in test_prefect_flow.py, in the Prefect venv.)"""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from enrichflow import prefect_events


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prefect_events, "_emit", None)
    monkeypatch.setattr(prefect_events, "_unavailable", False)


def test_without_prefect_api_url_nothing_is_imported_or_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setitem(sys.modules, "prefect.events", None)  # an import would raise
    assert prefect_events.batch_launched(1, "acme", "apollo_scrape") is False
    assert prefect_events.callback_received(7, "completed") is False
    assert prefect_events._emit is None and prefect_events._unavailable is False


def test_prefect_not_installed_is_logged_once_and_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setitem(sys.modules, "prefect.events", None)
    assert prefect_events.batch_launched(1, "acme", "apollo_scrape") is False
    assert prefect_events.callback_received(7, "completed") is False
    warnings = [r for r in caplog.records if "prefect is not installed" in r.getMessage()]
    assert len(warnings) == 1
    advice = warnings[0].getMessage()
    assert "make prefect-venv" in advice and ".venv-prefect/" in advice
    assert "pip install" not in advice  # the extra would downgrade FastAPI in this environment


def test_a_failing_emit_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kwargs: Any) -> None:
        raise ConnectionError("server gone")

    module = types.ModuleType("prefect.events")
    module.emit_event = broken  # type: ignore[attr-defined]
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setitem(sys.modules, "prefect.events", module)
    assert prefect_events.batch_launched(1, "acme", "apollo_scrape") is False
    assert any("could not emit" in r.getMessage() for r in caplog.records)


def test_events_carry_the_batch_and_the_state(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[dict[str, Any]] = []

    def record(**kwargs: Any) -> object:
        sent.append(kwargs)
        return object()

    module = types.ModuleType("prefect.events")
    module.emit_event = record  # type: ignore[attr-defined]
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setitem(sys.modules, "prefect.events", module)
    assert prefect_events.batch_launched(12, "acme", "apollo_scrape") is True
    assert prefect_events.callback_received(99, "duplicate") is True
    assert sent[0]["event"] == prefect_events.BATCH_LAUNCHED
    assert sent[0]["resource"]["prefect.resource.id"] == "enrichflow.batch.12"
    assert sent[0]["resource"]["enrichflow.client"] == "acme"
    assert sent[1]["event"] == prefect_events.CALLBACK_RECEIVED
    assert sent[1]["resource"]["prefect.resource.id"] == "enrichflow.state.99"
    assert sent[1]["payload"] == {"outcome": "duplicate"}
