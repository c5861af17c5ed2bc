"""The one place a conductor is put together from settings: ``enrichflow conductor`` and
``enrichflow run``, ``enrichflow serve`` and the Prefect flow all build their executor and
conductor here, so each runs the same parts with the same handler services."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine

from enrichflow.conductor.loop import Conductor, PhaseRunner, run_directly
from enrichflow.conductor.reaper import ReaperSettings
from enrichflow.config import Settings
from enrichflow.db.engine import reading
from enrichflow.errors import ConfigError
from enrichflow.executors.local import LocalExecutor
from enrichflow.executors.modal import ModalExecutor
from enrichflow.services import build_services
from enrichflow.webhooks.callback_base import check_callback_base

__all__ = ["conductor_for", "executor_for"]


def executor_for(
    engine: Engine,
    settings: Settings,
    kind: str | None = None,
    public_url: str | None = None,
    batch_ids: Iterable[int] | None = None,
) -> LocalExecutor | ModalExecutor:
    """The executor named by ``kind`` or ``ENRICHFLOW_EXECUTOR``: the local thread pool with the
    handlers' services (public URL, secret key, webhook ledger; ``public_url`` overrides the
    setting), or Modal, whose containers build the same services from their own settings.

    The local pool is refused (:class:`~enrichflow.webhooks.callback_base.CallbackBaseUnreachable`)
    when a running batch (``batch_ids``: one of those, the ones this process drives) sends to a
    Clay webhook that could not call the public URL back; Modal's containers check their own
    before each send."""
    name = kind or settings.executor
    if name == "modal":
        return ModalExecutor(
            engine,
            settings.modal_app,
            max_containers=settings.modal_max_containers,
            chunk_size=settings.chunk_size,
        )
    if name != "local":
        raise ConfigError(f"unknown executor {name!r}: local or modal")
    public_url = public_url or settings.public_url
    with reading(engine) as conn:
        check_callback_base(conn, public_url, batch_ids)
    return LocalExecutor(engine, settings.workers, build_services(engine, settings, public_url))


def conductor_for(
    engine: Engine,
    executor: LocalExecutor | ModalExecutor,
    settings: Settings,
    housekeeping_interval: float = ReaperSettings().interval,
    phase: PhaseRunner = run_directly,
) -> Conductor:
    """The conductor over ``executor`` with the chunk size and safety-net poll of ``settings``."""
    return Conductor(
        engine,
        executor,
        settings.chunk_size,
        settings.poll_interval,
        housekeeping_interval=housekeeping_interval,
        phase=phase,
    )
