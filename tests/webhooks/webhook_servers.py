"""Real HTTP servers on 127.0.0.1 for the webhook tests.

* :class:`UvicornThread` runs an ASGI app (the sandbox) with uvicorn in a background thread.
* :class:`ScriptedServer` is a ``ThreadingHTTPServer`` that answers requests from a script
  of :class:`Reply` objects (status, headers, body, delay, or closing the connection) and
  records every request it receives; with an empty script it answers 200 ``{}``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn


def free_port() -> int:
    """A port nothing listens on right now (nothing will, unless someone binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class UvicornThread:
    """``with UvicornThread(app) as server: server.url`` — uvicorn in a thread."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            ws="none",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)

    def __enter__(self) -> UvicornThread:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)


@dataclass
class Reply:
    """One scripted answer. ``close`` drops the connection without answering."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    close: bool = False


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class ScriptedServer:
    """``with ScriptedServer([Reply(429, headers={"Retry-After": "7"})]) as s: s.url``."""

    def __init__(
        self,
        script: list[Reply] | None = None,
        responder: Callable[[Recorded], Reply] | None = None,
    ) -> None:
        self.script = list(script or [])
        self.responder = responder
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                with outer._lock:
                    outer.requests.append(recorded)
                    if outer.script:
                        reply = outer.script.pop(0)
                    elif outer.responder is not None:
                        reply = outer.responder(recorded)
                    else:
                        reply = Reply()
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.close:
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                payload = (
                    reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                )
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    if not any(k.lower() == "content-type" for k in reply.headers):
                        self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Recorded]:
        """The recorded requests once there are at least ``count`` (or after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        with self._lock:
            return list(self.requests)


def make_context(**overrides: Any) -> Any:
    """A :class:`~enrichflow.steps.base.StepContext` for handler tests (no database needed)."""
    import logging

    from enrichflow.steps.base import ItemIdentity, StepContext

    values: dict[str, Any] = {
        "state_id": 41,
        "batch_id": 7,
        "item_id": 1001,
        "step": "enrich_company",
        "workstream": "outbound",
        "client": "acme",
        "attempt": 1,
        "row_number": 3,
        "identity": ItemIdentity(company_name="Example Inc", company_domain="example.com"),
        "original_data": {"Company": "Example Inc", "Website": "https://example.com"},
        "results": {},
        "workflow_config": {},
        "client_config": {},
        "logger": logging.getLogger("enrichflow.test.webhooks"),
        "services": {},
    }
    values.update(overrides)
    return StepContext(**values)


class MemoryLedger:
    """In-memory stand-in for the database-backed submission ledger (a test double for
    a DB table): counts per ``url_key``, incremented atomically under a lock."""

    def __init__(self, counts: dict[str, int] | None = None) -> None:
        self.counts: dict[str, int] = dict(counts or {})
        self._lock = threading.Lock()

    def submissions(self, url_key: str) -> int:
        with self._lock:
            return self.counts.get(url_key, 0)

    def record_submission(self, url_key: str, url_redacted: str = "") -> int:
        with self._lock:
            self.counts[url_key] = self.counts.get(url_key, 0) + 1
            return self.counts[url_key]
