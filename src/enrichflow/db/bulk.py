"""Bulk loads of child rows whose parent rows the same transaction has just created.

Postgres checks a foreign key once per inserted row (a trigger that looks the parent up and
takes ``FOR KEY SHARE`` on it). When a million rows all point at a parent this transaction
inserted moments before (an upload's rows at ingest; a batch's items, and the items' first
states, at launch), every one of those checks re-proves what the statement already
guarantees, and together they are a large share of the ingest's and launch's time. Such a
load may run with ``session_replication_role = replica``, which skips the checks for the
duration of the statement. Nobody else can see, lock or delete an
uncommitted parent, so the skipped checks could not have failed; every other write, and
every later delete or cascade, is checked as usual.

The setting needs a superuser or, from Postgres 15, a role granted ``SET`` on it; without
that the load simply runs with its checks (slower, same result). Changing it also flushes the
session's cached query plans, which costs a small load more than its checks: loads under
:data:`LARGE_LOAD_ROWS` rows keep them. SQLite checks a foreign key as part of the row write,
at a cost it never made worth avoiding.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

from enrichflow.db.engine import is_postgres

LARGE_LOAD_ROWS = 10_000
"""From this many rows a load skips the checks where it may: below it, flushing the plan cache
costs more than the checks it saves."""


def may_skip_foreign_key_checks(conn: Connection) -> bool:
    """Whether this Postgres role may set ``session_replication_role`` (False elsewhere)."""
    if not is_postgres(conn):
        return False
    superuser = conn.exec_driver_sql("SELECT current_setting('is_superuser')").scalar_one()
    if superuser == "on":
        return True
    if (conn.dialect.server_version_info or (0,)) < (15,):
        return False
    return bool(
        conn.exec_driver_sql(
            "SELECT has_parameter_privilege('session_replication_role', 'SET')"
        ).scalar_one()
    )


@contextmanager
def new_parents_only(conn: Connection, rows: int) -> Iterator[bool]:
    """Run the block's inserts of about ``rows`` rows without per-row foreign-key checks,
    where the role allows it and the load is large enough to gain from it.

    Only for inserts whose every foreign key points at rows this transaction created (see the
    module docstring). Statement-level triggers do not fire either: a caller that relies on
    one (the launch's NOTIFY) makes sure its effect happens another way. Yields whether the
    checks are skipped.
    """
    skip = rows >= LARGE_LOAD_ROWS and may_skip_foreign_key_checks(conn)
    if not skip:
        yield False
        return
    before = conn.exec_driver_sql("SELECT current_setting('session_replication_role')").scalar()
    conn.exec_driver_sql("SELECT set_config('session_replication_role', 'replica', true)")
    yield True
    # Not on an exception: the failed transaction rolls back, and the setting (LOCAL) with it.
    conn.exec_driver_sql(
        "SELECT set_config('session_replication_role', %(before)s, true)", {"before": before}
    )
