"""Uploads (``raw_uploads``): stored CSV files, their readable rows and the lines they refused."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypedDict

from sqlalchemy import Connection, Select, or_, select

from enrichflow.db.models import RawUpload, RawUploadError, RawUploadRow

__all__ = [
    "RejectedRow",
    "UploadDetail",
    "UploadLayout",
    "UploadRow",
    "same_file_uploads",
    "upload_get",
    "upload_get_layout",
    "upload_rejected_count",
    "upload_rejected_page",
    "uploads_list",
]

LISTED = 200
"""How many uploads a listing shows, newest first."""

BAD_ROWS_SHOWN = 500


class UploadRow(TypedDict):
    id: int
    client_id: int | None
    filename: str
    encoding: str
    delimiter: str
    row_count: int
    bad_row_count: int
    created_at: datetime | None


class PreviewRow(TypedDict):
    line: int
    values: list[str]


class BadRow(TypedDict):
    line: int
    reason: str
    field: str | None
    excerpt: str


class UploadDetail(UploadRow):
    headers: list[str]
    column_map: dict[str, str]
    unmapped_columns: list[str]
    first_rows: list[PreviewRow]
    bad_rows: list[BadRow]


@dataclass(frozen=True, slots=True)
class UploadLayout:
    """What a launch needs of an upload: where each field is in a row, and how many rows."""

    column_map: dict[str, str]
    headers: list[str]
    row_count: int


def _summary(r: Any) -> UploadRow:
    return UploadRow(
        id=r.id,
        client_id=r.client_id,
        filename=r.filename,
        encoding=r.encoding,
        delimiter=r.delimiter,
        row_count=r.row_count,
        bad_row_count=r.bad_row_count,
        created_at=r.created_at,
    )


def uploads_list(conn: Connection, client_id: int | None = None) -> list[UploadRow]:
    """The newest uploads (of the client), newest first."""
    query = select(RawUpload).order_by(RawUpload.id.desc()).limit(LISTED)
    if client_id is not None:
        query = query.where(RawUpload.client_id == client_id)
    return [_summary(r) for r in conn.execute(query)]


def upload_get(conn: Connection, upload_id: int, preview: int = 10) -> UploadDetail | None:
    """The upload with its first ``preview`` rows and its refused lines, or None."""
    r = conn.execute(select(RawUpload).where(RawUpload.id == upload_id)).first()
    if r is None:
        return None
    rows = conn.execute(
        select(RawUploadRow.line_number, RawUploadRow.data)
        .where(RawUploadRow.upload_id == upload_id)
        .order_by(RawUploadRow.line_number)
        .limit(preview)
    )
    errors = conn.execute(
        select(
            RawUploadError.line_number,
            RawUploadError.reason,
            RawUploadError.field,
            RawUploadError.excerpt,
        )
        .where(RawUploadError.upload_id == upload_id)
        .order_by(RawUploadError.line_number)
        .limit(BAD_ROWS_SHOWN)
    )
    return UploadDetail(
        **_summary(r),
        headers=list(r.headers or []),
        column_map=dict(r.column_map or {}),
        unmapped_columns=list(r.unmapped_columns or []),
        first_rows=[PreviewRow(line=line, values=list(cells)) for line, cells in rows],
        bad_rows=[
            BadRow(line=line, reason=reason, field=field, excerpt=excerpt)
            for line, reason, field, excerpt in errors
        ],
    )


def upload_get_layout(conn: Connection, upload_id: int) -> UploadLayout | None:
    """The upload's column map, headers and row count, or None when it does not exist."""
    r = conn.execute(
        select(RawUpload.column_map, RawUpload.headers, RawUpload.row_count).where(
            RawUpload.id == upload_id
        )
    ).first()
    if r is None:
        return None
    return UploadLayout(dict(r.column_map), list(r.headers), r.row_count)


def same_file_uploads(upload_id: int) -> Select[int]:
    """The ids of ``upload_id`` and of every upload of a file with the same bytes (by its
    SHA-256; an upload without one matches only itself)."""
    this = select(RawUpload.content_sha256).where(RawUpload.id == upload_id).scalar_subquery()
    return select(RawUpload.id).where(
        or_(RawUpload.id == upload_id, RawUpload.content_sha256 == this)
    )


def upload_rejected_count(conn: Connection, upload_id: int) -> int:
    """How many rows of the upload were refused (0 for an upload that does not exist)."""
    found = conn.execute(
        select(RawUpload.bad_row_count).where(RawUpload.id == upload_id)
    ).scalar_one_or_none()
    return int(found or 0)


class RejectedRow(NamedTuple):
    """A refused line as its download shows it; ``cells`` None when it could not be split."""

    id: int
    line: int
    reason: str
    field: str | None
    excerpt: str
    cells: list[str] | None


def upload_rejected_page(
    conn: Connection, upload_id: int, after: int = 0, limit: int = 1000
) -> list[RejectedRow]:
    """The upload's refused lines with ids after ``after``, in line order (they are stored in
    line order), at most ``limit``."""
    rows = conn.execute(
        select(
            RawUploadError.id,
            RawUploadError.line_number,
            RawUploadError.reason,
            RawUploadError.field,
            RawUploadError.excerpt,
            RawUploadError.cells,
        )
        .where(RawUploadError.upload_id == upload_id, RawUploadError.id > after)
        .order_by(RawUploadError.id)
        .limit(limit)
    )
    return [RejectedRow(*r) for r in rows]
