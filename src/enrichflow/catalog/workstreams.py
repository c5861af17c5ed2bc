"""Workstreams: the families of workflows (Apollo leads, ...) a pipeline is built from."""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from enrichflow.catalog.clients import description_clean, name_clean, slug_clean
from enrichflow.db.models import Workstream
from enrichflow.errors import ConfigError

__all__ = ["WorkstreamRow", "workstream_add", "workstream_exists", "workstreams_list"]


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


def workstream_add(
    conn: Connection, slug: str, name: str | None = None, description: str | None = None
) -> WorkstreamRow:
    """A new, empty workstream (its workflows are added with ``workflow add``); ``name``
    defaults to the slug. :class:`ConfigError` for a bad or taken slug."""
    slug = slug_clean(slug, "workstream slug")
    name = name_clean(name if name and name.strip() else slug, "workstream name")
    described = description_clean(description)
    taken = ConfigError(f"workstream {slug!r} already exists")
    if workstream_exists(conn, slug):
        raise taken
    try:
        conn.execute(insert(Workstream).values(slug=slug, name=name, description=described))
    except IntegrityError:
        raise taken from None
    return WorkstreamRow(slug=slug, name=name, description=described)
