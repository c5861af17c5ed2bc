"""A workflow's own options (``enrichment_registry.config``): the same for every client.

Attempts, leases, back-off, concurrency, batch size and the handler's options (for a Clay
workflow: ``dedupe_by``, ``rate_per_second``, ``fields``, ...). Used by ``enrichflow workflow
set/show``, the REST API and the dashboard. A launch snapshots the options into
``batch_steps``, so a change applies to the batches launched after it (or to a batch's step
after ``enrichflow retry --refresh-options``). Every change passes the one validator,
:func:`enrichflow.catalog.validation.workflow_options_check`; secrets are a client's
(``catalog.client_configs``) and are refused here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection

from enrichflow.catalog.assignments import Assignments, config_merge, parse_assignments
from enrichflow.catalog.registry import registry_config_update, registry_get
from enrichflow.catalog.validation import LIST_OPTIONS, workflow_options_check
from enrichflow.errors import ConfigError

__all__ = [
    "options_from_text",
    "typed_value",
    "workflow_config_get",
    "workflow_config_set",
    "workflow_options_update",
]


def typed_value(text: str) -> Any:
    """What ``KEY=VALUE`` means: a JSON object (an ``http`` step's ``headers``, ``body`` or
    ``keep``), an integer, a decimal number, ``true``/``false``, or text. Text in braces that
    is not JSON stays text, so ``body={results.lookup.payload}`` is still a template."""
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError:
            return text
        if isinstance(value, dict):
            return value
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _typed(key: str, value: str | list[str]) -> Any:
    """A list option is a list of names however many are given; other values are typed."""
    if key in LIST_OPTIONS:
        return value if isinstance(value, list) else [value]
    return [typed_value(v) for v in value] if isinstance(value, list) else typed_value(value)


def options_from_text(pairs: Iterable[str]) -> dict[str, Any]:
    """A new workflow's options from ``KEY=VALUE`` text, typed as ``workflow set`` types them
    (a repeated key is a list); :class:`ConfigError` for ``+=`` or an empty value, which only
    mean something for a workflow that already has options."""
    given = parse_assignments(pairs)
    if given.append or given.remove:
        keys = ", ".join(sorted({*given.append, *given.remove}))
        raise ConfigError(f"{keys}: give a value (KEY=VALUE); a new workflow has none to change")
    return {k: _typed(k, value) for k, value in given.set.items()}


def workflow_config_get(
    conn: Connection, workflow: str, workstream: str
) -> tuple[str, dict[str, Any]]:
    """The workflow's handler and options."""
    row = registry_get(conn, workflow, workstream)
    return row.handler, dict(row.config)


def _store(
    conn: Connection, workflow: str, workstream: str, changes: Assignments
) -> dict[str, Any]:
    row = registry_get(conn, workflow, workstream)
    config = config_merge(dict(row.config), changes)
    workflow_options_check(row.handler, config, workflow, workstream)
    registry_config_update(conn, row.id, config)
    return config


def workflow_config_set(
    conn: Connection, workflow: str, workstream: str, changes: Assignments
) -> dict[str, Any]:
    """Merge ``KEY=VALUE`` ``changes`` (text, typed here) into the workflow's options;
    :class:`ConfigError` naming the key when a value could not be launched or sent with, and
    nothing is written then."""
    typed = Assignments(
        set={k: _typed(k, value) for k, value in changes.set.items()},
        append={
            k: values if k in LIST_OPTIONS else [typed_value(v) for v in values]
            for k, values in changes.append.items()
        },
        remove=changes.remove,
    )
    return _store(conn, workflow, workstream, typed)


def workflow_options_update(
    conn: Connection,
    workflow: str,
    workstream: str,
    values: Mapping[str, Any],
    remove: Iterable[str] = (),
) -> dict[str, Any]:
    """Set typed ``values`` (JSON: numbers, text, lists) and drop ``remove``; the checks of
    :func:`workflow_config_set`. The stored options."""
    return _store(
        conn,
        workflow,
        workstream,
        Assignments(set=dict(values), append={}, remove=frozenset(remove)),
    )
