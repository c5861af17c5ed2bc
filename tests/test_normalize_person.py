from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from enrichflow.normalize import PersonName, normalize_person_name, person
from enrichflow.normalize._text import is_one_case


def test_titles_suffixes_and_caps_are_cleaned() -> None:
    assert normalize_person_name("DR. ALAN", "TURING JR.", None) == PersonName(
        "Alan", "Turing", "Alan Turing"
    )


def test_irish_and_scottish_prefixes() -> None:
    assert normalize_person_name("sean", "o'brien", None).last_name == "O'Brien"
    assert normalize_person_name("ronald", "mcdonald", None).last_name == "McDonald"


def test_particles_and_mixed_case_kept() -> None:
    assert normalize_person_name("LUDWIG", "VAN DER ROHE", None).last_name == "van der Rohe"
    assert normalize_person_name("juan", "de la cruz", None).last_name == "de la Cruz"
    assert normalize_person_name("DeShawn", "McKenzie", None) == PersonName(
        "DeShawn", "McKenzie", "DeShawn McKenzie"
    )


def test_international_names() -> None:
    assert normalize_person_name("josé", "garcía", None).full_name == "José García"
    assert normalize_person_name("ZOË", "SMITH", None).first_name == "Zoë"
    assert normalize_person_name("Văn An", "Nguyễn", None).full_name == "Văn An Nguyễn"


def test_full_name_only() -> None:
    assert normalize_person_name(None, None, "Mr. John Smith III") == PersonName(
        "John", "Smith", "John Smith"
    )
    assert normalize_person_name(None, None, "Turing, Alan").first_name == "Alan"


def test_empty() -> None:
    assert normalize_person_name(None, None, None) == PersonName(None, None, None)
    assert normalize_person_name("", " ", "-") == PersonName(None, None, None)


_NAME_PART = st.sampled_from(["", "mc", "O'", "van ", "None", "Dr", "Jr", "é", "ß", "ǅ", "\n", "1"])


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(_NAME_PART | st.text(alphabet="aZéǅ", max_size=4), max_size=3).map("".join),
    st.lists(_NAME_PART | st.text(alphabet="bYüǈ", max_size=4), max_size=3).map("".join),
    st.none() | st.just("Alan Turing"),
)
def test_one_word_names_take_the_parsers_answer(first: str, last: str, full: str | None) -> None:
    assert normalize_person_name(first, last, full) == person._parsed_name(first, last, full)


@given(st.text(max_size=6))
def test_is_one_case_is_the_letter_scan(text: str) -> None:
    has_cased = any(ch.isupper() or ch.islower() for ch in text)
    assert is_one_case(text) == (has_cased and text in (text.upper(), text.lower()))
