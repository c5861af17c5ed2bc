from __future__ import annotations

from enrichflow.normalize import PersonName, normalize_person_name


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
