"""store upload rows and items' original_data as cell arrays; batches.headers

A stored row becomes a JSON array of its cells in header order instead of a JSON object
repeating every header name, and the header row is stored once: on ``raw_uploads.headers``
and, snapshotted at launch, on the new ``batches.headers``. That halves the bytes and spares
Postgres parsing and sorting every key of every row at ingest (docs/architecture.md).

The data is converted here, a page of rows at a time, in Python, so both dialects share one
path. A batch whose upload was deleted takes its headers from its items' keys, in the order
they first appear.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PAGE = 5000

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
uploads = sa.table("raw_uploads", sa.column("id", sa.BigInteger), sa.column("headers", JSON))
upload_rows = sa.table(
    "raw_upload_rows",
    sa.column("id", sa.BigInteger),
    sa.column("upload_id", sa.BigInteger),
    sa.column("data", JSON),
)
batches = sa.table(
    "batches",
    sa.column("id", sa.BigInteger),
    sa.column("upload_id", sa.BigInteger),
    sa.column("headers", JSON),
)
items = sa.table(
    "batch_items",
    sa.column("id", sa.BigInteger),
    sa.column("batch_id", sa.BigInteger),
    sa.column("original_data", JSON),
)


def _as_cells(headers: list[str]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return [value.get(header, "") for header in headers]
        return value

    return convert


def _as_object(headers: list[str]) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, list):
            return dict(zip(headers, value, strict=False))
        return value

    return convert


def _rewrite(
    conn: sa.Connection,
    table: Any,
    column: str,
    parent: str,
    parent_id: int,
    convert: Callable[[Any], Any],
) -> None:
    """Rewrite ``table.column`` of every row of one parent, a page at a time, in id order."""
    last = 0
    while True:
        page = conn.execute(
            sa.select(table.c.id, table.c[column])
            .where(table.c[parent] == parent_id, table.c.id > last)
            .order_by(table.c.id)
            .limit(PAGE)
        ).all()
        if not page:
            return
        changed = [
            {"row_id": row_id, "value": new}
            for row_id, old in page
            if (new := convert(old)) is not old
        ]
        if changed:
            conn.execute(
                table.update()
                .where(table.c.id == sa.bindparam("row_id"))
                .values({column: sa.bindparam("value")}),
                changed,
            )
        last = page[-1][0]


def _item_keys(conn: sa.Connection, batch_id: int) -> list[str]:
    """The keys of a batch's items' objects, in the order they first appear."""
    keys: dict[str, None] = {}
    for (data,) in conn.execute(
        sa.select(items.c.original_data).where(items.c.batch_id == batch_id).order_by(items.c.id)
    ):
        if isinstance(data, dict):
            keys.update(dict.fromkeys(data))
    return list(keys)


def upgrade() -> None:
    # A plain ADD COLUMN, never a batch (copy-and-rename) operation: on SQLite, dropping the
    # old ``batches`` table would cascade to every item.
    op.add_column(
        "batches", sa.Column("headers", JSON, nullable=False, server_default=sa.text("'[]'"))
    )
    conn = op.get_bind()
    upload_headers = dict(conn.execute(sa.select(uploads.c.id, uploads.c.headers)).all())
    for upload_id, headers in upload_headers.items():
        _rewrite(conn, upload_rows, "data", "upload_id", upload_id, _as_cells(headers or []))
    for batch_id, upload_id in conn.execute(sa.select(batches.c.id, batches.c.upload_id)).all():
        headers = upload_headers.get(upload_id) or _item_keys(conn, batch_id)
        conn.execute(batches.update().where(batches.c.id == batch_id).values(headers=headers))
        _rewrite(conn, items, "original_data", "batch_id", batch_id, _as_cells(headers))


def downgrade() -> None:
    conn = op.get_bind()
    for upload_id, headers in conn.execute(sa.select(uploads.c.id, uploads.c.headers)).all():
        _rewrite(conn, upload_rows, "data", "upload_id", upload_id, _as_object(headers or []))
    for batch_id, headers in conn.execute(sa.select(batches.c.id, batches.c.headers)).all():
        _rewrite(conn, items, "original_data", "batch_id", batch_id, _as_object(headers or []))
    op.execute("ALTER TABLE batches DROP COLUMN headers")  # SQLite 3.35+; see upgrade()
