"""The conductor loop in a background thread, beside the app that ``enrichflow serve`` runs."""

from __future__ import annotations

import logging
import threading

from enrichflow.conductor.loop import Conductor

__all__ = ["ConductorThread"]

log = logging.getLogger(__name__)


class ConductorThread:
    """``conductor.run`` in a daemon thread until :meth:`stop`; errors are logged and kept."""

    def __init__(self, conductor: Conductor) -> None:
        self.conductor = conductor
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="enrichflow-conductor", daemon=True)

    def _run(self) -> None:
        try:
            self.conductor.run(self._stop.is_set)
        except BaseException as exc:
            log.exception("the conductor stopped with an error")
            self.error = exc

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self.conductor.executor.wake()
        self._thread.join(timeout)
