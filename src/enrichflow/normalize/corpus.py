"""Evaluation of the labelled normalization corpus (shared by tests and bench/quality.py).

Corpus format: CSV with columns ``normalizer,input,extra,expected``; lines starting with
``#`` are comments, and ``# section: NAME`` puts the cases after it in section NAME
(``real-export``: patterns taken from public Apollo exports). An empty cell stands for
None / empty. Multi-part values use ``|``:

* ``company``: input = name, extra = short name (Company Name for Emails),
  expected = ``name|match_key``
* ``domain``: registrable_domain(input) -> domain
* ``non_company_site`` / ``free_mail``: expected ``true``/``false``
* ``company_domain``: input = website, extra = email, expected = ``domain|source``
* ``person``: input = ``first|last``, extra = full name, expected = ``first|last|full``
* ``email``: expected = ``email|true`` or ``email|false`` (``|false`` when empty)
* ``phone``: extra = country, expected = E.164
* ``linkedin_person`` / ``linkedin_company``: expected canonical URL
* ``country``: expected alpha-2
* ``int_amount``: expected integer
* ``list``: expected items joined with ``|``
* ``bool``: expected ``true``/``false``
* ``seniority``: input = Apollo value, extra = title, expected level
* ``department``: input = title, expected department
* ``state_code``: input = state/province, extra = country, expected ISO 3166-2 code
* ``email_status``: input = Email Status cell, extra = catch-all status cell, expected status
* ``email_valid``: input = e-mail, extra = Email Status cell (``<absent>``: the file has no
  status column), expected ``true``/``false`` (empty when there is no address)
* ``keywords``: input = Keywords cell, expected tags joined with ``|``
* ``text_repair``: input = a cell, expected the cell after mojibake repair and trimming
* ``phone_choice``: input = ``field=cell`` pairs joined with ``;`` (fields: direct, mobile,
  other, home, corporate, company, phone), extra = country, expected
  ``phone|type|extension``
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from enrichflow.normalize._text import clean_cell
from enrichflow.normalize.company import normalize_company_name
from enrichflow.normalize.contact import email_status, email_valid, normalize_email
from enrichflow.normalize.domain import (
    company_domain,
    is_free_mail_domain,
    is_non_company_site,
    registrable_domain,
)
from enrichflow.normalize.geo import country_code, state_code
from enrichflow.normalize.keywords import parse_keywords
from enrichflow.normalize.linkedin import (
    normalize_linkedin_company_url,
    normalize_linkedin_person_url,
)
from enrichflow.normalize.numbers import parse_bool, parse_int_amount, parse_list
from enrichflow.normalize.person import normalize_person_name
from enrichflow.normalize.phone import choose_phones, normalize_phone
from enrichflow.normalize.seniority import department_from_title, normalize_seniority

TARGET_ACCURACY = 0.99


@dataclass(frozen=True, slots=True)
class Case:
    """One labelled corpus row (line number kept for error messages)."""

    line: int
    normalizer: str
    input: str
    extra: str
    expected: str
    section: str = ""


@dataclass(slots=True)
class Score:
    """Accuracy of one normalizer over the corpus."""

    normalizer: str
    cases: int = 0
    correct: int = 0
    failures: list[tuple[Case, str]] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.correct / self.cases if self.cases else 0.0

    @property
    def met(self) -> bool:
        return self.accuracy >= TARGET_ACCURACY


def _opt(text: str) -> str | None:
    return text if text != "" else None


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _company(case: Case) -> str:
    result = normalize_company_name(case.input, _opt(case.extra))
    return f"{result.name}|{result.match_key}"


def _company_domain(case: Case) -> str:
    result = company_domain(_opt(case.input), _opt(case.extra))
    return f"{_fmt(result.domain)}|{_fmt(result.source)}"


def _person(case: Case) -> str:
    first, _, last = case.input.partition("|")
    result = normalize_person_name(_opt(first), _opt(last), _opt(case.extra))
    return f"{_fmt(result.first_name)}|{_fmt(result.last_name)}|{_fmt(result.full_name)}"


def _email(case: Case) -> str:
    result = normalize_email(_opt(case.input))
    return f"{_fmt(result.email)}|{_fmt(result.valid)}"


def _email_valid(case: Case) -> str:
    status = None if case.extra == "<absent>" else email_status(_opt(case.extra))
    return _fmt(email_valid(normalize_email(_opt(case.input)), status))


_PHONE_FIELDS = {
    "direct": "phone_work_direct",
    "mobile": "phone_mobile",
    "other": "phone_other",
    "home": "phone_home",
    "corporate": "phone_corporate",
    "company": "company_phone",
    "phone": "phone",
}


def _phone_choice(case: Case) -> str:
    cells = dict(pair.split("=", 1) for pair in case.input.split(";") if pair)
    fields = {_PHONE_FIELDS[name.strip()]: cell for name, cell in cells.items()}
    country = country_code(_opt(case.extra))
    choice = choose_phones(fields, country, country)
    return f"{_fmt(choice.phone)}|{_fmt(choice.phone_type)}|{_fmt(choice.phone_extension)}"


EVALUATORS: dict[str, Callable[[Case], str]] = {
    "company": _company,
    "domain": lambda c: _fmt(registrable_domain(c.input)),
    "non_company_site": lambda c: _fmt(is_non_company_site(c.input)),
    "free_mail": lambda c: _fmt(is_free_mail_domain(c.input)),
    "company_domain": _company_domain,
    "person": _person,
    "email": _email,
    "phone": lambda c: _fmt(normalize_phone(_opt(c.input), _opt(c.extra))),
    "linkedin_person": lambda c: _fmt(normalize_linkedin_person_url(_opt(c.input))),
    "linkedin_company": lambda c: _fmt(normalize_linkedin_company_url(_opt(c.input))),
    "country": lambda c: _fmt(country_code(_opt(c.input))),
    "int_amount": lambda c: _fmt(parse_int_amount(_opt(c.input))),
    "list": lambda c: "|".join(parse_list(_opt(c.input))),
    "bool": lambda c: _fmt(parse_bool(_opt(c.input))),
    "seniority": lambda c: _fmt(normalize_seniority(_opt(c.input), _opt(c.extra))),
    "department": lambda c: _fmt(department_from_title(_opt(c.input))),
    "state_code": lambda c: _fmt(state_code(_opt(c.input), _opt(c.extra))),
    "email_status": lambda c: email_status(_opt(c.input), _opt(c.extra)),
    "email_valid": _email_valid,
    "phone_choice": _phone_choice,
    "keywords": lambda c: "|".join(parse_keywords(_opt(c.input))),
    "text_repair": lambda c: _fmt(clean_cell(_opt(c.input))),
}


def load_cases(path: str | Path) -> list[Case]:
    """Read the corpus, skipping ``#`` comment lines; unknown normalizers raise ValueError."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    numbered: list[tuple[int, str, str]] = []
    section = ""
    for no, line in enumerate(lines, start=1):
        if line.startswith("# section:"):
            section = line.removeprefix("# section:").strip()
        elif not line.startswith("#"):
            numbered.append((no, line, section))
    reader = csv.DictReader(line for _, line, _ in numbered)
    cases: list[Case] = []
    for (no, _, section), row in zip(numbered[1:], reader, strict=False):
        name = row["normalizer"].strip()
        if name not in EVALUATORS:
            raise ValueError(f"line {no}: unknown normalizer {name!r}")
        cases.append(
            Case(
                line=no,
                normalizer=name,
                input=row["input"] or "",
                extra=row["extra"] or "",
                expected=row["expected"] or "",
                section=section,
            )
        )
    return cases


def run_case(case: Case) -> tuple[bool, str]:
    """Evaluate one case: (correct, actual value encoded like `expected`)."""
    actual = EVALUATORS[case.normalizer](case)
    return actual == case.expected, actual


def evaluate(cases: Iterable[Case]) -> dict[str, Score]:
    """Score every normalizer present in `cases`."""
    scores: dict[str, Score] = {}
    for case in cases:
        score = scores.setdefault(case.normalizer, Score(case.normalizer))
        ok, actual = run_case(case)
        score.cases += 1
        if ok:
            score.correct += 1
        else:
            score.failures.append((case, actual))
    return scores


# Apollo headers that ingest/aliases.py does not map yet, with the canonical names the core
# values read them under.
_UNALIASED_HEADERS = {
    "Other Phone": "phone_other",
    "Home Phone": "phone_home",
    "Primary Email Catch-all Status": "email_catch_all_status",
    "Catch-all Status": "email_catch_all_status",
}
SAMPLE_FIELDS = (
    "company_name",
    "company_domain",
    "first_name",
    "last_name",
    "email",
    "email_status",
    "email_valid",
    "phone",
    "phone_type",
    "phone_extension",
    "corporate_phone",
    "seniority",
    "department",
    "state_code",
    "country_code",
    "company_state_code",
    "company_country_code",
    "keywords",
)


def load_export_sample(path: str | Path) -> list[dict[str, str]]:
    """Rows of an Apollo-shaped CSV whose ``expected <field>`` columns hold the labels."""
    with Path(path).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def evaluate_export_sample(
    rows: Iterable[dict[str, str]], canonical_of: Mapping[str, str]
) -> dict[str, Score]:
    """Score every field of `SAMPLE_FIELDS` on rows read the way a run reads an export:
    headers mapped to canonical fields (`canonical_of`: header -> name, the ingest's
    mapping, which this layer may not import), then the company name, domain and core
    values."""
    from enrichflow.normalize.core import normalize_core_values

    names = dict(canonical_of) | _UNALIASED_HEADERS
    scores = {name: Score(name) for name in SAMPLE_FIELDS}
    for line, row in enumerate(rows, start=2):
        fields = {names[header]: cell for header, cell in row.items() if header in names}
        values = dict(normalize_core_values(fields))
        values["company_name"] = normalize_company_name(
            fields.get("company_name"), fields.get("company_name_for_emails") or None
        ).name
        values["company_domain"] = company_domain(fields.get("website"), fields.get("email")).domain
        values["keywords"] = "|".join(values["keywords"])  # type: ignore[arg-type]
        for name in SAMPLE_FIELDS:
            expected = row[f"expected {name}"]
            actual = _fmt(values[name])
            score = scores[name]
            score.cases += 1
            if actual == expected:
                score.correct += 1
            else:
                case = Case(line, name, row.get("Title", ""), "", expected, "export-sample")
                score.failures.append((case, actual))
    return scores
