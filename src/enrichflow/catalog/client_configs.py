"""Clients' configs for workflows (``client_workflow_configs``): merge, list, redact.

A config holds secrets (Clay webhook URLs are credentials, auth tokens): they are shown only
through :func:`redact_config`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypedDict

from sqlalchemy import Connection, insert, select, update

from enrichflow.catalog.assignments import Assignments, config_merge
from enrichflow.catalog.clients import client_get_or_create
from enrichflow.catalog.registry import registry_get
from enrichflow.catalog.validation import client_config_check
from enrichflow.db.models import Client, ClientWorkflowConfig
from enrichflow.webhooks.redact import redact_url

__all__ = [
    "ClientConfigRow",
    "client_config_set",
    "client_configs_by_target",
    "client_configs_list",
    "redact_config",
]

_SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "auth")
HIDDEN = "…"


class ClientConfigRow(TypedDict):
    client_id: int
    workflow: str
    workstream: str
    config: dict[str, Any]
    updated_at: datetime | None


def client_config_set(
    conn: Connection, client: str, workflow: str, workstream: str, changes: Assignments
) -> dict[str, Any]:
    """Merge ``changes`` into the client's config for ``(workflow, workstream)``, creating the
    client and the config row when new; the stored config. :class:`ConfigError` naming the
    key when the merged config could not be sent with (the sender's own check)."""
    handler = registry_get(conn, workflow, workstream).handler
    client_id = client_get_or_create(conn, client)
    row = conn.execute(
        select(ClientWorkflowConfig.id, ClientWorkflowConfig.config).where(
            ClientWorkflowConfig.client_id == client_id,
            ClientWorkflowConfig.workflow_slug == workflow,
            ClientWorkflowConfig.workstream_slug == workstream,
        )
    ).first()
    if row is None:
        config = config_merge({}, changes)
        client_config_check(handler, config, workflow)
        conn.execute(
            insert(ClientWorkflowConfig).values(
                client_id=client_id,
                workflow_slug=workflow,
                workstream_slug=workstream,
                config=config,
            )
        )
        return config
    config_id, stored = row
    config = config_merge(dict(stored or {}), changes)
    client_config_check(handler, config, workflow)
    conn.execute(
        update(ClientWorkflowConfig)
        .where(ClientWorkflowConfig.id == config_id)
        .values(config=config, updated_at=datetime.now(UTC))
    )
    return config


def client_configs_list(conn: Connection, client_id: int) -> list[ClientConfigRow]:
    """Every config of the client by workstream and workflow, unredacted."""
    rows = conn.execute(
        select(ClientWorkflowConfig)
        .where(ClientWorkflowConfig.client_id == client_id)
        .order_by(ClientWorkflowConfig.workstream_slug, ClientWorkflowConfig.workflow_slug)
    )
    return [
        ClientConfigRow(
            client_id=r.client_id,
            workflow=r.workflow_slug,
            workstream=r.workstream_slug,
            config=dict(r.config or {}),
            updated_at=r.updated_at,
        )
        for r in rows
    ]


def client_configs_by_target(conn: Connection) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Every config of every client by ``(client name, workflow, workstream)``, unredacted."""
    return {
        (c, wf, ws): dict(cfg or {})
        for c, wf, ws, cfg in conn.execute(
            select(
                Client.name,
                ClientWorkflowConfig.workflow_slug,
                ClientWorkflowConfig.workstream_slug,
                ClientWorkflowConfig.config,
            ).join(Client, Client.id == ClientWorkflowConfig.client_id)
        )
    }


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS) or lowered.endswith("_key")


def _redact_value(value: Any) -> Any:
    if isinstance(value, list):
        return [_redact_value(v) for v in value]
    if isinstance(value, dict):
        return redact_config(value)
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


def redact_config(config: dict[str, Any]) -> dict[str, Any]:
    """What may be shown: URLs as ``scheme://host/…``, secret-named values as ``…``."""
    return {
        key: (HIDDEN if value else value) if _is_secret_key(key) else _redact_value(value)
        for key, value in config.items()
    }
