"""Cost of one call of each normalizer, every cache cleared before the call (the price of a
value seen for the first time) and warm (the same values again, as on repeated companies).

Inputs are the labelled corpus's own (tests/data/normalization_cases.csv), read as plain CSV so
that another revision's code can be timed on the same inputs:

    .venv/bin/python bench/normalize_micro.py
    PYTHONPATH=/path/to/other/src .venv/bin/python bench/normalize_micro.py   # another version

Each figure is the median over ``--rounds`` passes of the mean per call, in microseconds.
"""

from __future__ import annotations

import argparse
import csv
import functools
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import enrichflow.normalize as normalize_package

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "normalization_cases.csv"


def corpus_inputs(corpus: Path) -> dict[str, list[tuple[str, str]]]:
    """(input, extra) of every corpus case, by normalizer name."""
    lines = [line for line in corpus.read_text("utf-8").splitlines() if not line.startswith("#")]
    found: dict[str, list[tuple[str, str]]] = {}
    for row in csv.DictReader(lines):
        found.setdefault(row["normalizer"], []).append((row["input"] or "", row["extra"] or ""))
    return found


# Caches of tables built once per process or per country, not per value seen.
_TABLES = frozenset({"_subdivisions"})


def clear_caches() -> None:
    """Every per-value ``lru_cache`` of the loaded enrichflow.normalize modules, emptied."""
    for name, module in list(sys.modules.items()):
        if not name.startswith("enrichflow.normalize") or module is None:
            continue
        for key, value in vars(module).items():
            if isinstance(value, functools._lru_cache_wrapper) and key not in _TABLES:
                value.cache_clear()


def per_call(call: Callable[[], Any], *, cold: bool) -> float:
    """Microseconds for one call (caches cleared first when ``cold``)."""
    if cold:
        clear_caches()
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1000


def measure(calls: list[Callable[[], Any]], rounds: int) -> tuple[float, float]:
    """(cold, warm) median over rounds of the mean microseconds per call."""
    cold, warm = [], []
    for _ in range(rounds):
        cold.append(statistics.fmean(per_call(c, cold=True) for c in calls))
        for c in calls:
            c()
        warm.append(statistics.fmean(per_call(c, cold=False) for c in calls))
    return statistics.median(cold), statistics.median(warm)


def _opt(text: str) -> str | None:
    return text or None


def benchmarks(inputs: dict[str, list[tuple[str, str]]]) -> dict[str, list[Callable[[], Any]]]:
    from enrichflow.normalize import contact, core, domain, numbers, seniority
    from enrichflow.normalize.company import normalize_company_name

    phone = getattr(contact, "normalize_phone", None)
    if phone is None:  # moved to its own module
        from enrichflow.normalize.phone import normalize_phone as phone
    rows = [
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "title": title,
            "email": f"ada.lovelace{i}@example-{i % 7}.com",
            "email_status": "Verified",
            "phone_work_direct": None,
            "phone_mobile": f"'+1 415-555-01{i % 100:02d}",
            "phone_corporate": "'+1 212-555-0123",
            "company_phone": "'+1 212-555-0123",
            "country": "United States",
            "state": "California",
            "city": "San Francisco",
            "company_country": "United States",
            "company_state": "New York",
            "keywords": "health, wellness & fitness, saas, b2b",
            "technologies": "Outlook, Salesforce",
            "employees": "120",
        }
        for i, (title, _) in enumerate(inputs["department"] + inputs["seniority"])
    ]
    return {
        "normalize_phone": [
            functools.partial(phone, _opt(raw), _opt(extra)) for raw, extra in inputs["phone"]
        ],
        "normalize_email": [
            functools.partial(contact.normalize_email, _opt(raw)) for raw, _ in inputs["email"]
        ],
        "normalize_company_name": [
            functools.partial(normalize_company_name, raw, _opt(extra))
            for raw, extra in inputs["company"]
        ],
        "registrable_domain": [
            functools.partial(domain.registrable_domain, _opt(raw)) for raw, _ in inputs["domain"]
        ],
        "department_from_title": [
            functools.partial(seniority.department_from_title, _opt(raw))
            for raw, _ in inputs["department"]
        ],
        "normalize_seniority": [
            functools.partial(seniority.normalize_seniority, _opt(raw), _opt(extra))
            for raw, extra in inputs["seniority"]
        ],
        "parse_list": [
            functools.partial(numbers.parse_list, _opt(raw)) for raw, _ in inputs["list"]
        ],
        "normalize_core_values": [
            functools.partial(core.normalize_core_values, row) for row in rows
        ],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="the same file for both")
    args = parser.parse_args(argv)
    gc.disable()
    print(f"enrichflow from {Path(normalize_package.__file__).parent.parent}")
    print(f"{'function':<24} {'calls':>6} {'cold µs':>9} {'warm µs':>9}")
    for name, calls in benchmarks(corpus_inputs(args.corpus)).items():
        cold, warm = measure(calls, args.rounds)
        print(f"{name:<24} {len(calls):>6} {cold:>9.2f} {warm:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
