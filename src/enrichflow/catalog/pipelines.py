"""Clients' saved pipelines (``enrichment_pipelines``): named, ordered lists of step slugs per
workstream. A launch resolves a name to a client's saved pipeline, else to the built-in one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from sqlalchemy import Connection, delete, insert, select, update

from enrichflow.catalog.registry import RegistryRow
from enrichflow.db.models import Client, EnrichmentPipeline
from enrichflow.errors import ConfigError, NotFoundError
from enrichflow.seed import BUILTIN_PIPELINES

__all__ = [
    "PipelineChoice",
    "PipelineRow",
    "pipeline_choices",
    "pipeline_create",
    "pipeline_delete",
    "pipeline_delete_named",
    "pipeline_get",
    "pipeline_get_steps",
    "pipeline_order_check",
    "pipeline_save",
    "pipeline_update",
    "pipelines_list",
    "pipelines_using",
]


CONSOLIDATE = "consolidate_final_leads"
"""The handler that writes the final leads from every earlier result: it belongs last."""


class PipelineRow(TypedDict):
    id: int
    client_id: int
    client: str
    workstream: str
    name: str
    steps: list[str]


class PipelineChoice(TypedDict):
    name: str
    steps: list[str]
    builtin: bool


def _query() -> Any:
    return select(
        EnrichmentPipeline.id,
        EnrichmentPipeline.client_id,
        Client.name.label("client"),
        EnrichmentPipeline.workstream_slug,
        EnrichmentPipeline.name,
        EnrichmentPipeline.steps,
    ).join(Client, Client.id == EnrichmentPipeline.client_id)


def _row(r: Any) -> PipelineRow:
    return PipelineRow(
        id=r.id,
        client_id=r.client_id,
        client=r.client,
        workstream=r.workstream_slug,
        name=r.name,
        steps=list(r.steps or []),
    )


def pipelines_list(
    conn: Connection,
    client_id: int | None = None,
    client: str | None = None,
    workstream: str | None = None,
    name: str | None = None,
) -> list[PipelineRow]:
    """Saved pipelines by client name, workstream and name; each argument narrows the list."""
    query = _query().order_by(
        Client.name, EnrichmentPipeline.workstream_slug, EnrichmentPipeline.name
    )
    if client_id is not None:
        query = query.where(EnrichmentPipeline.client_id == client_id)
    if client is not None:
        query = query.where(Client.name == client)
    if workstream is not None:
        query = query.where(EnrichmentPipeline.workstream_slug == workstream)
    if name is not None:
        query = query.where(EnrichmentPipeline.name == name)
    return [_row(r) for r in conn.execute(query)]


def pipeline_get(conn: Connection, pipeline_id: int) -> PipelineRow | None:
    """The pipeline ``pipeline_id``, or None."""
    r = conn.execute(_query().where(EnrichmentPipeline.id == pipeline_id)).first()
    return None if r is None else _row(r)


def pipeline_get_steps(
    conn: Connection, client: str, workstream: str, name: str
) -> list[str] | None:
    """The steps of the client's saved pipeline ``name``, or None when it has none."""
    steps = conn.execute(
        select(EnrichmentPipeline.steps)
        .join(Client, Client.id == EnrichmentPipeline.client_id)
        .where(
            Client.name == client,
            EnrichmentPipeline.workstream_slug == workstream,
            EnrichmentPipeline.name == name,
        )
    ).scalar_one_or_none()
    return None if steps is None else list(steps)


def pipeline_save(
    conn: Connection, client_id: int, workstream: str, name: str, steps: list[str]
) -> tuple[int, list[str] | None]:
    """Create the client's pipeline ``name`` or replace its steps; its id and the steps it had
    before (None when it is new). A concurrent save of the same name raises IntegrityError."""
    found = conn.execute(
        select(EnrichmentPipeline.id, EnrichmentPipeline.steps).where(
            EnrichmentPipeline.client_id == client_id,
            EnrichmentPipeline.workstream_slug == workstream,
            EnrichmentPipeline.name == name,
        )
    ).first()
    if found is not None:
        conn.execute(
            update(EnrichmentPipeline)
            .where(EnrichmentPipeline.id == found.id)
            .values(steps=list(steps))
        )
        return int(found.id), list(found.steps or [])
    new_id = conn.execute(
        insert(EnrichmentPipeline)
        .values(client_id=client_id, workstream_slug=workstream, name=name, steps=list(steps))
        .returning(EnrichmentPipeline.id)
    ).scalar_one()
    return int(new_id), None


def _name_taken(
    conn: Connection, client_id: int, workstream: str, name: str, other_than: int | None = None
) -> None:
    query = select(EnrichmentPipeline.id).where(
        EnrichmentPipeline.client_id == client_id,
        EnrichmentPipeline.workstream_slug == workstream,
        EnrichmentPipeline.name == name,
    )
    if other_than is not None:
        query = query.where(EnrichmentPipeline.id != other_than)
    if conn.execute(query).first() is not None:
        raise ConfigError(
            f"the client already has a pipeline named {name!r} in {workstream!r}: "
            "pick another name, or open that pipeline to change it"
        )


def pipeline_create(
    conn: Connection, client_id: int, workstream: str, name: str, steps: list[str]
) -> int:
    """A new pipeline of the client; :class:`ConfigError` when the name is taken (a save-as
    never replaces another pipeline)."""
    _name_taken(conn, client_id, workstream, name)
    return int(
        conn.execute(
            insert(EnrichmentPipeline)
            .values(client_id=client_id, workstream_slug=workstream, name=name, steps=list(steps))
            .returning(EnrichmentPipeline.id)
        ).scalar_one()
    )


def pipeline_update(
    conn: Connection, pipeline_id: int, workstream: str, name: str, steps: list[str]
) -> None:
    """Rename the pipeline and replace its steps, in place; :class:`ConfigError` when another
    pipeline of the client has that name, :class:`NotFoundError` when it is gone."""
    found = pipeline_get(conn, pipeline_id)
    if found is None:
        raise NotFoundError(f"pipeline {pipeline_id} does not exist")
    _name_taken(conn, found["client_id"], workstream, name, other_than=pipeline_id)
    conn.execute(
        update(EnrichmentPipeline)
        .where(EnrichmentPipeline.id == pipeline_id)
        .values(name=name, workstream_slug=workstream, steps=list(steps))
    )


def pipelines_using(conn: Connection, workstream: str, step: str) -> list[PipelineRow]:
    """The saved pipelines of the workstream that run ``step``."""
    return [p for p in pipelines_list(conn, workstream=workstream) if step in p["steps"]]


def pipeline_delete(conn: Connection, pipeline_id: int) -> bool:
    """Delete the pipeline; whether there was one."""
    gone = conn.execute(
        delete(EnrichmentPipeline).where(EnrichmentPipeline.id == pipeline_id)
    ).rowcount
    return bool(gone)


def pipeline_delete_named(conn: Connection, client_id: int, workstream: str, name: str) -> bool:
    """Delete the client's pipeline ``name`` in ``workstream``; whether there was one."""
    gone = conn.execute(
        delete(EnrichmentPipeline).where(
            EnrichmentPipeline.client_id == client_id,
            EnrichmentPipeline.workstream_slug == workstream,
            EnrichmentPipeline.name == name,
        )
    ).rowcount
    return bool(gone)


def pipeline_choices(conn: Connection, client_id: int, workstream: str) -> list[PipelineChoice]:
    """The client's saved pipelines of the workstream, then the built-in ones they do not
    replace: what a launch can pick from."""
    saved = [
        PipelineChoice(name=p["name"], steps=p["steps"], builtin=False)
        for p in pipelines_list(conn, client_id=client_id, workstream=workstream)
    ]
    taken = {p["name"] for p in saved}
    builtin = [
        PipelineChoice(name=name, steps=list(steps), builtin=True)
        for name, steps in BUILTIN_PIPELINES.get(workstream, {}).items()
        if name not in taken
    ]
    return saved + builtin


def pipeline_order_check(steps: Sequence[RegistryRow]) -> None:
    """:class:`ConfigError` naming the steps when their order defeats them: the consolidation
    before steps whose results it would miss, a Clay step de-duplicating by or sending the
    result of a step that runs after it."""
    slugs = [row.slug for row in steps]
    for index, row in enumerate(steps):
        later = slugs[index + 1 :]
        if row.handler == CONSOLIDATE and later:
            raise ConfigError(
                f"{row.slug} must be the last step: the results of {', '.join(later)} "
                "would not reach the final leads"
            )
        if row.handler != "webhook":
            continue
        dedupe = row.config.get("dedupe_by")
        source = dedupe.partition(".")[0] if isinstance(dedupe, str) and "." in dedupe else None
        if source in later:
            raise ConfigError(
                f"{row.slug} de-duplicates by {dedupe}, so {source} must come before it"
            )
        sent = row.config.get("fields")
        for name in sent if isinstance(sent, list) else []:
            if name in later:
                raise ConfigError(
                    f"{row.slug} sends the result of {name}, so {name} must come before it"
                )
