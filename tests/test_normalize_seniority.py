from __future__ import annotations

import pytest

from enrichflow.normalize import department_from_title, normalize_seniority
from enrichflow.normalize.seniority import DEPARTMENTS, SENIORITY_LEVELS


@pytest.mark.parametrize(
    ("apollo", "level"),
    [("Founder", "founder"), ("C suite", "c_suite"), ("Vp", "vp"), ("Director", "director"),
     ("Head", "head"), ("Manager", "manager"), ("Senior", "senior"), ("Entry", "entry"),
     ("Intern", "intern"), ("Owner", "owner"), ("Partner", "partner")],
)  # fmt: skip
def test_apollo_value_wins(apollo: str, level: str) -> None:
    assert normalize_seniority(apollo, "Software Engineer") == level


@pytest.mark.parametrize(
    ("title", "level"),
    [("CEO", "c_suite"), ("Chief Financial Officer", "c_suite"), ("Co-Founder", "founder"),
     ("Co-Founder & CEO", "founder"), ("VP Sales", "vp"), ("Vice President of Marketing", "vp"),
     ("Head of Growth", "head"), ("Director of Engineering", "director"),
     ("Sales Manager", "manager"), ("Senior Data Scientist", "senior"),
     ("Principal Engineer", "senior"), ("Software Engineer", "entry"), ("Summer Intern", "intern")],
)  # fmt: skip
def test_title_classification(title: str, level: str) -> None:
    assert normalize_seniority(None, title) == level


def test_seniority_always_in_vocabulary() -> None:
    for apollo in ("C suite", "Weird", None, ""):
        for title in ("CEO", "Wizard", "", None, "Talent Acquisition Partner"):
            value = normalize_seniority(apollo, title)
            assert value is None or value in SENIORITY_LEVELS


def test_department_from_title() -> None:
    assert department_from_title("VP of Sales") == "sales"
    assert department_from_title("CTO") == "engineering"
    assert department_from_title("CEO") == "executive"
    assert department_from_title("HR Business Partner") == "human_resources"
    assert department_from_title("Wizard") is None
    assert department_from_title(None) is None
    for title in ("Marketing Manager", "Controller", "General Counsel", "UX Designer"):
        assert department_from_title(title) in DEPARTMENTS
