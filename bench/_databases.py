"""Scratch databases for the benchmarks: a SQLite file, or a new Postgres database that is
dropped afterwards (``ENRICHFLOW_BENCH_PG`` names the server)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from enrichflow.db.engine import make_engine

PG_BASE = os.environ.get("ENRICHFLOW_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")


@contextmanager
def kept_engine(name: str) -> Iterator[Engine]:
    """An engine on the Postgres database ``name``, created when missing and kept afterwards
    (so a big build serves several runs)."""
    admin = make_engine(f"{PG_BASE}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
        ).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    engine = make_engine(f"{PG_BASE}/{name}")
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def scratch_engine(store: str, tmp: Path, prefix: str) -> Iterator[Engine]:
    """An engine on an empty database of ``store`` ("sqlite" or "postgres")."""
    if store == "sqlite":
        engine = make_engine(f"sqlite:///{tmp / 'bench.db'}")
        try:
            yield engine
        finally:
            engine.dispose()
        return
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = make_engine(f"{PG_BASE}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(f"{PG_BASE}/{name}")
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
