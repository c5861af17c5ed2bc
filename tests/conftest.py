"""Real databases for every test: a fresh SQLite file, and a fresh Postgres database cloned
from a migrated template. Without a reachable Postgres the Postgres half is skipped loudly,
except under CI=true, where that is a failure."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from enrichflow.db.engine import make_engine
from enrichflow.seed import init_database
from handlers_for_tests import IN_CI

PG_URL = os.environ.get("ENRICHFLOW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_BASE = PG_URL.rsplit("/", 1)[0]

# A developer's own Sentry project must not receive the suite's deliberate errors; the Sentry
# tests pass their DSN (a loopback server) explicitly.
for _name in ("SENTRY_DSN", "ENRICHFLOW_SENTRY_DSN"):
    os.environ.pop(_name, None)

# Every Clay stand-in, callback receiver and http-step server of the suite listens on loopback,
# which the egress guard refuses unless allowed; tests/security unsets it to test the refusals.
os.environ["ENRICHFLOW_ALLOW_PRIVATE_TARGETS"] = "1"


def _require_postgres() -> None:
    """Skip loudly when Postgres is not reachable; fail instead under CI=true."""
    try:
        engine = make_engine(f"{PG_BASE}/postgres")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        message = f"PostgreSQL at {PG_URL} is not reachable ({str(exc).splitlines()[0]})"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(f"!!! SKIPPING POSTGRES TESTS: {message}")


@contextmanager
def pg_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A new Postgres database (a copy of ``template`` if given), dropped afterwards; yields its URL."""
    _require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = make_engine(f"{PG_BASE}/postgres", isolation_level="AUTOCOMMIT")
    clause = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
    try:
        yield f"{PG_BASE}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated, seeded Postgres database that every test's database is cloned from."""
    with pg_database("ef_tmpl") as url:
        engine = make_engine(url)
        init_database(engine)
        engine.dispose()
        yield url.rsplit("/", 1)[1]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tmpl") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    init_database(engine)
    # Closing the last connection checkpoints the WAL, so the file alone is the template.
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, migrated and seeded database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "enrichflow.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with pg_database("ef_test", template=request.getfixturevalue("pg_template")) as url:
        yield url


@pytest.fixture
def pg_only_url(pg_template: str) -> Iterator[str]:
    """URL of a fresh, migrated and seeded Postgres database, for Postgres-only behaviour."""
    with pg_database("ef_pg", template=pg_template) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a database of each kind with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with pg_database("ef_empty") as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()
