"""Test-only step handlers, registered at import, and the helpers that set up batches for them.

Each handler is also a registry row in workstream ``apollo_scrape`` (see :func:`register_steps`),
with tiny backoffs so retries run in milliseconds.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select

from enrichflow.catalog.assignments import parse_assignments
from enrichflow.catalog.client_configs import client_config_set
from enrichflow.config import Settings
from enrichflow.db.models import Client, ClientWorkflowConfig, EnrichmentRegistry
from enrichflow.errors import PermanentStepError, RetryableStepError
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.seed import APOLLO
from enrichflow.steps.base import JSON, Skip, StepContext
from enrichflow.steps.registry import handler

FAST = {"max_attempts": 3, "backoff_base_seconds": 0.001, "backoff_max_seconds": 0.01}

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
"""Under CI a missing Postgres, browser or tool is a failure, never a skip."""


class CallCounter:
    """Thread-safe count of handler calls keyed by (item id, step name)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[tuple[int, str]] = Counter()

    def add(self, item_id: int, step: str) -> None:
        with self._lock:
            self.calls[(item_id, step)] += 1

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()

    def snapshot(self) -> Counter[tuple[int, str]]:
        with self._lock:
            return Counter(self.calls)


COUNTER = CallCounter()


@handler("test_count")
def count(ctx: StepContext) -> JSON:
    """Succeeds, recording the call."""
    COUNTER.add(ctx.item_id, ctx.step)
    return {"attempt": ctx.attempt, "item": ctx.item_id}


@handler("test_flaky")
def flaky(ctx: StepContext) -> JSON:
    """Fails ``fail_times`` attempts (config, default 2), then succeeds."""
    COUNTER.add(ctx.item_id, ctx.step)
    fail_times = int(ctx.workflow_config.get("fail_times", 2))
    if ctx.attempt <= fail_times:
        raise RetryableStepError(f"flaky failure on attempt {ctx.attempt}")
    return {"succeeded_on": ctx.attempt}


@handler("test_always_fail")
def always_fail(ctx: StepContext) -> JSON:
    """Raises a plain exception every time (counts as retryable)."""
    COUNTER.add(ctx.item_id, ctx.step)
    raise ValueError(f"boom on attempt {ctx.attempt}")


@handler("test_permanent")
def permanent(ctx: StepContext) -> JSON:
    """Fails permanently: no retry."""
    COUNTER.add(ctx.item_id, ctx.step)
    raise PermanentStepError(f"permanently broken item {ctx.item_id}")


@handler("test_skip")
def skip(ctx: StepContext) -> Skip:
    """Does not apply."""
    COUNTER.add(ctx.item_id, ctx.step)
    return Skip("not applicable in tests")


@handler("test_fail_on_marker")
def fail_on_marker(ctx: StepContext) -> JSON:
    """Fails permanently for rows whose email starts with ``fail``; succeeds otherwise."""
    COUNTER.add(ctx.item_id, ctx.step)
    if (ctx.identity.email or "").startswith("fail"):
        raise PermanentStepError(f"refusing {ctx.identity.email}")
    return {"ok": True}


@handler("test_positions")
def positions(ctx: StepContext) -> JSON:
    """A person enrichment's shape: the row's current position and an earlier one."""
    return {
        "person": {
            "positions": [
                {"company": ctx.fields.get("company_name"), "title": ctx.fields.get("title"),
                 "start_date": {"year": 2021, "month": 3}},
                {"company": {"name": "Initech"}, "title": "Analyst", "start": "2016",
                 "end": "2021-02"},
            ]
        }
    }  # fmt: skip


# slug -> (handler name, config)
TEST_STEPS: dict[str, tuple[str, dict[str, Any]]] = {
    "test_count": ("test_count", FAST),
    "test_count_b": ("test_count", FAST),
    "test_flaky": ("test_flaky", {**FAST, "fail_times": 2}),
    "test_always_fail": ("test_always_fail", FAST),
    "test_permanent": ("test_permanent", FAST),
    "test_skip": ("test_skip", FAST),
    "test_fail_on_marker": ("test_fail_on_marker", FAST),
    "test_positions": ("test_positions", FAST),
}


def register_steps(engine: Engine, overrides: dict[str, dict[str, Any]] | None = None) -> None:
    """Insert the registry rows of the test steps (once per database)."""
    overrides = overrides or {}
    with engine.begin() as conn:
        have = set(
            conn.execute(
                select(EnrichmentRegistry.slug).where(EnrichmentRegistry.workstream_slug == APOLLO)
            ).scalars()
        )
        rows = [
            {
                "slug": slug,
                "workstream_slug": APOLLO,
                "name": slug,
                "type": "SYNC",
                "handler": handler_name,
                "config": {**config, **overrides.get(slug, {})},
                "description": "test step",
            }
            for slug, (handler_name, config) in TEST_STEPS.items()
            if slug not in have
        ]
        if rows:
            conn.execute(EnrichmentRegistry.__table__.insert(), rows)


def write_csv(path: Path, n: int, extra: Sequence[tuple[str, ...]] = ()) -> Path:
    """A small lead list with ``n`` rows (plus ``extra`` rows appended verbatim)."""
    lines = ["First Name,Last Name,Email,Company,Website,Title"]
    lines += [
        f"First{i},Last{i},person{i}@example{i}.com,Company {i},https://example{i}.com,CEO"
        for i in range(n)
    ]
    lines += [",".join(row) for row in extra]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


LOOPBACK_SETTINGS = Settings(_env_file=None, public_url="http://127.0.0.1:8000")  # type: ignore[call-arg]
"""What the launch preflight wants before ASYNC steps: a public URL set explicitly."""

UNCALLED_WEBHOOK = "http://127.0.0.1:9/never-called"
"""The webhook URL given to ASYNC steps whose tests drive the states themselves."""


def make_batch(
    engine: Engine,
    tmp_path: Path,
    steps: Sequence[str],
    n: int = 3,
    client: str = "acme",
) -> int:
    """Register the test steps, ingest ``n`` rows and launch them through ``steps``.

    ASYNC steps among them get :data:`UNCALLED_WEBHOOK` as the client's webhook URL (unless it
    has one) and the launch a loopback public URL, which is what the preflight checks."""
    register_steps(engine)
    with engine.begin() as conn:
        async_steps = (
            conn.execute(
                select(EnrichmentRegistry.slug).where(
                    EnrichmentRegistry.workstream_slug == APOLLO,
                    EnrichmentRegistry.slug.in_(list(steps)),
                    EnrichmentRegistry.type == "ASYNC",
                )
            )
            .scalars()
            .all()
        )
        for slug in async_steps:
            if not client_configs_get(conn, client, slug):
                client_config_set(
                    conn,
                    client,
                    slug,
                    APOLLO,
                    parse_assignments([f"webhook_url={UNCALLED_WEBHOOK}"]),
                )
    path = write_csv(tmp_path / f"leads_{n}.csv", n)
    report = ingest_csv(engine, path)
    return launch(
        engine,
        client,
        APOLLO,
        report.upload_id,
        steps=list(steps),
        create_client=True,
        settings=LOOPBACK_SETTINGS,
    )


def client_configs_get(conn: Connection, client: str, workflow: str) -> dict[str, Any]:
    """The client's stored config for ``workflow`` in the Apollo workstream ({} when none)."""
    row = conn.execute(
        select(ClientWorkflowConfig.config)
        .join(Client, Client.id == ClientWorkflowConfig.client_id)
        .where(
            Client.name == client,
            ClientWorkflowConfig.workflow_slug == workflow,
            ClientWorkflowConfig.workstream_slug == APOLLO,
        )
    ).scalar_one_or_none()
    return dict(row or {})
