"""``enrichflow init``: create or migrate the database and seed the built-in rows."""

from __future__ import annotations

from enrichflow.cli.root import DatabaseUrl, console, engine_for, fail
from enrichflow.config import get_settings
from enrichflow.db.engine import redact_db_url
from enrichflow.errors import EnrichflowError


def init(database_url: DatabaseUrl = None) -> None:
    """Create or migrate the database and seed the built-in workstream and workflows."""
    from enrichflow.seed import init_database

    url = database_url or get_settings().database_url
    try:
        init_database(engine_for(url))
    except EnrichflowError as exc:
        raise fail(str(exc)) from exc
    console.print(f"database ready: {redact_db_url(url)}")
