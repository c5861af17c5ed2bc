"""A workflow's own options (``enrichment_registry.config``): the same for every client.

Attempts, leases, back-off, concurrency, batch size and the handler's options (for a Clay
workflow: ``dedupe_by``, ``rate_per_second``, ``fields``, ...). Used by ``enrichflow workflow
set/show``. A launch snapshots the options into ``batch_steps``, so a change applies to the
batches launched after it. Secrets are a client's (``catalog.client_configs``) and are refused
here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from enrichflow.catalog.assignments import Assignments, config_merge
from enrichflow.catalog.registry import registry_config_update, registry_get
from enrichflow.errors import ConfigError, PermanentStepError
from enrichflow.launch import step_row
from enrichflow.steps.webhook import CLIENT_KEYS, webhook_options

__all__ = ["typed_value", "workflow_config_get", "workflow_config_set"]


def typed_value(text: str) -> Any:
    """What ``KEY=VALUE`` means: an integer, a decimal number, ``true``/``false``, or text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _typed(changes: Assignments) -> Assignments:
    return Assignments(
        set={
            k: [typed_value(v) for v in value] if isinstance(value, list) else typed_value(value)
            for k, value in changes.set.items()
        },
        append={k: [typed_value(v) for v in values] for k, values in changes.append.items()},
        remove=changes.remove,
    )


def workflow_config_get(
    conn: Connection, workflow: str, workstream: str
) -> tuple[str, dict[str, Any]]:
    """The workflow's handler and options."""
    row = registry_get(conn, workflow, workstream)
    return row.handler, dict(row.config)


def workflow_config_set(
    conn: Connection, workflow: str, workstream: str, changes: Assignments
) -> dict[str, Any]:
    """Merge ``changes`` into the workflow's options; :class:`ConfigError` naming the key when
    a value could not be launched or sent with, and nothing is written then."""
    row = registry_get(conn, workflow, workstream)
    changes = _typed(changes)
    secrets = sorted((set(changes.set) | set(changes.append)) & set(CLIENT_KEYS))
    if secrets:
        raise ConfigError(
            f"{', '.join(secrets)}: a client's setting (a secret), never stored with the "
            f"workflow: enrichflow config set CLIENT {workflow} {secrets[0]}=..."
        )
    config = config_merge(dict(row.config), changes)
    # the launch's own checks: attempts, leases, back-off, concurrency
    step_row(replace(row, config=config), 0)
    if row.handler == "webhook":
        try:
            webhook_options(config)  # what the handler reads before every send
        except PermanentStepError as exc:
            raise ConfigError(f"workflow {workflow!r}: {exc}") from exc
    registry_config_update(conn, row.id, config)
    return config
