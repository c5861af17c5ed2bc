"""Handlers registered by name; a registry row's ``handler`` column names one of these."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Connection

from enrichflow.errors import ConfigError
from enrichflow.states import StepType
from enrichflow.steps.base import ChunkHandler, Handler, StepContext

ChunkPreparer = Callable[[Connection, Sequence[StepContext]], None]
"""Reads for a whole chunk before its handler calls: called with the runner's connection."""

_HANDLERS: dict[str, Handler | ChunkHandler] = {}
_CHUNK: set[str] = set()
_PREPARERS: dict[str, ChunkPreparer] = {}


def _register(name: str, fn: Handler | ChunkHandler) -> None:
    if name in _HANDLERS and _HANDLERS[name] is not fn:
        raise ConfigError(f"handler {name!r} is registered twice")
    _HANDLERS[name] = fn


def handler(name: str, prepare: ChunkPreparer | None = None) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the handler called ``name``: called once per item.

    ``prepare``, when given, is called once per chunk before the handler, inside the runner's
    read of the chunk, with its connection and every context (whose earlier results are then
    already read through that connection): what all items need (one look-up for all their
    keys) costs a statement and no connection of its own. An exception it raises fails every
    item of the chunk with that error, as a handler's exception fails its item.
    """

    def register(fn: Handler) -> Handler:
        _register(name, fn)
        if prepare is not None:
            _PREPARERS[name] = prepare
        return fn

    return register


def chunk_handler(name: str) -> Callable[[ChunkHandler], ChunkHandler]:
    """Register ``fn`` as the handler called ``name``: called once per chunk of items."""

    def register(fn: ChunkHandler) -> ChunkHandler:
        _register(name, fn)
        _CHUNK.add(name)
        return fn

    return register


def is_chunk_handler(name: str) -> bool:
    return name in _CHUNK


def get_preparer(name: str) -> ChunkPreparer | None:
    """The ``prepare`` registered with the handler called ``name``, if any."""
    _load_builtins()
    return _PREPARERS.get(name)


def get_handler(name: str) -> Handler | ChunkHandler:
    """The handler called ``name``; :class:`ConfigError` naming it when there is none."""
    _load_builtins()
    try:
        return _HANDLERS[name]
    except KeyError:
        raise ConfigError(
            f"no handler named {name!r} (known: {', '.join(sorted(_HANDLERS)) or 'none'})"
        ) from None


def has_handler(name: str) -> bool:
    _load_builtins()
    return name in _HANDLERS


def handler_names() -> list[str]:
    """Every handler this process has: the built-in ones and those of the loaded plugins."""
    _load_builtins()
    return sorted(_HANDLERS)


ASYNC_ONLY = frozenset({"webhook"})
"""Built-in handlers that hand items to an outside service and finish on its callback."""


def handler_modes() -> dict[str, frozenset[StepType]]:
    """Every handler this process has, with the step types a workflow of it may have: the Clay
    sender only ASYNC, the other built-ins only SYNC, a plugin's either (its handler may hand
    items to a service of its own and return ``Deferred``)."""
    _load_builtins()
    both = frozenset(StepType)
    modes = {}
    for name, fn in _HANDLERS.items():
        if name in ASYNC_ONLY:
            modes[name] = frozenset({StepType.ASYNC})
        elif fn.__module__.startswith("enrichflow."):
            modes[name] = frozenset({StepType.SYNC})
        else:
            modes[name] = both
    return dict(sorted(modes.items()))


def _load_builtins() -> None:
    """Import the built-in handler modules and the step plugins so their decorators run."""
    from enrichflow.steps import builtin  # noqa: F401
    from enrichflow.steps.plugins import load_plugins

    load_plugins()
