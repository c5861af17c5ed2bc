"""Launch: validate a pipeline, then snapshot it and create the batch, items and first states."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, String, func, insert, literal, select, update
from sqlalchemy.sql.elements import ColumnElement

from enrichflow import prefect_events
from enrichflow.catalog.clients import client_get_id, client_get_or_create
from enrichflow.catalog.pipelines import pipeline_get_steps
from enrichflow.catalog.registry import RegistryRow, registry_get_many
from enrichflow.catalog.upload_fit import column_map_with, identity_check
from enrichflow.catalog.uploads import upload_get_layout
from enrichflow.catalog.validation import workflow_options_check
from enrichflow.catalog.workstreams import workstream_exists, workstreams_list
from enrichflow.config import Settings
from enrichflow.db.bulk import new_parents_only
from enrichflow.db.context import RowLayout
from enrichflow.db.engine import is_postgres, now_ms
from enrichflow.db.models import Batch, BatchItem, BatchStep, RawUploadRow
from enrichflow.db.states import states_create_first
from enrichflow.doctor import preflight_batch
from enrichflow.errors import ConfigError, NotFoundError
from enrichflow.ingest.aliases import IDENTITY_FIELDS
from enrichflow.seed import BUILTIN_PIPELINES
from enrichflow.states import BatchStatus, StepType
from enrichflow.steps.registry import has_handler

ANALYZE_AFTER_ITEMS = 10_000


def step_row(registry: Any, position: int) -> dict[str, Any]:
    """The ``batch_steps`` row snapshotting one registry row; :class:`ConfigError` naming the
    option when the workflow could not run with its options."""
    config = dict(registry.config or {})
    limits = workflow_options_check(
        registry.handler, config, registry.slug, registry.workstream_slug
    )
    return {
        "position": position,
        "step_name": registry.slug,
        "type": registry.type,
        "handler": registry.handler,
        **limits,
        "config": config,
    }


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """A checked pipeline: the registry rows of its steps in order, and its name (None for a
    list of steps). :func:`launch` snapshots these rows, so it need not read the registry."""

    steps: list[RegistryRow]
    pipeline: str | None

    @property
    def has_async(self) -> bool:
        return any(row.type == StepType.ASYNC.value for row in self.steps)


def resolve_steps(
    conn: Connection,
    client: str,
    workstream: str,
    pipeline: str | None,
    steps: Sequence[str] | None,
) -> LaunchPlan:
    """The registry rows of the pipeline, in order; :class:`ConfigError` naming what is wrong.

    Nothing is written: ``enrichflow run`` calls this before it ingests anything.
    """
    if not workstream_exists(conn, workstream):
        known = ", ".join(w["slug"] for w in workstreams_list(conn))
        raise ConfigError(
            f"unknown workstream {workstream!r} (known: {known or 'none; run enrichflow init'})"
        )
    if pipeline is not None and steps:
        raise ConfigError("give either a pipeline or a list of steps, not both")
    if pipeline is not None:
        saved = pipeline_get_steps(conn, client, workstream, pipeline)
        builtin = BUILTIN_PIPELINES.get(workstream, {}).get(pipeline)
        if saved is None and builtin is None:
            raise ConfigError(
                f"no pipeline {pipeline!r} for client {client!r} in workstream {workstream!r}"
            )
        steps = list(saved if saved is not None else builtin or [])
    if not steps:
        raise ConfigError("the pipeline has no steps")
    seen: set[str] = set()
    for slug in steps:
        if slug in seen:
            raise ConfigError(f"step {slug!r} appears twice in the pipeline")
        seen.add(slug)
    rows = registry_get_many(conn, workstream, steps)
    for slug in steps:
        if slug not in rows:
            raise ConfigError(
                f"unknown step {slug!r}: not in the registry for workstream {workstream!r}"
            )
        if not has_handler(rows[slug].handler):
            raise ConfigError(
                f"step {slug!r} names handler {rows[slug].handler!r}, which does not exist"
            )
        if rows[slug].type not in {t.value for t in StepType}:
            raise ConfigError(f"step {slug!r} has unknown type {rows[slug].type!r}")
    return LaunchPlan([rows[slug] for slug in steps], pipeline)


def check_launch(
    conn: Connection,
    client: str,
    workstream: str,
    pipeline: str | None,
    steps: Sequence[str] | None,
    settings: Settings | None = None,
    executor: str | None = None,
    plan: LaunchPlan | None = None,
) -> LaunchPlan:
    """:func:`resolve_steps` (unless ``plan`` is already resolved), then the preflight of
    ``enrichflow doctor`` for this batch.

    :class:`ConfigError` naming every failing check; nothing is written, so a caller can
    run it before ingesting (``settings``: ``get_settings()`` when left out).
    """
    if plan is None:
        plan = resolve_steps(conn, client, workstream, pipeline, steps)
    problems = preflight_batch(conn, client, workstream, plan.steps, settings, executor)
    if problems:
        listed = "; ".join(f"{c.name}: {c.detail}" for c in problems)
        raise ConfigError(f"launch refused, {len(problems)} preflight check(s) failed: {listed}")
    return plan


def _text(data: Any, cell: int | None) -> ColumnElement[Any]:
    """The trimmed cell at ``cell`` of a stored row (a JSON array), NULL when blank or absent."""
    if cell is None:
        return literal(None, String)
    return func.nullif(func.trim(data[cell].as_string()), "")


def launch(
    engine: Engine,
    client: str,
    workstream: str,
    upload_id: int,
    pipeline: str | None = None,
    steps: Sequence[str] | None = None,
    create_client: bool = False,
    settings: Settings | None = None,
    executor: str | None = None,
    plan: LaunchPlan | None = None,
    columns: Mapping[str, str] | None = None,
) -> int:
    """Create a RUNNING batch over every row of ``upload_id``; returns the batch id.

    Refuses with :class:`ConfigError` when :func:`check_launch` fails or when no column of the
    upload identifies a person or company, before writing anything: a batch that cannot run
    (e.g. an ASYNC step without its webhook) is never created.
    ``plan``: the steps a :func:`check_launch` of this launch already resolved (the preflight
    runs again; the registry is not read again). ``columns``: column -> field, the operator's
    mapping of columns the aliases did not recognise; the batch's column map holds it.
    """
    with engine.begin() as conn:
        plan = check_launch(conn, client, workstream, pipeline, steps, settings, executor, plan)
        upload = upload_get_layout(conn, upload_id)
        if upload is None:
            raise NotFoundError(f"upload {upload_id} does not exist")
        headers = upload.headers
        column_map = column_map_with(upload.column_map, headers, columns or {})
        identity_check(column_map, headers)
        client_id = (
            client_get_or_create(conn, client) if create_client else client_get_id(conn, client)
        )
        if client_id is None:
            raise ConfigError(f"unknown client {client!r}")
        step_rows = [step_row(r, i) for i, r in enumerate(plan.steps)]
        blueprint = [{k: v for k, v in row.items() if k != "position"} for row in step_rows]
        batch_id = int(
            conn.execute(
                insert(Batch)
                .values(
                    client_id=client_id,
                    workstream_slug=workstream,
                    upload_id=upload_id,
                    pipeline_name=plan.pipeline,
                    blueprint=blueprint,
                    column_map=column_map,
                    headers=headers,
                    status=BatchStatus.RUNNING.value,
                    item_count=0,
                )
                .returning(Batch.id)
            ).scalar_one()
        )
        conn.execute(insert(BatchStep), [{**row, "batch_id": batch_id} for row in step_rows])
        cells = RowLayout(headers, column_map).positions
        count = _items_and_states_create(
            conn, batch_id, upload_id, upload.row_count, cells, step_rows[0]["step_name"], now_ms()
        )
        conn.execute(update(Batch).where(Batch.id == batch_id).values(item_count=count))
    if is_postgres(engine) and count >= ANALYZE_AFTER_ITEMS:
        # Autovacuum would analyze these tables only after its next nap; until then the
        # planner costs every chunk statement as if they were empty and picks sequential scans.
        # Sampling ``original_data`` would be most of the cost and no plan looks at it.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE batch_items (id, batch_id, row_number), workflow_states")
    prefect_events.batch_launched(batch_id, client, workstream)
    return batch_id


def _items_and_states_create(
    conn: Connection,
    batch_id: int,
    upload_id: int,
    rows: int,
    cells: dict[str, int],
    step_name: str,
    now: int,
) -> int:
    """One item per stored row and its first step's PENDING state; returns how many items.

    Set-based: identity columns are extracted in SQL (``cells``: canonical field -> position
    of its cell in a row), no row passes through Python. On Postgres the items' insert feeds
    the states' through ``RETURNING`` in one statement, instead of reading the million fresh
    item rows back to find their ids, and runs without per-row foreign-key checks where the
    role allows (``db.bulk``: every item's batch and every state's item are created right
    here); SQLite has no data-modifying ``WITH``, so it takes two statements.
    """
    items = _items_insert(batch_id, upload_id, cells)
    if not is_postgres(conn):
        count = int(conn.execute(items, execution_options={"preserve_rowcount": True}).rowcount)
        states_create_first(conn, batch_id, step_name, now)
        return count
    created = items.returning(BatchItem.id).cte("created")
    # Read the rows in line order from the (upload_id, line_number) index, which follows
    # the table's physical order after COPY. Otherwise the planner prefers a scan and a
    # sort, which spills every row's JSON to disk.
    # (The NOTIFY trigger of the new states does not fire without the checks either; the
    # batch's own insert has already notified that it is RUNNING.)
    sort = conn.exec_driver_sql("SELECT current_setting('enable_sort')").scalar_one()
    conn.exec_driver_sql("SET LOCAL enable_sort = off")
    with new_parents_only(conn, rows):
        count = states_create_first(conn, batch_id, step_name, now, item_ids=created)
    conn.exec_driver_sql("SELECT set_config('enable_sort', %(sort)s, true)", {"sort": sort})
    return count


def _items_insert(batch_id: int, upload_id: int, cells: dict[str, int]) -> Any:
    """``INSERT INTO batch_items ... SELECT`` over the upload's rows, in line order."""
    data = RawUploadRow.data
    columns: dict[str, Any] = {
        name: _text(data, cells.get(canonical)) for name, canonical in IDENTITY_FIELDS.items()
    }
    if "person_name" not in cells:
        first = func.coalesce(_text(data, cells.get("first_name")), "")
        last = func.coalesce(_text(data, cells.get("last_name")), "")
        columns["person_name"] = func.nullif(func.trim(first + " " + last), "")
    select_columns = [literal(batch_id), RawUploadRow.line_number, *columns.values(), data]
    return insert(BatchItem).from_select(
        ["batch_id", "row_number", *columns.keys(), "original_data"],
        select(*select_columns)
        .where(RawUploadRow.upload_id == upload_id)
        .order_by(RawUploadRow.line_number),
    )
