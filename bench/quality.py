"""Accuracy of each normalizer on the labelled corpus (tests/data/normalization_cases.csv).

Run: .venv/bin/python bench/quality.py [-v]   (-v lists every failing case)
Exit status is 1 when any normalizer is below the target accuracy.
"""

from __future__ import annotations

import sys
from pathlib import Path

from enrichflow.normalize.corpus import TARGET_ACCURACY, evaluate, load_cases

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "normalization_cases.csv"


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    scores = evaluate(load_cases(CORPUS))
    print(f"{'normalizer':<18} {'cases':>6} {'correct':>8} {'%':>8}  target {TARGET_ACCURACY:.0%}")
    all_met = True
    total = correct = 0
    for name in sorted(scores):
        score = scores[name]
        total += score.cases
        correct += score.correct
        all_met &= score.met
        status = "met" if score.met else "NOT MET"
        print(f"{name:<18} {score.cases:>6} {score.correct:>8} {score.accuracy:>8.1%}  {status}")
        if verbose:
            for case, actual in score.failures:
                print(
                    f"    line {case.line}: input={case.input!r} extra={case.extra!r} "
                    f"expected={case.expected!r} actual={actual!r}"
                )
    print(f"{'TOTAL':<18} {total:>6} {correct:>8} {correct / max(total, 1):>8.1%}")
    return 0 if all_met else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
