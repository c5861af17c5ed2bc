"""Person name normalization with `nameparser`.

First and last names are taken as given when both are present (the CSV split is better
evidence than any parser), with titles (Dr., Mr.) and suffixes (Jr., PhD, MBA) removed.
Only a full name is parsed into parts. Casing is repaired only for a part written in one
case (``DR. ALAN``, ``o'brien``); a part that already mixes cases (``DeShawn``, ``McKenzie``)
is kept as given. Names that are simple single words are capitalized without calling the
parser, which keeps the common path fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from nameparser import HumanName

from enrichflow.normalize._text import collapse_ws, is_one_case, repair_mojibake


@dataclass(frozen=True, slots=True)
class PersonName:
    """Cleaned first/last names and their ``"First Last"`` join (None when unknown)."""

    first_name: str | None
    last_name: str | None
    full_name: str | None


# Honorifics dropped at the start of a first name (lowercase, without dot). Deliberately
# short: nameparser's own title list holds words that are also first names (Dean, Major).
_TITLES = frozenset(
    {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "sir", "dame", "rev",
     "fr", "hon", "herr", "frau", "mme", "mlle", "m", "sra", "srta", "dott", "dra", "ing",
     "dipl", "mag", "ir", "drs", "lic", "eng"}
)  # fmt: skip
# Generational suffixes and credentials dropped at the end of a last name.
_SUFFIXES = frozenset(
    {"jr", "sr", "ii", "iii", "iv", "v", "phd", "md", "mba", "cpa", "esq", "dds", "dmd",
     "pe", "cfa", "pmp", "cissp", "msc", "ms", "ma", "ba", "bsc", "bs", "rn", "do", "jd",
     "llm", "cfp", "cma", "acca", "aca", "fca", "cpa,", "pharmd", "dvm", "edd", "mph",
     "shrm-cp", "shrm-scp", "phr", "sphr", "csm", "pmi-acp", "ccie", "cism", "cisa", "facs",
     "frcs", "mrcp", "obe", "mbe", "cbe", "kbe", "qc", "kc", "pa-c", "np", "lcsw", "psyd",
     "ceng", "peng", "p.eng", "cpa/cfp"}
)  # fmt: skip
_TRAILING_NOTE_RE = re.compile(r"\s*\(.*?\)\s*$")  # per row: compiled once, not looked up
_SIMPLE_RE = re.compile(r"^[^\W\d_]+$")  # one word, letters only
_PLACEHOLDERS = frozenset({"", "-", "--", ".", "n/a", "null", "none", "unknown", "?"})


def _tokenize(text: str) -> list[str]:
    return text.replace(",", " , ").split()


def _strip_titles(text: str) -> str:
    tokens = text.split()
    while len(tokens) > 1 and tokens[0].lower().rstrip(".") in _TITLES:
        tokens = tokens[1:]
    return " ".join(tokens)


def _strip_suffixes(text: str) -> str:
    # "Smith, MBA, PMP" / "Smith - CPA" / "Turing Jr."
    text = _TRAILING_NOTE_RE.sub("", text).strip()
    tokens = _tokenize(text)
    while len(tokens) > 1:
        tail = tokens[-1].lower().replace(".", "") if tokens[-1] not in {",", "-"} else ","
        if tail == "," or tail in _SUFFIXES or tokens[-1] in {"-", "–"}:
            tokens = tokens[:-1]
            continue
        break
    return " ".join(tokens).replace(" , ", ", ").strip(" ,-")


def _clean(raw: str | None) -> str | None:
    if raw is None:
        return None
    text = collapse_ws(repair_mojibake(raw)).strip(" ,;\"'")
    if text.lower() in _PLACEHOLDERS:
        return None
    return text


def _recase(part: str, role: str) -> str:
    """Repair the casing of a one-case part with nameparser's rules (Mc, O', particles)."""
    return _recase_one_case(part, role) if is_one_case(part) else part


@lru_cache(maxsize=65536)
def _recase_one_case(part: str, role: str) -> str:
    if _SIMPLE_RE.match(part) and not part.lower().startswith(("mc", "mac")):
        return part.capitalize()
    if role == "last":
        # A dummy first name makes nameparser read particles as inside the family name.
        human = HumanName(f"Xx {part}")
        human.capitalize(force=True)
        rendered = " ".join(p for p in (human.middle, human.last) if p)
    else:
        human = HumanName(f"{part} Xx")
        human.capitalize(force=True)
        rendered = " ".join(p for p in (human.first, human.middle) if p)
    if rendered.replace(" ", "").lower() != part.replace(" ", "").lower():
        # The parser moved something around: fall back to plain word capitalization.
        return " ".join(w.capitalize() for w in part.split())
    rendered = re.sub(r"\bst\.", "St.", rendered)
    # Arabic article joined by a hyphen reads as part of the name: Al-Rashid, El-Sayed.
    return re.sub(r"\b(al|el|bin|ben|abu|abd)-", lambda m: m.group(1).capitalize() + "-", rendered)


def _split_full(full: str) -> tuple[str | None, str | None, str | None]:
    """(first, middle, last) of a full name; titles, suffixes and nicknames dropped."""
    human = HumanName(full)
    first = human.first or None
    middle = human.middle or None
    last = human.last or None
    if first is None and middle is not None:
        first, middle = middle, None
    return first, middle, last


_WORD_RE = re.compile(r"[^\W\d_]+")  # letters only (fullmatch: no trailing newline)


def normalize_person_name(
    first: str | None, last: str | None, full: str | None = None
) -> PersonName:
    """Normalize first/last (or a full name) into ``PersonName`` (see module docstring)."""
    if (
        first
        and last
        and _WORD_RE.fullmatch(first)
        and _WORD_RE.fullmatch(last)
        and first.lower() not in _PLACEHOLDERS
        and last.lower() not in _PLACEHOLDERS
    ):
        # The usual row: one word each, nothing to clean, strip or parse; only casing.
        first, last = _recase(first, "first"), _recase(last, "last")
        return PersonName(first_name=first, last_name=last, full_name=f"{first} {last}")
    return _parsed_name(first, last, full)


@lru_cache(maxsize=65536)
def _parsed_name(first: str | None, last: str | None, full: str | None) -> PersonName:
    """``normalize_person_name`` of any input: cleaned, titles and suffixes stripped, a full
    name parsed where a part is missing."""
    first_c, last_c, full_c = _clean(first), _clean(last), _clean(full)
    if first_c is not None:
        first_c = _strip_suffixes(_strip_titles(first_c)) or None
    if last_c is not None:
        last_c = _strip_suffixes(_strip_titles(last_c)) or None
    if first_c is not None and last_c is None and full_c is None and " " in first_c:
        # Whole name typed in the first-name column.
        full_c = first_c
        first_c = None
    middle: str | None = None
    if (first_c is None or last_c is None) and full_c is not None:
        p_first, p_middle, p_last = _split_full(full_c)
        if first_c is None and last_c is None:
            first_c, middle, last_c = p_first, p_middle, p_last
        elif first_c is None:
            first_c = p_first if p_first and p_first != last_c else None
        elif p_last and p_last.lower() != first_c.lower():
            last_c = p_last
    if first_c is not None:
        first_c = _recase(first_c, "first")
    if last_c is not None:
        last_c = _recase(last_c, "last")
    if middle is not None:
        middle = _recase(middle, "first")
    full_name = " ".join(p for p in (first_c, middle, last_c) if p) or None
    return PersonName(first_name=first_c, last_name=last_c, full_name=full_name)
