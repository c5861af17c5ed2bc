"""The one signing key of an installation: callback tokens and dashboard session cookies.

There is no key in the code. ``ENRICHFLOW_SECRET_KEY`` wins when it is set, and must then be
at least :data:`MIN_KEY_BYTES` bytes long. When it is unset, the first process to start makes
a random key and keeps it in the database (``instance_secrets``), so ``run``, ``serve``, the
conductor and Modal workers that share the database sign and verify alike with no set-up.
Two processes starting at once both insert-if-absent and then read back the one row that won.

Every user of the key calls :func:`resolve_secret_key`; nothing reads ``settings.secret_key``
directly.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import OperationalError, ProgrammingError

from enrichflow.config import Settings
from enrichflow.db.engine import is_postgres
from enrichflow.db.models import InstanceSecret
from enrichflow.errors import ConfigError

__all__ = [
    "KEY_ROW",
    "MAKE_A_KEY",
    "MIN_KEY_BYTES",
    "ResolvedKey",
    "WeakSecretKey",
    "check_key_strength",
    "resolve_secret_key",
    "stored_secret_key",
]

MIN_KEY_BYTES = 32
KEY_ROW = "secret_key"
MAKE_A_KEY = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'

Source = Literal["environment", "database"]


class WeakSecretKey(ConfigError):
    """ENRICHFLOW_SECRET_KEY is set but too short to sign anything an attacker cannot forge."""


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    """The key and where it came from (``environment`` or ``database``)."""

    value: str
    source: Source

    def __repr__(self) -> str:
        return f"ResolvedKey(value='***', source={self.source!r})"


def check_key_strength(key: str) -> None:
    """:class:`WeakSecretKey` for a key shorter than :data:`MIN_KEY_BYTES` bytes."""
    size = len(key.encode("utf-8"))
    if size < MIN_KEY_BYTES:
        raise WeakSecretKey(
            f"ENRICHFLOW_SECRET_KEY is {size} bytes long; it must be at least {MIN_KEY_BYTES} "
            f"random bytes. Make one with: {MAKE_A_KEY} (or unset it, and a random key is kept "
            "in the database)"
        )


def stored_secret_key(conn: Connection) -> str | None:
    """The key kept in the database, ``None`` when no process has made one yet."""
    value: str | None = conn.execute(
        select(InstanceSecret.value).where(InstanceSecret.name == KEY_ROW)
    ).scalar_one_or_none()
    return value


def _insert_if_absent(conn: Connection, value: str) -> None:
    dialect_insert = pg_insert if is_postgres(conn) else sqlite_insert
    conn.execute(
        dialect_insert(InstanceSecret)
        .values(name=KEY_ROW, value=value)
        .on_conflict_do_nothing(index_elements=[InstanceSecret.name])
    )


def _database_key(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            found = stored_secret_key(conn)
        if found is not None:
            return found
        with engine.begin() as conn:
            _insert_if_absent(conn, secrets.token_urlsafe(MIN_KEY_BYTES))
            winner = stored_secret_key(conn)
    except (OperationalError, ProgrammingError) as exc:
        raise ConfigError(
            "ENRICHFLOW_SECRET_KEY is unset and the database cannot keep a generated key "
            f"({str(exc.orig).strip().splitlines()[0]}): run `enrichflow init`, or set "
            f"ENRICHFLOW_SECRET_KEY (make one with: {MAKE_A_KEY})"
        ) from exc
    assert winner is not None, "the key row was inserted or already there"
    return winner


def resolve_secret_key(engine: Engine, settings: Settings) -> ResolvedKey:
    """The installation's signing key: ``ENRICHFLOW_SECRET_KEY`` (checked for length), else
    the database's, made on first use. :class:`WeakSecretKey` for a short explicit key;
    :class:`ConfigError` when the database cannot keep one."""
    if settings.secret_key is not None:
        key = settings.secret_key.get_secret_value()
        check_key_strength(key)
        return ResolvedKey(key, "environment")
    return ResolvedKey(_database_key(engine), "database")
