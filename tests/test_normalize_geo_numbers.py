from __future__ import annotations

import pytest

from enrichflow.normalize import (
    country_code,
    parse_bool,
    parse_int_amount,
    parse_keywords,
    parse_list,
    state_code,
)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("UK", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("United States of America", "US"),
        ("America", "US"),
        ("Deutschland", "DE"),
        ("Holland", "NL"),
        ("South Korea", "KR"),
        ("Russia", "RU"),
        ("UAE", "AE"),
        ("Czech Republic", "CZ"),
        ("Türkiye", "TR"),
        ("Turkey", "TR"),
        ("Viet Nam", "VN"),
        ("DEU", "DE"),
        ("fr", "FR"),
        ("Atlantis", None),
        ("", None),
        (None, None),
    ],
)
def test_country_code(raw: str | None, code: str | None) -> None:
    assert country_code(raw) == code


def test_country_code_is_cached() -> None:
    country_code("Deutschland")
    assert country_code.cache_info().hits >= 1 or country_code("Deutschland") == "DE"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("1,200", 1200),
        ("$1.2M", 1_200_000),
        ("1.5B", 1_500_000_000),
        ("$4,500,000", 4_500_000),
        ("500K", 500_000),
        ("€2,3M", 2_300_000),
        ("12.0", 12),
        ("51-200", 51),
        ("10,001+", 10_001),
        ("1.200.000", 1_200_000),
        ("n/a", None),
        ("-5", None),
        ("abc", None),
        (None, None),
    ],
)
def test_parse_int_amount(raw: str | None, value: int | None) -> None:
    assert parse_int_amount(raw) == value


def test_parse_list() -> None:
    assert parse_list("saas, B2B; crm,,saas , SaaS") == ["saas", "B2B", "crm"]
    assert parse_list(None) == []
    assert parse_list(" ; , ") == []


@pytest.mark.parametrize(
    ("raw", "value"),
    [("true", True), ("TRUE", True), ("false", False), ("yes", True), ("no", False),
     ("1", True), ("0", False), ("maybe", None), ("", None), (None, None)],
)  # fmt: skip
def test_parse_bool(raw: str | None, value: bool | None) -> None:
    assert parse_bool(raw) is value


@pytest.mark.parametrize(
    ("state", "country", "expected"),
    [
        ("California", "United States", "US-CA"),
        ("CA", "US", "US-CA"),
        ("British Columbia", "Canada", "CA-BC"),
        ("State of Paraná", "Brazil", "BR-PR"),
        ("North Holland", "Netherlands", "NL-NH"),
        ("Vilnius County", "Lithuania", "LT-VL"),
        ("US-TX", "United States", "US-TX"),
        ("Atlantis", "United States", None),
        ("California", None, None),
        ("Singapore", "Singapore", None),
    ],
)
def test_state_code(state: str, country: str | None, expected: str | None) -> None:
    assert state_code(state, country) == expected


def test_keywords_keep_linkedin_industries_whole() -> None:
    cell = "drones, health, wellness & fitness, transportation, logistics, supply chain & storage"
    assert parse_keywords(cell) == [
        "drones",
        "health, wellness & fitness",
        "transportation, logistics, supply chain & storage",
    ]
    assert parse_keywords("oil, gas, drilling") == ["oil", "gas", "drilling"]
    assert parse_keywords("ai; saas|AI") == parse_list("ai; saas|AI") == ["ai", "saas"]
    assert parse_keywords(None) == []
