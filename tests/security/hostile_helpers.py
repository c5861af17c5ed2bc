"""What the hostile-input and SSRF tests share: turning the egress guard back on (the suite's
conftest allows private targets for its loopback servers) and reading a failed state."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from enrichflow.config import get_settings
from enrichflow.webhooks.egress import ALLOW_ENV


@contextmanager
def private_targets(monkeypatch: pytest.MonkeyPatch, allowed: bool) -> Iterator[None]:
    """``ENRICHFLOW_ALLOW_PRIVATE_TARGETS`` set (``allowed``) or unset for the block, with the
    cached settings read afresh on both sides."""
    with monkeypatch.context() as patch:
        if allowed:
            patch.setenv(ALLOW_ENV, "1")
        else:
            patch.delenv(ALLOW_ENV, raising=False)
        get_settings.cache_clear()
        try:
            yield
        finally:
            get_settings.cache_clear()
    get_settings.cache_clear()
