"""One statement per chunk for ``INSERT ... ON CONFLICT (keys) DO UPDATE`` of many rows, on both
dialects, for the chunk steps that write the relational tables (split and consolidation)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, Boolean, Connection, Integer, bindparam, text
from sqlalchemy.schema import Table
from sqlalchemy.types import TypeEngine

from enrichflow.db import jsoncodec
from enrichflow.db.dialect import sqlite_rows_per_statement
from enrichflow.db.engine import is_postgres
from enrichflow.db.models import UTCDateTime

_CREATED_AT = UTCDateTime()


def column_kinds(table: Table, names: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """``(name, kind)`` of each column for :class:`BulkUpsert`, the kind read from the
    column's type: ``int``, ``bool``, ``json`` or ``text``."""
    return tuple((name, _kind(table.c[name].type)) for name in names)


def _kind(column_type: TypeEngine[Any]) -> str:
    if isinstance(column_type, JSON):
        return "json"
    if isinstance(column_type, Boolean):
        return "bool"
    if isinstance(column_type, Integer):
        return "int"
    return "text"


def sqlite_timestamp(conn: Connection, now: datetime) -> Any:
    """``now`` as SQLAlchemy would store it in a ``created_at`` column of this dialect (the
    type decorator and the dialect's format), for statements bound without SQLAlchemy."""
    created = _CREATED_AT.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return created(now) if created else now


@dataclass(frozen=True)
class BulkUpsert:
    """A chunk's ``INSERT ... ON CONFLICT (keys) DO UPDATE`` in one statement, without
    SQLAlchemy's per-row parameter processing, which would dominate a chunk step's cost.

    Postgres: the rows travel as one JSONB parameter unpacked by ``jsonb_array_elements``, with
    ``RETURNING`` (one round trip). SQLite: bound values in multi-row ``VALUES`` statements,
    then one ``SELECT`` of the ids, because SQLite unpacks a wide row from JSON more slowly than
    it binds one, and ``RETURNING`` costs it more than the ``SELECT``.

    ``columns`` are (name, kind), kind ``int``, ``text``, ``bool`` or ``json``; ``returning``
    is read back for every row written; ``fill_only`` keeps stored values and only fills what
    is still empty.
    """

    table: str
    columns: tuple[tuple[str, str], ...]
    keys: tuple[str, ...]
    update: tuple[str, ...]
    returning: tuple[str, ...]
    fill_only: bool = False


_PG_CAST = {"int": "({})::bigint", "text": "{}", "bool": "({})::boolean"}


def _conflict_sql(bulk: BulkUpsert) -> str:
    sets = ", ".join(
        f"{c} = COALESCE({bulk.table}.{c}, excluded.{c})"
        if bulk.fill_only
        else f"{c} = excluded.{c}"
        for c in bulk.update
    )
    return f"ON CONFLICT ({', '.join(bulk.keys)}) DO UPDATE SET {sets}"


def _column_list(bulk: BulkUpsert) -> str:
    return ", ".join([name for name, _ in bulk.columns] + ["created_at"])


@lru_cache(maxsize=8)
def _postgres_upsert_sql(bulk: BulkUpsert) -> str:
    """The upsert of a JSONB array of rows, with ``RETURNING``."""
    # A None of a JSON column is SQL NULL, as on SQLite, so that a fill-only upsert fills it.
    values = [
        f"NULLIF(r -> {i}, 'null'::jsonb)"
        if kind == "json"
        else _PG_CAST[kind].format(f"r ->> {i}")
        for i, (_, kind) in enumerate(bulk.columns)
    ]
    # Rows go in list order: callers sort them, so concurrent chunks take their row locks
    # in the same order and queue instead of deadlocking.
    return (
        f"INSERT INTO {bulk.table} ({_column_list(bulk)}) SELECT {', '.join(values)}, :now "
        "FROM jsonb_array_elements(CAST(:rows AS JSONB)) WITH ORDINALITY AS e(r, n) "
        f"ORDER BY n {_conflict_sql(bulk)} RETURNING {', '.join(bulk.returning)}"
    )


@lru_cache(maxsize=32)
def _sqlite_upsert_sql(bulk: BulkUpsert, rows: int) -> str:
    """The upsert of ``rows`` rows as one multi-row ``VALUES`` statement."""
    row = f"({', '.join('?' * (len(bulk.columns) + 1))})"
    conflict = _conflict_sql(bulk)
    if bulk.fill_only:
        # Only rows that gain a value: SQLite rewrites a row even when no value changes, and
        # the colleagues of a company seen in an earlier chunk usually bring nothing new.
        gains = " OR ".join(
            f"({bulk.table}.{c} IS NULL AND excluded.{c} IS NOT NULL)" for c in bulk.update
        )
        conflict += f" WHERE {gains}"
    return (
        f"INSERT INTO {bulk.table} ({_column_list(bulk)}) VALUES {', '.join([row] * rows)} "
        f"{conflict}"
    )


@lru_cache(maxsize=8)
def _sqlite_read_back_sql(bulk: BulkUpsert) -> str:
    """The ``returning`` columns of the rows whose keys are in a JSON array of key arrays."""
    # json_each drives the join (CROSS JOIN keeps that order), each key one index search.
    match = " AND ".join(f"t.{key} = j.value ->> '$[{i}]'" for i, key in enumerate(bulk.keys))
    return (
        f"SELECT {_json_columns(bulk, 't.')} "
        f"FROM json_each(?) AS j CROSS JOIN {bulk.table} AS t ON {match}"
    )


@lru_cache(maxsize=8)
def _sqlite_inserted_sql(bulk: BulkUpsert) -> str:
    """The ``returning`` columns of the rows whose id is above a given one."""
    return f"SELECT {_json_columns(bulk, '')} FROM {bulk.table} WHERE id > ?"


def _json_columns(bulk: BulkUpsert, prefix: str) -> str:
    # One row of JSON arrays: the driver steps a result one row per call, releasing and
    # taking the GIL each time, and every row is an object more for the garbage collector.
    return ", ".join(f"json_group_array({prefix}{c})" for c in bulk.returning)


def _sqlite_rows(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The rows of a ``_json_columns`` query, as tuples."""
    columns = map(jsoncodec.loads, conn.exec_driver_sql(sql, params).one())
    return list(zip(*columns, strict=True))


def bulk_upsert(conn: Connection, bulk: BulkUpsert, rows: list[list[Any]]) -> list[tuple[Any, ...]]:
    """Write ``rows`` (lists in ``bulk.columns`` order); the ``returning`` columns of each.

    Both read-backs also see a row another transaction committed while this one waited on
    its key (Postgres re-checks the conflict after the wait and RETURNING reports the row).
    """
    if not rows:
        return []
    now = datetime.now(UTC)
    if is_postgres(conn):
        stmt = text(_postgres_upsert_sql(bulk)).bindparams(bindparam("now", type_=_CREATED_AT))
        result = conn.execute(stmt, {"rows": jsoncodec.dumps(rows), "now": now})
        return [tuple(row) for row in result]
    stamp = sqlite_timestamp(conn, now)
    dumps = jsoncodec.dumps
    json_at = [i for i, (_, kind) in enumerate(bulk.columns) if kind == "json"]
    # As few statements as SQLite's limit on bound values allows, of equal size, because foreign
    # keys and indexes are checked per statement and executemany runs one per row.
    per_statement = sqlite_rows_per_statement(conn, len(bulk.columns) + 1)
    statements = -(-len(rows) // per_statement)
    size = -(-len(rows) // statements)
    before = conn.exec_driver_sql(f"SELECT max(id) FROM {bulk.table}").scalar() or 0
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        params: list[Any] = []
        for row in part:
            if json_at:
                row = list(row)
                for i in json_at:
                    if row[i] is not None:
                        row[i] = dumps(row[i])
            params += row
            params.append(stamp)
        conn.exec_driver_sql(_sqlite_upsert_sql(bulk, len(part)), tuple(params))
    # The writer lock keeps other writers out, so every id above the largest before is a row
    # this upsert inserted: when there are as many as rows, none was an update and they are
    # the answer (one range scan instead of a search per key).
    inserted = _sqlite_rows(conn, _sqlite_inserted_sql(bulk), (before,))
    if len(inserted) == len(rows):
        return inserted
    names = [name for name, _ in bulk.columns]
    key_at = [names.index(key) for key in bulk.keys]
    keys = dumps([[row[i] for i in key_at] for row in rows])
    return _sqlite_rows(conn, _sqlite_read_back_sql(bulk), (keys,))
