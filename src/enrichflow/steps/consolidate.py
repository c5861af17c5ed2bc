"""The built-in SYNC chunk step ``consolidate_final_leads``: one ``final_leads`` row per item
from the normalized values and every enrichment result, ``person_work_history`` rows from
results that carry positions, and the item's ``people`` row refreshed with the normalized
person values.

It writes a whole chunk in one transaction, every row an ``INSERT ... ON CONFLICT`` on the
item, so a re-run or a retry never duplicates one. On SQLite the items whose only results are
the cleaning steps' are copied from the stored results by SQL (:mod:`consolidate_sqlite`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Connection, delete, insert, text
from sqlalchemy.schema import Table

from enrichflow.columns import (
    BUILTIN_STEPS,
    CONSOLIDATE,
    CORE_STEP,
    LEAD_COLUMNS,
    LEAD_LIMITS,
    LEAD_LISTS,
    PERSON_COLUMNS,
)
from enrichflow.db import jsoncodec
from enrichflow.db.dialect import id_in
from enrichflow.db.engine import is_postgres, reading
from enrichflow.db.models import FinalLead, Person, PersonWorkHistory
from enrichflow.db.upsert import BulkUpsert, bulk_upsert, column_kinds
from enrichflow.normalize._text import clean_cell
from enrichflow.normalize.core import normalize_core_values
from enrichflow.steps.base import JSON, Outcome, StepContext, chunk_engine
from enrichflow.steps.company_values import company_domain_of, company_name_of
from enrichflow.steps.consolidate_sqlite import (
    NO_RESULTS,
    company_of_row,
    consolidate_in_sql,
    result_kinds,
)
from enrichflow.steps.normalization import has_status_column
from enrichflow.steps.registry import chunk_handler

final_leads = cast(Table, FinalLead.__table__)
work_history = cast(Table, PersonWorkHistory.__table__)

HISTORY_DATE_LIMIT = 40

_FINAL_LEADS = BulkUpsert(
    "final_leads",
    column_kinds(final_leads, ("batch_id", "item_id", *LEAD_COLUMNS, "enrichment")),
    ("item_id",),
    (*LEAD_COLUMNS, "enrichment"),
    ("item_id", "id"),
)


POSITION_KEYS = (
    "positions",
    "work_history",
    "experience",
    "experiences",
    "employment_history",
    "employment",
    "jobs",
)
_COMPANY_ALIASES = (
    "company",
    "company_name",
    "organization",
    "organization_name",
    "org",
    "employer",
    "companyName",
)
_TITLE_ALIASES = ("title", "job_title", "position", "role", "jobTitle")
_START_ALIASES = ("start", "start_date", "started_at", "starts_at", "from", "startDate", "since")
_END_ALIASES = ("end", "end_date", "ended_at", "ends_at", "to", "until", "endDate")


def _first(entry: Mapping[str, Any], aliases: Iterable[str]) -> Any:
    for alias in aliases:
        value = entry.get(alias)
        if value not in (None, ""):
            return value
    return None


def _as_text(value: Any) -> str | None:
    """A position's company or title as text (a nested ``{"name": ...}`` gives its name)."""
    if isinstance(value, Mapping):
        value = _first(value, ("name", "title", "value"))
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _as_date(value: Any) -> str | None:
    """ISO-ish date text; ``{"year": 2020, "month": 3}`` gives ``2020-03``."""
    if isinstance(value, Mapping):
        year = value.get("year")
        if not year:
            return None
        stamp = str(year)
        for part in (value.get("month"), value.get("day")):
            if not str(part or "").isdigit():
                break
            stamp += f"-{int(str(part)):02d}"
        return stamp[:HISTORY_DATE_LIMIT]
    text = _as_text(value)
    return text[:HISTORY_DATE_LIMIT] if text else None


def positions_of(result: Any, depth: int = 0) -> Iterator[Mapping[str, Any]]:
    """Every position dict found under a position key of ``result`` (also one level down, for
    results shaped like ``{"person": {"positions": [...]}}``)."""
    if not isinstance(result, Mapping) or depth > 1:
        return
    for key in POSITION_KEYS:
        value = result.get(key)
        if isinstance(value, list):
            yield from (p for p in value if isinstance(p, Mapping))
    for value in result.values():
        if isinstance(value, Mapping):
            yield from positions_of(value, depth + 1)


def work_history_rows(ctx: StepContext, enrichment: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for step, result in enrichment.items():
        for index, entry in enumerate(positions_of(result)):
            company = _as_text(_first(entry, _COMPANY_ALIASES))
            title = _as_text(_first(entry, _TITLE_ALIASES))
            start = _as_date(_first(entry, _START_ALIASES))
            end = _as_date(_first(entry, _END_ALIASES))
            if company is None and title is None:
                continue  # nothing that says what the position was
            rows.append(
                {
                    "batch_id": ctx.batch_id,
                    "item_id": ctx.item_id,
                    "source_step": step,
                    "position": index,
                    "company": company,
                    "title": title,
                    "start_date": start,
                    "end_date": end,
                }
            )
    return rows


def lead_values(ctx: StepContext) -> dict[str, Any]:
    """The ``final_leads`` columns of one item (without ids and ``enrichment``)."""
    return dict(zip(LEAD_COLUMNS, _lead_row(ctx), strict=True))


_LEAD_AT = {column: index for index, column in enumerate(LEAD_COLUMNS)}
_BOUNDED_AT = tuple((_LEAD_AT[column], limit) for column, limit in LEAD_LIMITS.items())
_COMPANY_NAME_AT = _LEAD_AT["company_name"]
_COMPANY_DOMAIN_AT = _LEAD_AT["company_domain"]
_INDUSTRY_AT = _LEAD_AT["industry"]
_LISTS_AT = tuple(_LEAD_AT[column] for column in LEAD_LISTS)
_CONTACT_ID_AT = _LEAD_AT["apollo_contact_id"]
_ACCOUNT_ID_AT = _LEAD_AT["apollo_account_id"]


def _lead_row(ctx: StepContext) -> list[Any]:
    """``lead_values`` as a list in ``LEAD_COLUMNS`` order (no dict per row to build)."""
    core: Mapping[str, Any] | None = ctx.results.get(CORE_STEP)
    if core is None:
        core = normalize_core_values(ctx.fields, status_column=has_status_column(ctx))
    # Every column by its name in the core values (one C-level pass), then the ones that come
    # from elsewhere are set.
    row: list[Any] = list(map(core.get, LEAD_COLUMNS))
    fields = ctx.fields
    row[_COMPANY_NAME_AT] = company_name_of(ctx)[0]
    row[_COMPANY_DOMAIN_AT] = company_domain_of(ctx)
    row[_INDUSTRY_AT] = clean_cell(fields.get("industry")) or ctx.identity.industry
    for index in _LISTS_AT:
        row[index] = list(row[index] or [])
    row[_CONTACT_ID_AT] = clean_cell(fields.get("apollo_contact_id"))
    row[_ACCOUNT_ID_AT] = clean_cell(fields.get("apollo_account_id"))
    for index, limit in _BOUNDED_AT:
        value = row[index]
        if isinstance(value, str) and len(value) > limit:
            row[index] = value[:limit]
    return row


_person_of_lead = itemgetter(
    *(
        _LEAD_AT["person_linkedin_url" if column == "linkedin_url" else column]
        for column in PERSON_COLUMNS
    )
)
"""The ``PERSON_COLUMNS`` of a ``_lead_row``."""


def enrichment_of(ctx: StepContext) -> JSON:
    """Every result of the item that is not one of the built-in cleaning steps."""
    return {step: result for step, result in ctx.results.items() if step not in BUILTIN_STEPS}


@chunk_handler(CONSOLIDATE)
def consolidate_final_leads(contexts: Sequence[StepContext]) -> list[Outcome | Exception]:
    """Upsert one ``final_leads`` row per item and replace its work history.

    On SQLite, the items whose only results are the built-in cleaning steps' are written by
    set-based SQL from the stored results (``consolidate_in_sql``); the others, and every
    item on Postgres, through ``_lead_row`` in Python.
    """
    if not contexts:
        return []
    engine = chunk_engine(contexts)
    on_postgres = is_postgres(engine)
    kinds: dict[int, tuple[bool, bool, bool]] = {}
    if not on_postgres:
        with reading(engine) as conn:
            kinds = result_kinds(conn, [ctx.item_id for ctx in contexts])
    # Items with an enrichment result are computed here, outside the write transaction; the
    # rest go to SQL, with the company name or domain computed from the row where that step
    # left no result.
    in_python: list[StepContext] = []
    in_sql: dict[int, StepContext] = {}
    sql_rows: list[list[Any]] = []
    for ctx in contexts:
        has_name, has_domain, enriched = kinds.get(ctx.item_id, NO_RESULTS)
        if enriched or on_postgres:
            in_python.append(ctx)
            continue
        in_sql[ctx.item_id] = ctx
        sql_rows.append([ctx.item_id, *company_of_row(ctx, has_name, has_domain)])
    leads = _LeadRows()
    for ctx in in_python:
        leads.add(ctx)
    item_ids = [c.item_id for c in contexts]
    with engine.begin() as conn:
        lead_ids: dict[int, int] = consolidate_in_sql(conn, sql_rows) if sql_rows else {}
        # What SQL left out needs Python (no core result, or one of the cases of
        # ``_SQL_WRITABLE``), computed in this transaction.
        for item_id, ctx in in_sql.items():
            if item_id not in lead_ids:
                leads.add(ctx)
        lead_ids.update(bulk_upsert(conn, _FINAL_LEADS, leads.rows))
        conn.execute(delete(work_history).where(id_in(conn, work_history.c.item_id, item_ids)))
        if leads.history:
            conn.execute(insert(work_history), leads.history)
        _people_refresh(conn, leads.people)
    counts: dict[int, int] = {}
    for row in leads.history:
        counts[row["item_id"]] = counts.get(row["item_id"], 0) + 1
    return [
        {
            "final_lead_id": lead_ids[ctx.item_id],
            "enrichment_steps": leads.steps.get(ctx.item_id, []),
            "work_history": counts.get(ctx.item_id, 0),
        }
        for ctx in contexts
    ]


class _LeadRows:
    """What the Python path writes for its items: ``final_leads`` rows, work history and the
    people rows' new values."""

    def __init__(self) -> None:
        self.rows: list[list[Any]] = []
        self.history: list[dict[str, Any]] = []
        self.people: list[tuple[Any, ...]] = []
        self.steps: dict[int, list[str]] = {}

    def add(self, ctx: StepContext) -> None:
        values = _lead_row(ctx)
        enrichment = enrichment_of(ctx)
        self.steps[ctx.item_id] = sorted(enrichment)
        self.rows.append([ctx.batch_id, ctx.item_id, *values, enrichment])
        if enrichment:
            self.history.extend(work_history_rows(ctx, enrichment))
        self.people.append((ctx.item_id, *_person_of_lead(values)))


_PERSON_KINDS = dict(column_kinds(cast(Table, Person.__table__), PERSON_COLUMNS))
_PG_PERSON_VALUE = {
    "json": "NULLIF(r -> {}, 'null'::jsonb)",
    "bool": "(r ->> {})::boolean",
    "int": "(r ->> {})::bigint",
    "text": "r ->> {}",
}
_PEOPLE_REFRESH_POSTGRES = text(
    "UPDATE people SET "
    + ", ".join(
        f"{c} = {_PG_PERSON_VALUE[_PERSON_KINDS[c]].format(i)}"
        for i, c in enumerate(PERSON_COLUMNS, 1)
    )
    + " FROM jsonb_array_elements(CAST(:rows AS JSONB)) AS r "
    "WHERE people.item_id = (r ->> 0)::bigint"
)
# Numbered parameters: each ``[item_id, *PERSON_COLUMNS]`` row binds as it is, lists as JSON.
_PEOPLE_REFRESH_SQLITE = (
    f"UPDATE people SET {', '.join(f'{c} = ?{i}' for i, c in enumerate(PERSON_COLUMNS, 2))} "
    "WHERE item_id = ?1"
)
_PERSON_JSON_AT = tuple(i for i, c in enumerate(PERSON_COLUMNS, 1) if _PERSON_KINDS[c] == "json")


def _people_refresh(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Give the items' ``people`` rows (written by the split step, when it ran) the normalized
    person values (``[item_id, *PERSON_COLUMNS]`` each); items without one are left alone.

    Postgres: one statement for the chunk. SQLite: one prepared statement per row, bound,
    which SQLite runs faster than unpacking the rows from one JSON parameter."""
    if not rows:
        return
    if is_postgres(conn):
        conn.execute(_PEOPLE_REFRESH_POSTGRES, {"rows": jsoncodec.dumps(rows)})
        return
    dumps = jsoncodec.dumps
    bound = []
    for row in rows:
        values = list(row)
        for i in _PERSON_JSON_AT:
            if values[i] is not None:
                values[i] = dumps(values[i])
        bound.append(tuple(values))
    conn.exec_driver_sql(_PEOPLE_REFRESH_SQLITE, bound)
