"""Clay's limits end to end on SQLite and Postgres: the real sender, conductor, local executor
and callback receiver on 127.0.0.1, with the sandbox standing in for Clay (which cannot run
here) and enforcing Clay's per-webhook lifetime and rate limits and losing callbacks.

A launch checks only its own client's webhook URLs for the steps it runs; a full URL hands over
to the next configured one, in the sender and in the preflight alike."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from enrichflow.cli import app
from enrichflow.config import Settings
from enrichflow.doctor import run_checks
from enrichflow.errors import ConfigError
from enrichflow.webhooks.ratelimit import reset_limits
from enrichflow.webhooks.sandbox import create_sandbox_app
from test_async_pipeline import (
    COMPANY,
    Service,
    batch_status,
    people,
    results_of,
    start,
    states,
)
from webhooks.webhook_servers import UvicornThread


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    reset_limits()
    yield
    reset_limits()


@pytest.fixture
def receiver(engine: Engine) -> Iterator[Service]:
    svc = Service(engine)
    with svc.server:
        try:
            yield svc
        finally:
            assert svc.executor is not None
            svc.executor.close()
            svc.http.close()


def cli(db_url: str, *args: str) -> None:
    result = CliRunner().invoke(app, [*args, "--database-url", db_url])
    assert result.exit_code == 0, result.output


def sandbox_stats(sandbox: UvicornThread) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(f"{sandbox.url}/stats").json()
    return stats


def tables(engine: Engine, batch_id: int) -> Counter[str]:
    """How many of the batch's rows each sandbox table (webhook) enriched."""
    return Counter(p["table"] for p in results_of(engine, batch_id, COMPANY).values())


def test_a_full_url_blocks_only_its_client_and_a_fresh_one_takes_over(
    db_url: str, engine: Engine, tmp_path: Path, receiver: Service
) -> None:
    with UvicornThread(create_sandbox_app(delay_seconds=0.02, max_submissions=3)) as sandbox:
        hook = f"{sandbox.url}/webhook"
        # no reuse: the last batch repeats the first one's companies, and must send them
        cli(db_url, "workflow", "set", COMPANY, "max_submissions=3", "backoff_base_seconds=0.05",
            "reuse_days=0")  # fmt: skip
        cli(db_url, "config", "set", "acme", COMPANY, f"webhook_url={hook}/acme-1")
        cli(db_url, "config", "set", "globex", COMPANY, f"webhook_url={hook}/globex-1",
            f"webhook_url={hook}/globex-2")  # fmt: skip

        first = start(engine, tmp_path, [COMPANY], people(3), client="acme")
        receiver.drive(first)
        assert batch_status(engine, first) == "COMPLETED"
        assert tables(engine, first) == {"acme-1": 3}

        with pytest.raises(ConfigError) as refused:
            start(engine, tmp_path, [COMPANY], people(1), client="acme")
        message = str(refused.value)
        assert f"client 'acme', workflow '{COMPANY}'" in message
        assert "every webhook URL (1) has reached its 3 submission limit" in message
        assert "3/3" in message and "'webhook_url+=" in message
        assert "acme-1" not in message  # a webhook URL is a credential: shown redacted
        checks = {c.name: c for c in run_checks(engine, Settings(executor="local"))}
        assert not checks["clay sources"].ok and "'acme'" in checks["clay sources"].detail

        # another client is not blocked, and its four rows fill its first URL, then the next
        other = start(engine, tmp_path, [COMPANY], people(4), client="globex")
        receiver.drive(other)
        assert batch_status(engine, other) == "COMPLETED"
        assert tables(engine, other) == {"globex-1": 3, "globex-2": 1}

        # the full client's batches without a Clay step are not blocked either
        sync_only = start(engine, tmp_path, ["normalize_company_name"], people(2), client="acme")
        receiver.drive(sync_only)
        assert batch_status(engine, sync_only) == "COMPLETED"

        cli(db_url, "config", "set", "acme", COMPANY, f"webhook_url+={hook}/acme-2")
        again = start(engine, tmp_path, [COMPANY], people(2), client="acme")
        receiver.drive(again)
        assert batch_status(engine, again) == "COMPLETED"
        assert tables(engine, again) == {"acme-2": 2}
        # the sender never sent to a full webhook: Clay refused nothing
        assert sandbox_stats(sandbox)["over_limit"] == 0
        checks = {c.name: c for c in run_checks(engine, Settings(executor="local"))}
        assert checks["clay sources"].ok, checks["clay sources"]


def test_the_sender_waits_as_long_as_retry_after_says(
    db_url: str, engine: Engine, tmp_path: Path, receiver: Service
) -> None:
    """Clay takes one row a second here and answers 429 with ``Retry-After: 1`` to the others.
    With a back-off of 0.05 s, three attempts would be over in well under a second if the
    header were ignored, and the third row would fail."""
    sandbox_app = create_sandbox_app(delay_seconds=0.02, rate_per_second=1.0, burst=1)
    with UvicornThread(sandbox_app) as sandbox:
        cli(db_url, "workflow", "set", COMPANY, "max_attempts=3", "backoff_base_seconds=0.05")
        cli(db_url, "config", "set", "acme", COMPANY, f"webhook_url={sandbox.url}/webhook/t")
        batch_id = start(engine, tmp_path, [COMPANY], people(3))
        began = time.monotonic()
        receiver.drive(batch_id)
        took = time.monotonic() - began
        stats = sandbox_stats(sandbox)
    done = states(engine, batch_id)
    assert [s.status for s in done] == ["COMPLETED"] * 3
    extra_attempts = sum(s.attempt - 1 for s in done)
    assert extra_attempts >= 2 and stats["rate_limited"] == extra_attempts
    assert stats["accepted"] == 3
    # each retry waited the second Clay asked for
    assert took >= max(s.attempt for s in done) - 1


def test_lost_callbacks_are_sent_again_after_their_deadline(
    db_url: str, engine: Engine, tmp_path: Path, receiver: Service
) -> None:
    with UvicornThread(create_sandbox_app(delay_seconds=0.02, loss_rate=0.5, seed=7)) as sandbox:
        cli(db_url, "workflow", "set", COMPANY, "callback_timeout_seconds=0.5", "max_attempts=6",
            "backoff_base_seconds=0.05")  # fmt: skip
        cli(db_url, "config", "set", "acme", COMPANY, f"webhook_url={sandbox.url}/webhook/t")
        batch_id = start(engine, tmp_path, [COMPANY], people(6))
        receiver.drive(batch_id)
        stats = sandbox_stats(sandbox)
    done = states(engine, batch_id)
    assert [s.status for s in done] == ["COMPLETED"] * 6
    assert stats["lost"] >= 1
    assert sum(s.attempt for s in done) == stats["accepted"] == 6 + stats["lost"]
