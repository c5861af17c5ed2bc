"""Small shared text helpers for the normalizers."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import ftfy

# Values that spreadsheets and CRMs write for "no value".
NULL_TOKENS = frozenset(
    {"", "-", "--", "---", "n/a", "n.a.", "none", "null", "nil", "nan", "#n/a", "?", "."}
)
_NULL_TOKEN_CHARS = max(map(len, NULL_TOKENS))

_WS_RE = re.compile(r"\s+")

# Letters NFKD does not decompose into ASCII.
_FOLD_MAP = {
    "ß": "ss",
    "ø": "o",
    "Ø": "O",
    "æ": "ae",
    "Æ": "AE",
    "œ": "oe",
    "Œ": "OE",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "þ": "th",
    "ı": "i",
}


# What UTF-8 read as cp1252 or Latin-1 leaves behind: a lead byte's character (Â to ô)
# followed by a continuation byte's (0x80-0xBF, or its cp1252 character such as € or ™).
_MOJIBAKE_RE = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192"
    "\u02c6\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030"
    "\u2039\u203a\u20ac\u2122]"
)


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 text decoded as cp1252/Latin-1 (``CafÃ©`` -> ``Café``, ``â€™`` -> ``’``).

    Only text with a character pair that such decoding produces is handed to ftfy (which
    then decides whether it really is mojibake), so ASCII and ordinary accented text pay
    one check."""
    if text.isascii() or _MOJIBAKE_RE.search(text) is None:
        return text
    return _fix_encoding(text)


@lru_cache(maxsize=4096)
def _fix_encoding(text: str) -> str:
    return ftfy.fix_encoding(text)


def clean_cell(raw: str | None) -> str | None:
    """Repair mojibake, trim a CSV cell, drop Excel's leading apostrophe, map null tokens to
    None."""
    if raw is None:
        return None
    text = raw.strip() if raw.isascii() else repair_mojibake(raw).strip()
    # tabs, line breaks and NBSP are not printable: one scan finds them all
    if "  " in text or not text.isprintable():
        text = _WS_RE.sub(" ", text.replace("\u00a0", " ")).strip()
    if text.startswith("'"):
        text = text[1:].strip()
    if len(text) <= _NULL_TOKEN_CHARS and text.lower() in NULL_TOKENS:
        return None
    return text


def collapse_ws(text: str) -> str:
    """Collapse runs of whitespace (incl. NBSP) into one space and trim."""
    return _WS_RE.sub(" ", text.replace("\u00a0", " ")).strip()


def ascii_fold(text: str) -> str:
    """Remove accents where an ASCII equivalent exists; keep other scripts as they are."""
    if text.isascii():  # nothing to decompose or map
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    out: list[str] = []
    for ch in decomposed:
        if unicodedata.combining(ch):
            continue
        out.append(_FOLD_MAP.get(ch, ch))
    return unicodedata.normalize("NFC", "".join(out))


def is_one_case(text: str) -> bool:
    """True when `text` has cased letters and they are all upper or all lower."""
    if text != text.upper() and text != text.lower():  # mixed: no need to look for letters
        return False
    return any(ch.isupper() or ch.islower() for ch in text)
