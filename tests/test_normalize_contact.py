from __future__ import annotations

import phonenumbers
import pytest
from email_validator import validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from enrichflow.normalize import EmailResult, contact, normalize_email, normalize_phone


def test_email_is_trimmed_lowercased_and_validated() -> None:
    assert normalize_email("  Jane.Doe@Acme.COM ") == EmailResult("jane.doe@acme.com", True)
    assert normalize_email("Jane Doe <jane@acme.com>") == EmailResult("jane@acme.com", True)
    assert normalize_email("jane@acme") == EmailResult("jane@acme", False)
    assert normalize_email(None) == EmailResult(None, False)
    assert normalize_email("n/a") == EmailResult(None, False)


def test_phone_e164_with_excel_apostrophe_and_extension() -> None:
    assert normalize_phone("'+1 510-944-3940", None) == "+15109443940"
    assert normalize_phone("(510) 944-3940 ext. 12", "US") == "+15109443940"
    assert normalize_phone("020 7946 0958", "GB") == "+442079460958"
    assert normalize_phone("030 123456789", "Germany") == "+4930123456789"


@pytest.mark.parametrize("junk", [None, "", "n/a", "-", "null", "call me", "12345", "000"])
def test_phone_junk_is_none(junk: str | None) -> None:
    assert normalize_phone(junk, "US") is None


def test_invalid_phone_is_none() -> None:
    assert normalize_phone("+1 555", None) is None
    assert normalize_phone("07700 900123", "GB") is None


# The fast ASCII path must agree with email_validator wherever it answers.
_EMAILISH = st.text(alphabet="abcXYZ019._%+-'@!#", min_size=3, max_size=30)


@settings(max_examples=400, deadline=None)
@given(
    local=st.from_regex(r"[a-z0-9._+%'-]{1,20}", fullmatch=True),
    domain=st.from_regex(r"[a-z0-9-]{1,12}(\.[a-z0-9-]{1,8}){1,3}", fullmatch=True),
)
def test_fast_email_path_agrees_with_email_validator(local: str, domain: str) -> None:
    text = f"{local}@{domain}"
    if contact._fast_valid(text):
        info = validate_email(text, check_deliverability=False)
        assert info.normalized.lower() == text


@settings(max_examples=200, deadline=None)
@given(text=_EMAILISH)
def test_normalize_email_never_raises(text: str) -> None:
    result = normalize_email(text)
    assert result.email is None or result.email == result.email.lower()


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(["1", "44", "39", "49", "33", "7", "61", "800", "882", "979", "0", "28", ""])
    | st.text(alphabet="0123456789", min_size=1, max_size=3),
    st.text(alphabet="0123456789", min_size=0, max_size=17),
    st.sampled_from([None, "US", "GB", "IT", "DE", "AQ"]),
)
def test_international_shortcut_gives_what_parse_gives(
    code: str, rest: str, region: str | None
) -> None:
    text = f"+{code}{rest}"
    try:
        expected: phonenumbers.PhoneNumber | None = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        expected = None
    if contact._INTERNATIONAL_RE.fullmatch(text):
        shortcut = contact._parse_international(text[1:])
        assert shortcut is None or shortcut == expected, text


_REGIONS = ["US", "CA", "GB", "IM", "IT", "DE", "FR", "AU", "IN", "BR", "NL", "CH", "RU", "SG"]
_EXAMPLES = [
    phonenumbers.national_significant_number(example)
    for region in _REGIONS
    for kind in range(12)
    if (example := phonenumbers.example_number_for_type(region, kind)) is not None
]


@settings(max_examples=2000, deadline=None)
@given(
    st.sampled_from(_REGIONS),
    st.sampled_from(_EXAMPLES),
    st.integers(0, 6),
    st.text(alphabet="0123456789", max_size=7),
)
def test_validity_shortcut_agrees_with_phonenumbers(
    region: str, example: str, keep_off: int, tail: str
) -> None:
    """Example numbers of every type with their last digits replaced (valid and not)."""
    digits = example[: max(1, len(example) - keep_off)] + tail
    number = phonenumbers.PhoneNumber(
        country_code=phonenumbers.country_code_for_region(region), national_number=int(digits)
    )
    expected = phonenumbers.is_valid_number_for_region(number, region)
    assert contact._is_valid_for_region(number, region) == expected, digits


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(_EXAMPLES),
    st.sampled_from([1, 44, 39, 49, 7, 800, 882]),
    st.sampled_from([None, *_REGIONS]),
)
def test_validity_anywhere_agrees_with_phonenumbers(
    example: str, code: int, expected_region: str | None
) -> None:
    """The library's answer: valid in the expected region, else valid at all."""
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(example))
    expected = (
        expected_region is not None
        and code == phonenumbers.country_code_for_region(expected_region)
        and phonenumbers.is_valid_number_for_region(number, expected_region)
    ) or phonenumbers.is_valid_number(number)
    assert contact._is_valid(number, expected_region) == expected


@given(st.text(alphabet="0123456789 \t\u00a0\u2003\x1c.-/()+", max_size=20))
def test_layout_removal_is_the_regex(text: str) -> None:
    assert contact._without_layout(text) == contact._LAYOUT_RE.sub("", text)


def _phone_texts() -> list[tuple[str, str | None]]:
    """Every phone input of the labelled corpus, as the cached step sees it."""
    from pathlib import Path

    from enrichflow.normalize._text import clean_cell
    from enrichflow.normalize.corpus import load_cases
    from enrichflow.normalize.geo import country_code

    corpus = Path(__file__).parent / "data" / "normalization_cases.csv"
    found: list[tuple[str, str | None]] = []
    for case in load_cases(corpus):
        text = clean_cell(case.input) if case.normalizer == "phone" else None
        if text:
            region = country_code(case.extra) if case.extra else None
            plain = contact._PLAIN_PHONE_RE.fullmatch(text)
            found.append((contact._without_layout(text) if plain else text, region))
    return found


@pytest.mark.parametrize(("text", "region"), _phone_texts())
def test_public_phone_path_gives_what_the_private_path_gives(text: str, region: str | None) -> None:
    private = contact._normalize_phone_cached.__wrapped__(text, region)
    assert contact._normalize_phone_public(text, region) == private


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(["+1", "+44", "+39", "+49", "+33", "+7", "+61", "+800", "+55", "00", ""]),
    st.sampled_from(_EXAMPLES) | st.text(alphabet="0123456789", min_size=0, max_size=14),
    st.text(alphabet="0123456789", max_size=3),
    st.sampled_from([None, *_REGIONS]),
)
def test_public_phone_path_agrees_on_generated_numbers(
    prefix: str, body: str, tail: str, region: str | None
) -> None:
    text = prefix + body + tail
    private = contact._normalize_phone_cached.__wrapped__(text, region)
    assert contact._normalize_phone_public(text, region) == private, (text, region)
