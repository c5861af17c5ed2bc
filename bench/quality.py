"""Accuracy of each normalizer on the labelled corpus (tests/data/normalization_cases.csv), and
of each output field on an Apollo-shaped export sample (tests/data/apollo_export_sample.csv:
headers of real exports, invented people, an ``expected <field>`` column per field).

Run: .venv/bin/python bench/quality.py [-v]   (-v lists every failing case)
Exit status is 1 when any normalizer or field is below the target accuracy.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from enrichflow.ingest.aliases import map_headers
from enrichflow.normalize.corpus import (
    TARGET_ACCURACY,
    Score,
    evaluate,
    evaluate_export_sample,
    load_cases,
    load_export_sample,
)

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
CORPUS = DATA / "normalization_cases.csv"
SAMPLE = DATA / "apollo_export_sample.csv"


def report(title: str, scores: dict[str, Score], verbose: bool) -> bool:
    """Print one table of scores; whether every one met the target."""
    print(f"{title:<20} {'cases':>6} {'correct':>8} {'%':>8}  target {TARGET_ACCURACY:.0%}")
    all_met = True
    total = correct = 0
    for name in sorted(scores):
        score = scores[name]
        total += score.cases
        correct += score.correct
        all_met &= score.met
        status = "met" if score.met else "NOT MET"
        print(f"{name:<20} {score.cases:>6} {score.correct:>8} {score.accuracy:>8.1%}  {status}")
        if verbose:
            for case, actual in score.failures:
                print(
                    f"    line {case.line}: input={case.input!r} extra={case.extra!r} "
                    f"expected={case.expected!r} actual={actual!r}"
                )
    print(f"{'TOTAL':<20} {total:>6} {correct:>8} {correct / max(total, 1):>8.1%}")
    return all_met


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    cases = load_cases(CORPUS)
    sections = Counter(case.section or "(first)" for case in cases)
    print("corpus sections: " + ", ".join(f"{name} {n}" for name, n in sorted(sections.items())))
    corpus_met = report("normalizer", evaluate(cases), verbose)
    rows = load_export_sample(SAMPLE)
    print(f"\nApollo-shaped export sample: {len(rows)} rows, {SAMPLE.name}")
    mapped = map_headers(list(rows[0])).canonical
    canonical_of = {header: name for name, header in mapped.items()}
    sample_met = report("field", evaluate_export_sample(rows, canonical_of), verbose)
    return 0 if corpus_met and sample_met else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
