from __future__ import annotations

import pytest
from cleanco.clean import custom_basename
from hypothesis import given, settings
from hypothesis import strategies as st

from enrichflow.normalize import CompanyName, company, normalize_company_name


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Acme Inc.", "Acme"),
        ("Müller GmbH & Co. KG", "Müller"),
        ("Société Générale S.A.", "Société Générale"),
        ("Globex (Pty) Ltd", "Globex"),
        ("Foo Co., Ltd.", "Foo"),
        ("Nokia Oyj", "Nokia"),
        ("Maersk A/S", "Maersk"),
        ("Luxottica S.p.A.", "Luxottica"),
        ("Sony KK", "Sony"),
    ],
)
def test_legal_forms_are_stripped(raw: str, name: str) -> None:
    assert normalize_company_name(raw).name == name


def test_casing_repair_keeps_acronyms_and_mixed_case() -> None:
    assert normalize_company_name("ACME CORP").name == "Acme"
    assert normalize_company_name("IBM CORPORATION").name == "IBM"
    assert normalize_company_name("AT&T INC.").name == "AT&T"
    assert normalize_company_name("3M COMPANY").name == "3M"
    assert normalize_company_name("eBay Inc.").name == "eBay"
    assert normalize_company_name("HubSpot, Inc.").name == "HubSpot"
    assert normalize_company_name("HSBC HOLDINGS PLC").name == "HSBC Holdings"
    assert normalize_company_name("bank of america corporation").name == "Bank of America"


def test_apostrophes_and_trademarks() -> None:
    assert normalize_company_name("MCDONALD'S").name == "McDonald's"
    assert normalize_company_name("Acme™").name == "Acme"
    assert normalize_company_name("Acme® Solutions").name == "Acme Solutions"


def test_short_name_is_used_only_when_consistent() -> None:
    result = normalize_company_name("Omnisient - Collaborative Consumer Intelligence", "Omnisient")
    assert result == CompanyName(name="Omnisient", match_key="omnisient")
    assert normalize_company_name("Globex Corporation", "Initech").name == "Globex"
    assert normalize_company_name("HubSpot, Inc.", "Hubspot").name == "HubSpot"


def test_match_key_drops_the_legal_form_accents_and_the() -> None:
    assert normalize_company_name("The Coca-Cola Company").match_key == "cocacola"
    assert normalize_company_name("Nestlé S.A.").match_key == "nestle"
    assert (
        normalize_company_name("Barnes & Noble, Inc.").match_key
        == normalize_company_name("BARNES AND NOBLE").match_key
    )


@pytest.mark.parametrize("raw", ["", "   ", "\t"])
def test_empty_input(raw: str) -> None:
    assert normalize_company_name(raw) == CompanyName(name="", match_key="")


_WORDS = [" ".join(parts) for _, parts in company._TERMS] + [
    "Acme", "Ünïcödé", "&", "-", ",", "Co.", "Inc.", "S.A.", "GmbH", "Ltd.", "l.l.c.", "(Pty)",
    "İnc", "ß", "Ltd,", "A/S",
]  # fmt: skip


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(st.sampled_from(_WORDS) | st.text(max_size=8), min_size=1, max_size=5),
    st.sampled_from(["", ".", ",", " ", "!"]),
)
def test_basename_agrees_with_cleanco(words: list[str], end: str) -> None:
    name = " ".join(words) + end
    assert company._basename(name) == custom_basename(name, company._TERMS)


@pytest.mark.parametrize(
    ("name", "short", "expected"),
    [
        ("GGO, INC.-Texarkana", None, "GGO"),
        ("Spellbinders Paper Arts Company, LLC-Mesa", "Spellbinders Paper Arts Company",
         "Spellbinders Paper Arts Company"),
        ("Spellbinders Paper Arts Company, LLC-Mesa", None, "Spellbinders Paper Arts"),
        ("Northwind Traders-Corporate", None, "Northwind Traders"),
        ("Tailspin Toys-California", None, "Tailspin Toys"),
        ("Hewlett-Packard", None, "Hewlett-Packard"),
        ("Coca-Cola Company", "Coca-Cola", "Coca-Cola"),
        ("Tri-County Electric Cooperative", None, "Tri-County Electric Cooperative"),
    ],
)  # fmt: skip
def test_office_suffix_goes_hyphenated_names_stay(
    name: str, short: str | None, expected: str
) -> None:
    assert normalize_company_name(name, short).name == expected


@pytest.mark.parametrize(
    ("name", "short", "expected"),
    [
        ("MTE Corp", "MTE", "MTE"),  # Apollo's casual form keeps the acronym
        ("ENVOCORE", "ENVOCORE", "ENVOCORE"),  # capitals in both sources: the brand's style
        ("acme", "ACME", "Acme"),  # one source only: typed, not styled
        ("REMA TIP TOP Australia", "REMA TIP TOP Australia", "REMA TIP TOP Australia"),
        ("AMI GLOBAL LOGISTICS PVT LTD", "AMI GLOBAL LOGISTICS PVT", "AMI GLOBAL LOGISTICS"),
        ("RSAV AND COMPANY", "RSAV AND COMPANY", "RSAV AND COMPANY"),
        ("Peach Advisory Private Limited", "Peach Advisory Private Limited", "Peach Advisory"),
        ("Cloudburst, SBC", "Cloudburst SBC", "Cloudburst SBC"),
    ],
)
def test_company_name_for_emails_casing_wins(name: str, short: str, expected: str) -> None:
    assert normalize_company_name(name, short).name == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AC/DC SERVICES LLC", "AC/DC Services"),
        ("O'REILLY MEDIA, INC.", "O'Reilly Media"),
        ("Sharp/Lee Partners LLC", "Sharp/Lee Partners"),
        ("CafÃ© Nero Ltd", "Café Nero"),
        ("Acme™ Widgets Â©", "Acme Widgets"),  # repaired first, then the symbols go
    ],
)
def test_apostrophes_slashes_and_mojibake(name: str, expected: str) -> None:
    assert normalize_company_name(name).name == expected
