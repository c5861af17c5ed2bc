"""The ``webhook`` handler against a real scripted server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from webhook_servers import MemoryLedger, Reply, ScriptedServer, make_context

from enrichflow.errors import PermanentStepError, RetryableStepError
from enrichflow.steps.base import Deferred, ItemIdentity
from enrichflow.steps.registry import _HANDLERS
from enrichflow.steps.webhook import (
    AUTH_HEADER,
    WebhookLedger,
    build_payload,
    send_webhook,
    url_key,
)
from enrichflow.webhooks.signing import verify_callback_token

SECRET = "test-secret-key-123"
AUTH = "clay-auth-token-5a5a5a"


def hook_url(server: ScriptedServer, name: str = "a") -> str:
    return f"{server.url}/v3/sources/webhook/pull-in-data-{name}-SECRETPATH"


def context(
    http_client: httpx.Client,
    webhook_url: Any,
    *,
    ledger: MemoryLedger | None = None,
    workflow_config: dict[str, Any] | None = None,
    auth_token: str | None = AUTH,
    **overrides: Any,
) -> Any:
    client_config: dict[str, Any] = {}
    if webhook_url is not None:
        client_config["webhook_url"] = webhook_url
    if auth_token is not None:
        client_config["auth_token"] = auth_token
    services = {
        "public_url": "https://flow.example.com/",
        "secret_key": SECRET,
        "webhook_ledger": ledger if ledger is not None else MemoryLedger(),
        "http_client": http_client,
    }
    return make_context(
        client_config=client_config,
        workflow_config=workflow_config or {},
        services=services,
        **overrides,
    )


def test_registered_as_webhook() -> None:
    assert _HANDLERS["webhook"] is send_webhook
    assert isinstance(MemoryLedger(), WebhookLedger)


def test_sends_payload_and_returns_deferred(
    client: httpx.Client, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ledger = MemoryLedger()
    ctx = context(
        client,
        hook_url(server),
        ledger=ledger,
        results={"find_domain": {"domain": "example.com"}},
        workflow_config={"callback_timeout_seconds": 3600},
    )
    outcome = send_webhook(ctx)

    assert isinstance(outcome, Deferred)
    assert outcome.deadline_seconds == 3600
    assert outcome.meta["webhook"] == f"http://127.0.0.1:{server.port}/…"
    assert outcome.meta["status_code"] == 200
    datetime.fromisoformat(outcome.meta["sent_at"])
    assert "SECRETPATH" not in repr(outcome.meta)

    (req,) = server.requests
    assert req.path == "/v3/sources/webhook/pull-in-data-a-SECRETPATH"
    assert req.headers[AUTH_HEADER] == AUTH
    body = req.json()
    assert body["item_id"] == 1001
    assert body["batch_id"] == 7
    assert body["step"] == "enrich_company"
    assert body["company_name"] == "Example Inc"
    assert body["company_domain"] == "example.com"
    assert body["person_name"] is None
    assert body["results"] == {"find_domain": {"domain": "example.com"}}
    assert body["original_data"] == {"Company": "Example Inc", "Website": "https://example.com"}
    prefix = "https://flow.example.com/callbacks/"
    assert body["callback_url"].startswith(prefix)
    assert verify_callback_token(body["callback_url"][len(prefix) :], SECRET) == (41, 1)

    assert ledger.counts == {url_key(hook_url(server)): 1}
    assert url_key(hook_url(server)) == hashlib.sha256(hook_url(server).encode()).hexdigest()
    for record in caplog.records:
        assert "SECRETPATH" not in record.getMessage()
        assert AUTH not in record.getMessage()


def test_no_auth_header_without_token(client: httpx.Client, server: ScriptedServer) -> None:
    send_webhook(context(client, hook_url(server), auth_token=None))
    assert AUTH_HEADER not in server.requests[0].headers


def test_secret_key_may_be_secretstr(client: httpx.Client, server: ScriptedServer) -> None:
    ctx = context(client, hook_url(server))
    services = dict(ctx.services, secret_key=SecretStr(SECRET))
    send_webhook(make_context(client_config=ctx.client_config, services=services))
    token = server.requests[0].json()["callback_url"].rsplit("/", 1)[1]
    assert verify_callback_token(token, SECRET) == (41, 1)


def test_fields_restrict_original_data_and_results(client: httpx.Client) -> None:
    ctx = context(
        client,
        "http://unused.example/",
        identity=ItemIdentity(person_name="Ada"),
        original_data={"Company": "X", "Notes": "long text", "find_domain": "col"},
        results={"find_domain": {"d": 1}, "score": {"s": 2}},
        workflow_config={"fields": ["Company", "find_domain", "not_there"]},
    )
    payload = build_payload(ctx, "cb")
    assert payload["original_data"] == {"Company": "X", "find_domain": "col"}
    assert payload["results"] == {"find_domain": {"d": 1}}
    assert payload["person_name"] == "Ada"
    assert payload["callback_url"] == "cb"

    empty = build_payload(
        make_context(original_data={"a": 1}, results={"s": {}}, workflow_config={"fields": []}),
        "cb",
    )
    assert empty["original_data"] == {}
    assert empty["results"] == {}

    with pytest.raises(PermanentStepError, match="fields"):
        build_payload(make_context(workflow_config={"fields": "Company"}), "cb")


def test_missing_webhook_url_names_client_workflow_workstream(client: httpx.Client) -> None:
    ctx = context(client, None, client="globex", step="find_people", workstream="abm")
    with pytest.raises(PermanentStepError) as info:
        send_webhook(ctx)
    message = str(info.value)
    assert "no webhook_url configured for client 'globex'" in message
    assert "workflow 'find_people'" in message
    assert "workstream 'abm'" in message
    assert "enrichflow config set" in message


def test_bad_webhook_url_type(client: httpx.Client) -> None:
    with pytest.raises(PermanentStepError, match="list of URLs"):
        send_webhook(context(client, 42))


def test_payload_too_large(client: httpx.Client, server: ScriptedServer) -> None:
    ctx = context(
        client,
        hook_url(server),
        original_data={"blob": "x" * 5000},
        workflow_config={"max_payload_bytes": 2000},
    )
    with pytest.raises(PermanentStepError) as info:
        send_webhook(ctx)
    message = str(info.value)
    assert "more than the 2,000 allowed" in message
    assert "5," in message  # the size, e.g. "5,6xx bytes"
    assert server.requests == []


def test_ledger_rollover_and_warning(
    client: httpx.Client, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = hook_url(server, "a"), hook_url(server, "b")
    ledger = MemoryLedger({url_key(first): 7})
    config = {"max_submissions": 10}
    caplog.set_level(logging.WARNING, logger="enrichflow.test.webhooks")

    send_webhook(context(client, [first, second], ledger=ledger, workflow_config=config))
    assert ledger.counts[url_key(first)] == 8
    assert caplog.records == []  # 8 < 90% of 10

    send_webhook(context(client, [first, second], ledger=ledger, workflow_config=config))
    assert ledger.counts[url_key(first)] == 9
    assert len(caplog.records) == 1
    warning = caplog.records[0].getMessage()
    assert "used 9 of its 10 submissions" in warning
    assert f"http://127.0.0.1:{server.port}/…" in warning
    assert "SECRETPATH" not in warning

    send_webhook(context(client, [first, second], ledger=ledger, workflow_config=config))
    assert ledger.counts[url_key(first)] == 10
    outcome = send_webhook(context(client, [first, second], ledger=ledger, workflow_config=config))
    assert isinstance(outcome, Deferred)
    assert ledger.counts[url_key(second)] == 1
    assert [r.path.rsplit("-", 2)[1] for r in server.requests] == ["a", "a", "a", "b"]
    assert all(k in (url_key(first), url_key(second)) for k in ledger.counts)

    for _ in range(9):
        send_webhook(context(client, [first, second], ledger=ledger, workflow_config=config))
    with pytest.raises(PermanentStepError) as info:
        send_webhook(context(client, [first, second], ledger=ledger, workflow_config=config))
    message = str(info.value)
    assert "fresh webhook" in message
    assert "10 submission limit" in message
    assert "SECRETPATH" not in message
    assert len(server.requests) == 13


def test_warning_from_45000_with_default_limit(
    client: httpx.Client, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = hook_url(server)
    ledger = MemoryLedger({url_key(url): 44_998})
    caplog.set_level(logging.WARNING, logger="enrichflow.test.webhooks")
    send_webhook(context(client, url, ledger=ledger))
    assert caplog.records == []
    send_webhook(context(client, url, ledger=ledger))
    assert "used 45000 of its 50000 submissions" in caplog.records[0].getMessage()


def test_400_is_permanent_and_redacted(
    client: httpx.Client, server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = hook_url(server)
    server.script.append(Reply(400, {"error": f"invalid row sent to {url} with {AUTH}"}))
    with pytest.raises(PermanentStepError) as info:
        send_webhook(context(client, url))
    message = str(info.value)
    assert "HTTP 400" in message
    assert "invalid row sent to" in message
    for text in [message, *(r.getMessage() for r in caplog.records)]:
        assert "SECRETPATH" not in text
        assert AUTH not in text
        assert SECRET not in text


def test_429_is_retryable_with_retry_after(client: httpx.Client, server: ScriptedServer) -> None:
    server.script.append(Reply(429, headers={"Retry-After": "12"}))
    with pytest.raises(RetryableStepError) as info:
        send_webhook(context(client, hook_url(server)))
    assert info.value.retry_after == 12.0


def test_missing_services_are_permanent(client: httpx.Client) -> None:
    ctx = context(client, "http://127.0.0.1:1/x")
    for missing in ("public_url", "secret_key", "webhook_ledger"):
        services = {k: v for k, v in ctx.services.items() if k != missing}
        with pytest.raises(PermanentStepError, match=f"(?i){missing}"):
            send_webhook(make_context(client_config=ctx.client_config, services=services))


def test_rate_limit_option_is_applied(client: httpx.Client, server: ScriptedServer) -> None:
    config = {"rate_per_second": 1, "burst": 1, "rate_limit_wait_seconds": 0.1}
    send_webhook(context(client, hook_url(server), workflow_config=config))
    with pytest.raises(RetryableStepError, match="rate limit") as info:
        send_webhook(context(client, hook_url(server), workflow_config=config))
    assert info.value.retry_after is not None
    assert len(server.requests) == 1
