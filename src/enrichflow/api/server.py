"""Serving the app: ``enrichflow serve``, the callback server, the conductor's coalesced wake.

* :func:`serve_forever` — the app in the foreground and the conductor in a background thread.
* :class:`CallbackServer` — the app served by uvicorn in a background thread, for as long as
  ``enrichflow run`` drives a batch with ASYNC steps.
* :class:`CoalescedWake` — what the callback receiver calls to wake the conductor: it sets the
  conductor's event (never runs a tick itself), at most once per interval, so that a stream of
  callbacks costs the conductor a few ticks a second rather than one per landed group.

uvicorn and the app are imported where they are used: only ``serve`` and ``run`` with ASYNC
steps serve HTTP.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from enrichflow.conductor.thread import ConductorThread
from enrichflow.config import Settings
from enrichflow.errors import ConfigError

__all__ = ["CallbackServer", "CoalescedWake", "serve_forever"]


class CoalescedWake:
    """``wake()`` for the app: calls ``target`` (which only sets an event) at once when it has
    not been called for ``interval`` seconds, else once when the interval is over; calls in
    between are folded into that one. Thread-safe and non-blocking."""

    def __init__(self, target: Callable[[], None], interval: float = 0.1) -> None:
        self.target = target
        self.interval = interval
        self.calls = 0
        """How many times ``target`` was called."""
        self._lock = threading.Lock()
        self._last = -float("inf")
        self._timer: threading.Timer | None = None

    def __call__(self) -> None:
        with self._lock:
            if self._timer is not None:
                return
            wait = self._last + self.interval - time.monotonic()
            if wait > 0:
                self._timer = threading.Timer(wait, self._fire)
                self._timer.daemon = True
                self._timer.start()
                return
            self._last = time.monotonic()
            self.calls += 1
        self.target()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
            self.calls += 1
        self.target()

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None


class CallbackServer:
    """``with CallbackServer(app, host, port): ...`` — uvicorn in a background thread."""

    def __init__(self, app: Any, host: str, port: int, log_level: str = "warning") -> None:
        import uvicorn

        from enrichflow.api.slow_clients import guarded_config

        self.host, self.port = host, port
        config = guarded_config(
            app,
            host,
            port,
            app.state.settings,
            log_level=log_level,
            lifespan="on",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._serve, name="enrichflow-callbacks", daemon=True
        )

    def _serve(self) -> None:
        # uvicorn exits when it cannot bind; __enter__ reports it
        with contextlib.suppress(SystemExit):
            self.server.run()

    def __enter__(self) -> CallbackServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.server.should_exit = True
                raise ConfigError(
                    f"could not serve the callback endpoint on {self.host}:{self.port} "
                    "(is the port in use? choose another with --port)"
                )
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=15)


def serve_forever(engine: Engine, settings: Settings, host: str, port: int) -> None:
    """``enrichflow serve``: the app in the foreground (uvicorn handles Ctrl-C and SIGTERM) and
    the conductor (built as every conductor is, :mod:`enrichflow.conductor.assembly`) in a
    background thread; landed callbacks wake the conductor (coalesced by :class:`CoalescedWake`).

    One uvicorn worker (the callback writer and the conductor live in this process), no access
    log, uvloop when it is installed, and the deadlines and connection limit of
    :mod:`enrichflow.api.slow_clients`."""
    import uvicorn

    from enrichflow.api.app import create_app
    from enrichflow.api.slow_clients import guarded_config
    from enrichflow.conductor.assembly import conductor_for, executor_for

    executor = executor_for(engine, settings)
    conductor = conductor_for(engine, executor, settings)
    background = ConductorThread(conductor)
    wake = CoalescedWake(executor.wake)
    app = create_app(engine, settings, wake)
    # keep the objects of startup (modules, the app) out of the collector's way
    gc.freeze()
    background.start()
    try:
        config = guarded_config(
            app,
            host,
            port,
            settings,
            log_level="info",
            access_log=False,
            workers=1,
            loop="auto",
            lifespan="on",
            backlog=2048,
        )
        uvicorn.Server(config).run()
    finally:
        wake.cancel()
        background.stop()
        executor.close()
