"""Streaming CSV reader for lead-list uploads.

The reader never holds the whole file in memory: :func:`open_csv` looks at a sample to detect
the encoding, the line-ending style and the delimiter and reads the header; :meth:`CsvSource.rows`
then streams the records one at a time.

The file is read in binary, one physical line at a time, and each line is decoded on its own
before it is handed to :mod:`csv` (which therefore sees exactly what a text stream opened with
``newline=""`` would give it: quoted delimiters, embedded newlines, doubled quotes, CRLF and LF
all work).  Decoding per line lets the reader turn a NUL byte or an undecodable byte into a bad
row for just the record that contains it, with its byte offset, instead of aborting the file.

Line numbers are physical: the header is line 1 (or the first non-blank line), and a record
that contains a quoted multi-line field moves the numbers of the records after it.

Encodings: UTF-8 (with or without a BOM), Windows-1252, UTF-16 (Excel's "Unicode Text":
with a BOM, or without one when its first line is plainly two bytes a character) and UTF-32
with a BOM. A UTF-16 or UTF-32 file is transcoded to UTF-8 as it is read, so everything after
the decoding is the same.

Errors:

* a missing, empty or blank-only file, a file that is not text (PDF, image, workbook, archive,
  web page: named by its first bytes, :mod:`~enrichflow.ingest.filetypes`), or an unreadable
  header -> :class:`InputError` from :func:`open_csv`;
* a file with a header but no data rows -> :class:`InputError` raised by :meth:`CsvSource.rows`
  once it reaches the end of the file without having seen any data record (good or bad).
  Because that check is at the end of the iteration, with a header-only file the very first
  ``next()`` raises.
* bad records (wrong field count, NUL byte, undecodable byte, oversize field, malformed CSV)
  never raise: they are appended to :attr:`CsvSource.bad_rows` (and handed with their cells to
  the ``on_bad_row`` callback of :meth:`CsvSource.rows`) and reading continues.
  A physical line longer than a record with the longest allowed field can need is skipped
  up to its line break without being held, and a quoted field is cut off by :mod:`csv`'s own
  (bounded) field limit, so memory is bounded by the field limit, never by the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

from enrichflow.errors import InputError
from enrichflow.ingest.filetypes import non_csv_kind

if TYPE_CHECKING:
    from _csv import Reader as _CsvReader

__all__ = [
    "DEFAULT_MAX_FIELD_CHARS",
    "DELIMITERS",
    "EXCERPT_CHARS",
    "BadRow",
    "BadRowSink",
    "CsvSource",
    "RowRecord",
    "open_csv",
]

#: Bytes looked at to detect the encoding, the line endings and the delimiter.
SAMPLE_BYTES = 64 * 1024
#: Default maximum length of one field, in characters.
DEFAULT_MAX_FIELD_CHARS = 1024 * 1024
#: Maximum length of :attr:`BadRow.raw_excerpt`.
EXCERPT_CHARS = 200
#: Delimiters that are detected, in order of preference when the evidence is equal.
DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")

_SNIFF_RECORDS = 20
_READ_CHUNK = 1024 * 1024


class RowRecord(NamedTuple):
    """One good data record: its first physical line and its cells in header order
    (exactly one per header: a record with another count is a bad row)."""

    line_number: int
    cells: list[str]


@dataclass(slots=True)
class BadRow:
    """A record that could not be used, with the physical line where it starts and the header
    of the field at fault when one field is (an oversize or undecodable one)."""

    line_number: int
    reason: str
    raw_excerpt: str
    field: str | None = None


BadRowSink = Callable[[BadRow, list[str] | None], None]
"""Receives each bad row with its cells as parsed (None when the line could not be split into
cells), so a caller can store them without the reader holding every one in memory."""

WIDE_BOMS = {
    codecs.BOM_UTF32_LE: "utf-32-le",  # before UTF-16 LE's, which is its first two bytes
    codecs.BOM_UTF32_BE: "utf-32-be",
    codecs.BOM_UTF16_LE: "utf-16-le",
    codecs.BOM_UTF16_BE: "utf-16-be",
}
"""The byte-order marks of the encodings read transcoded to UTF-8, in the order they are
tried."""
_UNREADABLE = "\ufffd"
"""What an undecodable byte or a NUL becomes in a bad row's cells (jsonb refuses NUL)."""
_WIDE_ERRORS = "enrichflow.wide"
_WIDE_STAND_IN = "\udcff"


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Turn undecodable UTF-16 or UTF-32 into a lone surrogate, which no UTF-8 decoder
    accepts, so the record holding it becomes a bad row instead of silently holding a
    replacement character."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return _WIDE_STAND_IN, exc.end


codecs.register_error(_WIDE_ERRORS, _mark_undecodable)


class _WideAsUtf8(io.RawIOBase):
    """A UTF-16 or UTF-32 file (after its BOM) read as the UTF-8 bytes of the same text."""

    def __init__(self, raw: BinaryIO, encoding: str) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(encoding)(_WIDE_ERRORS)
        self._pending = b""
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending and not self._eof:
            data = self._raw.read(_READ_CHUNK)
            self._eof = not data
            text = self._decoder.decode(data, final=self._eof)
            self._pending = text.encode("utf-8", "surrogatepass")
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


def _utf16_without_bom(head: bytes) -> str | None:
    """``utf-16-le``/``-be`` when the first line is two bytes a character, one of them NUL
    (ASCII text in UTF-16): no CSV in a single-byte encoding has a NUL in every other byte."""
    sample = head[: min(len(head), 512) & ~1]
    if len(sample) < 8:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) == len(odd) and 0 not in even:
        return "utf-16-le"
    if even.count(0) == len(even) and 0 not in odd:
        return "utf-16-be"
    return None


def _excerpt(text: str) -> str:
    return text[:EXCERPT_CHARS]


def _set_csv_field_limit(max_field_chars: int) -> None:
    """Set :mod:`csv`'s global field limit above ours (which is checked per record, so that a
    field over it is one bad row) yet bounded, so a quoted field that never closes cannot
    grow with the file. Never below what the default limit needs: the setting is global."""
    csv.field_size_limit(_line_cap(max(max_field_chars, DEFAULT_MAX_FIELD_CHARS)))


def _detect_encoding(f: BinaryIO, name: str) -> tuple[str, bytes, bytes]:
    """Return ``(encoding, bom, head)``; ``head`` is the first :data:`SAMPLE_BYTES`, ``bom``
    the byte-order mark it starts with (``b""`` when none).

    A UTF-8, UTF-16 or UTF-32 BOM decides; so does a first line of UTF-16 without one.
    Otherwise the first window that contains a non-ASCII byte decides (a file that starts with
    pure ASCII is scanned on until one is found): valid UTF-8 => utf-8, else Windows-1252;
    undecodable in both => :class:`InputError` with the offset.  A file that is not text at
    all is refused with what it looks like.
    """
    head = f.read(SAMPLE_BYTES)
    if not head:
        raise InputError(f"{name} is empty")
    for bom, encoding in WIDE_BOMS.items():
        if head.startswith(bom):
            return encoding, bom, head
    utf8_bom = codecs.BOM_UTF8 if head.startswith(codecs.BOM_UTF8) else b""
    kind = non_csv_kind(head[len(utf8_bom) :])
    if kind is not None:
        raise InputError(f"{name}: this is not a CSV file: it looks like {kind}; save it as CSV")
    if utf8_bom:
        return "utf-8", utf8_bom, head
    bomless = _utf16_without_bom(head)
    if bomless is not None:
        return bomless, b"", head
    first_line = head.split(b"\n", 1)[0]
    if b"\0" in first_line:
        raise InputError(
            f"{name}: this is not a CSV file: its first line holds binary data (NUL bytes)"
        )
    offset = 0
    window = head
    while window.isascii():
        offset += len(window)
        window = f.read(_READ_CHUNK)
        if not window:
            return "utf-8", b"", head
    at_eof = not f.read(1)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(window, final=at_eof)
    except UnicodeDecodeError as exc:
        utf8_offset = offset + exc.start
    else:
        return "utf-8", b"", head
    try:
        window.decode("cp1252")
    except UnicodeDecodeError as exc:
        bad = offset + exc.start
        raise InputError(
            f"{name} is neither UTF-8 nor Windows-1252: byte 0x{window[exc.start]:02X} at byte "
            f"offset {bad} cannot be decoded (first invalid UTF-8 sequence at byte offset "
            f"{utf8_offset})"
        ) from None
    return "cp1252", b"", head


def _sniff_delimiter(text: str, complete: bool) -> str:
    """Pick the delimiter from the first records of ``text``, counting outside quotes.

    A candidate must appear in the header; candidates whose count in the following lines
    matches the header's most often win, then the one with the larger header count, then
    the order of :data:`DELIMITERS`.  Nothing found => ``","`` (a single-column file).
    """
    records: list[dict[str, int]] = []
    current = dict.fromkeys(DELIMITERS, 0)
    in_quotes = False
    has_content = False
    for ch in text:
        if ch == '"':
            in_quotes = not in_quotes
        elif in_quotes:
            continue
        elif ch == "\n" or ch == "\r":
            if has_content:
                records.append(current)
                if len(records) >= _SNIFF_RECORDS:
                    break
                current = dict.fromkeys(DELIMITERS, 0)
                has_content = False
            continue
        elif ch in current:
            current[ch] += 1
        has_content = True
    else:
        if has_content and complete and not in_quotes:
            records.append(current)
    if not records:
        return ","
    header, rest = records[0], records[1:]
    best = ","
    best_score: tuple[float, int] = (-1.0, 0)
    for delim in DELIMITERS:
        count = header[delim]
        if count == 0:
            continue
        consistency = sum(1 for r in rest if r[delim] == count) / len(rest) if rest else 1.0
        score = (consistency, count)
        if score > best_score:
            best, best_score = delim, score
    return best


def _clean_headers(raw: list[str]) -> list[str]:
    """Trim names, strip a BOM, name blank columns ``column_<n>``, suffix duplicates ``(2)``."""
    names = [h.replace("\ufeff", "").strip() for h in raw]
    names = [name or f"column_{i}" for i, name in enumerate(names, start=1)]
    taken = set(names)
    seen: set[str] = set()
    result: list[str] = []
    for name in names:
        if name in seen:
            n = 2
            while f"{name} ({n})" in taken:
                n += 1
            name = f"{name} ({n})"
            taken.add(name)
        seen.add(name)
        result.append(name)
    return result


class _LongLine(NamedTuple):
    """A physical line longer than the reader keeps: its first bytes and its length."""

    head: bytes
    length: int


def _line_cap(max_field_chars: int) -> int:
    """The longest physical line kept, in bytes: the longest field allowed in the widest
    encoding (four UTF-8 bytes a character) plus one read block for the rest of the record."""
    return 4 * max_field_chars + _READ_CHUNK


def _chunks(f: BinaryIO, size: int, max_line: int) -> Iterator[bytes | _LongLine]:
    """Blocks of about ``size`` bytes that end at a line break (never inside a CRLF); a line
    longer than ``max_line`` bytes is skipped up to its line break and stands as a
    :class:`_LongLine`, so memory stays bounded by ``max_line`` whatever the file holds."""
    pending = b""
    while True:
        data = f.read(size)
        if not data:
            if pending:
                yield pending
            return
        buf = pending + data if pending else data
        cut = buf.rfind(b"\n") + 1
        if cut == 0:  # no LF: a bare-CR file, or one very long line
            cut = buf.rfind(b"\r", 0, len(buf) - 1) + 1
        if cut == 0:
            if len(buf) > max_line:
                head = buf[:EXCERPT_CHARS]
                length, rest = _skip_line(f, size, len(buf))
                yield _LongLine(head, length)
                pending = rest
                continue
            pending = buf
            continue
        yield buf[:cut]
        pending = buf[cut:]


def _skip_line(f: BinaryIO, size: int, skipped: int) -> tuple[int, bytes]:
    """Read past the rest of an over-long line: its whole length and what follows its break."""
    while True:
        data = f.read(size)
        if not data:
            return skipped, b""
        end = data.find(b"\n") + 1
        if end == 0:
            end = data.find(b"\r", 0, len(data) - 1) + 1
        if end:
            return skipped + end, data[end:]
        skipped += len(data)


def _decodes(block: bytes, encoding: str) -> bool:
    try:
        block.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


class CsvSource:
    """An opened CSV upload: detected format, headers, and a streaming :meth:`rows`.

    After (or during) iteration of :meth:`rows`: :attr:`rows_read` counts good records
    yielded, :attr:`rows_skipped_blank` counts blank lines / all-empty records skipped,
    :attr:`bad_rows` lists every bad record.  Calling :meth:`rows` again restarts from the
    beginning and resets these.
    """

    def __init__(
        self,
        path: Path,
        *,
        encoding: str,
        bom: bytes,
        delimiter: str,
        max_field_chars: int,
    ) -> None:
        self.path = path
        self.encoding = encoding
        self.bom = bom
        self.delimiter = delimiter
        self.max_field_chars = max_field_chars
        self.headers: list[str] = []
        self.raw_headers: list[str] = []
        self.header_line = 1
        self.bad_rows: list[BadRow] = []
        self.rows_read = 0
        self.rows_skipped_blank = 0
        self._on_bad_row: BadRowSink | None = None

    def __repr__(self) -> str:
        return (
            f"CsvSource({str(self.path)!r}, encoding={self.encoding!r}, "
            f"delimiter={self.delimiter!r}, columns={len(self.headers)})"
        )

    # -- plumbing ----------------------------------------------------------------------

    def _open(self) -> BinaryIO:
        """The file as bytes in :attr:`_line_encoding`, past its BOM."""
        f = self.path.open("rb")
        f.read(len(self.bom))
        if self.encoding in WIDE_BOMS.values():
            return io.BufferedReader(_WideAsUtf8(f, self.encoding), _READ_CHUNK)
        return f

    @property
    def _line_encoding(self) -> str:
        """What each physical line is decoded from: UTF-16 and UTF-32 arrive transcoded to
        UTF-8."""
        return "utf-8" if self.encoding in WIDE_BOMS.values() else self.encoding

    def _undecodable(self, raw: bytes, start: int, offset: int) -> str:
        if self._line_encoding != self.encoding:  # offsets in the transcoded text mean nothing
            return f"text that cannot be decoded as {self.encoding} (an unpaired surrogate)"
        return (
            f"byte 0x{raw[start]:02X} at byte offset {offset} cannot be decoded as {self.encoding}"
        )

    def _reject(self, bad: BadRow, cells: list[str] | None) -> None:
        self.bad_rows.append(bad)
        if self._on_bad_row is not None:
            self._on_bad_row(bad, cells)

    def _reader(self, f: BinaryIO, flags: list[str], state: list[object]) -> _CsvReader:
        """A :func:`csv.reader` over the decoded physical lines of ``f``.

        The file is read in blocks of whole lines.  Fast path: a block that decodes cleanly,
        has no NUL byte and no line longer than the field limit is split at LF and decoded
        line by line at C speed (a file with bare-CR line endings is split at CR instead).
        Otherwise the block is processed line by line in Python and each problem is appended
        to ``flags`` just before the offending line reaches the parser, so it is attributed to
        the record that contains it.  Physical lines end at LF (at CR in a bare-CR file).
        ``state`` is ``[excerpt_of_last_slow_line, long_line_seen, line_skipped]``: the last
        when the record's text was dropped (an over-long line), so it has no cells to keep.
        """
        offset = len(self.bom)
        encoding = self._line_encoding
        limit = self.max_field_chars
        max_line = _line_cap(limit)

        def slow(block: bytes, base: int) -> Iterator[str]:
            cr_only = b"\n" not in block
            pos = 0
            for raw in io.BytesIO(block):
                problems: list[str] = []
                if b"\0" in raw:
                    problems.append("NUL byte in record")
                try:
                    line = raw.decode(encoding)
                except UnicodeDecodeError as exc:
                    problems.append(self._undecodable(raw, exc.start, base + pos + exc.start))
                    line = raw.decode(encoding, "replace")
                if len(raw) > limit:
                    state[1] = True
                pos += len(raw)
                for piece in io.StringIO(line, newline="") if cr_only else (line,):
                    flags.extend(problems)
                    problems = []
                    state[0] = piece
                    yield piece

        decode = operator.methodcaller("decode", encoding)

        def long_line(line: _LongLine) -> Iterator[str]:
            flags.append(
                f"the line is {line.length:,} bytes long, over the {max_line:,} a line may "
                f"have with fields of at most {limit:,} characters; skipped to its line break"
            )
            head = line.head.decode(encoding, "replace")
            state[2] = True
            # the stand-in must parse as one record of its own: no quote, no line break
            stand_in = "".join(c for c in head if c not in '"\r\n\0')
            state[0] = stand_in
            yield stand_in + "\n"

        def blocks() -> Iterator[Iterator[str]]:
            nonlocal offset
            for block in _chunks(f, _READ_CHUNK, max_line):
                base = offset
                if isinstance(block, _LongLine):
                    offset += block.length
                    yield long_line(block)
                    continue
                offset += len(block)
                if b"\0" not in block and (
                    len(block) <= limit or max(map(len, io.BytesIO(block))) <= limit
                ):
                    if b"\n" not in block:  # bare-CR line endings
                        try:
                            yield io.StringIO(block.decode(encoding), newline="")
                            continue
                        except UnicodeDecodeError:
                            pass
                    elif block.isascii() or _decodes(block, encoding):
                        yield map(decode, io.BytesIO(block))
                        continue
                yield slow(block, base)

        return csv.reader(
            itertools.chain.from_iterable(blocks()),
            delimiter=self.delimiter,
            quotechar='"',
            doublequote=True,
        )

    def _read_header(self, reader: _CsvReader, flags: list[str]) -> list[str]:
        while True:
            try:
                row = next(reader)
            except StopIteration:
                raise InputError(f"{self.path.name} is empty (only blank lines)") from None
            except csv.Error as exc:
                raise InputError(f"{self.path.name}: the header cannot be parsed: {exc}") from None
            if flags:
                raise InputError(
                    f"{self.path.name}: the header line is unreadable: {'; '.join(flags)}"
                )
            if row and "".join(row).strip():
                return row

    # -- public ------------------------------------------------------------------------

    def load_header(self) -> None:
        """Read the header record (called by :func:`open_csv`)."""
        _set_csv_field_limit(self.max_field_chars)
        flags: list[str] = []
        state: list[object] = ["", False, False]
        with self._open() as f:
            reader = self._reader(f, flags, state)
            self.raw_headers = self._read_header(reader, flags)
            self.header_line = reader.line_num
        self.headers = _clean_headers(self.raw_headers)

    def rows(self, on_bad_row: BadRowSink | None = None) -> Iterator[RowRecord]:
        """Stream the good data records; bad ones go to :attr:`bad_rows` and ``on_bad_row``.

        Blank lines and records whose fields are all empty are skipped and counted in
        :attr:`rows_skipped_blank`.  Raises :class:`InputError` at the end if the file had a
        header but no data records at all.
        """
        _set_csv_field_limit(self.max_field_chars)
        self.bad_rows = []
        self.rows_read = 0
        self.rows_skipped_blank = 0
        self._on_bad_row = on_bad_row
        bad_rows = self.bad_rows
        ncols = len(self.headers)
        new_record = tuple.__new__  # skips RowRecord's Python-level __new__ (hot loop)
        flags: list[str] = []
        state: list[object] = ["", False, False]
        with self._open() as f:
            reader = self._reader(f, flags, state)
            self._read_header(reader, flags)
            prev_end: int = reader.line_num
            while True:
                try:
                    for row in reader:
                        start = prev_end + 1
                        end = prev_end = reader.line_num
                        if (
                            flags or len(row) != ncols or end != start or state[1] or not any(row)
                        ) and not self._accept_irregular(row, start, end, flags, state):
                            continue
                        self.rows_read += 1
                        yield new_record(RowRecord, (start, row))
                except csv.Error as exc:
                    start = prev_end + 1
                    prev_end = reader.line_num
                    reasons = [f"malformed CSV: {exc}", *flags]
                    self._reject(BadRow(start, "; ".join(reasons), _excerpt(str(state[0]))), None)
                    flags.clear()
                    state[0] = ""
                    state[1] = state[2] = False
                    continue
                break
        if self.rows_read == 0 and not bad_rows:
            raise InputError(f"{self.path.name} has a header but no data rows")

    def _accept_irregular(
        self, row: list[str], start: int, end: int, flags: list[str], state: list[object]
    ) -> bool:
        """Handle a record that is not plainly good; True if it is good after all."""
        state[1] = False
        if flags:
            excerpt = self.delimiter.join(row).replace("\0", "\\0")
            cells = None if state[2] else [c.replace("\0", _UNREADABLE) for c in row]
            at_fault = None
            if cells is not None:
                at_fault = next((i for i, c in enumerate(cells) if _UNREADABLE in c), None)
            in_header = at_fault is not None and at_fault < len(self.headers)
            field = self.headers[at_fault] if in_header and at_fault is not None else None
            self._reject(BadRow(start, "; ".join(flags), _excerpt(excerpt), field), cells)
            flags.clear()
            state[0] = ""
            state[2] = False
            return False
        if not "".join(row).strip() and (len(row) != len(self.headers) or not any(row)):
            self.rows_skipped_blank += 1
            return False
        if len(row) != len(self.headers):
            reason = f"expected {len(self.headers)} fields, found {len(row)}"
            self._reject(BadRow(start, reason, _excerpt(self.delimiter.join(row))), row)
            return False
        limit = self.max_field_chars
        for i, value in enumerate(row):
            if len(value) > limit:
                reason = (
                    f"field {i + 1} ({self.headers[i]!r}) is {len(value)} characters long, "
                    f"over the limit of {limit}"
                )
                excerpt = _excerpt(self.delimiter.join(row))
                self._reject(BadRow(start, reason, excerpt, self.headers[i]), row)
                return False
        return True

    @property
    def bad_row_count(self) -> int:
        return len(self.bad_rows)


def open_csv(path: Path | str, *, max_field_chars: int = DEFAULT_MAX_FIELD_CHARS) -> CsvSource:
    """Open a CSV upload: detect encoding, line endings and delimiter, and read the header.

    Raises :class:`InputError` if the file is missing, empty, blank-only, not text, undecodable
    (neither UTF-8 nor Windows-1252) or has an unreadable header.
    """
    path = Path(path)
    if max_field_chars < 1:
        raise ValueError("max_field_chars must be positive")
    try:
        f = path.open("rb")
    except FileNotFoundError:
        raise InputError(f"{path.name} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{path.name} is a directory, not a CSV file") from None
    with f:
        encoding, bom, head = _detect_encoding(f, path.name)
    complete = len(head) < SAMPLE_BYTES
    text = head[len(bom) :].decode(encoding, "replace")
    if not text.strip():
        raise InputError(f"{path.name} is empty")
    delimiter = _sniff_delimiter(text, complete)
    source = CsvSource(
        path,
        encoding=encoding,
        bom=bom,
        delimiter=delimiter,
        max_field_chars=max_field_chars,
    )
    source.load_header()
    return source
