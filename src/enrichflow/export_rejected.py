"""The rows an upload refused, as a CSV to fix and upload again: ``line``, ``reason``, ``field``,
``excerpt``, then the upload's own columns with the row's cells as they were read.

A row with more cells than the header has its extra cells in ``column_<n>`` columns; a line
that could not be split into cells (malformed quoting, an over-long line) has empty cells and
its first characters in ``excerpt``, which is otherwise empty. Cells follow the export's
formula rule, so the file is as safe to open in a spreadsheet as the export.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, select

from enrichflow.catalog.uploads import RejectedRow, upload_rejected_page
from enrichflow.db.engine import reading
from enrichflow.db.models import Batch, RawUpload
from enrichflow.errors import NotFoundError
from enrichflow.export import cell

LEADING = ["line", "reason", "field", "excerpt"]
PAGE = 1000


def _pages(engine: Engine, upload_id: int) -> Iterator[list[RejectedRow]]:
    after = 0
    while True:
        with reading(engine) as conn:
            page = upload_rejected_page(conn, upload_id, after, PAGE)
        if not page:
            return
        yield page
        after = page[-1].id


def rejected_columns(engine: Engine, upload_id: int) -> list[str]:
    """:data:`LEADING`, the upload's headers, and a ``column_<n>`` for every cell past them
    that some refused row has; :class:`NotFoundError` when the upload does not exist."""
    with reading(engine) as conn:
        headers = conn.execute(
            select(RawUpload.headers).where(RawUpload.id == upload_id)
        ).scalar_one_or_none()
    if headers is None:
        raise NotFoundError(f"upload {upload_id} does not exist")
    widest = max(
        (len(r.cells) for page in _pages(engine, upload_id) for r in page if r.cells),
        default=0,
    )
    extra = [f"column_{n}" for n in range(len(headers) + 1, widest + 1)]
    return [*LEADING, *headers, *extra]


def rejected_csv(engine: Engine, upload_id: int) -> Iterator[str]:
    """The upload's refused rows as CSV text, a page at a time (header first);
    :class:`NotFoundError` at once, before any text, when the upload does not exist."""
    columns = rejected_columns(engine, upload_id)
    return (text for text, _ in _csv_pages(engine, upload_id, columns))


def _csv_pages(engine: Engine, upload_id: int, columns: list[str]) -> Iterator[tuple[str, int]]:
    """The CSV text of the header, then of each page of refused rows, with its row count."""
    width = len(columns) - len(LEADING)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    yield out.getvalue(), 0
    for page in _pages(engine, upload_id):
        out.seek(0)
        out.truncate()
        for r in page:
            cells = r.cells or []
            excerpt = "" if r.cells is not None else r.excerpt
            writer.writerow(
                [r.line, cell(r.reason), cell(r.field), cell(excerpt)]
                + [cell(c) for c in cells]
                + [""] * (width - len(cells))
            )
        yield out.getvalue(), len(page)


def batch_upload_id(engine: Engine, batch_id: int) -> int:
    """The upload a batch was launched over; :class:`NotFoundError` when the batch does not
    exist or its upload was deleted (its refused rows went with it)."""
    with reading(engine) as conn:
        found = conn.execute(select(Batch.upload_id).where(Batch.id == batch_id)).first()
    if found is None:
        raise NotFoundError(f"batch {batch_id} does not exist")
    if found.upload_id is None:
        raise NotFoundError(f"batch {batch_id}'s upload was deleted, and its rejected rows with it")
    return int(found.upload_id)


def write_rejected(engine: Engine, batch_id: int, out: Path) -> int:
    """Write the rows refused in the upload of ``batch_id`` to ``out``; returns how many."""
    upload_id = batch_upload_id(engine, batch_id)
    columns = rejected_columns(engine, upload_id)
    rows = 0
    with out.open("w", encoding="utf-8", newline="") as handle:
        for text, n in _csv_pages(engine, upload_id, columns):
            handle.write(text)
            rows += n
    return rows
