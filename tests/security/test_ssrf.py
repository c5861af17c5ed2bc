"""Outbound requests cannot be pointed inside: the egress guard of the webhook sender and the
``http`` step, the ``http`` step's URL templates, and what error excerpts may show.

Every server here is a real one on loopback; with the guard on (the default these tests restore)
loopback is exactly what must be refused, so a server's empty request log proves nothing was
sent. Clay itself cannot run here; the scripted servers stand in for it.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from enrichflow.catalog.assignments import parse_assignments
from enrichflow.catalog.client_configs import client_config_set
from enrichflow.cli import app
from enrichflow.conductor.loop import Conductor
from enrichflow.config import Settings
from enrichflow.db.models import WorkflowState
from enrichflow.errors import ConfigError, PermanentStepError, StepError
from enrichflow.executors.local import LocalExecutor
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.seed import APOLLO
from enrichflow.services import build_services
from enrichflow.steps.http import call_http
from enrichflow.steps.webhook import send_webhook
from enrichflow.webhooks.egress import (
    EgressRefused,
    GuardedClient,
    address_problem,
    check_url_template,
)
from enrichflow.webhooks.ratelimit import reset_limits
from security.hostile_helpers import private_targets
from webhooks.webhook_servers import MemoryLedger, Reply, ScriptedServer, make_context

SECRET = "ssrf-test-secret-ssrf-test-secret"
COMPANY = "enrich_company_via_waterfall_in_clay"
HINT = "set ENRICHFLOW_ALLOW_PRIVATE_TARGETS=1 to allow"


@pytest.fixture(autouse=True)
def _guard_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    reset_limits()
    with private_targets(monkeypatch, allowed=False):
        yield
    reset_limits()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer() as s:
        yield s


def webhook_context(url: str, **services: Any) -> Any:
    return make_context(
        client_config={"webhook_url": url},
        services={
            "public_url": "https://enrichflow.example.com",
            "secret_key": SECRET,
            "webhook_ledger": MemoryLedger(),
            **services,
        },
    )


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.8.9.10", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("0.0.0.0", "an unspecified address"),
        ("224.0.0.1", "a multicast address"),
        ("240.0.0.1", "a private address"),
        ("100.64.0.1", "a non-public address"),
        ("::1", "a loopback address"),
        ("::", "an unspecified address"),
        ("fe80::1", "a link-local address"),
        ("fc00::1", "a private address"),
        ("ff02::1", "a multicast address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("::ffff:169.254.169.254", "a link-local address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("2002:7f00:1::", "a loopback address"),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_problem(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("http://127.0.0.1:{port}/hook", "127.0.0.1 is a loopback address"),
        ("http://localhost:{port}/hook", "localhost is a loopback address"),
        ("http://[::1]:{port}/hook", "::1 is a loopback address"),
        ("http://[::ffff:127.0.0.1]:{port}/hook", "::ffff:127.0.0.1 is a loopback address"),
        ("http://0.0.0.0:{port}/hook", "0.0.0.0 is an unspecified address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("http://10.0.0.1:5432/", "10.0.0.1 is a private address"),
        ("http://inside.test:{port}/hook", "inside.test resolves to 127.0.0.1, a loopback"),
    ],
)
def test_webhook_to_an_inside_address_is_refused_and_nothing_sent(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, template: str, why: str
) -> None:
    """A literal address is refused as the URL is read (before a submission is counted); a
    name only once resolved, as the connection is opened."""
    monkeypatch.setattr(socket, "getaddrinfo", RebindingDns("inside.test", ["127.0.0.1"]))
    url = template.format(port=server.port)
    with pytest.raises(PermanentStepError) as refused:
        send_webhook(webhook_context(url))
    message = str(refused.value)
    assert message.startswith("webhook_url http://"), message
    assert why in message and HINT in message, message
    assert "/hook" not in message and "meta-data" not in message
    assert not refused.value.retryable
    assert server.requests == []


def test_the_same_webhook_is_sent_when_private_targets_are_allowed(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with private_targets(monkeypatch, allowed=True):
        send_webhook(webhook_context(f"http://127.0.0.1:{server.port}/hook"))
    assert [r.path for r in server.requests] == ["/hook"]


def test_a_client_passed_in_is_vetted_too(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller's own client (not the guarded shared one) gets the same check before sending."""
    monkeypatch.setattr(socket, "getaddrinfo", RebindingDns("inside.test", ["127.0.0.1"]))
    url = f"http://inside.test:{server.port}/hook"
    with httpx.Client() as plain, pytest.raises(EgressRefused, match="a loopback address"):
        send_webhook(webhook_context(url, http_client=plain))
    assert server.requests == []


def test_guarded_client_checks_every_connection_and_never_follows_redirects(
    server: ScriptedServer,
) -> None:
    with GuardedClient() as client:
        assert client.follow_redirects is False
        with pytest.raises(EgressRefused, match=r"127\.0\.0\.1 is a loopback address"):
            client.get(f"{server.url}/direct")
    assert server.requests == []


def test_a_redirect_is_not_followed(monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        ScriptedServer() as inside,
        ScriptedServer([Reply(302, headers={"Location": f"{inside.url}/admin"})]) as outside,
        private_targets(monkeypatch, allowed=True),
        pytest.raises(PermanentStepError, match="answered HTTP 302"),
    ):
        call_http(make_context(workflow_config={"url": f"{outside.url}/x", "method": "GET"}))
    assert len(outside.requests) == 1
    assert inside.requests == []


class RebindingDns:
    """``socket.getaddrinfo`` for one name as a rebinding DNS server answers it: ``first`` on
    the first lookup, loopback afterwards (a DNS server cannot run here without root)."""

    def __init__(self, name: str, first: list[str]) -> None:
        self.name, self.first, self.lookups = name, first, 0
        self.real = socket.getaddrinfo
        self._lock = threading.Lock()

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != self.name:
            return self.real(host, port, *args, **kwargs)
        with self._lock:
            self.lookups += 1
            answer = self.first if self.lookups == 1 else ["127.0.0.1"]
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, int(port)))
            for a in answer
        ]


def test_dns_rebinding_cannot_switch_the_vetted_address(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is looked up once; the connection goes to the public address that was vetted
    (unreachable here), never to the loopback address of a second lookup."""
    dns = RebindingDns("rebind.test", ["192.0.43.8"])
    monkeypatch.setattr(socket, "getaddrinfo", dns)
    config = {"url": f"http://rebind.test:{server.port}/x", "timeout_seconds": 1}
    with pytest.raises(StepError) as failed:
        call_http(make_context(workflow_config=config))
    assert not isinstance(failed.value, EgressRefused)
    assert dns.lookups == 1
    assert server.requests == []


def test_every_address_of_a_name_is_checked(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", RebindingDns("mixed.test", ["192.0.43.8", "::1"]))
    config = {"url": f"http://mixed.test:{server.port}/x"}
    with pytest.raises(EgressRefused, match=r"url http://mixed\.test:\d+/… refused") as refused:
        call_http(make_context(workflow_config=config))
    assert "mixed.test resolves to ::1, a loopback address" in str(refused.value)
    assert server.requests == []


@pytest.mark.parametrize(
    "template",
    [
        "http://{row.Site}/x",
        "https://{company_domain}",
        "https://api.{company_domain}/x",
        "https://api.example.com:{port}/x",
        "{scheme}://api.example.com/x",
        "https://{secret:user}@api.example.com/x",
        "https://api.example.com{path}",
        "ftp://api.example.com/{company_domain}",
    ],
)
def test_placeholders_cannot_choose_scheme_host_or_port(template: str) -> None:
    with pytest.raises(PermanentStepError, match="url template"):
        check_url_template(template)


@pytest.mark.parametrize(
    "template",
    [
        "https://api.example.com/c/{company_domain}",
        "https://api.example.com:8443/c/{company_domain}?key={secret:api_key}",
        "https://api.example.com?q={company_domain}",
        "https://api.example.com",
    ],
)
def test_placeholders_in_path_and_query_are_fine(template: str) -> None:
    assert check_url_template(template)[1] == "api.example.com"


def test_a_csv_cell_cannot_choose_the_http_step_host(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused even where private targets are allowed: the host is the template's to write."""
    ctx = make_context(
        workflow_config={"url": "http://{row.Site}/admin"},
        original_data={"Site": f"127.0.0.1:{server.port}"},
    )
    with (
        private_targets(monkeypatch, allowed=True),
        pytest.raises(PermanentStepError, match="placeholders may fill the path"),
    ):
        call_http(ctx)
    assert server.requests == []


def test_error_excerpts_hide_what_the_server_echoes_of_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = "/v3/sources/webhook/pull-in-data-from-a-webhook-7c9f2a41"
    query = "token=s3cr3t-query-value"
    echo = {"error": f"no source {path}?{query}", "decoded": "pull-in-data-from-a-webhook-7c9f2a41"}
    with (
        ScriptedServer([Reply(404, echo)]) as clay,
        private_targets(monkeypatch, allowed=True),
        pytest.raises(PermanentStepError, match="answered HTTP 404") as failed,
    ):
        send_webhook(webhook_context(f"{clay.url}{path}?{query}"))
    message = str(failed.value)
    assert "7c9f2a41" not in message and "s3cr3t" not in message, message
    assert "no source" in message


def invoke(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(app, [*args, "--database-url", db_url])


@pytest.mark.parametrize(
    "url",
    ["http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:5432/", "http://[::1]/x"],
)
def test_config_set_refuses_a_literal_inside_address(db_url: str, url: str) -> None:
    result = invoke(db_url, "config", "set", "acme", COMPANY, f"webhook_url={url}")
    assert result.exit_code == 2, result.output
    flat = " ".join(result.output.split())
    assert "webhook_url" in flat and "ENRICHFLOW_ALLOW_PRIVATE_TARGETS=1" in flat, flat
    assert "meta-data" not in flat


def test_workflow_add_and_set_refuse_a_url_template_whose_host_is_a_placeholder(
    db_url: str,
) -> None:
    added = invoke(db_url, "workflow", "add", "site_lookup", "--handler", "http",
                   "--option", "url=https://api.example.com/")  # fmt: skip
    assert added.exit_code == 0, added.output
    placeholder = invoke(db_url, "workflow", "add", "site_too", "--handler", "http",
                         "--option", "url=http://{row.Site}/x")  # fmt: skip
    assert placeholder.exit_code == 2, placeholder.output
    assert "placeholders may fill the path" in " ".join(placeholder.output.split())
    result = invoke(db_url, "workflow", "set", "site_lookup", "url=http://{row.Site}/x")
    assert result.exit_code == 2, result.output
    assert "placeholders may fill the path" in " ".join(result.output.split())
    fine = invoke(db_url, "workflow", "set", "site_lookup", "url=https://api.example.com/{Company}")
    assert fine.exit_code == 0, fine.output


def start_batch(engine: Engine, tmp_path: Path, webhook_url: str, monkeypatch: Any) -> int:
    """Two rows launched through the Clay step, the client's webhook stored while private
    targets were allowed (or before the check existed)."""
    with private_targets(monkeypatch, allowed=True), engine.begin() as conn:
        client_config_set(
            conn, "acme", COMPANY, APOLLO, parse_assignments([f"webhook_url={webhook_url}"])
        )
    path = tmp_path / "leads.csv"
    path.write_text(
        "First Name,Last Name,Email,Company,Website\n"
        "Ann,Lee,ann@example.com,Example,https://example.com\n"
        "Bob,Ray,bob@example.org,Other,https://example.org\n",
        encoding="utf-8",
    )
    upload = ingest_csv(engine, path).upload_id
    return launch(
        engine, "acme", APOLLO, upload, steps=[COMPANY], create_client=True, settings=SETTINGS
    )


SETTINGS = Settings(_env_file=None, secret_key=SECRET, public_url="https://ef.example.com")  # type: ignore[call-arg]


def test_a_launch_with_a_stored_inside_webhook_is_refused(
    engine: Engine, tmp_path: Path, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="launch refused") as refused:
        start_batch(engine, tmp_path, f"{server.url}/hook", monkeypatch)
    assert "127.0.0.1 is a loopback address" in str(refused.value)
    assert HINT in str(refused.value) and "/hook" not in str(refused.value)
    assert server.requests == []


def test_a_batch_whose_webhook_resolves_inside_fails_its_items_once(
    engine: Engine, tmp_path: Path, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name that resolves to loopback passes every check made without DNS: every item fails
    on its first attempt with the refusal, and the server receives nothing."""
    monkeypatch.setattr(socket, "getaddrinfo", RebindingDns("inside.test", ["127.0.0.1"]))
    batch_id = start_batch(engine, tmp_path, f"http://inside.test:{server.port}/hook", monkeypatch)
    executor = LocalExecutor(engine, 2, build_services(engine, SETTINGS))
    try:
        Conductor(engine, executor, chunk_size=10, poll_interval=0.02).run_until_finished(
            [batch_id]
        )
    finally:
        executor.close()
    with engine.connect() as conn:
        found = conn.execute(
            select(WorkflowState.status, WorkflowState.attempt, WorkflowState.error).where(
                WorkflowState.batch_id == batch_id
            )
        ).all()
    assert [(s.status, s.attempt) for s in found] == [("FAILED", 1), ("FAILED", 1)]
    for state in found:
        assert "inside.test resolves to 127.0.0.1, a loopback address" in state.error
        assert HINT in state.error and "/hook" not in state.error
    assert server.requests == []
