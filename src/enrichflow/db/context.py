"""Reads that assemble what a handler sees: items, earlier results, batch and client config."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection, Engine, Text, and_, cast, select

from enrichflow.db import jsoncodec
from enrichflow.db.dialect import id_in
from enrichflow.db.engine import is_postgres, reading
from enrichflow.db.models import (
    Batch,
    BatchItem,
    BatchStep,
    Client,
    ClientWorkflowConfig,
    EnrichmentResult,
)
from enrichflow.types import JSON, ItemIdentity

items = BatchItem.__table__
results = EnrichmentResult.__table__


@dataclass(frozen=True, slots=True)
class StepSetting:
    """One step of one batch with everything that is the same for all its items."""

    batch_id: int
    client_id: int
    client: str
    workstream: str
    column_map: dict[str, str]
    headers: list[str]
    step_name: str
    step_index: int
    handler: str
    lease_ms: int
    workflow_config: dict[str, Any]
    client_config: dict[str, Any]


def step_setting_load(conn: Connection, batch_id: int, step_index: int) -> StepSetting:
    """The batch's step and the client's current config for it (re-read per chunk, so a
    config fixed while a batch runs applies to the next attempts)."""
    # One statement: the runner reads this for every chunk.
    row = conn.execute(
        select(
            Batch.client_id,
            Client.name,
            Batch.workstream_slug,
            Batch.column_map,
            Batch.headers,
            BatchStep.step_name,
            BatchStep.handler,
            BatchStep.lease_ms,
            BatchStep.config,
            ClientWorkflowConfig.config,
        )
        .join(Client, Client.id == Batch.client_id)
        .join(BatchStep, BatchStep.batch_id == Batch.id)
        .outerjoin(
            ClientWorkflowConfig,
            and_(
                ClientWorkflowConfig.client_id == Batch.client_id,
                ClientWorkflowConfig.workflow_slug == BatchStep.step_name,
                ClientWorkflowConfig.workstream_slug == Batch.workstream_slug,
            ),
        )
        .where(Batch.id == batch_id, BatchStep.position == step_index)
    ).one()
    (
        client_id,
        client,
        workstream,
        column_map,
        headers,
        step_name,
        handler,
        lease_ms,
        config,
        client_config,
    ) = row
    return StepSetting(
        batch_id=batch_id,
        client_id=client_id,
        client=client,
        workstream=workstream,
        column_map=column_map or {},
        headers=headers or [],
        step_name=step_name,
        step_index=step_index,
        handler=handler,
        lease_ms=lease_ms,
        workflow_config=config or {},
        client_config=client_config or {},
    )


class RowLayout:
    """How a batch's stored rows read: ``original_data`` holds the cells of a row in the order
    of the batch's ``headers``; ``column_map`` says which header holds each canonical field."""

    __slots__ = ("_fields", "_pickers", "headers", "positions")

    def __init__(self, headers: Sequence[str], column_map: Mapping[str, str]):
        self.headers = list(headers)
        position = {header: index for index, header in enumerate(self.headers)}
        self.positions = {
            canonical: position[header]
            for canonical, header in column_map.items()
            if header in position
        }
        """canonical field -> position of its cell in a row."""
        self._fields = tuple(self.positions.items())
        self._pickers: dict[tuple[str, ...], Callable[[Sequence[str]], list[str | None]]] = {}

    def original_data(self, cells: Sequence[str]) -> dict[str, str]:
        """header -> cell, every column of the row, as it was uploaded."""
        return dict(zip(self.headers, cells, strict=False))

    def fields(self, cells: Sequence[str]) -> dict[str, str]:
        """canonical field -> non-empty cell, whatever the upload called the column."""
        return {canonical: value for canonical, at in self._fields if (value := cells[at])}

    def values(self, cells: Sequence[str], names: tuple[str, ...]) -> list[str | None]:
        """The cells of ``names`` in order, None where empty or not uploaded: ``fields.get``
        of each, picked in one C call when every field has a column."""
        pick = self._pickers.get(names)
        if pick is None:
            pick = self._pickers[names] = self._picker(names)
        return pick(cells)

    def _picker(self, names: tuple[str, ...]) -> Callable[[Sequence[str]], list[str | None]]:
        at = [self.positions.get(name) for name in names]
        if len(at) > 1 and None not in at:
            get = itemgetter(*at)
            return lambda cells: [value or None for value in get(cells)]
        return lambda cells: [cells[i] or None if i is not None else None for i in at]


_NO_RESULTS: Mapping[str, JSON] = MappingProxyType({})
"""An item without earlier results: one shared, read-only mapping instead of a dict each."""

IDENTITY_COLUMNS = (
    "company_name",
    "company_domain",
    "linkedin_url",
    "industry",
    "person_name",
    "email",
    "title",
)


# The cells as bytes, because orjson reads UTF-8 itself and decoding to str first is wasted
# work.
_SQLITE_ITEMS = (
    "SELECT id, row_number, CAST(original_data AS BLOB), "
    f"{', '.join(IDENTITY_COLUMNS)} FROM batch_items WHERE id IN (SELECT value FROM json_each(?))"
)


class ChunkData:
    """The items of one chunk, read in one statement, and what handlers derive from them.

    An item's cells are fetched as JSON (bytes on SQLite) and decoded on first use (``original_data`` and
    ``fields`` are views of them, see :class:`RowLayout`), and the earlier steps' results are
    read for the whole chunk the first time any item asks: a step that never looks at them
    (a no-op, most normalizations) pays for neither.
    """

    def __init__(
        self,
        engine: Engine,
        conn: Connection,
        item_ids: Sequence[int],
        layout: RowLayout,
    ):
        """Reads the items through ``conn``; ``engine`` serves the later, lazy reads."""
        self._engine = engine
        self._item_ids = list(item_ids)
        self._layout = layout
        rows: Sequence[tuple[Any, ...]]
        if is_postgres(engine):
            rows = conn.execute(
                select(
                    items.c.id,
                    items.c.row_number,
                    cast(items.c.original_data, Text),
                    *(items.c[name] for name in IDENTITY_COLUMNS),
                ).where(id_in(conn, items.c.id, self._item_ids))
            ).all()
        else:  # the driver's own tuples: no result processing, which cost more than the read
            rows = conn.exec_driver_sql(
                _SQLITE_ITEMS, (jsoncodec.dumps(self._item_ids),)
            ).fetchall()
        self._rows: dict[int, tuple[Any, ...]] = {row[0]: tuple(row) for row in rows}
        self._results: dict[int, dict[str, JSON]] | None = None
        self._lock = threading.Lock()

    def __contains__(self, item_id: int) -> bool:
        return item_id in self._rows

    def row_number(self, item_id: int) -> int | None:
        number: int | None = self._rows[item_id][1]
        return number

    def cells(self, item_id: int) -> Sequence[str]:
        text = self._rows[item_id][2]
        cells: list[str] = jsoncodec.loads(text) if text else []
        return cells

    def original_data(self, cells: Sequence[str]) -> Mapping[str, str]:
        return self._layout.original_data(cells)

    def fields(self, cells: Sequence[str]) -> Mapping[str, str]:
        return self._layout.fields(cells)

    def values(self, cells: Sequence[str], names: tuple[str, ...]) -> list[str | None]:
        return self._layout.values(cells, names)

    def has_column(self, name: str) -> bool:
        return name in self._layout.positions

    def identity(self, item_id: int) -> ItemIdentity:
        return ItemIdentity(*self._rows[item_id][3:])

    def load_results(self, conn: Connection) -> None:
        """Read the earlier steps' results now, through ``conn`` (the runner's read of the
        chunk, when the handler's ``prepare`` needs them for every item)."""
        with self._lock:
            if self._results is None:
                self._results = results_load(conn, self._item_ids)

    def results(self, item_id: int) -> Mapping[str, JSON]:
        loaded = self._results
        if loaded is None:  # the lock only until the load: every later call is a dict look-up
            with self._lock:  # a handler may read contexts from several threads
                if self._results is None:
                    with reading(self._engine) as conn:
                        self._results = results_load(conn, self._item_ids)
                loaded = self._results
        return loaded.get(item_id, _NO_RESULTS)


# One row: the item ids, and each item's results as one JSON object ``{step: payload}``,
# spliced together from the stored payload texts (each valid JSON: ``results_insert`` binds
# the text ``jsoncodec.dumps`` wrote), which is cheaper than reading and decoding a row per
# result.
_SQLITE_RESULTS = (
    "SELECT json_group_array(item_id), '[' || group_concat(payloads, ',') || ']' FROM ("
    "SELECT item_id, '{' || group_concat(json_quote(step_name) || ':' || payload, ',') || '}' "
    "AS payloads FROM enrichment_results WHERE item_id IN (SELECT value FROM json_each(?)) "
    "GROUP BY item_id)"
)


def results_load(conn: Connection, item_ids: Sequence[int]) -> dict[int, dict[str, JSON]]:
    """item id -> step name -> result payload, for every earlier step that stored one."""
    if not is_postgres(conn):
        ids, payloads = conn.exec_driver_sql(
            _SQLITE_RESULTS, (jsoncodec.dumps(list(item_ids)),)
        ).one()
        return dict(zip(jsoncodec.loads(ids), jsoncodec.loads(payloads or "[]"), strict=True))
    found: dict[int, dict[str, JSON]] = {}
    rows = conn.execute(
        select(results.c.item_id, results.c.step_name, results.c.payload).where(
            id_in(conn, results.c.item_id, item_ids)
        )
    ).all()
    for item_id, step_name, payload in rows:
        found.setdefault(item_id, {})[step_name] = payload
    return found
