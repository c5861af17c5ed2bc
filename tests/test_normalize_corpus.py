"""Labelled corpus: every case is a test, and each normalizer must reach 99% accuracy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from enrichflow.normalize.corpus import (
    EVALUATORS,
    TARGET_ACCURACY,
    Case,
    evaluate,
    load_cases,
    run_case,
)

CORPUS = Path(__file__).parent / "data" / "normalization_cases.csv"
CASES = load_cases(CORPUS)
KNOWN_FAILURES = Path(__file__).parent.parent / "bench" / "quality_known_failures.md"


def test_corpus_is_large_and_covers_every_normalizer() -> None:
    assert len(CASES) >= 400
    assert {case.normalizer for case in CASES} == set(EVALUATORS)


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
