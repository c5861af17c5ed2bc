"""Fixtures shared by the webhook tests: fresh rate limits, an HTTP client, a scripted server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from webhook_servers import ScriptedServer

from enrichflow.webhooks.ratelimit import reset_limits


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    """Rate limiters are process-wide; each test starts with full buckets."""
    reset_limits()
    yield
    reset_limits()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client() as c:
        yield c


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s
