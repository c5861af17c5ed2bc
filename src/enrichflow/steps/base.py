"""The handler API: what a step handler receives and what it may return.

A handler is a plain function ``handler(ctx: StepContext) -> dict | Skip | Deferred``.
It returns a result dict (status COMPLETED), a :class:`Skip` with a reason (status SKIPPED),
a :class:`Deferred` (ASYNC: the request was sent, the result arrives by callback), or raises
:class:`~enrichflow.errors.RetryableStepError` / :class:`~enrichflow.errors.PermanentStepError`.
Any other exception counts as retryable, and its text is stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine

from enrichflow.types import JSON, ItemIdentity

__all__ = [
    "JSON",
    "ChunkHandler",
    "Completed",
    "Deferred",
    "Handler",
    "ItemIdentity",
    "LazySource",
    "Outcome",
    "Skip",
    "StepContext",
    "chunk_engine",
]


class StepContext:
    """Everything a handler may read; handlers never query the database themselves, except
    the chunk steps whose job is the relational tables (through ``services["engine"]``).
    The services that write (the webhook ledger, ``dedupe_leaders``) commit their own short
    transaction before the handler sends a request, so that other workers see a reserved
    submission or a dedupe leader before it can matter to them.

    Read-only by convention. The runner builds one per item of a chunk and fills the costly
    parts on first use: ``original_data`` is decoded, ``fields`` and ``identity`` are derived,
    and ``results`` are read (for the whole chunk at once) only when a handler asks, so a
    step that needs none of them pays for none of them.

    Attributes: ``results`` are earlier steps' results keyed by step slug;
    ``workflow_config`` is the registry row's config for this step and workstream (attempts,
    timeouts, handler options); ``client_config`` is the client's config for ``(step,
    workstream)``, empty when the client has none; ``services`` are process-wide helpers (HTTP
    clients, public URL, the webhook ledger, ``dedupe_leaders``) and ``engine``, for the split
    and consolidation steps, which write relational tables (the consolidation on SQLite also
    reads the stored results it copies); no handler may change a state's status itself;
    ``fields`` are the row's values by canonical field name (``email``, ``website``,
    ``phone_mobile``, ...), whatever the upload called its columns, empty values absent.
    """

    __slots__ = (
        "_cells",
        "_fields",
        "_identity",
        "_original",
        "_results",
        "_source",
        "attempt",
        "batch_id",
        "client",
        "client_config",
        "item_id",
        "logger",
        "row_number",
        "services",
        "state_id",
        "step",
        "workflow_config",
        "workstream",
    )

    def __init__(
        self,
        *,
        state_id: int,
        batch_id: int,
        item_id: int,
        step: str,
        workstream: str,
        client: str,
        attempt: int,
        row_number: int | None,
        identity: ItemIdentity | None,
        original_data: Mapping[str, Any] | None,
        results: Mapping[str, JSON] | None,
        workflow_config: Mapping[str, Any],
        client_config: Mapping[str, Any],
        logger: logging.Logger,
        services: Mapping[str, Any] | None = None,
        fields: Mapping[str, str] | None = None,
        source: LazySource | None = None,
    ) -> None:
        """Pass ``identity``, ``original_data``, ``results`` and ``fields`` directly, or
        ``None`` for any of them with a ``source`` that produces them on first use."""
        self.state_id = state_id
        self.batch_id = batch_id
        self.item_id = item_id
        self.step = step
        self.workstream = workstream
        self.client = client
        self.attempt = attempt
        self.row_number = row_number
        self.workflow_config = workflow_config
        self.client_config = client_config
        self.logger = logger
        self.services: Mapping[str, Any] = services if services is not None else {}
        self._identity = identity
        self._original = original_data
        self._results = results
        self._fields = fields if fields is not None or source is not None else {}
        self._source = source
        self._cells: Sequence[str] | None = None

    @property
    def identity(self) -> ItemIdentity:
        if self._identity is None:
            self._identity = self._lazy().identity(self.item_id)
        return self._identity

    @property
    def original_data(self) -> Mapping[str, Any]:
        if self._original is None:
            self._original = self._lazy().original_data(self._row())
        return self._original

    @property
    def results(self) -> Mapping[str, JSON]:
        if self._results is None:
            self._results = self._lazy().results(self.item_id)
        return self._results

    @property
    def fields(self) -> Mapping[str, str]:
        if self._fields is None:
            self._fields = self._lazy().fields(self._row())
        return self._fields

    def values(self, names: tuple[str, ...]) -> list[str | None]:
        """``fields.get(name)`` for each of ``names``, in order, without building ``fields``
        (a row's cells are picked by position: the split's per-row hot path)."""
        if self._fields is not None or self._source is None:
            fields = self.fields
            return [fields.get(name) or None for name in names]
        return self._source.values(self._row(), names)

    def has_column(self, name: str) -> bool:
        """Whether the upload has a column for canonical field ``name``, even where this row's
        cell is empty (``fields`` leaves empty cells out)."""
        if self._source is None:
            return name in self.fields
        return self._source.has_column(name)

    def _row(self) -> Sequence[str]:
        """The item's cells, decoded once for both ``original_data`` and ``fields``."""
        if self._cells is None:
            self._cells = self._lazy().cells(self.item_id)
        return self._cells

    def _lazy(self) -> LazySource:
        if self._source is None:
            raise AttributeError("this StepContext was built without the value or a source")
        return self._source

    def __repr__(self) -> str:
        return f"StepContext(step={self.step!r}, item_id={self.item_id}, attempt={self.attempt})"


class LazySource(Protocol):
    """Produces a context's costly parts on first use (the runner's chunk loader). An item's
    row is stored as its cells in header order; ``original_data`` and ``fields`` are two
    views of them."""

    def identity(self, item_id: int) -> ItemIdentity: ...

    def cells(self, item_id: int) -> Sequence[str]: ...

    def original_data(self, cells: Sequence[str]) -> Mapping[str, Any]: ...

    def fields(self, cells: Sequence[str]) -> Mapping[str, str]: ...

    def values(self, cells: Sequence[str], names: tuple[str, ...]) -> list[str | None]: ...

    def has_column(self, name: str) -> bool: ...

    def results(self, item_id: int) -> Mapping[str, JSON]: ...


@dataclass(frozen=True, slots=True)
class Skip:
    """The step does not apply to this item; ``reason`` is stored and shown."""

    reason: str


@dataclass(frozen=True, slots=True)
class Deferred:
    """ASYNC: the item was handed to an external service; the state waits for its callback.

    ``deadline_seconds`` bounds the wait; ``meta`` is stored on the state (never secrets).
    ``waiting_on`` makes the item a de-duplication follower: it was not sent, and takes the
    result of that (leader) state when it lands (``db.states.followers``).
    """

    deadline_seconds: float
    meta: JSON = field(default_factory=dict)
    waiting_on: int | None = None


@dataclass(frozen=True, slots=True)
class Completed:
    """A result that was not fetched for this item: ``meta`` (stored on the state) says where it
    came from, e.g. a reused earlier result; ``waiting_on``, the same batch's leader it copies."""

    payload: JSON
    meta: JSON
    waiting_on: int | None = None


Outcome = JSON | Skip | Deferred | Completed
Handler = Callable[[StepContext], Outcome]
ChunkHandler = Callable[[Sequence[StepContext]], Sequence[Outcome | Exception]]
"""A handler that takes a whole chunk at once (one bulk write instead of one per item): it
returns one outcome per context, in order, where an exception instance fails that item."""


def chunk_engine(contexts: Sequence[StepContext]) -> Engine:
    """The engine the runner passes chunk steps as ``services["engine"]``."""
    engine = contexts[0].services.get("engine")
    if not isinstance(engine, Engine):
        raise RuntimeError("the runner provides services['engine'] to chunk steps; it is missing")
    return engine
