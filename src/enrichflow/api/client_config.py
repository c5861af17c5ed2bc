"""Clients' configs for workflows (``client_workflow_configs``): parse, merge, list, redact.

Used by ``enrichflow config set/list`` and, later, the dashboard. A config holds secrets
(Clay webhook URLs are credentials, auth tokens): they are shown only through
:func:`redact_config`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Row, insert, select, update

from enrichflow.db.models import Client, ClientWorkflowConfig, EnrichmentRegistry
from enrichflow.errors import ConfigError, NotFoundError
from enrichflow.launch import client_get_or_create
from enrichflow.webhooks.egress import literal_target_problem
from enrichflow.webhooks.redact import redact_url
from enrichflow.webhooks.sender import CLIENT_KEYS

__all__ = [
    "Assignments",
    "client_config_set",
    "client_configs_list",
    "parse_assignments",
    "redact_config",
    "registry_row",
]

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_WORDS = ("token", "secret", "password", "api_key", "apikey", "auth")
_URL_KEYS = ("webhook_url",)
HIDDEN = "…"


@dataclass(frozen=True, slots=True)
class Assignments:
    """What ``KEY=VALUE`` arguments ask for."""

    set: dict[str, str | list[str]]
    append: dict[str, list[str]]
    remove: frozenset[str]


def parse_assignments(args: Iterable[str]) -> Assignments:
    """``key=value`` (repeated: a list, in order), ``key+=value`` (append to the stored list),
    ``key=`` (remove the key). :class:`ConfigError` for anything else."""
    sets: dict[str, list[str]] = {}
    appends: dict[str, list[str]] = {}
    removes: set[str] = set()
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ConfigError(f"expected KEY=VALUE, got {arg!r}")
        target = sets
        if key.endswith("+"):
            key, target = key[:-1], appends
        if not _KEY_RE.match(key):
            raise ConfigError(f"invalid setting name {key!r}")
        value = value.strip()
        if key in _URL_KEYS and value:
            _check_url(key, value)
        if not value:
            if target is appends:
                raise ConfigError(f"nothing to append to {key!r}")
            removes.add(key)
            continue
        target.setdefault(key, []).append(value)
    clash = removes & (set(sets) | set(appends))
    if clash:
        raise ConfigError(f"{', '.join(sorted(clash))} both set and removed")
    return Assignments(
        set={k: v[0] if len(v) == 1 else v for k, v in sets.items()},
        append=appends,
        remove=frozenset(removes),
    )


def _check_url(key: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key} must be an http(s) URL, got {redact_url(value)!r}")
    problem = literal_target_problem(value)
    if problem is not None:
        raise ConfigError(f"{key} {redact_url(value)}: {problem}")


def merge_config(current: dict[str, Any], changes: Assignments) -> dict[str, Any]:
    """``current`` with ``changes`` applied (a new dict)."""
    merged = {k: v for k, v in current.items() if k not in changes.remove}
    merged.update(changes.set)
    for key, values in changes.append.items():
        existing = merged.get(key)
        if existing is None or existing == "":
            base: list[Any] = []
        elif isinstance(existing, list):
            base = list(existing)
        else:
            base = [existing]
        merged[key] = base + [v for v in values if v not in base]
    return merged


def registry_row(conn: Connection, workflow: str, workstream: str) -> Row[Any]:
    """The workflow's registry row; :class:`NotFoundError` listing the workstream's workflows."""
    registry = EnrichmentRegistry.__table__
    row = conn.execute(
        select(registry).where(
            registry.c.slug == workflow, registry.c.workstream_slug == workstream
        )
    ).first()
    if row is None:
        known = conn.execute(
            select(registry.c.slug)
            .where(registry.c.workstream_slug == workstream)
            .order_by(registry.c.slug)
        ).scalars()
        raise NotFoundError(
            f"no workflow {workflow!r} in workstream {workstream!r} "
            f"(known: {', '.join(known) or 'none'})"
        )
    return row


def client_config_set(
    conn: Connection, client: str, workflow: str, workstream: str, changes: Assignments
) -> dict[str, Any]:
    """Merge ``changes`` into the client's config for ``(workflow, workstream)``, creating the
    client and the config row when new; the stored config."""
    if registry_row(conn, workflow, workstream).handler == "webhook":
        _check_webhook_keys(workflow, changes)
    client_id = client_get_or_create(conn, client)
    row = conn.execute(
        select(ClientWorkflowConfig.id, ClientWorkflowConfig.config).where(
            ClientWorkflowConfig.client_id == client_id,
            ClientWorkflowConfig.workflow_slug == workflow,
            ClientWorkflowConfig.workstream_slug == workstream,
        )
    ).first()
    if row is None:
        config = merge_config({}, changes)
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
    config = merge_config(dict(stored or {}), changes)
    conn.execute(
        update(ClientWorkflowConfig)
        .where(ClientWorkflowConfig.id == config_id)
        .values(config=config, updated_at=datetime.now(UTC))
    )
    return config


def _check_webhook_keys(workflow: str, changes: Assignments) -> None:
    """A Clay workflow reads only its URL and token from a client's config: any other key
    would be stored and silently ignored (``dedupe_by`` set per client did nothing)."""
    foreign = sorted((set(changes.set) | set(changes.append)) - set(CLIENT_KEYS))
    if foreign:
        names = ", ".join(foreign)
        raise ConfigError(
            f"{names}: not a client setting of {workflow!r}, whose handler (webhook) reads "
            f"only {' and '.join(CLIENT_KEYS)} from a client's config; {names} "
            f"{'is a workflow option' if len(foreign) == 1 else 'are workflow options'}, "
            f"the same for every client: enrichflow workflow set {workflow} {foreign[0]}=..."
        )


def client_configs_list(conn: Connection, client: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``(workflow, workstream, config)`` of every config of ``client``, unredacted."""
    client_id = conn.execute(select(Client.id).where(Client.name == client)).scalar_one_or_none()
    if client_id is None:
        raise NotFoundError(f"client {client!r} does not exist")
    rows = conn.execute(
        select(
            ClientWorkflowConfig.workflow_slug,
            ClientWorkflowConfig.workstream_slug,
            ClientWorkflowConfig.config,
        )
        .where(ClientWorkflowConfig.client_id == client_id)
        .order_by(ClientWorkflowConfig.workstream_slug, ClientWorkflowConfig.workflow_slug)
    )
    return [(w, s, dict(c or {})) for w, s, c in rows]


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
