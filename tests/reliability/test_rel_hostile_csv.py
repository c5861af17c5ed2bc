"""Hostile input: hypothesis writes CSV files with random quoting, encodings, delimiters, ragged
rows, huge fields and NUL bytes. Ingestion never crashes (only :class:`InputError` for a file
without data rows), never loses a readable row, reports every unreadable one, and the export of
a batch launched over it is formula-safe."""

from __future__ import annotations

import csv
import io
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from enrichflow.db.engine import make_engine
from enrichflow.errors import InputError
from enrichflow.export import write_export
from enrichflow.ingest.loader import ingest_csv
from enrichflow.ingest.reader import DEFAULT_MAX_FIELD_CHARS
from enrichflow.launch import launch
from enrichflow.seed import APOLLO

ENCODINGS = ["utf-8", "utf-8-sig", "cp1252"]
# what the export may leave unquoted after a sign: a plain number (docs/steps.md)
_PLAIN = re.compile(r"[+-][\d .,()/-]*\d[\d .,()/-]*")
DELIMITERS = [",", ";", "\t", "|"]
HEADERS = ["First Name", "Last Name", "Email", "Company", "Website", "Title", "City", "Notes"]
# text every encoding can carry; formula starters, quotes and newlines included on purpose
ALPHABET = st.sampled_from([*"abcXYZ019 .'\"\n=+-@éüß€", "ñ", "Ø"])
VALUE = st.text(ALPHABET, max_size=12)
FIRST = st.text(st.sampled_from(list("abcXYZ019=+-@")), min_size=1, max_size=8)


@st.composite
def hostile_files(draw: st.DrawFn) -> tuple[bytes, int, int]:
    """(file bytes, readable rows, unreadable rows)."""
    encoding = draw(st.sampled_from(ENCODINGS))
    delimiter = draw(st.sampled_from(DELIMITERS))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    ncols = draw(st.integers(3, len(HEADERS)))
    headers = HEADERS[:ncols]
    kinds = draw(
        st.lists(st.sampled_from(["good"] * 5 + ["ragged", "nul", "huge"]), min_size=1, max_size=25)
    )
    if "good" not in kinds[:10]:
        kinds.insert(0, "good")  # the sniffer looks at the first records
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, quoting=quoting, lineterminator="\r\n")
    writer.writerow(headers)
    good = bad = 0
    for kind in kinds:
        row = [draw(FIRST)] + [draw(VALUE) for _ in range(ncols - 1)]
        if kind == "ragged":
            row = row + ["extra"] * draw(st.integers(1, 3)) if draw(st.booleans()) else row[:1]
            bad += 1
        elif kind == "nul":
            row[-1] = row[-1] + "\0"
            bad += 1
        elif kind == "huge":
            row[-1] = "h" * (DEFAULT_MAX_FIELD_CHARS + 1)
            bad += 1
        else:
            good += 1
        writer.writerow(row)
    return buffer.getvalue().encode(encoding), good, bad


@pytest.fixture(scope="module")
def hostile_engine(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Engine]:
    path = tmp_path_factory.mktemp("hostile") / "hostile.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=hostile_files())
def test_hostile_csv_ingests_and_exports_safely(
    hostile_engine: Engine, case: tuple[bytes, int, int]
) -> None:
    data, good, bad = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "hostile.csv"
        path.write_bytes(data)
        try:
            report = ingest_csv(hostile_engine, path)
        except InputError:
            pytest.fail("InputError for a file that has data rows")
        assert report.rows == good, (report.rows, good, report.bad_rows)
        assert len(report.bad_rows) == bad, report.bad_rows
        if good == 0:
            return
        batch_id = launch(
            hostile_engine, "hostile", APOLLO, report.upload_id, steps=["noop"], create_client=True
        )
        out = Path(tmp) / "export.csv"
        assert write_export(hostile_engine, batch_id, out) == good
        csv.field_size_limit(sys.maxsize)
        with out.open(newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                for value in row:
                    assert not value.startswith(("=", "@", "\t", "\r")), value
                    assert not value.startswith(("+", "-")) or _PLAIN.fullmatch(value), value


@pytest.mark.parametrize(
    "content", [b"", b"   \n\n", b"First Name,Email\r\n", "Name;Email\n".encode("utf-8-sig")]
)
def test_empty_or_header_only_is_an_input_error(
    engine: Engine, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(InputError):
        ingest_csv(engine, path)
