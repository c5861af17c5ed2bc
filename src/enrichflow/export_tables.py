"""Export a batch's other consolidated tables (``enrichflow export BATCH --table ...``):
``companies``, ``people`` and ``work_history`` (``person_work_history``), one row per table
row, as CSV or JSONL with the cell rules of :mod:`enrichflow.export`.

Rows are read a page at a time along the primary key, from the batch's first row, so memory
does not grow with the batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, Table, func, select

from enrichflow.columns import COMPANY_COLUMNS, PERSON_COLUMNS
from enrichflow.db.engine import reading
from enrichflow.db.models import Company, Person, PersonWorkHistory
from enrichflow.db.statistics import statistics_refresh
from enrichflow.errors import InputError
from enrichflow.export import PAGE, check_format, write_export, write_rows

LEADS = "leads"
TABLES: dict[str, tuple[Table, tuple[str, ...]]] = {
    "companies": (cast(Table, Company.__table__), ("id", "company_key", *COMPANY_COLUMNS)),
    "people": (cast(Table, Person.__table__), ("id", "item_id", "company_id", *PERSON_COLUMNS)),
    "work_history": (
        cast(Table, PersonWorkHistory.__table__),
        ("id", "item_id", "source_step", "position", "company", "title", "start_date", "end_date"),
    ),
}
"""``--table`` name -> the table and its exported columns, in order."""
TABLE_NAMES = (LEADS, *TABLES)


def check_table(table: str, all_columns: bool = False) -> None:
    """Refuse an unknown table, or ``all_columns`` for a table other than the leads'."""
    if table not in TABLE_NAMES:
        raise InputError(f"unknown table {table!r}: use one of {', '.join(TABLE_NAMES)}")
    if all_columns and table != LEADS:
        raise InputError(
            f"all columns (original.<header>) are part of the leads export, not of {table}"
        )


def table_rows(engine: Engine, batch_id: int, table: str) -> Iterator[dict[str, Any]]:
    """The batch's rows of ``table`` (a key of :data:`TABLES`), in id order."""
    source, columns = TABLES[table]
    picked = [source.c[name] for name in columns]
    # ``batch_id + 0``: walk the primary key instead of sorting the batch's rows every page
    # (as the leads export does).
    in_batch = source.c.batch_id + 0 == batch_id
    with reading(engine) as conn:
        first = conn.execute(
            select(func.min(source.c.id)).where(source.c.batch_id == batch_id)
        ).scalar()
    if first is None:
        return
    after = int(first) - 1
    while True:
        with reading(engine) as conn:
            page = conn.execute(
                select(*picked)
                .where(in_batch, source.c.id > after)
                .order_by(source.c.id)
                .limit(PAGE)
            ).all()
        if not page:
            return
        for row in page:
            yield dict(zip(columns, row, strict=True))
        after = page[-1][0]


def write_table(
    engine: Engine,
    batch_id: int,
    out: Path,
    fmt: str = "csv",
    table: str = LEADS,
    all_columns: bool = False,
) -> int:
    """Write the batch's ``table`` to ``out`` (csv or jsonl): the leads export
    (:func:`enrichflow.export.write_export`) or the rows of one of :data:`TABLES`; the number
    of rows."""
    check_table(table, all_columns)
    if table == LEADS:
        return write_export(engine, batch_id, out, fmt, all_columns)
    check_format(fmt)
    statistics_refresh(engine)
    columns = list(TABLES[table][1])
    with out.open("w", encoding="utf-8", newline="") as handle:
        return write_rows(table_rows(engine, batch_id, table), columns, fmt, handle)
