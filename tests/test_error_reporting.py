"""Sentry reporting, for real: the SDK sends to a loopback HTTP server standing in for
Sentry's ingest endpoint (DSN ``http://publickey@127.0.0.1:PORT/1``); real sentry.io is never
reached. Each test checks what arrived on the wire: the error is there, the secrets are not."""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sentry_sdk
from sqlalchemy import Engine, insert
from typer.testing import CliRunner

import enrichflow.cli as cli
from enrichflow.api.app import create_app
from enrichflow.cli import root
from enrichflow.config import Settings, get_settings
from enrichflow.db.models import EnrichmentRegistry
from enrichflow.error_reporting import (
    Throttle,
    init_error_reporting,
    scrub_event,
    shutdown_error_reporting,
)
from enrichflow.errors import ConfigError
from enrichflow.seed import APOLLO
from enrichflow.steps.base import JSON, StepContext
from enrichflow.steps.registry import handler
from handlers_for_tests import write_csv
from webhooks.webhook_servers import UvicornThread

WEBHOOK = "https://api.clay.com/v3/sources/webhook/pull-in-data-from-a-webhook-7f3Kq9SECRETHOOK"
API_KEY = "sk_live_51HxAPIKEYSECRET0042"
DB_PASSWORD = "dbpassSECRET77"
SECRET_KEY = "signing-key-SECRET-for-callbacks"
CALLBACK_TOKEN = "17.2.Abcdefghijklmnopqrstuvwxyz0123456789ABCDE"
SECRETS = ("SECRETHOOK", "APIKEYSECRET", DB_PASSWORD, SECRET_KEY, CALLBACK_TOKEN)


@handler("test_leaky_failure")
def leaky_failure(ctx: StepContext) -> JSON:
    """Fails the way a careless HTTP client does: the credentials end up in the message."""
    raise RuntimeError(f"Clay refused POST {WEBHOOK} (x-api-key: {API_KEY})")


class Ingest:
    """A loopback HTTP server that records every envelope the SDK posts."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.paths: list[str] = []
        self.arrived = threading.Condition()
        ingest = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                encoding = self.headers.get("content-encoding", "")
                if encoding == "gzip":
                    raw = gzip.decompress(raw)
                elif encoding == "deflate":
                    raw = zlib.decompress(raw)
                elif encoding:
                    raise AssertionError(f"unexpected content-encoding {encoding}")
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")
                with ingest.arrived:
                    ingest.paths.append(self.path)
                    ingest.bodies.append(raw.decode("utf-8"))
                    ingest.arrived.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.dsn = f"http://publickey@127.0.0.1:{self.server.server_address[1]}/1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        """The error events among the envelopes' items (sessions and the like left out)."""
        found = []
        for body in self.bodies:
            for line in body.splitlines():
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if isinstance(item, dict) and ("exception" in item or "logentry" in item):
                    found.append(item)
        return found

    def wait_for_events(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Generous timeout: this only bounds a failure, it is not a performance claim."""
        sentry_sdk.flush(timeout=timeout)
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.events()) >= n, timeout=timeout)
        return self.events()

    def everything(self) -> str:
        return "\n".join(self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def _dispose_cli_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``run`` leaves its engine open; close it before the test database is dropped."""
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


@pytest.fixture
def ingest(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ingest]:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    server = Ingest()
    try:
        yield server
    finally:
        shutdown_error_reporting()
        get_settings.cache_clear()
        server.close()


def settings(dsn: str | None, **values: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        sentry_dsn=dsn,
        secret_key=SECRET_KEY,
        database_url=f"postgresql://enrich:{DB_PASSWORD}@db.internal:5432/enrichflow",
        **values,
    )


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} reached the Sentry endpoint"


def test_nothing_starts_without_a_dsn() -> None:
    assert init_error_reporting(settings(None)) is False
    assert init_error_reporting(settings("  ")) is False
    assert not sentry_sdk.get_client().is_active()


def test_a_malformed_dsn_is_a_config_error_that_does_not_echo_it() -> None:
    with pytest.raises(ConfigError, match="SENTRY_DSN is not a valid Sentry DSN") as caught:
        init_error_reporting(settings("ftp://nokey-SECRETDSN@"))
    assert "SECRETDSN" not in str(caught.value)
    assert not sentry_sdk.get_client().is_active()


def test_an_error_log_reaches_the_endpoint_scrubbed(ingest: Ingest) -> None:
    assert init_error_reporting(settings(ingest.dsn)) is True
    assert init_error_reporting(settings(ingest.dsn)) is True  # idempotent
    logger = logging.getLogger("enrichflow.conductor.loop")
    logger.warning("sending rows to %s with Authorization: Bearer %s", WEBHOOK, API_KEY)
    try:
        raise ConnectionError(
            f"cannot reach postgresql://enrich:{DB_PASSWORD}@db.internal:5432/enrichflow; "
            f"callback /callbacks/{CALLBACK_TOKEN} signed with {SECRET_KEY}; api_key={API_KEY}"
        )
    except ConnectionError:
        logger.error("POST %s failed", WEBHOOK, exc_info=True)

    events = ingest.wait_for_events(1)
    assert ingest.paths[0] == "/api/1/envelope/"
    assert len(events) == 1
    event = events[0]
    assert event["logger"] == "enrichflow.conductor.loop"
    assert event["logentry"]["params"] == ["https://api.clay.com/…"]
    value = event["exception"]["values"][0]["value"]
    assert value.startswith("cannot reach postgresql://db.internal:5432/…")
    assert "/callbacks/[redacted]" in value and "api_key=[redacted]" in value
    crumbs = [c["message"] for c in event["breadcrumbs"]["values"]]
    assert "sending rows to https://api.clay.com/… with Authorization: [redacted]" in crumbs
    assert all("vars" not in f for f in event["exception"]["values"][0]["stacktrace"]["frames"])
    assert_clean(ingest.everything())


def test_cli_run_reports_a_failing_handler_through_the_runner_log(
    db_url: str, engine: Engine, tmp_path: Path, ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`enrichflow run` turns reporting on; the runner's ERROR log of an unexpected handler
    exception becomes one event (three attempts of two items: throttled to one)."""
    with engine.begin() as conn:
        conn.execute(
            insert(EnrichmentRegistry).values(
                slug="test_leaky_failure", workstream_slug=APOLLO, name="Leaky", type="SYNC",
                handler="test_leaky_failure", description="",
                config={"max_attempts": 3, "backoff_base_seconds": 0.001,
                        "backoff_max_seconds": 0.01},
            )
        )  # fmt: skip
    monkeypatch.setenv("SENTRY_DSN", ingest.dsn)
    get_settings.cache_clear()
    path = write_csv(tmp_path / "leads.csv", 2)
    result = CliRunner().invoke(
        cli.app,
        ["run", str(path), "--steps", "test_leaky_failure", "--database-url", db_url],
        catch_exceptions=False,
    )
    assert result.exit_code == 1, result.output

    events = ingest.wait_for_events(1)
    runner_events = [e for e in events if "handler raised" in e["logentry"]["message"]]
    assert len(runner_events) == 1, [e["logentry"] for e in events]
    exception = runner_events[0]["exception"]["values"][-1]
    assert exception["type"] == "RuntimeError"
    assert exception["value"] == "Clay refused POST https://api.clay.com/… (x-api-key: [redacted])"
    assert_clean(ingest.everything())


CONDUCTOR_CRASH = """
import os
import enrichflow.cli as cli
from enrichflow.conductor.loop import Conductor

def crash(self, *args, **kwargs):
    raise RuntimeError(os.environ["CRASH_MESSAGE"])

Conductor.run_until_finished = crash
cli.main()
"""


def test_a_crashing_conductor_process_is_reported_by_the_excepthook(
    tmp_path: Path, ingest: Ingest
) -> None:
    """`enrichflow conductor` in its own process: an exception escaping the conductor loop
    reaches Sentry through the excepthook and the exit-time flush."""
    env = {
        **os.environ,
        "SENTRY_DSN": ingest.dsn,
        "ENRICHFLOW_SECRET_KEY": SECRET_KEY,
        "CRASH_MESSAGE": f"tick failed near {WEBHOOK} token={API_KEY}",
    }
    db = f"sqlite:///{tmp_path / 'crash.db'}"
    done = subprocess.run(
        [sys.executable, "-c", CONDUCTOR_CRASH, "conductor", "--until-idle",
         "--database-url", db],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr

    events = ingest.wait_for_events(1)
    assert len(events) == 1, ingest.everything()[:2000]
    exception = events[0]["exception"]["values"][-1]
    assert exception["mechanism"]["type"] == "excepthook"
    assert exception["value"] == "tick failed near https://api.clay.com/… token=[redacted]"
    assert_clean(ingest.everything())


def test_api_unhandled_exception_is_reported_without_the_callback_token(
    engine: Engine, ingest: Ingest
) -> None:
    app = create_app(engine, settings(ingest.dsn))
    assert sentry_sdk.get_client().is_active()

    def boom() -> None:
        raise RuntimeError(f"lost the row for {WEBHOOK}")

    app.add_api_route("/callbacks/{token}/boom", boom)
    with UvicornThread(app) as server, httpx.Client(timeout=10) as client:
        response = client.get(
            f"{server.url}/callbacks/{CALLBACK_TOKEN}/boom?api_key={API_KEY}",
            headers={"authorization": f"Bearer {API_KEY}", "x-clay-webhook-auth": API_KEY},
        )
    assert response.status_code == 500

    events = ingest.wait_for_events(1)
    assert len(events) == 1
    event = events[0]
    assert event["exception"]["values"][-1]["value"] == "lost the row for https://api.clay.com/…"
    assert event["request"]["url"] == f"{server.url}/…"
    assert event["request"]["query_string"] == "api_key=[redacted]"
    assert_clean(ingest.everything())


def test_scrub_event_masks_sensitive_keys_and_argv() -> None:
    event = {
        "extra": {
            "sys.argv": [
                "enrichflow", "config", "set", "acme", "wf", f"webhook_url={WEBHOOK}",
                f"auth_token={API_KEY}", "--database-url",
                f"postgresql://u:{DB_PASSWORD}@h/db",
            ]
        },
        "request": {"headers": {"Authorization": f"Bearer {API_KEY}", "Accept": "*/*"}},
        "contexts": {"client": {"auth_token": "x1", "workers": 8}},
        "message": f"signed with {SECRET_KEY}",
    }  # fmt: skip
    scrubbed = scrub_event(event, [SECRET_KEY])
    assert scrubbed["extra"]["sys.argv"][5:] == [
        "webhook_url=https://api.clay.com/…",
        "auth_token=[redacted]",
        "--database-url",
        "postgresql://h/…",
    ]
    assert scrubbed["request"]["headers"] == {"Authorization": "[redacted]", "Accept": "*/*"}
    assert scrubbed["contexts"]["client"] == {"auth_token": "[redacted]", "workers": 8}
    assert scrubbed["message"] == "signed with [redacted]"
    assert_clean(json.dumps(scrubbed))


def test_throttle_lets_one_event_per_kind_per_interval() -> None:
    now = [100.0]
    throttle = Throttle(interval=60.0, clock=lambda: now[0])
    first = {"logger": "enrichflow.runner", "logentry": {"message": "item %s: handler raised"}}
    other = {"logger": "enrichflow.runner", "logentry": {"message": "something else %s"}}
    assert throttle.allow(first)
    assert not throttle.allow(dict(first))
    assert throttle.allow(other)
    now[0] += 59.0
    assert not throttle.allow(first)
    now[0] += 2.0
    assert throttle.allow(first)
    assert throttle.dropped == 2
