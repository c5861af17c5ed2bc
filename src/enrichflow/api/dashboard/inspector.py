"""The upload page's facts: the identity columns recognised, what each pipeline the client can
launch reads from the file, the batches already launched over it, the columns the operator may
map, and why a launch would be refused, each with the form that fixes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine

from enrichflow.api.dashboard.editing import form_message
from enrichflow.catalog import batches, clients, pipelines, registry, uploads
from enrichflow.catalog.upload_fit import (
    FIELD_LABELS,
    StepNeed,
    column_map_with,
    identity_check,
    identity_columns,
    step_needs,
)
from enrichflow.catalog.workstreams import workstreams_list
from enrichflow.config import Settings
from enrichflow.db.engine import reading
from enrichflow.doctor import preflight_batch
from enrichflow.errors import ConfigError
from enrichflow.ingest.aliases import CANONICAL_FIELDS
from enrichflow.launch import resolve_steps
from enrichflow.states import StepType

__all__ = [
    "Inspection",
    "Problem",
    "identity_columns",
    "launch_problems",
    "mapping_from_form",
    "upload_inspect",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a launch is refused, and where that is put right (``href`` None: on the server)."""

    text: str
    href: str | None = None
    action: str = ""


@dataclass(slots=True)
class Inspection:
    identity: dict[str, str]
    identity_error: str | None
    column_map: dict[str, str]
    needs: dict[str, list[StepNeed]]
    """Per launch choice (``workstream/pipeline``): what each step reads."""
    earlier: list[batches.BatchRow]
    mappable: list[str]
    """Columns the operator may map: those the aliases did not recognise."""
    fields: list[str]
    """Fields a column may be mapped to: those the file does not have yet."""
    mapping_error: str | None = None
    labels: dict[str, str] = field(default_factory=lambda: dict(FIELD_LABELS))


def upload_inspect(
    engine: Engine, upload_id: int, client_id: int | None, chosen: dict[str, str]
) -> Inspection:
    """The facts of the upload page, with the operator's ``chosen`` mapping (column -> field)
    applied; a mapping that cannot be applied is reported, not raised."""
    with reading(engine) as conn:
        found = uploads.upload_get(conn, upload_id, 0)
        if found is None:
            raise ConfigError(f"upload {upload_id} does not exist")
        headers = found["headers"]
        mapping_error = None
        try:
            column_map = column_map_with(found["column_map"], headers, chosen)
        except ConfigError as exc:
            mapping_error, column_map = str(exc), dict(found["column_map"])
        needs: dict[str, list[StepNeed]] = {}
        if client_id is not None:
            for stream in workstreams_list(conn):
                for choice in pipelines.pipeline_choices(conn, client_id, stream["slug"]):
                    rows = registry.registry_get_many(conn, stream["slug"], choice["steps"])
                    needs[f"{stream['slug']}/{choice['name']}"] = step_needs(
                        [
                            (s, rows[s].handler, rows[s].config)
                            for s in choice["steps"]
                            if s in rows
                        ],
                        column_map,
                        headers,
                    )
        earlier = batches.batches_of_upload(conn, upload_id)
    identity_error = None
    try:
        identity_check(column_map, headers)
    except ConfigError as exc:
        identity_error = str(exc)
    mapped = set(column_map.values())
    return Inspection(
        identity=identity_columns(column_map),
        identity_error=identity_error,
        column_map=column_map,
        needs=needs,
        earlier=earlier,
        mappable=[h for h in headers if h not in mapped or h in chosen],
        fields=[f for f in CANONICAL_FIELDS if f not in found["column_map"]],
        mapping_error=mapping_error,
    )


def launch_problems(
    engine: Engine, client_id: int, workstream: str, pipeline: str, settings: Settings
) -> list[Problem]:
    """The launch's preflight, each failing check with the form that fixes it."""
    with reading(engine) as conn:
        client = clients.client_get_name(conn, client_id)
        plan = resolve_steps(conn, client, workstream, pipeline, None)
        checks = preflight_batch(conn, client, workstream, plan.steps, settings)
    problems = []
    clay = [s.slug for s in plan.steps if s.type == StepType.ASYNC.value]
    for check in checks:
        text = f"{check.name}: {_plain(check.detail)}"
        slug = next((s for s in clay if s in check.detail), None)
        if check.name == "async configs" and slug is not None:
            target = quote(f"{workstream}/{slug}")
            href = f"/clients/{client_id}?configure={target}#configs"
            problems.append(Problem(text, href, f"Set the webhook URL for {slug}"))
        elif "webhook" in check.name:
            problems.append(Problem(text, "/workflows", "See the webhook sources"))
        else:
            problems.append(Problem(text))
    return problems


def _plain(detail: str) -> str:
    return form_message(detail)


def mapping_from_form(form: Any, headers: list[str]) -> dict[str, str]:
    """The operator's mapping from the upload form: ``map_<column index>`` -> field."""
    chosen: dict[str, str] = {}
    for index, header in enumerate(headers):
        value = str(form.get(f"map_{index}", "") or "").strip()
        if value:
            chosen[header] = value
    return chosen
