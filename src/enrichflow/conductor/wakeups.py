"""Database wake-ups for the conductor: ``LISTEN enrichflow`` on Postgres.

Migration 0003 makes Postgres ``NOTIFY enrichflow`` (payload: the batch id) when states become
PENDING, COMPLETED, SKIPPED or FAILED and when a batch is launched or re-opened. A
:class:`NotifyListener` holds its own psycopg connection in a daemon thread and calls
``on_wake`` for every notification, so a conductor sleeping in ``executor.wait`` runs its next
tick at once, whichever process (runner, callback receiver, ``launch``, another conductor)
changed the state.

Losing the connection (server restart, network) is logged; the listener backs off, reconnects
and wakes the conductor once after reconnecting, since notifications sent while it was away
are lost. The conductor's slow poll remains the safety net.

On SQLite there is nothing to listen to: the executor wakes the conductor in-process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy import Engine

from enrichflow.db.engine import is_postgres

__all__ = ["CHANNEL", "NotifyListener", "listener_for"]

log = logging.getLogger(__name__)

CHANNEL = "enrichflow"


def _conninfo(engine: Engine) -> str:
    """A libpq URI for the engine's database (psycopg does not know ``postgresql+psycopg``)."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class NotifyListener:
    """``LISTEN`` in a background thread; ``on_wake()`` per notification.

    ``with NotifyListener(...):`` or :meth:`start` / :meth:`stop`. ``ready`` is set once the
    ``LISTEN`` is in place (again after each reconnect); ``connects`` counts the connections
    made, for tests and logs.
    """

    def __init__(
        self,
        conninfo: str,
        on_wake: Callable[[], None],
        channel: str = CHANNEL,
        poll_seconds: float = 0.5,
        max_backoff: float = 5.0,
    ) -> None:
        self.conninfo = conninfo
        self.on_wake = on_wake
        self.channel = channel
        self.poll_seconds = poll_seconds
        self.max_backoff = max_backoff
        self.ready = threading.Event()
        self.connects = 0
        self.received = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="enrichflow-listen", daemon=True)

    def start(self) -> NotifyListener:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def __enter__(self) -> NotifyListener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                self._listen()
                backoff = 0.1
            except psycopg.Error as exc:
                self.ready.clear()
                log.warning(
                    "LISTEN %s: lost the database connection (%s); reconnecting in %.1f s",
                    self.channel,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    backoff,
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
            except Exception:
                self.ready.clear()
                log.exception(
                    "LISTEN %s: unexpected error; retrying in %.1f s", self.channel, backoff
                )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)

    def _listen(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'LISTEN "{self.channel}"')
            self.connects += 1
            if self.connects > 1:
                log.warning("LISTEN %s: reconnected", self.channel)
                # Whatever was notified while we were away is lost: look once.
                self.on_wake()
            self.ready.set()
            while not self._stop.is_set():
                for _ in conn.notifies(timeout=self.poll_seconds):
                    self.received += 1
                    self.on_wake()
                    if self._stop.is_set():
                        break
                # notifies() returning means the timeout passed; loop to check for stop.


def listener_for(engine: Engine, on_wake: Callable[[], None]) -> NotifyListener | None:
    """A (not yet started) listener when ``engine`` is Postgres; None on SQLite."""
    if not is_postgres(engine):
        return None
    return NotifyListener(_conninfo(engine), on_wake)
