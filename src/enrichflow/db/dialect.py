"""SQL forms that differ between SQLite and Postgres and that statements across ``db`` share.

A list of ids travels as one parameter (an array on Postgres, a JSON list on SQLite), so a
statement over a thousand ids costs one bind parameter instead of a thousand rendered ones.
"""

from __future__ import annotations

import sqlite3
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    String,
    any_,
    bindparam,
    cast,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from enrichflow.db import jsoncodec
from enrichflow.db.engine import is_postgres

__all__ = [
    "id_in",
    "insert_ignore",
    "json_each",
    "pg_array",
    "sqlite_rows_per_statement",
    "text_in",
]


def insert_ignore(conn: Connection, table: Any) -> Insert:
    """``INSERT ... ON CONFLICT DO NOTHING`` in the connection's dialect."""
    if is_postgres(conn):
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


def pg_array(values: Iterable[int], item_type: Any) -> Any:
    """An integer array sent as one text parameter (``'1,2,3'``): psycopg dumps a Python list
    element by element, with a regex test each, which cost more than the statement."""
    text_param = bindparam(None, ",".join(map(str, values)), type_=String)
    return cast(func.string_to_array(text_param, ","), postgresql.ARRAY(item_type))


def json_each(values: Sequence[Any]) -> Any:
    """SQLite's ``json_each`` over one JSON-encoded parameter: a list of any length costs one
    bind parameter, where an expanding IN costs SQLAlchemy a rendered placeholder per value."""
    return func.json_each(bindparam(None, jsoncodec.dumps(values), type_=String)).table_valued(
        "value"
    )


def id_in(conn: Connection, column: ColumnElement[Any], ids: Sequence[int]) -> ColumnElement[bool]:
    """``column IN ids`` with one parameter: an array on Postgres, a JSON list on SQLite."""
    if is_postgres(conn):
        return column == any_(pg_array(ids, BigInteger))
    return column.in_(select(json_each(list(ids)).c.value))


def text_in(
    conn: Connection, column: ColumnElement[Any], values: Sequence[str]
) -> ColumnElement[bool]:
    """``column IN values`` for strings with one parameter: a text array on Postgres (the
    statement's text is the same for any number of values, so the server keeps its plan), a
    JSON list on SQLite."""
    if is_postgres(conn):
        return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))
    return column.in_(select(json_each(list(values)).c.value))


def sqlite_rows_per_statement(conn: Connection, columns: int) -> int:
    """How many rows of ``columns`` bound values one SQLite statement may carry (the
    connection's limit on bound values)."""
    dbapi = typing.cast(sqlite3.Connection, conn.connection.dbapi_connection)
    return max(1, dbapi.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // columns)
