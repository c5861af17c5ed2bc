from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from enrichflow.normalize import (
    linkedin,
    normalize_linkedin_company_url,
    normalize_linkedin_person_url,
)

PERSON = "https://www.linkedin.com/in/alan-turing"
COMPANY = "https://www.linkedin.com/company/acme"


def test_person_url_variants() -> None:
    for raw in (
        "http://uk.linkedin.com/in/alan-turing/",
        "linkedin.com/in/Alan-Turing?trk=public_profile",
        "'https://www.linkedin.com/in/alan-turing/details/experience/",
    ):
        assert normalize_linkedin_person_url(raw) == PERSON, raw


def test_old_pub_url() -> None:
    assert (
        normalize_linkedin_person_url("https://www.linkedin.com/pub/alan-turing/4/a87/216")
        == "https://www.linkedin.com/in/alan-turing-216a874"
    )


def test_encoded_slug_lowercased() -> None:
    expected = "https://www.linkedin.com/in/jos%c3%a9-garc%c3%ada"
    assert normalize_linkedin_person_url("linkedin.com/in/jos%C3%A9-garc%C3%ADa") == expected
    assert normalize_linkedin_person_url("linkedin.com/in/José-García") == expected


def test_company_url_variants_and_numeric_ids() -> None:
    assert normalize_linkedin_company_url("http://fr.linkedin.com/company/acme/about/") == COMPANY
    assert (
        normalize_linkedin_company_url("linkedin.com/company/12345")
        == "https://www.linkedin.com/company/12345"
    )


def test_kinds_do_not_cross() -> None:
    assert normalize_linkedin_person_url(COMPANY) is None
    assert normalize_linkedin_company_url(PERSON) is None
    assert normalize_linkedin_person_url("https://www.facebook.com/in/alan") is None
    assert normalize_linkedin_person_url(None) is None


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(["", "http://", "https://", "HTTPS://", "//"]),
    st.sampled_from(["", "www.", "uk.", "de.", "m.", "WWW."]),
    st.text(alphabet="abcAZ09_~-.%é ?/", min_size=1, max_size=12),
    st.sampled_from(["", "/", "//", "/details/"]),
)
def test_plain_person_urls_take_the_general_paths_answer(
    scheme: str, host: str, slug: str, end: str
) -> None:
    url = f"{scheme}{host}linkedin.com/in/{slug}{end}"
    assert normalize_linkedin_person_url(url) == linkedin._person_url(url), url
