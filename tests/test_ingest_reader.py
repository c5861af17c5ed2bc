"""Tests for the streaming CSV reader (real files written to tmp_path)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enrichflow.errors import InputError
from enrichflow.ingest.reader import BadRow, CsvSource, RowRecord, open_csv


def write(tmp_path: Path, data: bytes, name: str = "leads.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


class Row(NamedTuple):
    """A record with its cells keyed by header, to state expectations readably."""

    line_number: int
    values: dict[str, str]


def read_all(path: Path, **kwargs: int) -> tuple[CsvSource, list[Row]]:
    source = open_csv(path, **kwargs)
    return source, [
        Row(r.line_number, dict(zip(source.headers, r.cells, strict=True))) for r in source.rows()
    ]


# -- encodings ---------------------------------------------------------------------------


def test_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "Name,Company\nJürgen Müller,Café Ltd\n".encode())
    source, rows = read_all(path)
    assert source.encoding == "utf-8"
    assert source.headers == ["Name", "Company"]
    assert rows == [Row(2, {"Name": "Jürgen Müller", "Company": "Café Ltd"})]
    assert source.rows_read == 1
    assert source.bad_rows == []


def test_utf8_bom_is_stripped_from_first_header(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbfFirst Name,Email\r\nAnna,a@x.io\r\n")
    source, rows = read_all(path)
    assert source.encoding == "utf-8"
    assert source.headers == ["First Name", "Email"]
    assert rows[0].values == {"First Name": "Anna", "Email": "a@x.io"}


def test_cp1252(tmp_path: Path) -> None:
    text = "Name;Company;Note\nMüller;Café GmbH;2020 \u2013 2024\n"
    path = write(tmp_path, text.encode("cp1252"))
    assert b"\x96" in path.read_bytes()  # the en dash byte
    source, rows = read_all(path)
    assert source.encoding == "cp1252"
    assert source.delimiter == ";"
    assert rows[0].values == {"Name": "Müller", "Company": "Café GmbH", "Note": "2020 – 2024"}


def test_cp1252_after_long_ascii_prefix(tmp_path: Path) -> None:
    # The first non-ASCII byte is far beyond the first 64 KiB: it still decides.
    lines = ["Name,City"] + [f"person {i},Berlin" for i in range(8000)] + ["Müller,Köln"]
    path = write(tmp_path, ("\n".join(lines) + "\n").encode("cp1252"))
    assert path.stat().st_size > 64 * 1024
    source, rows = read_all(path)
    assert source.encoding == "cp1252"
    assert rows[-1].values == {"Name": "Müller", "City": "Köln"}
    assert source.bad_rows == []


def test_undecodable_file_names_the_byte_offset(tmp_path: Path) -> None:
    # 0x81 is undefined in cp1252 and invalid as a UTF-8 start byte.
    path = write(tmp_path, b"Name,City\nab\x81c,Berlin\n")
    with pytest.raises(InputError, match="byte offset 12"):
        open_csv(path)


def test_later_undecodable_line_is_a_bad_row(tmp_path: Path) -> None:
    # Valid UTF-8 decides the encoding; a stray invalid byte later only spoils its record.
    head = "Name,City\nJürgen,Köln\n".encode()
    filler = b"".join(f"p{i},x\n".encode() for i in range(20000))
    data = head + filler + b"bad\xff,row\n" + b"last,one\n"
    path = write(tmp_path, data)
    kept: list[list[str] | None] = []
    source = open_csv(path)
    rows = [
        Row(r.line_number, dict(zip(source.headers, r.cells, strict=True)))
        for r in source.rows(lambda _, cells: kept.append(cells))
    ]
    assert source.encoding == "utf-8"
    assert len(source.bad_rows) == 1
    assert kept == [["bad\ufffd", "row"]]
    bad = source.bad_rows[0]
    assert bad.field == "Name"
    assert bad.line_number == 2 + 20000 + 1
    assert f"byte offset {len(head) + len(filler) + 3}" in bad.reason
    assert rows[-1] == Row(2 + 20000 + 2, {"Name": "last", "City": "one"})
    assert source.rows_read == 20002


EXCEL_UNICODE_TEXT = "First Name\tLast Name\tCompany\r\nAna\tLópez\tCafé Ltd\r\n"
"""What Excel's "Unicode Text" save writes: tab-delimited, CRLF (the BOM comes from the codec)."""


@pytest.mark.parametrize(
    ("data", "encoding", "delimiter"),
    [
        (EXCEL_UNICODE_TEXT.encode("utf-16"), "utf-16-le", "\t"),
        (EXCEL_UNICODE_TEXT.replace("\t", ",").encode("utf-16"), "utf-16-le", ","),
        ("\ufeff" + EXCEL_UNICODE_TEXT.encode("utf-16-be").decode("utf-16-be"), "utf-16-be", "\t"),
        (EXCEL_UNICODE_TEXT.encode("utf-16-le"), "utf-16-le", "\t"),  # no BOM
    ],
    ids=["excel-unicode-text", "comma", "big-endian", "no-bom"],
)
def test_utf16(tmp_path: Path, data: bytes | str, encoding: str, delimiter: str) -> None:
    raw = data.encode("utf-16-be") if isinstance(data, str) else data
    source, rows = read_all(write(tmp_path, raw, "leads.txt"))
    assert (source.encoding, source.delimiter) == (encoding, delimiter)
    assert source.headers == ["First Name", "Last Name", "Company"]
    assert rows == [Row(2, {"First Name": "Ana", "Last Name": "López", "Company": "Café Ltd"})]


@pytest.mark.parametrize("codec", ["utf-32", "utf-32-be"])
def test_utf32_with_a_bom(tmp_path: Path, codec: str) -> None:
    """UTF-32's little-endian BOM starts with UTF-16's: the longer one is tried first."""
    raw = ("\ufeff" if codec.endswith("-be") else "") + EXCEL_UNICODE_TEXT
    source, rows = read_all(write(tmp_path, raw.encode(codec), "leads.txt"))
    assert source.encoding == ("utf-32-be" if codec.endswith("-be") else "utf-32-le")
    assert source.headers == ["First Name", "Last Name", "Company"]
    assert rows == [Row(2, {"First Name": "Ana", "Last Name": "López", "Company": "Café Ltd"})]


def test_utf16_larger_than_a_read_block(tmp_path: Path) -> None:
    """Records cross the transcoder's block boundaries; quoted line breaks and characters
    outside the BMP (two UTF-16 units) survive."""
    lines = ["Name,Note"] + [f'p{i},"über 😀\r\nline {i}"' for i in range(40_000)]
    path = write(tmp_path, ("\r\n".join(lines) + "\r\n").encode("utf-16"))
    assert path.stat().st_size > 2 * 1024 * 1024
    source, rows = read_all(path)
    assert source.rows_read == 40_000
    assert rows[-1] == Row(2 + 2 * 39_999, {"Name": "p39999", "Note": "über 😀\r\nline 39999"})


def test_utf16_unpaired_surrogate_is_a_bad_row(tmp_path: Path) -> None:
    body = "Name,City\r\nAnn,Berlin\r\n".encode("utf-16-le")
    bad = "Bob,".encode("utf-16-le") + b"\x00\xd8" + "x\r\n".encode("utf-16-le")
    tail = "Cid,Rome\r\n".encode("utf-16-le")
    source, rows = read_all(write(tmp_path, b"\xff\xfe" + body + bad + tail))
    assert [r.values["Name"] for r in rows] == ["Ann", "Cid"]
    assert [(b.line_number, b.field) for b in source.bad_rows] == [(3, "City")]
    assert "cannot be decoded as utf-16-le" in source.bad_rows[0].reason


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "a PDF document"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"),
        (b"\x1f\x8b\x08\x00\x00\x00\x00\x00", "a gzip archive"),
        (b"\xef\xbb\xbf<!DOCTYPE html>\n<html><body>Sign in</body></html>\n", "a web page (HTML)"),
        (b"  <html lang=en>\n<p>x</p>\n", "a web page (HTML)"),
        (b"SQLite format 3\x00\x10\x00", "an SQLite database"),
    ],
)
def test_a_file_that_is_not_csv_is_named(tmp_path: Path, data: bytes, kind: str) -> None:
    with pytest.raises(InputError) as raised:
        open_csv(write(tmp_path, data))
    assert str(raised.value) == (
        f"leads.csv: this is not a CSV file: it looks like {kind}; save it as CSV"
    )


def test_binary_first_line_is_refused_plainly(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"its first line holds binary data \(NUL bytes\)"):
        open_csv(write(tmp_path, b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\nx\n"))


# -- delimiters and quoting ----------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters(tmp_path: Path, delimiter: str) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    writer.writerow(["Name", "Company", "Note"])
    writer.writerow(["Ann", "A, B; C\tD|E", "x"])
    writer.writerow(["Bob", "Acme", "y"])
    path = write(tmp_path, buf.getvalue().encode())
    source, rows = read_all(path)
    assert source.delimiter == delimiter
    assert [r.values["Company"] for r in rows] == ["A, B; C\tD|E", "Acme"]


def test_semicolon_file_with_decimal_commas(tmp_path: Path) -> None:
    data = "Name;Revenue;Employees\nAcme;1,5;10\nBeta;2,75;20\n"
    source, rows = read_all(write(tmp_path, data.encode()))
    assert source.delimiter == ";"
    assert rows[1].values == {"Name": "Beta", "Revenue": "2,75", "Employees": "20"}


def test_single_column_file(tmp_path: Path) -> None:
    source, rows = read_all(write(tmp_path, b"Email\na@x.io\nb@x.io\n"))
    assert source.headers == ["Email"]
    assert [r.values["Email"] for r in rows] == ["a@x.io", "b@x.io"]


def test_quoted_fields_newlines_doubled_quotes_crlf(tmp_path: Path) -> None:
    data = (
        b"Name,Note,City\r\n"
        b'"Smith, John","He said ""hi""\r\nand left",Berlin\r\n'
        b"Ann,plain,Paris\r\n"
    )
    _, rows = read_all(write(tmp_path, data))
    assert rows == [
        Row(2, {"Name": "Smith, John", "Note": 'He said "hi"\r\nand left', "City": "Berlin"}),
        Row(4, {"Name": "Ann", "Note": "plain", "City": "Paris"}),
    ]


def test_bare_cr_line_endings(tmp_path: Path) -> None:
    source, rows = read_all(write(tmp_path, b"a,b\r1,2\r3,4\r"))
    assert source.headers == ["a", "b"]
    assert rows == [Row(2, {"a": "1", "b": "2"}), Row(3, {"a": "3", "b": "4"})]


def test_no_trailing_newline(tmp_path: Path) -> None:
    _, rows = read_all(write(tmp_path, b"a,b\n1,2"))
    assert rows == [Row(2, {"a": "1", "b": "2"})]


# -- bad rows --------------------------------------------------------------------------------


def test_wrong_field_counts_have_physical_line_numbers(tmp_path: Path) -> None:
    data = (
        b"Name,Note,City\n"  # 1
        b'Ann,"multi\nline\nnote",Berlin\n'  # 2-4
        b"Bob,too,many,fields\n"  # 5
        b"Cid,good,Rome\n"  # 6
        b"Dan,too few\n"  # 7
        b'Eve,"x\n"\n'  # 8-9: too few, spans two lines
        b"Fay,ok,Oslo\n"  # 10
    )
    source, rows = read_all(write(tmp_path, data))
    assert [(r.line_number, r.values["Name"]) for r in rows] == [
        (2, "Ann"),
        (6, "Cid"),
        (10, "Fay"),
    ]
    assert [(b.line_number, b.reason) for b in source.bad_rows] == [
        (5, "expected 3 fields, found 4"),
        (7, "expected 3 fields, found 2"),
        (8, "expected 3 fields, found 2"),
    ]
    assert source.bad_rows[0].raw_excerpt == "Bob,too,many,fields"
    assert source.rows_read == 3


def test_bare_cr_inside_unquoted_field_is_a_bad_row(tmp_path: Path) -> None:
    source, rows = read_all(write(tmp_path, b"a,b\n1,x\ry\n3,4\n"))
    assert rows == [Row(3, {"a": "3", "b": "4"})]
    assert [b.line_number for b in source.bad_rows] == [2]
    assert "malformed CSV" in source.bad_rows[0].reason


def test_excerpt_is_capped(tmp_path: Path) -> None:
    data = b"a,b\n" + b"x," * 500 + b"y\n1,2\n"
    source, rows = read_all(write(tmp_path, data))
    assert len(rows) == 1
    assert len(source.bad_rows[0].raw_excerpt) == 200


def test_nul_byte_is_a_bad_row_and_reading_continues(tmp_path: Path) -> None:
    data = b"Name,City\nAnn,Berlin\nB\x00ob,Paris\nCid,Rome\n"
    source, rows = read_all(write(tmp_path, data))
    assert [r.values["Name"] for r in rows] == ["Ann", "Cid"]
    assert [r.line_number for r in rows] == [2, 4]
    assert len(source.bad_rows) == 1
    bad = source.bad_rows[0]
    assert bad.line_number == 3
    assert "NUL" in bad.reason
    assert "\x00" not in bad.raw_excerpt


def test_nul_inside_multiline_field(tmp_path: Path) -> None:
    data = b'Name,Note\nAnn,"a\nb\x00\nc"\nBob,x\n'
    source, rows = read_all(write(tmp_path, data))
    assert [r.line_number for r in rows] == [5]
    assert [(b.line_number, "NUL" in b.reason) for b in source.bad_rows] == [(2, True)]


def test_oversize_field(tmp_path: Path) -> None:
    data = b"Name,Note\nAnn," + b"x" * 50 + b'\nBob,short\nCid,"' + b"y\n" * 30 + b'"\nDan,ok\n'
    source, rows = read_all(write(tmp_path, data), max_field_chars=40)
    assert [r.values["Name"] for r in rows] == ["Bob", "Dan"]
    assert [b.line_number for b in source.bad_rows] == [2, 4]
    assert "over the limit of 40" in source.bad_rows[0].reason
    assert rows[1].line_number == 4 + 31


def test_big_field_under_default_limit(tmp_path: Path) -> None:
    big = "z" * 300_000  # larger than csv's own default limit of 128 KiB
    source, rows = read_all(write(tmp_path, f"a,b\n{big},1\n".encode()))
    assert rows[0].values["a"] == big
    assert source.bad_rows == []


def test_field_over_default_limit(tmp_path: Path) -> None:
    big = "z" * (1024 * 1024 + 1)
    source, rows = read_all(write(tmp_path, f"a,b\n{big},1\nq,2\n".encode()))
    assert [r.values["a"] for r in rows] == ["q"]
    assert source.bad_rows[0].line_number == 2


def test_blank_lines_are_skipped_and_counted(tmp_path: Path) -> None:
    data = b"\n\nName,City\n\nAnn,Berlin\r\n\r\n,\n   \nBob,Rome\n\n"
    source, rows = read_all(write(tmp_path, data))
    assert source.header_line == 3
    assert [(r.line_number, r.values["Name"]) for r in rows] == [(5, "Ann"), (9, "Bob")]
    assert source.bad_rows == []
    assert source.rows_skipped_blank == 5


def test_rows_can_be_iterated_twice(tmp_path: Path) -> None:
    source = open_csv(write(tmp_path, b"a,b\n1,2\n3\n"))
    first = list(source.rows())
    second = list(source.rows())
    assert first == second
    assert source.rows_read == 1
    assert source.bad_rows == [BadRow(3, "expected 2 fields, found 1", "3")]


def test_bad_rows_reach_the_sink_with_their_cells_and_field(tmp_path: Path) -> None:
    """The sink gets each bad row's cells (NUL and undecodable bytes marked), and the field at
    fault when one is; a line that could not be split into cells comes with None."""
    data = (
        b"Name,City,Note\n"
        b"Ann,K\xc3\xb6ln,ok\n"  # 2: UTF-8, which decides the encoding
        b"Bob,Paris,x,extra\n"  # 3: too many fields
        b"Cid,Ro\x00me,y\n"  # 4: NUL
        b"Eve,Oslo," + b"w" * 50 + b"\n"  # 5: oversize
        b"Fay,x\ry,1\n"  # 6: malformed
    )
    seen: list[tuple[int, str | None, list[str] | None]] = []
    source = open_csv(write(tmp_path, data), max_field_chars=40)
    rows = list(source.rows(lambda bad, cells: seen.append((bad.line_number, bad.field, cells))))
    assert [r.line_number for r in rows] == [2]
    assert seen == [
        (3, None, ["Bob", "Paris", "x", "extra"]),
        (4, "City", ["Cid", "Ro\ufffdme", "y"]),
        (5, "Note", ["Eve", "Oslo", "w" * 50]),
        (6, None, None),
    ]
    assert [(b.line_number, b.field) for b in source.bad_rows] == [(n, f) for n, f, _ in seen]


# -- headers ---------------------------------------------------------------------------------


def test_duplicate_and_blank_headers(tmp_path: Path) -> None:
    data = b" Email , Name,Email,,Email,Email (2)\n1,2,3,4,5,6\n"
    source, rows = read_all(write(tmp_path, data))
    assert source.headers == ["Email", "Name", "Email (3)", "column_4", "Email (4)", "Email (2)"]
    assert list(rows[0].values.values()) == ["1", "2", "3", "4", "5", "6"]
    assert [r.cells for r in source.rows()] == [["1", "2", "3", "4", "5", "6"]]


# -- empty files -----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n\r\n  \n"])
def test_empty_file(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(InputError, match="is empty"):
        open_csv(write(tmp_path, data))


@pytest.mark.parametrize("data", [b"Name,City\n", b"Name,City", b"Name,City\r\n\r\n,\n"])
def test_header_only_file(tmp_path: Path, data: bytes) -> None:
    source = open_csv(write(tmp_path, data))
    assert source.headers == ["Name", "City"]
    with pytest.raises(InputError, match="has a header but no data rows"):
        list(source.rows())


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        open_csv(tmp_path / "nope.csv")


def test_only_bad_rows_is_not_header_only(tmp_path: Path) -> None:
    source, rows = read_all(write(tmp_path, b"a,b\n1\n"))
    assert rows == []
    assert len(source.bad_rows) == 1


# -- property: whatever csv.writer writes comes back ------------------------------------------

_TEXT = st.text(
    alphabet=st.sampled_from(list("abcXYZ019 ,;\t|\"'\r\n-äöüéß€–çñ中😀")),
    max_size=12,
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    ncols = draw(st.integers(min_value=1, max_value=6))
    headers = draw(
        st.lists(
            st.text(alphabet="abcdefXYZ _-0123456789äé", min_size=1, max_size=10)
            .map(str.strip)
            .filter(bool),
            min_size=ncols,
            max_size=ncols,
            unique=True,
        )
    )
    rows = draw(st.lists(st.lists(_TEXT, min_size=ncols, max_size=ncols), max_size=25))
    return headers, rows


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    table=tables(),
    delimiter=st.sampled_from([",", ";", "\t"]),
    terminator=st.sampled_from(["\n", "\r\n"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
    bom=st.booleans(),
)
def test_roundtrip_property(
    tmp_path: Path,
    table: tuple[list[str], list[list[str]]],
    delimiter: str,
    terminator: str,
    quoting: int,
    bom: bool,
) -> None:
    headers, rows = table
    if len(headers) == 1:
        delimiter = ","  # nothing to detect a delimiter from; the reader defaults to a comma
    if terminator == "\n" and quoting == csv.QUOTE_MINIMAL:
        # csv.writer does not quote a bare CR unless it is part of the line terminator.
        rows = [[value.replace("\r", "") for value in row] for row in rows]
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=terminator, quoting=quoting)
    writer.writerow(headers)
    writer.writerows(rows)
    data = buf.getvalue().encode()
    path = write(tmp_path, (b"\xef\xbb\xbf" if bom else b"") + data, "roundtrip.csv")

    source = open_csv(path)
    assert source.headers == headers
    assert source.delimiter == delimiter or len(headers) == 1
    expected = [row for row in rows if any(row)]
    if not expected:
        got: list[RowRecord] = []
        with pytest.raises(InputError):
            got = list(source.rows())
    else:
        got = list(source.rows())
        assert [r.cells for r in got] == expected
    assert source.bad_rows == []
    assert source.rows_skipped_blank == len(rows) - len(expected)
    # Physical line numbers: count the line breaks written before each record.
    starts, line = [], 2
    for row in rows:
        if any(row):
            starts.append(line)
        line += sum(v.count("\n") for v in row) + 1  # physical lines end with LF
    assert [r.line_number for r in got] == starts
