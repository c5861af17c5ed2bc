"""Workstreams: the families of workflows (Apollo leads, ...) a pipeline is built from."""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import Connection, select

from enrichflow.db.models import Workstream

__all__ = ["WorkstreamRow", "workstream_exists", "workstreams_list"]


class WorkstreamRow(TypedDict):
    slug: str
    name: str
    description: str | None


def workstreams_list(conn: Connection) -> list[WorkstreamRow]:
    """Every workstream by slug."""
    rows = conn.execute(
        select(Workstream.slug, Workstream.name, Workstream.description).order_by(Workstream.slug)
    )
    return [WorkstreamRow(slug=r.slug, name=r.name, description=r.description) for r in rows]


def workstream_exists(conn: Connection, slug: str) -> bool:
    return conn.execute(select(Workstream.id).where(Workstream.slug == slug)).first() is not None
