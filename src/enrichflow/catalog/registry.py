"""The workflow registry (``enrichment_registry``): which workflows a workstream offers, each
with its type, handler and options. A launch snapshots the rows it uses into ``batch_steps``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from enrichflow.catalog.clients import description_clean, name_clean
from enrichflow.db.models import ClientWorkflowConfig, EnrichmentRegistry
from enrichflow.errors import ConfigError, NotFoundError
from enrichflow.states import StepType

__all__ = [
    "RegistryRow",
    "registry_config_update",
    "registry_get",
    "registry_get_many",
    "registry_insert",
    "registry_list",
    "registry_slugs",
    "workflow_configs_count",
    "workflow_delete",
    "workflow_describe",
]


@dataclass(frozen=True, slots=True)
class RegistryRow:
    """One workflow of a workstream; ``config`` holds its own options (never a secret)."""

    id: int
    slug: str
    workstream_slug: str
    name: str
    type: str
    handler: str
    description: str | None
    config: dict[str, Any]


_COLUMNS = (
    EnrichmentRegistry.id,
    EnrichmentRegistry.slug,
    EnrichmentRegistry.workstream_slug,
    EnrichmentRegistry.name,
    EnrichmentRegistry.type,
    EnrichmentRegistry.handler,
    EnrichmentRegistry.description,
    EnrichmentRegistry.config,
)


def _row(r: Any) -> RegistryRow:
    return RegistryRow(
        id=r.id,
        slug=r.slug,
        workstream_slug=r.workstream_slug,
        name=r.name,
        type=r.type,
        handler=r.handler,
        description=r.description,
        config=dict(r.config or {}),
    )


def registry_list(conn: Connection, workstream: str | None = None) -> list[RegistryRow]:
    """Every workflow (of ``workstream``), by workstream and in the order they were added."""
    query = select(*_COLUMNS).order_by(EnrichmentRegistry.workstream_slug, EnrichmentRegistry.id)
    if workstream is not None:
        query = query.where(EnrichmentRegistry.workstream_slug == workstream)
    return [_row(r) for r in conn.execute(query)]


def registry_slugs(conn: Connection, workstream: str) -> list[str]:
    """The slugs of the workstream's workflows, sorted."""
    return list(
        conn.execute(
            select(EnrichmentRegistry.slug)
            .where(EnrichmentRegistry.workstream_slug == workstream)
            .order_by(EnrichmentRegistry.slug)
        ).scalars()
    )


def registry_get(conn: Connection, workflow: str, workstream: str) -> RegistryRow:
    """The workflow's row; :class:`NotFoundError` listing the workstream's workflows."""
    row = conn.execute(
        select(*_COLUMNS).where(
            EnrichmentRegistry.slug == workflow, EnrichmentRegistry.workstream_slug == workstream
        )
    ).first()
    if row is None:
        known = registry_slugs(conn, workstream)
        raise NotFoundError(
            f"no workflow {workflow!r} in workstream {workstream!r} "
            f"(known: {', '.join(known) or 'none'})"
        )
    return _row(row)


def registry_get_many(
    conn: Connection, workstream: str, slugs: Iterable[str]
) -> dict[str, RegistryRow]:
    """The rows of ``slugs`` that exist in the workstream, by slug."""
    rows = conn.execute(
        select(*_COLUMNS).where(
            EnrichmentRegistry.workstream_slug == workstream,
            EnrichmentRegistry.slug.in_(list(slugs)),
        )
    )
    return {r.slug: _row(r) for r in rows}


def registry_config_update(conn: Connection, registry_id: int, config: dict[str, Any]) -> None:
    """Replace the workflow's options (the caller has validated them)."""
    conn.execute(
        update(EnrichmentRegistry).where(EnrichmentRegistry.id == registry_id).values(config=config)
    )


def workflow_describe(
    conn: Connection, workflow: str, workstream: str, name: str, description: str | None
) -> RegistryRow:
    """Rename the workflow and replace its description (its slug, the name pipelines and
    batches know it by, never changes); the updated row."""
    row = registry_get(conn, workflow, workstream)
    name = name_clean(name, "workflow name")
    described = description_clean(description)
    conn.execute(
        update(EnrichmentRegistry)
        .where(EnrichmentRegistry.id == row.id)
        .values(name=name, description=described)
    )
    return RegistryRow(**{**_fields(row), "name": name, "description": described})


def _fields(row: RegistryRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in RegistryRow.__slots__}


def workflow_configs_count(conn: Connection, workflow: str, workstream: str) -> int:
    """How many clients have a config (webhook URLs, tokens) for the workflow."""
    return int(
        conn.execute(
            select(func.count()).where(
                ClientWorkflowConfig.workflow_slug == workflow,
                ClientWorkflowConfig.workstream_slug == workstream,
            )
        ).scalar_one()
    )


def workflow_delete(conn: Connection, workflow: str, workstream: str) -> int:
    """Delete the workflow and every client's config for it; how many configs went with it.
    Running batches are unaffected (they run their snapshot); the caller
    (``catalog.workflow_setup``) refuses a workflow that a pipeline still names."""
    registry_get(conn, workflow, workstream)
    configs = conn.execute(
        delete(ClientWorkflowConfig).where(
            ClientWorkflowConfig.workflow_slug == workflow,
            ClientWorkflowConfig.workstream_slug == workstream,
        )
    ).rowcount
    conn.execute(
        delete(EnrichmentRegistry).where(
            EnrichmentRegistry.slug == workflow, EnrichmentRegistry.workstream_slug == workstream
        )
    )
    return int(configs)


def registry_insert(
    conn: Connection,
    slug: str,
    workstream: str,
    name: str,
    kind: StepType,
    handler: str,
    description: str | None,
    config: dict[str, Any],
) -> RegistryRow:
    """Insert a workflow the caller has checked (``catalog.workflow_setup``); the new row.
    :class:`ConfigError` when the slug is taken in the workstream."""
    try:
        new_id = conn.execute(
            insert(EnrichmentRegistry)
            .values(
                slug=slug,
                workstream_slug=workstream,
                name=name,
                type=kind.value,
                handler=handler,
                description=description,
                config=config,
            )
            .returning(EnrichmentRegistry.id)
        ).scalar_one()
    except IntegrityError:
        raise ConfigError(f"workflow {slug!r} already exists in {workstream!r}") from None
    return RegistryRow(
        id=new_id,
        slug=slug,
        workstream_slug=workstream,
        name=name,
        type=kind.value,
        handler=handler,
        description=description,
        config=config,
    )
