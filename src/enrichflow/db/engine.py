"""Engine creation for both stores, with SQLite tuned for a busy single-writer workload."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.url import URL

from enrichflow.db import jsoncodec
from enrichflow.errors import ConfigError


def normalize_url(url: str) -> URL:
    """Accept plain ``postgresql://`` / ``postgres://`` URLs (as Supabase hands out) and use psycopg 3."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"invalid database URL {redact_db_url(url)!r}: {exc}") from exc
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in {"sqlite", "sqlite+pysqlite", "postgresql+psycopg"}:
        raise ConfigError(
            f"unsupported database {parsed.drivername!r}: use sqlite:///FILE or postgresql://..."
        )
    return parsed


def redact_db_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE`` transactions."""
    parsed = normalize_url(url)
    kwargs.setdefault("json_serializer", jsoncodec.dumps)
    kwargs.setdefault("json_deserializer", jsoncodec.loads)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            parsed, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs
        )
        _tune_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    return create_engine(parsed, **kwargs)


def _tune_sqlite(engine: Engine) -> None:
    """WAL lets readers run beside the writer; IMMEDIATE takes the write lock up front, so two
    writers queue on ``busy_timeout`` instead of failing with 'database is locked' mid-transaction.

    Threads of one process also queue on a Python lock before ``BEGIN``: SQLite's own busy
    handler waits by sleeping, which starves the engine when the runner threads and the
    conductor contend for the write lock.
    """
    writer = _WriterLock()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("PRAGMA cache_size=-8192")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
            return
        writer.acquire(urgent=bool(conn.get_execution_options().get(URGENT)))
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            writer.release()
            raise
        conn.info["holds_writer_lock"] = True

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn: Any) -> None:
        # Only the connection that took the lock may release it.
        if conn.info.pop("holds_writer_lock", False):
            writer.release()


WAL_SIZE_LIMIT = 64 * 1024 * 1024
"""Bytes the SQLite write-ahead log is cut back to once a checkpoint has emptied it. Without a
limit the file keeps the size of the largest transaction (a large ingest's) for as long as
any process holds the database open, i.e. for the conductor's whole life."""

READ_ONLY = "enrichflow_read_only"
URGENT = "enrichflow_urgent"
"""Execution option: this connection's writes go before waiting non-urgent ones (SQLite)."""


class _WriterLock:
    """The in-process SQLite writer lock, with a fast lane: an urgent writer (the conductor,
    whose claims feed every runner thread) goes before runners waiting to record outcomes.
    Without it the conductor spent half its time queued behind group commits while runner
    threads sat idle for want of a claimed chunk."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._held = False
        self._urgent_waiting = 0

    def acquire(self, urgent: bool = False) -> None:
        with self._cond:
            if urgent:
                self._urgent_waiting += 1
                try:
                    while self._held:
                        self._cond.wait()
                finally:
                    self._urgent_waiting -= 1
            else:
                while self._held or self._urgent_waiting:
                    self._cond.wait()
            self._held = True

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()


def urgent(conn: Connection) -> Connection:
    """``conn`` with its SQLite writes in the writer lock's fast lane (no-op elsewhere)."""
    return conn.execution_options(**{URGENT: True})


def reading(engine: Engine) -> Connection:
    """A connection for reads only: on SQLite it neither takes the write lock nor queues
    behind writers (WAL readers see the last commit); elsewhere a plain connection."""
    return engine.connect().execution_options(**{READ_ONLY: True})


def is_postgres(engine_or_conn: Any) -> bool:
    """The dialect seam: Postgres-only features are used where this is true."""
    return bool(engine_or_conn.dialect.name == "postgresql")


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds, the unit of every state-machine timestamp."""
    return int(time.time() * 1000)
