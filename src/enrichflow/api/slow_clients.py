"""Slow clients cannot hold the server: the uvicorn set-up of ``serve`` and ``run``.

uvicorn closes idle keep-alive connections and answers 503 above ``limit_concurrency``, but it
has no deadline for a request's head or body: a client that sends one header byte every few
seconds (slowloris) keeps its connection, and enough of them fill the connection limit so that
everyone else gets 503. :class:`GuardedProtocol` adds the missing deadlines to uvicorn's
httptools protocol:

* the request head (request line and headers) must arrive within ``header_timeout`` seconds
  of the connection, or of the first byte of the next request on a kept-alive connection,
  and be at most :data:`MAX_HEAD_BYTES` long (400 otherwise);
* the body must arrive within ``body_timeout`` seconds of the head, counting only time the
  server is ready to read (a slow app pausing the reads does not use the client's time).

A connection past a deadline is closed. A reverse proxy in front should still buffer requests
and limit connections per address (docs/deploy.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from enrichflow.config import Settings

__all__ = ["MAX_HEAD_BYTES", "GuardedProtocol", "guarded_config"]

MAX_HEAD_BYTES = 64 * 1024


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines for the request head and body."""

    header_timeout = 10.0
    body_timeout = 120.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._in_head = False
        self._head_bytes = 0

    def _arm(self, seconds: float, handler: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, handler)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _start_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._arm(self.header_timeout, self._too_slow)

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def _body_due(self) -> None:
        self._deadline = None
        if self.flow.read_paused:
            # the app is not reading: the server is the slow one, so the client gets a new window
            self._arm(self.body_timeout, self._body_due)
            return
        self._too_slow()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._in_head and self._deadline is None:
            self._start_head()  # bytes between requests start the next request's head
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # still no complete head after this many bytes: the head is too large
        if self._in_head and self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
            self._disarm()
            self.send_400_response("Request head too large.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:
            self._start_head()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._arm(self.body_timeout, self._body_due)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


def guarded_config(app: Any, host: str, port: int, settings: Settings, **options: Any) -> Any:
    """The ``uvicorn.Config`` every enrichflow server uses: guarded protocol, keep-alive
    timeout and connection limit from ``settings``; ``options`` pass on to uvicorn."""
    protocol = type(
        "Guarded",
        (GuardedProtocol,),
        {"header_timeout": settings.header_timeout, "body_timeout": settings.body_timeout},
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        ws="none",
        timeout_keep_alive=settings.keep_alive_timeout,
        limit_concurrency=settings.max_connections,
        **options,
    )
