"""Postgres planner statistics for the tables a running batch fills.

Autovacuum analyzes a table only a while after a fifth of it changed, and never where it is
turned off. Until then the planner costs the runner's and the export's look-ups by item
(``item_id = ANY(...)``) as if most rows matched, and scans the whole table, which makes a
chunk's results load and the export many times slower than with fresh statistics.
``launch`` analyzes the items and states it creates; this keeps the tables that grow
afterwards analyzed, from the conductor's housekeeping and before an export.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine, bindparam, text

from enrichflow.db.engine import is_postgres

log = logging.getLogger(__name__)

TABLES = (
    "workflow_states",
    "enrichment_results",
    "final_leads",
    "people",
    "companies",
    "step_dedupe",
)
STALE_SHARE = 0.2
"""A table is stale once this share of its rows changed since it was last analyzed..."""
STALE_ROWS = 10_000
"""...and at least this many rows: small tables are cheap to scan whatever the plan."""
KEYED_STALE_ROWS = {"step_dedupe": 1_000}
"""Fewer for a table that every chunk reads by a list of keys: without statistics its plan
reads all of a batch's rows and filters them, in every chunk."""

_CHANGED = text(
    "SELECT relname, n_live_tup, n_mod_since_analyze FROM pg_stat_user_tables "
    "WHERE schemaname = current_schema() AND relname IN :names"
).bindparams(bindparam("names", expanding=True))


def stale_tables(conn: Connection) -> list[str]:
    """The tables of :data:`TABLES` whose statistics are out of date, in that order."""
    changed = {
        name: (live, modified)
        for name, live, modified in conn.execute(_CHANGED, {"names": list(TABLES)})
    }
    stale = []
    for name in TABLES:
        if name not in changed:
            continue
        live, modified = changed[name]
        least = min(STALE_ROWS, KEYED_STALE_ROWS.get(name, STALE_ROWS))
        if modified >= max(least, STALE_SHARE * live):
            stale.append(name)
    return stale


def statistics_refresh(engine: Engine) -> list[str]:
    """``ANALYZE`` the stale tables (Postgres; nothing elsewhere); returns their names.

    ANALYZE reads a sample and takes a lock that neither reads nor writes wait
    on. A role that does not own a table gets a warning from the server, not an error."""
    if not is_postgres(engine):
        return []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        stale = stale_tables(conn)
        if stale:
            conn.exec_driver_sql(f"ANALYZE {', '.join(stale)}")
    if stale:
        log.debug("analyzed %s", ", ".join(stale))
    return stale
