"""``CanonicalFields``: a handler's ``ctx.fields`` view of a row through the upload's column map."""

from __future__ import annotations

import pytest

from enrichflow.db.context import CanonicalFields

COLUMN_MAP = {
    "company_name": "Company Name",
    "email": "Email",
    "employees": "# Employees",
    "website": "Website",
    "title": "Title",
}
ROW = {
    "Company Name": "Globex Ltd",
    "Email": "",
    "# Employees": 1200,
    "Title": None,
    "Unmapped": "kept in original_data only",
}


def test_reads_mapped_non_empty_values_as_text() -> None:
    fields = CanonicalFields(COLUMN_MAP, ROW)
    assert fields["company_name"] == "Globex Ltd"
    assert fields.get("employees") == "1200"
    assert dict(fields) == {"company_name": "Globex Ltd", "employees": "1200"}
    assert len(fields) == 2 and sorted(fields) == ["company_name", "employees"]


@pytest.mark.parametrize("key", ["email", "title", "website", "Unmapped", "nonsense"])
def test_empty_missing_and_unmapped_fields_are_absent(key: str) -> None:
    fields = CanonicalFields(COLUMN_MAP, ROW)
    assert key not in fields
    assert fields.get(key) is None and fields.get(key, "default") == "default"
    with pytest.raises(KeyError):
        fields[key]


def test_equals_the_dict_it_stands_for() -> None:
    assert CanonicalFields(COLUMN_MAP, ROW) == {"company_name": "Globex Ltd", "employees": "1200"}
    assert CanonicalFields(COLUMN_MAP, {}) == {}
