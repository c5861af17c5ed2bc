"""Labelled corpus: every case is a test, and each normalizer must reach 99% accuracy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from enrichflow.ingest.aliases import map_headers
from enrichflow.normalize.corpus import (
    EVALUATORS,
    SAMPLE_FIELDS,
    TARGET_ACCURACY,
    Case,
    evaluate,
    evaluate_export_sample,
    load_cases,
    load_export_sample,
    run_case,
)

CORPUS = Path(__file__).parent / "data" / "normalization_cases.csv"
CASES = load_cases(CORPUS)
KNOWN_FAILURES = Path(__file__).parent.parent / "bench" / "quality_known_failures.md"


SAMPLE = Path(__file__).parent / "data" / "apollo_export_sample.csv"


def test_corpus_is_large_and_covers_every_normalizer() -> None:
    assert len(CASES) >= 1500
    assert {case.normalizer for case in CASES} == set(EVALUATORS)


def test_real_export_patterns_are_a_large_share() -> None:
    real = [case for case in CASES if case.section == "real-export"]
    assert len(real) >= 400
    assert {case.normalizer for case in real} >= {"company", "phone", "state_code", "seniority"}


@pytest.mark.parametrize("field", SAMPLE_FIELDS)
def test_accuracy_per_field_on_the_export_sample(field: str) -> None:
    rows = load_export_sample(SAMPLE)
    assert len(rows) >= 30
    canonical_of = {header: name for name, header in map_headers(list(rows[0])).canonical.items()}
    score = evaluate_export_sample(rows, canonical_of)[field]
    failing = [f"line {c.line}: {c.expected!r} != {a!r}" for c, a in score.failures]
    assert score.accuracy >= TARGET_ACCURACY, "\n".join(failing)


def test_the_export_sample_holds_no_real_linkedin_profile() -> None:
    """Invented people only: every person URL in the sample carries the invented suffix."""
    for row in load_export_sample(SAMPLE):
        url = row["Person Linkedin Url"]
        assert not url or url.endswith("-0000"), url


@pytest.mark.parametrize("name", sorted(EVALUATORS))
def test_accuracy_per_normalizer(name: str) -> None:
    score = evaluate(c for c in CASES if c.normalizer == name)[name]
    failing = [f"line {c.line}: {c.input!r} -> {a!r} != {c.expected!r}" for c, a in score.failures]
    assert score.accuracy >= TARGET_ACCURACY, "\n".join(failing)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.normalizer}-{c.line}")
def test_case(case: Case) -> None:
    ok, actual = run_case(case)
    known = KNOWN_FAILURES.read_text() if KNOWN_FAILURES.exists() else ""
    if not ok and re.search(rf"\bline {case.line}\b", known):
        pytest.xfail(f"known failure: {actual!r}")
    assert actual == case.expected
