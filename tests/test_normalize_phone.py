from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enrichflow.normalize import Phone, choose_phones, normalize_phone, parse_phone, phone


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


@given(st.text(alphabet="0123456789 \t\u00a0\u2003\x1c.-/()+", max_size=20))
def test_layout_removal_is_the_regex(text: str) -> None:
    assert phone._without_layout(text) == phone._LAYOUT_RE.sub("", text)


@pytest.mark.parametrize(
    ("raw", "extension"),
    [
        ("'+1 866-555-0177 ext 286", "286"),
        ("+1 866-555-0177 x286", "286"),
        ("+1 866-555-0177 ext. 286", "286"),
        ("+1 866 555 0177 Extension 9", "9"),
        ("(866) 555-0177, ext: 41", "41"),
        ("+1 866-555-0177", None),
    ],
)
def test_extension_is_kept_apart(raw: str, extension: str | None) -> None:
    assert parse_phone(raw, "US") == Phone("+18665550177", extension)


def test_extension_of_an_invalid_number_is_dropped() -> None:
    assert parse_phone("+1 555 ext 12", "US") == Phone(None, None)


def test_phonenumbers_finds_extensions_written_its_own_way() -> None:
    """Forms the split-off pattern leaves to the library (here a ``;ext=`` RFC 3966 tail)."""
    assert parse_phone("tel:+1-866-555-0177;ext=286", None) == Phone("+18665550177", "286")


_APOLLO_ROW = {
    "phone_work_direct": "",
    "phone_home": "",
    "phone_mobile": "'+61 412 670 118",
    "phone_corporate": "'+61 2 4935 1187",
    "phone_other": "'+61 8 9256 7312",
    "company_phone": "'+61 2 4935 1187",
}


def test_the_persons_own_line_comes_before_the_switchboard() -> None:
    choice = choose_phones(_APOLLO_ROW, "AU", "AU")
    assert (choice.phone, choice.phone_type) == ("+61412670118", "mobile")
    assert choice.mobile_phone == "+61412670118"
    assert choice.corporate_phone == "+61249351187"
    assert choice.direct_phone is None
    assert choice.company_phone == "+61249351187"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"phone_work_direct": "+1 415 555 0101", "phone_mobile": "+1 415 555 0102"},
         ("+14155550101", "direct", None)),
        ({"phone_other": "'+1 818-555-0118 ext 159", "phone_corporate": "+1 818 555 0145"},
         ("+18185550118", "other", "159")),
        ({"phone_home": "+1 415 555 0103", "phone_corporate": "+1 818 555 0145"},
         ("+14155550103", "home", None)),
        ({"phone_corporate": "+1 818 555 0145", "company_phone": "+1 818 555 0146"},
         ("+18185550145", "corporate", None)),
        ({"company_phone": "+1 818 555 0146"}, ("+18185550146", "corporate", None)),
        # Apollo's First Phone repeats the switchboard when the person has no line of their own.
        ({"phone": "+1 818 555 0145", "phone_corporate": "+1 818 555 0145"},
         ("+18185550145", "corporate", None)),
        ({"phone": "+1 415 555 0104", "phone_corporate": "+1 818 555 0145"},
         ("+14155550104", "other", None)),
        ({"phone": "+1 415 555 0104"}, ("+14155550104", "other", None)),
        ({"phone_mobile": "n/a", "phone_corporate": "12345"}, (None, None, None)),
        ({}, (None, None, None)),
    ],
)  # fmt: skip
def test_phone_choice(fields: dict[str, str], expected: tuple[str | None, ...]) -> None:
    choice = choose_phones(fields, "US", "US")
    assert (choice.phone, choice.phone_type, choice.phone_extension) == expected


def test_person_lines_read_in_the_persons_country_company_lines_in_the_companys() -> None:
    choice = choose_phones({"phone_mobile": "0412 670 118", "company_phone": "020 7946 0321"},
                           "AU", "GB")  # fmt: skip
    assert choice.mobile_phone == "+61412670118"
    assert choice.corporate_phone == "+442079460321"


@settings(max_examples=3000, deadline=None)
@given(
    st.sampled_from(["1", "44", "39", "49", "33", "7", "61", "54", "800", "882", "979", "0", "28"])
    | st.text(alphabet="0123456789", min_size=1, max_size=3),
    st.text(alphabet="0123456789", min_size=0, max_size=17),
)
def test_plus_digits_shortcut_gives_what_parse_gives(code: str, rest: str) -> None:
    """Country codes with and without national prefixes (0, NANP's 1, Argentina's pattern)."""
    text = f"+{code}{rest}"
    try:
        expected: phonenumbers.PhoneNumber | None = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        expected = None
    if phone._PLUS_DIGITS_RE.fullmatch(text):
        shortcut = phone._parse_plus_digits(text)
        assert shortcut is None or shortcut == expected, text
