"""The Clay sandbox, run with uvicorn on 127.0.0.1, calling back a real receiver."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from webhook_servers import MemoryLedger, Reply, ScriptedServer, UvicornThread, make_context

from enrichflow.steps.base import Deferred, ItemIdentity
from enrichflow.steps.webhook import send_webhook
from enrichflow.webhooks.sandbox import create_sandbox_app, enrich_row
from enrichflow.webhooks.signing import verify_callback_token

SECRET = "sandbox-test-secret"


def row(callback: str, **fields: Any) -> dict[str, Any]:
    return {"item_id": fields.pop("item_id", 1), "callback_url": callback, **fields}


def test_end_to_end_company_callback(client: httpx.Client) -> None:
    with (
        ScriptedServer() as receiver,
        UvicornThread(create_sandbox_app(delay_seconds=0.05, auth_token="tok-1")) as sandbox,
    ):
        ctx = make_context(
            state_id=501,
            attempt=2,
            identity=ItemIdentity(company_name="Example Inc", company_domain="example.com"),
            client_config={
                "webhook_url": f"{sandbox.url}/webhook/companies",
                "auth_token": "tok-1",
            },
            services={
                "public_url": receiver.url,
                "secret_key": SECRET,
                "webhook_ledger": MemoryLedger(),
                "http_client": client,
            },
        )
        outcome = send_webhook(ctx)
        assert isinstance(outcome, Deferred)
        (callback,) = receiver.wait_for(1)
        # The sandbox counts a callback after the receiver has answered it.
        deadline = time.monotonic() + 10
        stats = client.get(f"{sandbox.url}/stats").json()
        while stats["called_back"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
            stats = client.get(f"{sandbox.url}/stats").json()
        assert client.get(f"{sandbox.url}/healthz").json() == {"ok": True}

    assert callback.method == "POST"
    assert callback.path.startswith("/callbacks/")
    assert verify_callback_token(callback.path.removeprefix("/callbacks/"), SECRET) == (501, 2)
    body = callback.json()
    assert body["sandbox"] is True
    assert body["item_id"] == 1001
    assert body["company_domain"] == "example.com"
    assert isinstance(body["employees"], int)
    assert body["description"].startswith("Sandbox data for Example Inc")
    assert body == enrich_row(
        "companies",
        {"item_id": 1001, "company_name": "Example Inc", "company_domain": "example.com"},
    )
    assert stats["received"] == 1
    assert stats["accepted"] == 1
    assert stats["called_back"] == 1


def test_person_table_returns_positions(client: httpx.Client) -> None:
    with (
        ScriptedServer() as receiver,
        UvicornThread(create_sandbox_app(delay_seconds=0.0)) as sandbox,
    ):
        payload = row(
            f"{receiver.url}/callbacks/x",
            person_name="Ada Lovelace",
            linkedin_url="https://linkedin.com/in/ada",
            original_data={"company_name": "Analytical Engines"},
        )
        assert (
            client.post(f"{sandbox.url}/webhook/find-person-table", json=payload).status_code == 200
        )
        (callback,) = receiver.wait_for(1)
    body = callback.json()
    assert body["sandbox"] is True
    assert body["person_name"] == "Ada Lovelace"
    current, previous = body["positions"]
    assert current["company"] == "Analytical Engines"
    assert current["start"] == "2019-01"
    assert current["end"] is None
    assert previous["end"] == "2018-12"


def test_enrichment_is_deterministic() -> None:
    a = enrich_row("companies", {"company_domain": "acme.test", "company_name": "Acme"})
    b = enrich_row("companies", {"company_domain": "acme.test", "company_name": "Acme"})
    c = enrich_row("companies", {"company_domain": "other.test", "company_name": "Other"})
    assert a == b
    assert a != c
    assert (
        enrich_row("companies", {"company_domain": "x.test", "industry": "Mining"})["industry"]
        == "Mining"
    )


def test_auth_token_checked(client: httpx.Client) -> None:
    with UvicornThread(create_sandbox_app(auth_token="right")) as sandbox:
        url = f"{sandbox.url}/webhook/t"
        payload = row("http://127.0.0.1:1/callbacks/x")
        assert client.post(url, json=payload).status_code == 401
        wrong = client.post(url, json=payload, headers={"x-clay-webhook-auth": "wrong"})
        assert wrong.status_code == 401
        assert (
            client.post(
                url, json={"no": "callback"}, headers={"x-clay-webhook-auth": "right"}
            ).status_code
            == 400
        )
        assert client.get(f"{sandbox.url}/stats").json()["rejected_auth"] == 2


def _statuses(client: httpx.Client, seed: int) -> list[int]:
    app = create_sandbox_app(delay_seconds=60, fail_rate=0.5, seed=seed)
    with UvicornThread(app) as sandbox:
        return [
            client.post(
                f"{sandbox.url}/webhook/t", json=row("http://127.0.0.1:1/callbacks/x", item_id=i)
            ).status_code
            for i in range(16)
        ]


def test_failure_injection_is_deterministic(client: httpx.Client) -> None:
    first = _statuses(client, seed=7)
    assert first == _statuses(client, seed=7)
    assert set(first) == {200, 500}
    assert first != _statuses(client, seed=8)


def test_duplicate_callbacks(client: httpx.Client) -> None:
    with (
        ScriptedServer() as receiver,
        UvicornThread(create_sandbox_app(delay_seconds=0.0, duplicate_rate=1.0)) as sandbox,
    ):
        client.post(f"{sandbox.url}/webhook/t", json=row(f"{receiver.url}/callbacks/d"))
        callbacks = receiver.wait_for(2)
        time.sleep(0.1)
        stats = client.get(f"{sandbox.url}/stats").json()
    assert len(callbacks) == 2
    assert callbacks[0].body == callbacks[1].body
    assert stats["duplicates"] == 1
    assert stats["called_back"] == 2


def test_late_callbacks(client: httpx.Client) -> None:
    with (
        ScriptedServer() as receiver,
        UvicornThread(create_sandbox_app(delay_seconds=0.0, late_seconds=0.6)) as sandbox,
    ):
        client.post(f"{sandbox.url}/webhook/t", json=row(f"{receiver.url}/callbacks/l"))
        time.sleep(0.2)
        assert receiver.requests == []
        assert len(receiver.wait_for(1)) == 1
        assert client.get(f"{sandbox.url}/stats").json()["late"] == 1


def test_callback_retried_while_receiver_fails(client: httpx.Client) -> None:
    with (
        ScriptedServer([Reply(503), Reply(502)]) as receiver,
        UvicornThread(create_sandbox_app(delay_seconds=0.0)) as sandbox,
    ):
        client.post(f"{sandbox.url}/webhook/t", json=row(f"{receiver.url}/callbacks/r"))
        assert len(receiver.wait_for(3)) == 3
        deadline = time.monotonic() + 5
        while client.get(f"{sandbox.url}/stats").json()["called_back"] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_callback_not_retried_on_4xx(client: httpx.Client) -> None:
    with (
        ScriptedServer([Reply(410)]) as receiver,
        UvicornThread(create_sandbox_app(delay_seconds=0.0)) as sandbox,
    ):
        client.post(f"{sandbox.url}/webhook/t", json=row(f"{receiver.url}/callbacks/g"))
        receiver.wait_for(1)
        time.sleep(0.5)
        assert len(receiver.requests) == 1
        assert client.get(f"{sandbox.url}/stats").json()["callback_rejected"] == 1


def test_invalid_rates_rejected() -> None:
    with pytest.raises(ValueError):
        create_sandbox_app(fail_rate=1.5)


def test_rate_limit_per_webhook_answers_429_with_retry_after(client: httpx.Client) -> None:
    with (
        ScriptedServer() as receiver,
        UvicornThread(
            create_sandbox_app(delay_seconds=0.0, rate_per_second=0.5, burst=2)
        ) as sandbox,
    ):
        callback = f"{receiver.url}/callbacks/r"
        answers = [client.post(f"{sandbox.url}/webhook/a", json=row(callback)) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        # the next token is due in 2 s at 0.5 rows per second: Retry-After in whole seconds
        assert answers[2].headers["retry-after"] == "2"
        # another webhook has its own bucket
        assert client.post(f"{sandbox.url}/webhook/b", json=row(callback)).status_code == 200
        stats = client.get(f"{sandbox.url}/stats").json()
        assert (stats["rate_limited"], stats["accepted"]) == (1, 3)
        assert len(receiver.wait_for(3)) == 3


def test_lifetime_limit_per_webhook_answers_403(client: httpx.Client) -> None:
    with (
        ScriptedServer() as receiver,
        UvicornThread(create_sandbox_app(delay_seconds=0.0, max_submissions=2)) as sandbox,
    ):
        callback = f"{receiver.url}/callbacks/l"
        codes = [
            client.post(f"{sandbox.url}/webhook/full", json=row(callback)).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 403]
        refused = client.post(f"{sandbox.url}/webhook/full", json=row(callback))
        assert "submission limit" in refused.json()["error"]
        assert client.post(f"{sandbox.url}/webhook/fresh", json=row(callback)).status_code == 200
        assert client.get(f"{sandbox.url}/stats").json()["over_limit"] == 2
        assert len(receiver.wait_for(3)) == 3


def test_lost_callbacks(client: httpx.Client) -> None:
    with (
        ScriptedServer() as receiver,
        UvicornThread(create_sandbox_app(delay_seconds=0.0, loss_rate=0.5, seed=3)) as sandbox,
    ):
        for i in range(20):
            answer = client.post(
                f"{sandbox.url}/webhook/t", json=row(f"{receiver.url}/callbacks/{i}", item_id=i)
            )
            assert answer.status_code == 200
        stats = client.get(f"{sandbox.url}/stats").json()
        assert 0 < stats["lost"] < 20 and stats["accepted"] == 20
        assert len(receiver.wait_for(20 - stats["lost"])) == 20 - stats["lost"]
        time.sleep(0.3)
        assert len(receiver.requests) == 20 - stats["lost"]


@pytest.mark.parametrize(
    "options",
    [{"loss_rate": -0.1}, {"rate_per_second": 0.0}, {"burst": 0}, {"max_submissions": 0}],
)
def test_invalid_limits_rejected(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        create_sandbox_app(**options)
