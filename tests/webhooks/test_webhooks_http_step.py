"""The generic SYNC ``http`` handler against a real scripted server on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from webhook_servers import Reply, ScriptedServer, make_context

from enrichflow.errors import PermanentStepError, RetryableStepError
from enrichflow.steps.base import ItemIdentity
from enrichflow.steps.http import call_http, keep_paths
from enrichflow.steps.registry import _HANDLERS

API_KEY = "sk-live-abcdef123456"

RESPONSE = {
    "data": {
        "company": {"employees": 12, "name": "Example"},
        "industry": "Software",
        "tags": [{"v": "a"}, {"v": "b"}],
    },
    "other": 1,
}


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(responder=lambda _req: Reply(200, RESPONSE)) as s:
        yield s


def context(http_client: httpx.Client, workflow_config: dict[str, Any], **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "step": "company_api",
        "identity": ItemIdentity(company_name="Example Inc", company_domain="example.com"),
        "original_data": {"Company": "Example Inc & Co", "Country": "DE"},
        "fields": {"website": "https://example.com"},
        "results": {"find_size": {"employees": 40, "tags": ["b2b", "saas"]}},
        "client_config": {"api_key": API_KEY},
        "workflow_config": workflow_config,
        "services": {"http_client": http_client},
    }
    values.update(overrides)
    return make_context(**values)


def test_registered_as_http() -> None:
    assert _HANDLERS["http"] is call_http


def test_templating_secret_headers_and_keep(client: httpx.Client, server: ScriptedServer) -> None:
    config = {
        "url": server.url + "/companies/{company_domain}?name={Company}&key={secret:api_key}",
        "headers": {"authorization": "Bearer {secret:api_key}", "x-country": "{Country}"},
        "body": {
            "domain": "{company_domain}",
            "size": "{find_size.employees}",
            "tags": "{results.find_size.tags}",
            "label": "{identity.company_name} ({row.Country}) has {find_size.employees} people",
            "list": ["{company_domain}", 3, None, True],
            "fixed": 5,
            "web": "{website} {fields.website}",
        },
        "keep": ["data.company.employees", "data.industry", "not.there"],
    }
    result = call_http(context(client, config))
    assert result == {"data": {"company": {"employees": 12}, "industry": "Software"}}

    (req,) = server.requests
    assert req.method == "POST"
    assert req.path == (
        "/companies/example.com?name=Example%20Inc%20%26%20Co&key=sk-live-abcdef123456"
    )
    assert req.headers["authorization"] == f"Bearer {API_KEY}"
    assert req.headers["x-country"] == "DE"
    assert req.json() == {
        "domain": "example.com",
        "size": 40,
        "tags": ["b2b", "saas"],
        "label": "Example Inc (DE) has 40 people",
        "list": ["example.com", 3, None, True],
        "fixed": 5,
        "web": "https://example.com https://example.com",
    }


def test_keep_as_rename_map_and_list_index(client: httpx.Client, server: ScriptedServer) -> None:
    config = {
        "method": "GET",
        "url": server.url + "/c/{company_domain}",
        "body": {"ignored": "for GET"},
        "keep": {"employees": "data.company.employees", "first_tag": "data.tags.0.v", "x": "y"},
    }
    assert call_http(context(client, config)) == {"employees": 12, "first_tag": "a"}
    (req,) = server.requests
    assert req.method == "GET"
    assert req.body == b""


def test_default_keep_is_whole_object(client: httpx.Client, server: ScriptedServer) -> None:
    assert call_http(context(client, {"url": server.url + "/x"})) == RESPONSE


def test_non_object_and_non_json_responses(client: httpx.Client) -> None:
    with ScriptedServer(
        [
            Reply(200, [1, 2]),
            Reply(200, f"plain text {API_KEY}".encode(), {"content-type": "text/plain"}),
            Reply(204, b""),
            Reply(200, b"<html>", {"content-type": "text/html"}),
        ]
    ) as server:
        cfg = {"url": server.url + "/x", "headers": {"k": "{secret:api_key}"}}
        assert call_http(context(client, cfg)) == {"data": [1, 2]}
        text_result = call_http(context(client, cfg))
        assert text_result["status_code"] == 200
        assert API_KEY not in text_result["text"]
        assert call_http(context(client, cfg)) == {"status_code": 204}
        with pytest.raises(PermanentStepError, match="not JSON"):
            call_http(context(client, dict(cfg, keep=["a"])))


def test_missing_field_is_permanent_and_names_it(
    client: httpx.Client, server: ScriptedServer
) -> None:
    with pytest.raises(PermanentStepError, match="'person_name'"):
        call_http(context(client, {"url": server.url + "/p/{person_name}"}))
    with pytest.raises(PermanentStepError, match=r"'find_size\.revenue'"):
        call_http(context(client, {"url": server.url, "body": {"r": "{find_size.revenue}"}}))
    assert server.requests == []


def test_missing_secret_is_permanent_and_names_it(
    client: httpx.Client, server: ScriptedServer
) -> None:
    config = {"url": server.url, "headers": {"x-api-key": "{secret:other_key}"}}
    with pytest.raises(PermanentStepError) as info:
        call_http(context(client, config))
    assert "'other_key'" in str(info.value)
    assert "client 'acme'" in str(info.value)
    assert server.requests == []


@pytest.mark.parametrize(
    "template",
    ["{company_domain!r}", "{company_domain:>10}", "{}", "{secret}", "{unclosed", "}"],
)
def test_unsupported_templates(client: httpx.Client, server: ScriptedServer, template: str) -> None:
    with pytest.raises(PermanentStepError):
        call_http(context(client, {"url": server.url + "/" + template}))


def test_attribute_access_cannot_escape(client: httpx.Client, server: ScriptedServer) -> None:
    with pytest.raises(PermanentStepError, match="has no value"):
        call_http(context(client, {"url": server.url + "/{Company.__class__}"}))


def test_500_is_retryable_and_hides_secret(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with ScriptedServer([Reply(503, {"echo": API_KEY}, {"Retry-After": "3"})]) as server:
        config = {
            "url": server.url + "/c?key={secret:api_key}",
            "headers": {"authorization": "Bearer {secret:api_key}"},
        }
        with pytest.raises(RetryableStepError) as info:
            call_http(context(client, config))
    assert info.value.retry_after == 3.0
    assert "HTTP 503" in str(info.value)
    for text in [str(info.value), *(r.getMessage() for r in caplog.records)]:
        assert API_KEY not in text


def test_400_is_permanent_with_redacted_excerpt(client: httpx.Client) -> None:
    with ScriptedServer([Reply(400, {"error": f"bad key {API_KEY}"})]) as server:
        config = {"url": server.url + "/c", "headers": {"x-api-key": "{secret:api_key}"}}
        with pytest.raises(PermanentStepError) as info:
            call_http(context(client, config))
    assert "HTTP 400" in str(info.value)
    assert "bad key [redacted]" in str(info.value)
    assert API_KEY not in str(info.value)


def test_bad_method_and_missing_url(client: httpx.Client) -> None:
    with pytest.raises(PermanentStepError, match="method"):
        call_http(context(client, {"url": "http://127.0.0.1:1/", "method": "TRACE"}))
    with pytest.raises(PermanentStepError, match="url"):
        call_http(context(client, {}))


def test_keep_paths_unit() -> None:
    data = {"a": {"b": 1, "c": [10, 20]}, "d": None}
    assert keep_paths(data, ["a.b", "d", "a.c.1", "a.x"]) == {
        "a": {"b": 1, "c": {"1": 20}},
        "d": None,
    }
    assert keep_paths(data, {"v": "a.c.0"}) == {"v": 10}
    with pytest.raises(PermanentStepError):
        keep_paths(data, "a.b")
