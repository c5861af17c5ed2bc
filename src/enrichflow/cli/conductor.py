"""``enrichflow conductor``, and the executor and conductor every driving command builds."""

from __future__ import annotations

import signal
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from enrichflow.cli.root import (
    DatabaseUrl,
    ExecutorOption,
    console,
    engine_for,
    error_reporting,
    fail,
)
from enrichflow.config import get_settings
from enrichflow.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from enrichflow.conductor.loop import Conductor


def executor_for(
    engine: Engine, kind: str | None = None, batch_ids: list[int] | None = None
) -> Any:
    """The executor (``--executor`` or ENRICHFLOW_EXECUTOR), built where every conductor's is
    (:func:`enrichflow.conductor.assembly.executor_for`); ``batch_ids``: the batches this
    process drives (None: every running one)."""
    from enrichflow.conductor import assembly

    try:
        return assembly.executor_for(engine, get_settings(), kind, batch_ids=batch_ids)
    except ConfigError as exc:  # a weak ENRICHFLOW_SECRET_KEY, an unreachable public URL
        raise fail(str(exc)) from exc


def conductor_for(engine: Engine, executor: Any) -> Conductor:
    from enrichflow.conductor import assembly

    return assembly.conductor_for(engine, executor, get_settings())


class Interrupt:
    """First Ctrl-C stops the loop cleanly (state stays in the database); the second kills."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        console.print("[yellow]stopping after the chunks in flight; Ctrl-C again to abort[/]")


def conductor(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Exit when no batch is running.")
    ] = False,
    database_url: DatabaseUrl = None,
    executor_kind: ExecutorOption = None,
) -> None:
    """Drive every unfinished batch (after a crash, this finishes them)."""
    from enrichflow.seed import init_database

    if executor_kind not in (None, "local", "modal"):
        raise fail(f"unknown executor {executor_kind!r}: local or modal")
    error_reporting()
    engine = engine_for(database_url)
    init_database(engine)
    executor = executor_for(engine, kind=executor_kind)
    loop = conductor_for(engine, executor)
    interrupt = Interrupt()
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        if until_idle:
            loop.run_until_finished(interrupted=lambda: interrupt.requested)
        else:
            loop.run(lambda: interrupt.requested)
    finally:
        executor.close()
    console.print("conductor stopped")
