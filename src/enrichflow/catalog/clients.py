"""Clients: the companies a batch, an upload, a pipeline and a config belong to."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TypedDict

from sqlalchemy import Connection, case, exists, func, insert, select
from sqlalchemy.exc import IntegrityError

from enrichflow.db.models import Batch, Client, WorkflowState
from enrichflow.db.states import status_in
from enrichflow.errors import ConfigError, NotFoundError
from enrichflow.states import BatchStatus, Status

__all__ = [
    "NAME_MAX",
    "ClientRow",
    "client_create",
    "client_get_id",
    "client_get_name",
    "client_get_or_create",
    "clients_list",
    "clients_names",
    "description_clean",
    "name_clean",
    "slug_clean",
]

NAME_MAX = 200
SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{1,99}$")


class ClientRow(TypedDict):
    id: int
    name: str
    created_at: datetime | None
    batch_count: int
    running: int
    """Batches still running."""
    failing: int
    """Batches with failed items: finished with errors, or running with failures so far."""


def name_clean(value: str, what: str) -> str:
    """``value`` trimmed; :class:`ConfigError` when it is empty, too long or holds control
    characters (``what`` names the field in the message)."""
    value = value.strip()
    if not value:
        raise ConfigError(f"the {what} must not be empty")
    if len(value) > NAME_MAX:
        raise ConfigError(f"the {what} must be at most {NAME_MAX} characters")
    if any(ord(c) < 32 for c in value):
        raise ConfigError(f"the {what} must not contain control characters")
    return value


def slug_clean(value: str, what: str) -> str:
    """``value`` trimmed; :class:`ConfigError` unless it is a slug (a workstream's or a
    workflow's, the name commands and pipelines use), ``what`` naming it."""
    value = value.strip()
    if not SLUG_RE.match(value):
        raise ConfigError(
            f"the {what} {value!r} must start with a letter and hold only lowercase letters, "
            "digits and _ (2 to 100 characters)"
        )
    return value


def description_clean(value: str | None) -> str | None:
    """``value`` trimmed, None when empty; :class:`ConfigError` when it holds NUL characters."""
    description = (value or "").strip() or None
    if description is not None and "\x00" in description:
        raise ConfigError("the description must not contain NUL characters")
    return description


def clients_list(conn: Connection) -> list[ClientRow]:
    """Every client by name, with how many batches it has, runs and has failures in."""
    running = Batch.status == BatchStatus.RUNNING.value
    has_failed = exists().where(WorkflowState.batch_id == Batch.id, status_in(Status.FAILED))
    failing = (Batch.status == BatchStatus.COMPLETED_WITH_ERRORS.value) | (running & has_failed)
    batches = (
        select(
            Batch.client_id,
            func.count().label("n"),
            func.sum(case((running, 1), else_=0)).label("running"),
            func.sum(case((failing, 1), else_=0)).label("failing"),
        )
        .group_by(Batch.client_id)
        .subquery()
    )
    rows = conn.execute(
        select(
            Client.id,
            Client.name,
            Client.created_at,
            batches.c.n,
            batches.c.running,
            batches.c.failing,
        )
        .outerjoin(batches, batches.c.client_id == Client.id)
        .order_by(Client.name)
    )
    return [
        ClientRow(
            id=r.id,
            name=r.name,
            created_at=r.created_at,
            batch_count=r.n or 0,
            running=int(r.running or 0),
            failing=int(r.failing or 0),
        )
        for r in rows
    ]


def clients_names(conn: Connection, limit: int) -> list[str]:
    """The first ``limit`` client names in order, for messages that list the known ones."""
    return list(conn.execute(select(Client.name).order_by(Client.name).limit(limit)).scalars())


def client_create(conn: Connection, name: str) -> ClientRow:
    """A new client; :class:`ConfigError` when the name is taken or not a valid name."""
    name = name_clean(name, "client name")
    if client_get_id(conn, name) is not None:
        raise ConfigError(f"a client named {name!r} already exists")
    try:
        row = conn.execute(
            insert(Client).values(name=name).returning(Client.id, Client.created_at)
        ).one()
    except IntegrityError:
        raise ConfigError(f"a client named {name!r} already exists") from None
    return ClientRow(
        id=row.id, name=name, created_at=row.created_at, batch_count=0, running=0, failing=0
    )


def client_get_id(conn: Connection, name: str) -> int | None:
    """The id of the client named ``name``, or None."""
    found = conn.execute(select(Client.id).where(Client.name == name)).scalar_one_or_none()
    return None if found is None else int(found)


def client_get_name(conn: Connection, client_id: int) -> str:
    """The client's name; :class:`NotFoundError` when there is no such client."""
    name = conn.execute(select(Client.name).where(Client.id == client_id)).scalar()
    if name is None:
        raise NotFoundError(f"client {client_id} does not exist")
    return str(name)


def client_get_or_create(conn: Connection, name: str) -> int:
    """The id of the client named ``name``, created when new."""
    found = client_get_id(conn, name)
    if found is not None:
        return found
    return int(conn.execute(insert(Client).values(name=name).returning(Client.id)).scalar_one())
