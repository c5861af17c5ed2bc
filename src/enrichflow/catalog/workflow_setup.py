"""Adding and deleting workflows without SQL.

``enrichflow workflow add/delete``, ``POST/DELETE /api/workflows`` and the dashboard's forms
all call these, so they accept and refuse the same things: a handler no loaded module
provides, a step type the handler cannot run as, and options the one validator
(:func:`~enrichflow.catalog.validation.workflow_options_check`) refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from enrichflow.catalog.clients import description_clean, name_clean, slug_clean
from enrichflow.catalog.pipelines import pipelines_using
from enrichflow.catalog.registry import (
    RegistryRow,
    registry_get,
    registry_get_many,
    registry_insert,
    workflow_delete,
)
from enrichflow.catalog.validation import workflow_options_check
from enrichflow.catalog.workstreams import workstream_exists, workstreams_list
from enrichflow.errors import ConfigError
from enrichflow.seed import APOLLO, REGISTRY
from enrichflow.states import StepType

__all__ = [
    "HandlerModes",
    "workflow_add",
    "workflow_delete_blocked",
    "workflow_name_default",
    "workflow_remove",
]

HandlerModes = Mapping[str, frozenset[StepType]]
"""The handlers a process has loaded, each with the step types it can run as
(:func:`enrichflow.steps.registry.handler_modes`): the catalog does not load handlers itself."""


def workflow_name_default(slug: str) -> str:
    """``title_length`` -> ``Title length``."""
    return slug.replace("_", " ").capitalize()


def _mode(handler: str, handlers: HandlerModes, mode: StepType | None) -> StepType:
    allowed = handlers.get(handler)
    if allowed is None:
        raise ConfigError(
            f"no handler named {handler!r} is loaded (loaded: {', '.join(sorted(handlers))}); "
            "a plugin's handlers are loaded when its package is installed (entry point group "
            "enrichflow.steps) or its module is named in ENRICHFLOW_PLUGINS"
        )
    if mode is None:
        return StepType.SYNC if StepType.SYNC in allowed else StepType.ASYNC
    if mode not in allowed:
        only = "/".join(sorted(t.value for t in allowed))
        raise ConfigError(f"a workflow of handler {handler!r} can only be {only}, not {mode.value}")
    return mode


def workflow_add(
    conn: Connection,
    slug: str,
    workstream: str,
    handler: str,
    handlers: HandlerModes,
    *,
    mode: StepType | None = None,
    name: str | None = None,
    description: str | None = None,
    config: Mapping[str, Any] | None = None,
) -> RegistryRow:
    """A new workflow of ``workstream`` run by ``handler``, usable at once (data only, no
    restart). ``mode`` defaults to what the handler runs as (ASYNC for ``webhook``, SYNC
    otherwise); ``name`` to the slug in words. :class:`ConfigError` naming what is wrong,
    with nothing written."""
    slug = slug_clean(slug, "workflow slug")
    handler = handler.strip()
    kind = _mode(handler, handlers, mode)
    name = name_clean(name if name and name.strip() else workflow_name_default(slug), "name")
    described = description_clean(description)
    options = dict(config or {})
    if not workstream_exists(conn, workstream):
        known = ", ".join(w["slug"] for w in workstreams_list(conn)) or "none"
        raise ConfigError(
            f"unknown workstream {workstream!r} (workstreams: {known}); "
            f"add it first: enrichflow workstream add {workstream}"
        )
    workflow_options_check(handler, options, slug, workstream)
    if registry_get_many(conn, workstream, [slug]):
        raise ConfigError(f"workflow {slug!r} already exists in {workstream!r}")
    return registry_insert(conn, slug, workstream, name, kind, handler, described, options)


def workflow_delete_blocked(conn: Connection, workflow: str, workstream: str) -> str | None:
    """Why the workflow cannot be deleted, or None: a saved pipeline runs it (named), or it is
    built in (every command would create it again). :class:`NotFoundError` when it does not
    exist."""
    registry_get(conn, workflow, workstream)
    using = pipelines_using(conn, workstream, workflow)
    if using:
        names = ", ".join(f"{p['client']}: {p['name']}" for p in using)
        return (
            f"{workflow} is a step of {len(using)} saved pipeline(s) ({names}); "
            "remove it from them first"
        )
    if workstream == APOLLO and workflow in REGISTRY:
        return (
            f"{workflow} is built in and would be created again by the next command; "
            f"use enrichflow workflow set {workflow} to change its options"
        )
    return None


def workflow_remove(conn: Connection, workflow: str, workstream: str) -> int:
    """Delete the workflow and every client's config for it (how many); :class:`ConfigError`
    saying why when :func:`workflow_delete_blocked` refuses. Launched batches keep running
    their own snapshot of it."""
    blocked = workflow_delete_blocked(conn, workflow, workstream)
    if blocked is not None:
        raise ConfigError(blocked)
    return workflow_delete(conn, workflow, workstream)
