"""Export a batch: one row per item, failed items included, safe to open in a spreadsheet.

Columns: :data:`LEADING` in that order, then one column per enrichment field, named
``<step_slug>.<field>`` (nested objects flattened with dots), sorted; with ``all_columns``,
then every uploaded column verbatim as ``original.<header>``, in file order. An item that the
``consolidate_final_leads`` step wrote takes its values from ``final_leads``; any other item
(failed, still running, or a pipeline without consolidation) takes them from the normalization
steps' results when they ran, else from the uploaded row itself.

Items are read a page at a time and the export makes two passes (the first collects the
enrichment column names), so memory does not grow with the batch.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO, cast

from sqlalchemy import ColumnElement, Connection, Engine, Table, func, or_, select

from enrichflow.columns import (
    BUILTIN_STEPS,
    CORE_STEP,
    DOMAIN_STEP,
    LEAD_COLUMNS,
    LEAD_LISTS,
    NAME_STEP,
)
from enrichflow.db.context import IDENTITY_COLUMNS, RowLayout
from enrichflow.db.dialect import id_in
from enrichflow.db.engine import reading
from enrichflow.db.models import Batch, BatchItem, EnrichmentResult, FinalLead, WorkflowState
from enrichflow.db.statistics import statistics_refresh
from enrichflow.errors import InputError
from enrichflow.normalize._text import clean_cell
from enrichflow.normalize.core import PHONE_FIELDS
from enrichflow.normalize.numbers import parse_bool, parse_int_amount, parse_list
from enrichflow.states import Status

LEADING = ["item_id", "row_number", "status", "failed_step", "error", *LEAD_COLUMNS]
"""The export's leading columns, in the order the issue fixes: the item's outcome, then the
consolidated lead's columns."""
_LEADING_SET = frozenset(LEADING)
ORIGINAL_PREFIX = "original."

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A sign, then digits and the separators numbers and phone numbers are written with: no
# letter, reference or operator but the minus, so a spreadsheet can compute it at most as
# arithmetic on literals, never call a function or read another cell.
_PLAIN_NUMBER_RE = re.compile(r"[+-][\d .,()/-]*\d[\d .,()/-]*")
PAGE = 1000
_ACTIVE = (Status.PENDING.value, Status.QUEUED.value, Status.IN_PROGRESS.value)

items_t = cast(Table, BatchItem.__table__)
leads_t = cast(Table, FinalLead.__table__)
states_t = cast(Table, WorkflowState.__table__)
results_t = cast(Table, EnrichmentResult.__table__)


def safe_cell(value: str) -> str:
    """Neutralise what a spreadsheet would run as a formula (OWASP CSV injection) by
    prefixing a single quote: text starting with ``=``, ``@``, tab or carriage return, or with
    ``+`` / ``-`` unless it is a plain number (``+14155550132``, ``+1 866-555-0100``,
    ``-12.5`` stay as they are, so CRM and dialer imports read the number itself)."""
    if value.startswith(FORMULA_PREFIXES) and (
        value[0] not in "+-" or _PLAIN_NUMBER_RE.fullmatch(value) is None
    ):
        return "'" + value
    return value


def flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """``{"a": {"b": 1}}`` under ``step`` becomes ``{"step.a.b": 1}``."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            flatten(f"{prefix}.{key}", inner, out)
    else:
        out[prefix] = value


def cell(value: Any) -> str:
    """One CSV cell: empty for None, ``true``/``false``, lists ``; ``-joined, objects as JSON;
    text is formula-neutralised, numbers are written as they are."""
    if type(value) is str:  # most cells are text, so this test comes first
        return safe_cell(value) if value.startswith(FORMULA_PREFIXES) else value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        if all(type(v) is str for v in value):  # keywords, technologies
            return safe_cell("; ".join(value))
        return safe_cell("; ".join(_plain(v) for v in value if v is not None))
    if isinstance(value, dict):
        return safe_cell(json.dumps(value, ensure_ascii=False, sort_keys=True))
    return safe_cell(str(value))


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _enrichment_columns(enrichment: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for step, result in enrichment.items():
        flatten(step, result, out)
    return out


def _from_lead(lead: Any) -> dict[str, Any]:
    """The leading values of a ``_LEAD_READ`` row (the item id first, the enrichment last)."""
    return dict(zip(LEAD_COLUMNS, lead[1:-1], strict=True))


def _from_item(item: Any, fields: Mapping[str, str], results: Mapping[str, Any]) -> dict[str, Any]:
    """The leading values of an item that was not consolidated: normalized results when the
    normalization steps ran, else the uploaded values that mean the same thing (codes and
    classifications exist only once normalized, so they stay empty)."""
    core = results.get(CORE_STEP)
    if core is not None:
        values = {column: core.get(column) for column in LEAD_COLUMNS}
    else:

        def text(key: str) -> str | None:
            return clean_cell(fields.get(key))

        first, last = text("first_name"), text("last_name")
        values = {
            "first_name": first,
            "last_name": last,
            "full_name": text("person_name")
            or item.person_name
            or (" ".join(p for p in (first, last) if p) or None),
            "title": text("title") or item.title,
            "email": text("email") or item.email,
            "phone": next((p for p in (text(k) for k in PHONE_FIELDS) if p), None),
            "direct_phone": text("phone_work_direct"),
            "mobile_phone": text("phone_mobile"),
            "corporate_phone": text("phone_corporate") or text("company_phone"),
            "do_not_call": parse_bool(text("do_not_call")),
            "sub_departments": parse_list(fields.get("sub_departments")),
            "person_linkedin_url": text("linkedin_url") or item.linkedin_url,
            "city": text("city"),
            "state": text("state"),
            "company_linkedin_url": text("company_linkedin_url"),
            "employees": parse_int_amount(fields.get("employees")),
            "annual_revenue": parse_int_amount(fields.get("annual_revenue")),
            "total_funding": parse_int_amount(fields.get("total_funding")),
            "latest_funding": text("latest_funding"),
            "latest_funding_amount": parse_int_amount(fields.get("latest_funding_amount")),
            "last_raised_at": text("last_raised_at"),
            "company_address": text("company_address"),
            "company_city": text("company_city"),
            "company_state": text("company_state"),
            "sic_codes": parse_list(fields.get("sic_codes")),
            "naics_codes": parse_list(fields.get("naics_codes")),
            "facebook_url": text("facebook_url"),
            "twitter_url": text("twitter_url"),
            "keywords": parse_list(fields.get("keywords")),
            "technologies": parse_list(fields.get("technologies")),
        }
    name = results.get(NAME_STEP) or {}
    domain = results.get(DOMAIN_STEP) or {}
    values["company_name"] = (
        name.get("company_name") or clean_cell(fields.get("company_name")) or item.company_name
    )
    values["company_domain"] = domain.get("company_domain") or item.company_domain
    values["industry"] = clean_cell(fields.get("industry")) or item.industry
    values["apollo_contact_id"] = clean_cell(fields.get("apollo_contact_id"))
    values["apollo_account_id"] = clean_cell(fields.get("apollo_account_id"))
    return values


_ITEM_READ = (items_t.c.id, items_t.c.row_number, *(items_t.c[c] for c in IDENTITY_COLUMNS))
"""An item's columns but its cells, which only an item without a lead needs."""
_LEAD_READ = (leads_t.c.item_id, *(leads_t.c[c] for c in LEAD_COLUMNS), leads_t.c.enrichment)


def _before_first(conn: Connection, batch_id: int) -> int:
    """An id just below the batch's first item, where paging starts."""
    first = conn.execute(
        select(func.min(items_t.c.id)).where(items_t.c.batch_id == batch_id)
    ).scalar()
    return int(first or 1) - 1


def _page(conn: Connection, batch_id: int, after: int, *columns: Any) -> list[Any]:
    """The next ``PAGE`` items after id ``after``, read along the primary key.

    ``batch_id + 0`` keeps the planner off the (batch_id, row_number) index, with which it
    would sort the whole batch for every page, quadratic over the export."""
    return list(
        conn.execute(
            select(*columns)
            .where(items_t.c.batch_id + 0 == batch_id, items_t.c.id > after)
            .order_by(items_t.c.id)
            .limit(PAGE)
        )
    )


def _leads(conn: Connection, ids: list[int], columns: tuple[Any, ...]) -> dict[int, Any]:
    """item id -> the ``columns`` (``item_id`` among them) of its lead, for the items that
    have one."""
    found = conn.execute(select(*columns).where(id_in(conn, leads_t.c.item_id, ids))).all()
    return {row.item_id: row for row in found}


def _results(conn: Connection, ids: list[int], loose: list[int]) -> dict[int, dict[str, Any]]:
    """item id -> step -> payload: the enrichment results of every item, and also the
    built-in steps' results of the ``loose`` items (those without a lead, the only ones that
    need them)."""
    wanted: ColumnElement[bool] = ~results_t.c.step_name.in_(BUILTIN_STEPS)
    if loose:
        wanted = or_(wanted, id_in(conn, results_t.c.item_id, loose))
    found: dict[int, dict[str, Any]] = {}
    for item_id, step, payload in conn.execute(
        select(results_t.c.item_id, results_t.c.step_name, results_t.c.payload)
        # no ORDER BY (an item has one result per step): with one, Postgres, which cannot see
        # how few ids the array holds, walked the whole table along its primary key
        .where(id_in(conn, results_t.c.item_id, ids), wanted)
    ).all():
        found.setdefault(item_id, {})[step] = payload
    return found


def _cells(conn: Connection, ids: list[int]) -> dict[int, list[str]]:
    """item id -> its uploaded cells."""
    rows = conn.execute(
        select(items_t.c.id, items_t.c.original_data).where(id_in(conn, items_t.c.id, ids))
    )
    return {item_id: cells or [] for item_id, cells in rows}


def _enrichment(lead: Any, own: Mapping[str, Any]) -> dict[str, Any]:
    """An item's enrichment results: its lead's, updated by the item's own."""
    enrichment = {s: r for s, r in own.items() if s not in BUILTIN_STEPS}
    if lead is not None:
        enrichment = {**(lead.enrichment or {}), **enrichment}
    return enrichment


def _original_columns(conn: Connection, batch_id: int) -> list[str]:
    """``original.<header>`` for each uploaded column of the batch, in file order."""
    headers = conn.execute(select(Batch.headers).where(Batch.id == batch_id)).scalar()
    return [ORIGINAL_PREFIX + header for header in headers or []]


def export_rows(
    engine: Engine, batch_id: int, all_columns: bool = False
) -> Iterator[dict[str, Any]]:
    """Every item of the batch with its outcome, leading values and flattened enrichment
    columns, in item order, read a page at a time; with ``all_columns``, also every uploaded
    cell as it was, under ``original.<header>``.

    Items with a lead are exported from it: their cells (unless ``all_columns``) and built-in
    results are not read, since decoding them would dominate the export's time."""
    with reading(engine) as conn:
        batch = conn.execute(
            select(Batch.column_map, Batch.headers).where(Batch.id == batch_id)
        ).first()
        last_id = _before_first(conn, batch_id)
        originals = _original_columns(conn, batch_id) if all_columns else []
    layout = RowLayout(batch.headers if batch else [], batch.column_map if batch else {})
    while True:
        with reading(engine) as conn:
            items = _page(conn, batch_id, last_id, *_ITEM_READ)
            if not items:
                return
            ids = [i.id for i in items]
            states = list(
                conn.execute(
                    select(
                        WorkflowState.item_id,
                        WorkflowState.step_index,
                        WorkflowState.step_name,
                        WorkflowState.status,
                        WorkflowState.error,
                    ).where(
                        # the batch first: (batch_id, item_id, step_name) is the index to use
                        WorkflowState.batch_id == batch_id,
                        id_in(conn, states_t.c.item_id, ids),
                        WorkflowState.status.in_([Status.FAILED.value, *_ACTIVE]),
                    )
                )
            )
            leads = _leads(conn, ids, _LEAD_READ)
            loose = [item_id for item_id in ids if item_id not in leads]
            results = _results(conn, ids, loose)
            wanted = ids if all_columns else loose
            cells = _cells(conn, wanted) if wanted else {}
        failed: dict[int, tuple[int, str, str | None]] = {}
        active: set[int] = set()
        for item_id, index, step, status, error in states:
            if status == Status.FAILED.value:
                if item_id not in failed or index < failed[item_id][0]:
                    failed[item_id] = (index, step, error)
            else:
                active.add(item_id)
        for item in items:
            step_error = failed.get(item.id)
            status = "failed" if step_error else "running" if item.id in active else "completed"
            own = results.get(item.id, {})
            lead = leads.get(item.id)
            if lead is not None:
                values = _from_lead(lead)
            else:
                values = _from_item(item, layout.fields(cells.get(item.id, [])), own)
            row: dict[str, Any] = {
                "item_id": item.id,
                "row_number": item.row_number,
                "status": status,
                "failed_step": step_error[1] if step_error else None,
                "error": step_error[2] if step_error else None,
            }
            row.update(values)
            for key, value in _enrichment_columns(_enrichment(lead, own)).items():
                if key not in _LEADING_SET:
                    row[key] = value
            for column in LEAD_LISTS:
                row[column] = list(row.get(column) or [])
            if originals:
                row.update(zip(originals, cells.get(item.id, []), strict=False))
            yield row
        last_id = ids[-1]


def export_columns(engine: Engine, batch_id: int, all_columns: bool = False) -> list[str]:
    """The export's columns: :data:`LEADING`, then every enrichment column of the batch,
    sorted, then with ``all_columns`` the ``original.<header>`` ones.

    Reads only what the enrichment columns come from (leads' ``enrichment`` and the items'
    enrichment results), not the whole export."""
    extra: set[str] = set()
    with reading(engine) as conn:
        last_id = _before_first(conn, batch_id)
        originals = _original_columns(conn, batch_id) if all_columns else []
    while True:
        with reading(engine) as conn:
            ids = [item_id for (item_id,) in _page(conn, batch_id, last_id, items_t.c.id)]
            if not ids:
                return LEADING + sorted(extra) + originals
            leads = _leads(conn, ids, (leads_t.c.item_id, leads_t.c.enrichment))
            results = _results(conn, ids, [])
        for item_id in ids:
            enrichment = _enrichment(leads.get(item_id), results.get(item_id, {}))
            extra.update(k for k in _enrichment_columns(enrichment) if k not in _LEADING_SET)
        last_id = ids[-1]


def check_format(fmt: str) -> None:
    if fmt not in {"csv", "jsonl"}:
        raise InputError(f"unknown export format {fmt!r}: use csv or jsonl")


def write_export(
    engine: Engine, batch_id: int, out: Path, fmt: str = "csv", all_columns: bool = False
) -> int:
    """Write the export to ``out`` (csv or jsonl); returns the number of rows."""
    check_format(fmt)
    statistics_refresh(engine)  # a batch that just finished may have filled its tables
    columns = export_columns(engine, batch_id, all_columns)
    rows = export_rows(engine, batch_id, all_columns)
    with out.open("w", encoding="utf-8", newline="") as handle:
        return write_rows(rows, columns, fmt, handle)


def write_rows(
    rows: Iterable[Mapping[str, Any]], columns: list[str], fmt: str, handle: TextIO
) -> int:
    """``rows`` as CSV (a header, formula-safe cells) or JSONL (one object each, real JSON
    types), the ``columns`` in order; returns the number of rows."""
    n = 0
    if fmt == "jsonl":
        for row in rows:
            record = {c: row.get(c) for c in columns}
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            n += 1
        return n
    writer = csv.writer(handle)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row.get(c)) for c in columns])
        n += 1
    return n
