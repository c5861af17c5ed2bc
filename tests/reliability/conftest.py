"""Fixtures of the reliability scenarios (helpers live in ``invariants`` and ``processes``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from enrichflow.webhooks.ratelimit import reset_limits
from test_async_pipeline import Service


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    """Webhook rate limits are process-wide; every scenario starts with full buckets."""
    reset_limits()
    yield
    reset_limits()


@pytest.fixture
def service(engine: Engine) -> Iterator[Service]:
    """The callback app on loopback and a local executor (``test_async_pipeline.Service``)."""
    svc = Service(engine)
    with svc.server:
        try:
            yield svc
        finally:
            assert svc.executor is not None
            svc.executor.close()
            svc.http.close()
