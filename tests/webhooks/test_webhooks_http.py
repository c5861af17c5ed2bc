"""Classification of HTTP outcomes against real servers on 127.0.0.1."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from webhook_servers import Reply, ScriptedServer, free_port

from enrichflow.errors import PermanentStepError, RetryableStepError
from enrichflow.webhooks.http import (
    close_shared_client,
    parse_retry_after,
    post_json,
    send_request,
    shared_client,
)

TOKEN = "auth-token-8f7e6d"


def _url(server: ScriptedServer) -> str:
    return f"{server.url}/v3/sources/webhook/secret-path-0042?key=qk-99"


def _assert_clean(message: str, server: ScriptedServer) -> None:
    assert "secret-path-0042" not in message
    assert "qk-99" not in message
    assert TOKEN not in message
    assert f"http://127.0.0.1:{server.port}/…" in message


def test_2xx_returns_response_and_sends_json(client: httpx.Client) -> None:
    with ScriptedServer([Reply(202, {"ok": True})]) as server:
        response = post_json(client, _url(server), {"a": 1, "ü": "é"}, {"x-h": "v"}, 5)
        assert response.status_code == 202
        (req,) = server.requests
    assert req.method == "POST"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["x-h"] == "v"
    assert req.json() == {"a": 1, "ü": "é"}


def test_429_retry_after_seconds(client: httpx.Client) -> None:
    with (
        ScriptedServer([Reply(429, {"error": "slow down"}, {"Retry-After": "7"})]) as server,
        pytest.raises(RetryableStepError) as info,
    ):
        post_json(client, _url(server), {}, {"x-clay-webhook-auth": TOKEN}, 5)
    assert info.value.retry_after == 7.0
    assert "HTTP 429" in str(info.value)
    _assert_clean(str(info.value), server)


def test_429_retry_after_http_date(client: httpx.Client) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    with (
        ScriptedServer([Reply(429, headers={"Retry-After": when})]) as server,
        pytest.raises(RetryableStepError) as info,
    ):
        post_json(client, _url(server), {}, None, 5)
    assert info.value.retry_after is not None
    assert 20 <= info.value.retry_after <= 31


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_retryable(client: httpx.Client, status: int) -> None:
    with (
        ScriptedServer([Reply(status, {"error": "boom"})]) as server,
        pytest.raises(RetryableStepError) as info,
    ):
        post_json(client, _url(server), {}, {"x-clay-webhook-auth": TOKEN}, 5)
    assert not isinstance(info.value, PermanentStepError)
    assert info.value.retry_after is None
    assert f"HTTP {status}" in str(info.value)
    _assert_clean(str(info.value), server)


def test_timeout_is_retryable(client: httpx.Client) -> None:
    with (
        ScriptedServer([Reply(200, delay=1.0)]) as server,
        pytest.raises(RetryableStepError) as info,
    ):
        post_json(client, _url(server), {}, {"x-clay-webhook-auth": TOKEN}, 0.2)
    assert "timed out after 0.2s" in str(info.value)
    _assert_clean(str(info.value), server)


def test_connection_refused_is_retryable(client: httpx.Client) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook/secret-path-0042"
    with pytest.raises(RetryableStepError) as info:
        post_json(client, url, {}, {"x-clay-webhook-auth": TOKEN}, 2)
    message = str(info.value)
    assert "ConnectError" in message
    assert "secret-path-0042" not in message
    assert TOKEN not in message


def test_dropped_connection_is_retryable(client: httpx.Client) -> None:
    with (
        ScriptedServer([Reply(close=True)]) as server,
        pytest.raises(RetryableStepError) as info,
    ):
        post_json(client, _url(server), {}, None, 5)
    _assert_clean(str(info.value), server)


def test_400_is_permanent_with_status_and_redacted_excerpt(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with ScriptedServer() as server:
        url = _url(server)
        echo = {"error": f"bad row for {url} (auth {TOKEN})", "detail": "x" * 1000}
        server.script.append(Reply(400, echo))
        with pytest.raises(PermanentStepError) as info:
            post_json(client, url, {}, {"x-clay-webhook-auth": TOKEN}, 5)
    message = str(info.value)
    assert "HTTP 400" in message
    assert "bad row for" in message
    assert len(message) < 400
    _assert_clean(message, server)
    for record in caplog.records:
        text = record.getMessage()
        assert TOKEN not in text
        assert "secret-path-0042" not in text


def test_redirect_is_permanent(client: httpx.Client) -> None:
    with (
        ScriptedServer([Reply(302, headers={"Location": "http://127.0.0.1:1/x"})]) as server,
        pytest.raises(PermanentStepError, match="HTTP 302"),
    ):
        post_json(client, _url(server), {}, None, 5)


def test_unusable_url_is_permanent(client: httpx.Client) -> None:
    with pytest.raises(PermanentStepError) as info:
        send_request(client, "POST", "ftp://files.example.com/secret-path-0042", json_body={})
    assert "secret-path-0042" not in str(info.value)


def test_bytes_payload_sent_as_is(client: httpx.Client) -> None:
    with ScriptedServer() as server:
        post_json(client, server.url, b'{"raw":true}', None, 5)
        assert server.requests[0].body == b'{"raw":true}'


def test_parse_retry_after() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("Wed, 01 May 2024 12:01:00 GMT", now=now) == 60.0
    assert parse_retry_after("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0.0


def test_shared_client_is_shared_and_closable() -> None:
    try:
        first = shared_client()
        assert shared_client() is first
        assert first.follow_redirects is False
    finally:
        close_shared_client()
    assert first.is_closed
    second = shared_client()
    try:
        assert second is not first
    finally:
        close_shared_client()
