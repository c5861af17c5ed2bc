"""What the dashboard's workflow and pipeline forms do: edit workflows, save, rename and save-as
pipelines, with the checks the CLI makes (the catalog's option check, step order, missing
client configs) at save time, and catalog errors worded for a form. Each function owns one
transaction; adding and deleting a workflow are the JSON API's own functions (``service``)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, Engine

from enrichflow.catalog import clients, pipelines, registry, workflow_setup
from enrichflow.catalog.workflow_options import workflow_options_update
from enrichflow.db.engine import reading
from enrichflow.doctor import preflight_batch
from enrichflow.errors import ConfigError, NotFoundError
from enrichflow.launch import resolve_steps

__all__ = [
    "form_error",
    "form_message",
    "pipeline_check",
    "pipeline_store",
    "workflow_delete_blocked",
    "workflow_edit",
    "workflow_get",
    "workflow_usage",
]

_CLI_HINT = re.compile(r"\s*(?:\(|[:;,]\s)(?:run |use |with |with: )?enrichflow [a-z][^)]*\)?")


def form_message(text: str, hint: str = "") -> str:
    """``text`` without the command line it suggests (an operator here has the form instead),
    followed by ``hint``, which says where the form is."""
    stripped = _CLI_HINT.sub("", text).rstrip(" .;:")
    return f"{stripped}. {hint}" if hint else stripped


def form_error(exc: ConfigError) -> str:
    """A catalog error as the form shows it: a client secret is pointed to the form that
    takes it."""
    text = str(exc)
    if "client's setting" in text:
        return form_message(text, "Client secrets go in each client's Workflow configs form.")
    return form_message(text)


def _options_store(
    conn: Connection, workflow: str, workstream: str, values: dict[str, Any], remove: set[str]
) -> None:
    """Through the catalog's one option check, so the form and ``workflow set`` accept and
    refuse the same values."""
    try:
        workflow_options_update(conn, workflow, workstream, values, remove - set(values))
    except ConfigError as exc:
        raise ConfigError(form_error(exc)) from None


def workflow_get(engine: Engine, workstream: str, workflow: str) -> registry.RegistryRow:
    with reading(engine) as conn:
        return registry.registry_get(conn, workflow, workstream)


def workflow_usage(
    engine: Engine, workstream: str, workflow: str
) -> tuple[list[pipelines.PipelineRow], int]:
    """The saved pipelines that run the workflow, and how many client configs it has."""
    with reading(engine) as conn:
        registry.registry_get(conn, workflow, workstream)
        return (
            pipelines.pipelines_using(conn, workstream, workflow),
            registry.workflow_configs_count(conn, workflow, workstream),
        )


def workflow_edit(
    engine: Engine,
    workstream: str,
    workflow: str,
    name: str,
    description: str,
    values: dict[str, Any],
    remove: set[str],
) -> registry.RegistryRow:
    """New name, description and options, all or nothing."""
    with engine.begin() as conn:
        registry.workflow_describe(conn, workflow, workstream, name, description)
        _options_store(conn, workflow, workstream, values, remove)
        return registry.registry_get(conn, workflow, workstream)


def workflow_delete_blocked(engine: Engine, workstream: str, workflow: str) -> str | None:
    """Why the workflow cannot be deleted (a pipeline runs it, it is built in), or None."""
    with reading(engine) as conn:
        blocked = workflow_setup.workflow_delete_blocked(conn, workflow, workstream)
    return None if blocked is None else f"{form_message(blocked)}."


def _pipeline_checked(
    conn: Connection, client: str, workstream: str, steps: list[str]
) -> list[registry.RegistryRow]:
    plan = resolve_steps(conn, client, workstream, None, steps)
    pipelines.pipeline_order_check(plan.steps)
    return plan.steps


def pipeline_check(engine: Engine, client_id: int, workstream: str, steps: list[str]) -> None:
    """:class:`ConfigError` naming what is wrong with ``steps``: launch's checks and their
    order."""
    with reading(engine) as conn:
        _pipeline_checked(conn, clients.client_get_name(conn, client_id), workstream, steps)


def pipeline_store(
    engine: Engine,
    client_id: int,
    workstream: str,
    name: str,
    steps: list[str],
    pipeline_id: int | None = None,
) -> tuple[pipelines.PipelineRow, list[str]]:
    """Save the pipeline: as a new one (``pipeline_id`` None; a taken name is refused) or in
    place of ``pipeline_id`` (renamed when ``name`` differs). The saved row and what its Clay
    steps still lack before it can launch (client configs), as the CLI warns."""
    name = clients.name_clean(name, "pipeline name")
    with engine.begin() as conn:
        client = clients.client_get_name(conn, client_id)
        rows = _pipeline_checked(conn, client, workstream, steps)
        if pipeline_id is None:
            pipeline_id = pipelines.pipeline_create(conn, client_id, workstream, name, steps)
        else:
            pipelines.pipeline_update(conn, pipeline_id, workstream, name, steps)
        missing = [
            form_message(c.detail)
            for c in preflight_batch(conn, client, workstream, rows)
            if c.name == "async configs"
        ]
        saved = pipelines.pipeline_get(conn, pipeline_id)
    if saved is None:
        raise NotFoundError(f"pipeline {pipeline_id} does not exist")
    return saved, missing
