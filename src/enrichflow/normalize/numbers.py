"""Parsing of amounts (employees, revenue, funding), lists and booleans from CSV cells.

Amount rules (documented here because the inputs are ambiguous):

* Currency symbols and ISO codes (``$``, ``€``, ``£``, ``USD`` ...) are ignored; the result is
  a plain integer in the unit written (no FX conversion).
* Multipliers: ``K``/``thousand`` = 1e3, ``M``/``MM``/``Mn``/``million`` = 1e6,
  ``B``/``Bn``/``billion`` = 1e9, ``T``/``trillion`` = 1e12 (case-insensitive).
* ``,`` followed by groups of exactly three digits is a thousands separator (``4,500,000``);
  otherwise a single ``,`` is a decimal comma (``€2,3M`` = 2,300,000).
* Several ``.`` separators are European thousands separators (``1.200.000``); a single ``.``
  is a decimal point (``12.0`` -> 12, ``1.5B`` -> 1,500,000,000). When both ``.`` and ``,``
  occur, the later one is the decimal separator (``1.234,5`` / ``1,234.5``).
* Fractions are rounded half-up to the nearest integer.
* Ranges (``51-200``, ``51 to 200``, ``10,001+``) give the LOWER bound: it is the only value
  the source actually guarantees. A trailing ``+`` is ignored.
* Negative values, text without digits and null tokens give None.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from enrichflow.normalize._text import clean_cell

_MULTIPLIERS: dict[str, int] = {
    "": 1,
    "k": 10**3,
    "thousand": 10**3,
    "m": 10**6,
    "mm": 10**6,
    "mn": 10**6,
    "mil": 10**6,
    "mio": 10**6,
    "million": 10**6,
    "millions": 10**6,
    "b": 10**9,
    "bn": 10**9,
    "bil": 10**9,
    "billion": 10**9,
    "billions": 10**9,
    "t": 10**12,
    "tn": 10**12,
    "trillion": 10**12,
}

_CURRENCY_RE = re.compile(
    r"(?i)(usd|eur|gbp|chf|cad|aud|inr|jpy|cny|sek|nok|dkk|us\$|[$€£¥₹₩₽¢]|approx\.?|about|~|≈)"
)
_NUMBER_RE = re.compile(
    r"^(?P<num>\d[\d.,' ]*(?:e[+-]?\d+)?)\s*(?P<mult>[a-z]*)\.?$", re.IGNORECASE
)
_RANGE_RE = re.compile(r"^(.+?)\s*(?:-|–|—|to)\s*(.+)$", re.IGNORECASE)


def _to_decimal(num: str) -> Decimal | None:
    num = num.replace(" ", "").replace("'", "")
    exp = ""
    match = re.search(r"[eE][+-]?\d+$", num)
    if match:
        exp = match.group(0)
        num = num[: match.start()]
    dots, commas = num.count("."), num.count(",")
    if dots and commas:
        if num.rfind(",") > num.rfind("."):
            num = num.replace(".", "").replace(",", ".")
        else:
            num = num.replace(",", "")
    elif commas:
        groups = num.split(",")
        if all(len(g) == 3 for g in groups[1:]) and groups[0]:
            num = num.replace(",", "")
        elif commas == 1:
            num = num.replace(",", ".")
        else:
            return None
    elif dots > 1:
        groups = num.split(".")
        if not all(len(g) == 3 for g in groups[1:]):
            return None
        num = num.replace(".", "")
    try:
        return Decimal(num + exp)
    except InvalidOperation:
        return None


def _parse_single(text: str) -> int | None:
    text = _CURRENCY_RE.sub("", text).strip().rstrip("+").strip()
    match = _NUMBER_RE.match(text)
    if match is None:
        return None
    mult = _MULTIPLIERS.get(match.group("mult").lower())
    if mult is None:
        return None
    value = _to_decimal(match.group("num").strip())
    if value is None:
        return None
    result = (value * mult).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(result)


def parse_int_amount(raw: str | int | float | None) -> int | None:
    """Parse an employee count or money amount into an int (see module docstring)."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw >= 0 else None
    if isinstance(raw, float):
        if raw != raw or raw < 0:  # NaN or negative
            return None
        return int(Decimal(str(raw)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    text = clean_cell(raw)
    if text is None:
        return None
    if text.startswith(("-", "−", "(")):
        return None
    single = _parse_single(text)
    if single is not None:
        return single
    range_match = _RANGE_RE.match(text)
    if range_match is not None:
        low_text, high_text = range_match.group(1), range_match.group(2)
        low = _parse_single(low_text)
        if low is None:
            return None
        # "1-5M": the multiplier written once applies to both ends.
        if re.fullmatch(r"[\d.,\s]+", _CURRENCY_RE.sub("", low_text).strip()):
            high_match = _NUMBER_RE.match(_CURRENCY_RE.sub("", high_text).strip().rstrip("+"))
            if high_match and high_match.group("mult"):
                return _parse_single(low_text + high_match.group("mult"))
        return low
    return None


_LIST_SPLIT_RE = re.compile(r"[,;\n|]")


def parse_list(raw: str | None) -> list[str]:
    """Split a keywords/technologies cell on ``,``/``;``/``|``/newlines.

    Items are trimmed (inner whitespace collapsed), empties dropped, duplicates removed
    case-insensitively keeping the first spelling and the original order.
    """
    if raw is None:
        return []
    return unique_items(_LIST_SPLIT_RE.split(raw))


def unique_items(parts: Iterable[str]) -> list[str]:
    """`parse_list`'s clean-up of items already split: trimmed, no empties, no duplicates."""
    out: list[str] = []
    seen: set[str] = set()
    for part in parts:
        item = " ".join(part.split()).strip("\"'")
        item = item.strip()
        if not item:
            continue
        key = item.casefold()
        if key in seen:
            continue
        seen.add(key)
        out.append(item)
    return out


_TRUE = frozenset({"true", "t", "yes", "y", "1", "on", "x", "✓", "checked"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off", "unchecked"})


def parse_bool(raw: str | bool | int | None) -> bool | None:
    """Parse yes/no style cells (true/false/yes/no/y/n/1/0/on/off); anything else is None."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int):
        return {1: True, 0: False}.get(raw)
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if text in {"1.0"}:
        return True
    if text in {"0.0"}:
        return False
    return None
