from __future__ import annotations

import pytest

from enrichflow.normalize import department_from_title, normalize_seniority
from enrichflow.normalize.seniority import DEPARTMENTS, SENIORITY_LEVELS, department_from_apollo


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


@pytest.mark.parametrize(
    ("title", "level", "department"),
    [
        ("Sócio", "partner", "executive"),
        ("Gerente Comercial", "manager", "sales"),
        ("Diretor Financeiro", "director", "finance"),
        ("Directeur Général", "c_suite", "executive"),
        ("Geschäftsführer", "c_suite", "executive"),
        ("Jefe de Ventas", "head", "sales"),
        ("Einkaufsleiterin", "head", "procurement"),
        ("Estagiária de Marketing", "intern", "marketing"),
        ("Asistente de Dirección", "entry", None),
    ],
)
def test_titles_in_other_languages(title: str, level: str, department: str | None) -> None:
    assert normalize_seniority(None, title) == level
    assert department_from_title(title) == department


@pytest.mark.parametrize(
    ("title", "level"),
    [
        ("Marketing Coordinator", "entry"),
        ("Senior Marketing Coordinator", "senior"),
        ("Customer Support Specialist", "entry"),
        ("Senior Data Analyst", "senior"),
    ],
)
def test_coordinators_specialists_analysts_are_not_managers(title: str, level: str) -> None:
    assert normalize_seniority(None, title) == level


def test_functional_vps_keep_their_function() -> None:
    assert department_from_title("VP Marketing") == "marketing"
    assert department_from_title("Vice President of Finance and Operations") == "finance"
    # A title without a function falls back to Apollo's Departments, function first.
    assert department_from_apollo("C-Suite, Marketing") == "marketing"
    assert department_from_apollo("C-Suite") == "executive"
    assert department_from_apollo("master_engineering_technical") == "engineering"
    assert department_from_apollo("Something new") is None
