"""Store an upload: every column of every readable row, plus every unreadable row's line,
reason and cells.

One transaction: a file that turns out to be unusable (empty, header only, undecodable)
leaves nothing behind. A row is stored as a JSON array of its cells in header order; the
header row is stored once, on the upload, because a JSON object per row would repeat every
header name and make Postgres parse and sort those keys for every row.
Rows are streamed in chunks; on Postgres every chunk is one pre-formatted text block of a
single ``COPY`` (orjson, one ``write`` per chunk instead of a ``write_row`` and a
``json.dumps`` per row).
Unreadable rows wait in a spool file until the rows' ``COPY`` is over (the connection can run
nothing else meanwhile), so a file whose every row is bad does not sit in memory either.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any

import orjson
from psycopg.copy import QueuedLibpqWriter
from sqlalchemy import Connection, Engine, insert, update

from enrichflow.db.bulk import LARGE_LOAD_ROWS, new_parents_only
from enrichflow.db.engine import is_postgres
from enrichflow.db.models import RawUpload, RawUploadError, RawUploadRow
from enrichflow.ingest.aliases import map_headers
from enrichflow.ingest.reader import BadRow, RowRecord, open_csv

CHUNK_ROWS = 5000
ANALYZE_AFTER_ROWS = 10_000
HASH_BLOCK_BYTES = 1 << 20
SPOOL_IN_MEMORY_BYTES = 4 * 1024 * 1024
"""Bad rows are spooled in memory up to this size, then on disk."""


@dataclass(frozen=True, slots=True)
class IngestReport:
    upload_id: int
    filename: str
    encoding: str
    delimiter: str
    rows: int
    bad_rows: list[BadRow]
    column_map: dict[str, str]
    unmapped_columns: list[str]
    conflicts: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "upload_id": self.upload_id,
            "filename": self.filename,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "rows": self.rows,
            "bad_rows": [
                {
                    "line": b.line_number,
                    "reason": b.reason,
                    "field": b.field,
                    "excerpt": b.raw_excerpt,
                }
                for b in self.bad_rows
            ],
            "column_map": self.column_map,
            "unmapped_columns": self.unmapped_columns,
        }


def ingest_csv(
    engine: Engine,
    path: Path | str,
    client_id: int | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Read ``path`` and store it as a raw upload; :class:`InputError` if it is unusable."""
    path = Path(path)
    source = open_csv(path)
    header_map = map_headers(source.headers)
    digest = file_sha256(path)
    with engine.begin() as conn, tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY_BYTES) as spool:
        upload_id = int(
            conn.execute(
                insert(RawUpload)
                .values(
                    client_id=client_id,
                    filename=path.name,
                    encoding=source.encoding,
                    delimiter=source.delimiter,
                    headers=source.headers,
                    column_map=header_map.canonical,
                    unmapped_columns=header_map.unmapped,
                    row_count=0,
                    bad_row_count=0,
                    content_sha256=digest,
                )
                .returning(RawUpload.id)
            ).scalar_one()
        )
        rows = source.rows(lambda bad, cells: _spool_write(spool, upload_id, bad, cells))
        # The first chunk is read ahead far enough to tell a large load (db.bulk) from a small one.
        chunk = list(islice(rows, LARGE_LOAD_ROWS))
        stored = 0
        with _row_writer(conn, upload_id, len(chunk)) as store:
            while chunk:
                store(chunk)
                stored += len(chunk)
                if on_progress is not None:
                    on_progress(stored)
                chunk = list(islice(rows, CHUNK_ROWS))
        _bad_rows_store(conn, spool)
        conn.execute(
            update(RawUpload)
            .where(RawUpload.id == upload_id)
            .values(row_count=stored, bad_row_count=len(source.bad_rows))
        )
        if is_postgres(conn) and stored >= ANALYZE_AFTER_ROWS:
            # Launch reads the upload back in line order; without statistics the planner
            # expects a few rows and sorts the whole JSON on disk instead of using the index.
            # The narrow columns are enough and cost a fraction of sampling ``data``.
            conn.exec_driver_sql("ANALYZE raw_upload_rows (upload_id, line_number)")
    return IngestReport(
        upload_id=upload_id,
        filename=path.name,
        encoding=source.encoding,
        delimiter=source.delimiter,
        rows=stored,
        bad_rows=list(source.bad_rows),
        column_map=header_map.canonical,
        unmapped_columns=header_map.unmapped,
        conflicts=header_map.conflicts,
    )


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of the file's bytes, read in blocks (the file may be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def _spool_write(spool: IO[bytes], upload_id: int, bad: BadRow, cells: list[str] | None) -> None:
    """One ``raw_upload_errors`` row as a JSON line."""
    row = {
        "upload_id": upload_id,
        "line_number": bad.line_number,
        "reason": bad.reason,
        "excerpt": bad.raw_excerpt,
        "field": bad.field,
        "cells": cells,
    }
    spool.write(orjson.dumps(row) + b"\n")


def _bad_rows_store(conn: Connection, spool: IO[bytes]) -> None:
    """Insert the spooled bad rows, a chunk at a time."""
    spool.seek(0)
    while chunk := [orjson.loads(line) for line in islice(spool, CHUNK_ROWS)]:
        conn.execute(insert(RawUploadError), chunk)


@contextmanager
def _row_writer(
    conn: Connection, upload_id: int, rows_ahead: int
) -> Iterator[Callable[[list[RowRecord]], None]]:
    """A function storing one chunk of rows (``rows_ahead``: how many the first chunk holds).

    On Postgres all chunks go into one ``COPY``, so the server parses the JSON of one chunk
    while this process reads and formats the next, where a ``COPY`` per chunk would wait for
    the server at the end of each. psycopg's queued writer sends from a thread of its own, so the reader
    does not wait while the socket drains either; its queue holds at most 128 MB.
    """
    if not is_postgres(conn):

        def insert_chunk(chunk: list[RowRecord]) -> None:
            conn.execute(
                insert(RawUploadRow),
                [
                    {"upload_id": upload_id, "line_number": r.line_number, "data": r.cells}
                    for r in chunk
                ],
            )

        yield insert_chunk
        return
    dbapi: Any = conn.connection.dbapi_connection
    encoding = dbapi.info.encoding
    with (
        new_parents_only(conn, rows_ahead),  # every row's upload: created by this transaction
        dbapi.cursor() as cur,
        cur.copy(
            "COPY raw_upload_rows (upload_id, line_number, data) FROM STDIN",
            writer=QueuedLibpqWriter(cur),
        ) as copy,
    ):
        yield lambda chunk: copy.write(_copy_block(upload_id, chunk, encoding))


def _copy_block(upload_id: int, chunk: list[RowRecord], encoding: str) -> bytes:
    """``COPY ... FROM STDIN`` text rows: ``upload_id TAB line TAB json-array NL``.

    orjson escapes every control character inside strings, so the JSON has no raw tab or line
    break; the only character COPY's text format treats specially that it can contain is the
    backslash of its own escapes, which is doubled. (NUL, which jsonb refuses, never gets here:
    the reader turns a record with a NUL byte into a bad row.)
    """
    dumps = orjson.dumps
    prefix = b"%d\t" % upload_id
    block = b"".join(
        [prefix + b"%d\t%b\n" % (r.line_number, dumps(r.cells)) for r in chunk]
    ).replace(b"\\", b"\\\\")
    if encoding.replace("-", "").replace("_", "").lower() != "utf8":
        block = block.decode("utf-8").encode(encoding)
    return block
