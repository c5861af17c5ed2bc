"""Clients' saved pipelines (``enrichment_pipelines``): named, ordered lists of step slugs per
workstream. A launch resolves a name to a client's saved pipeline, else to the built-in one."""

from __future__ import annotations

from typing import Any, TypedDict

from sqlalchemy import Connection, delete, insert, select, update

from enrichflow.db.models import Client, EnrichmentPipeline
from enrichflow.seed import BUILTIN_PIPELINES

__all__ = [
    "PipelineChoice",
    "PipelineRow",
    "pipeline_choices",
    "pipeline_delete",
    "pipeline_delete_named",
    "pipeline_get",
    "pipeline_get_steps",
    "pipeline_save",
    "pipelines_list",
]


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
