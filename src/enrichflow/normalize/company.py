"""Company name cleaning and de-duplication keys.

Mojibake is repaired first (before the symbols it hides are removed). `cleanco` strips legal
forms (Inc, GmbH & Co. KG, S.A., Pty Ltd, Oy, A/S ...). Its default term list also holds
short words that are more often part of a brand than a legal form ("UK", "PC", "Spa",
"Private"), so those are removed from it and handled by explicit rules instead. On top of
that we remove trademark symbols and stray punctuation, drop the office Apollo appends to
some names (``GGO, INC.-Texarkana``: a hyphen without spaces after a legal form, or before a
word such as Corporate/HQ or a US state), and repair names written in one case (ALL CAPS /
all lowercase) while keeping deliberate mixed casing (eBay) and acronyms (IBM, AT&T, 3M).

Apollo's "Company Name for Emails" is its own clean, casual form of the name: when it agrees
with the full name it is used, with its casing (``MTE``, ``REMA TIP TOP Australia``; capitals
are kept when the full name is written in capitals too), cleaned of the legal forms it may
keep except a trailing "Company", which the casual form keeps on purpose.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import pycountry
from cleanco.clean import normalized, prepare_default_terms, tail_removal_rexp

from enrichflow.normalize._text import ascii_fold, collapse_ws, is_one_case, repair_mojibake


@dataclass(frozen=True, slots=True)
class CompanyName:
    """Display name without legal form, and a lowercase alphanumeric key for de-duplication."""

    name: str
    match_key: str


# cleanco terms that are too often real words or brand parts to strip blindly.
_AMBIGUOUS_TERMS = frozenset(
    {
        "uk",
        "eu",
        "ca",
        "pc",
        "ok",
        "et",
        "ent",
        "da",
        "ba",
        "at",
        "ps",
        "sf",
        "sd",
        "ss",
        "sc",
        "ee",
        "ec",
        "ei",
        "ep",
        "mb",
        "bm",
        "pp",
        "gp",
        "kt",
        "rt",
        "ud",
        "xt",
        "og",
        "private",
        "bt",
        "cio",
        "cic",
        "ad",
        "ae",
        "ay",
        "bl",
        "dd",
        "fa",
        "hb",
        "hf",
        "ij",
        "ik",
        "kb",
        "kd",
        "kf",
        "ks",
        "kv",
        "ky",
        "nl",
        "od",
        "oe",
        "ong",
        "ou",
        "vat",
        "sp",
        "ses",
        "sem",
        "sep",
        "etat",
        "teo",
        "stg",
        "pt",
        "cv",
        "spa",
        "sa",
        "coop",
        "koop",
        "fie",
        "ans",
        "dat",
        "sal",
        "sha",
        "sia",
        "kft",
        "ltda",
        "unlimited",
        "eg",
    }
)
# Terms added on top of cleanco's list (normalized: lowercase, no dots/commas/hyphens).
_EXTRA_TERMS = (
    "kabushiki kaisha",
    "kabushikigaisha",
    "yugen kaisha",
    "godo kaisha",
    "private limited",
    "pvt",
    "pty",
    "proprietary limited",
    "ltda",
    "ltda me",
    "ltd liability co",
    "limited liability company",
    "limited partnership",
    "sa",
    "sa de cv",
    "sapi de cv",
    "s en c",
    "spa",
    "sas",
    "sarl",
    "sl",
    "co",
    "holding gmbh",
    "sab de cv",
    "aktiengesellschaft",
    "gesellschaft mit beschrankter haftung",
    "kommanditgesellschaft",
    "societe anonyme",
    "sociedad anonima",
    "naamloze vennootschap",
    "besloten vennootschap",
    "aktiebolag",
    "aktieselskab",
    "osakeyhtio",
    "societa per azioni",
)


def _build_terms() -> list[tuple[int, list[str]]]:
    terms = [
        (size, parts)
        for size, parts in prepare_default_terms()
        if not (size == 1 and parts[0] in _AMBIGUOUS_TERMS)
    ]
    # "sa", "spa", "ltda" come back through the dotted-form rules below or as explicit extras
    extra = [(len(t.split()), t.split()) for t in _EXTRA_TERMS if t not in {"spa"}]
    merged = {(size, tuple(parts)) for size, parts in terms + extra}
    return [(size, list(parts)) for size, parts in sorted(merged, key=lambda x: (-x[0], x[1]))]


_TERMS = _build_terms()


def _terms_by_last_word() -> dict[str, tuple[tuple[int, int, list[str]], ...]]:
    """(position in ``_TERMS``, size, parts) of the terms, grouped by their last word."""
    grouped: dict[str, list[tuple[int, int, list[str]]]] = {}
    for position, (size, parts) in enumerate(_TERMS):
        grouped.setdefault(parts[-1], []).append((position, size, parts))
    return {word: tuple(terms) for word, terms in grouped.items()}


_TERMS_BY_LAST_WORD = _terms_by_last_word()
_TAIL_RE: re.Pattern[str] = tail_removal_rexp


def _basename(name: str) -> str:
    """cleanco's ``custom_basename(name, _TERMS)``: legal-form suffixes removed.

    cleanco tries all ~200 terms in turn against the name's tail, removing each that matches;
    only terms ending in the tail's last word can match, so they are looked up by it and
    tried in the same order (tests/test_normalize_company.py checks the agreement). That
    lookup made a new company's name several times cheaper to clean.
    """
    name = _strip_tail(name)
    parts = name.split()
    # cleanco's accent removal leaves ASCII text as its lower case
    folded = name.lower() if name.isascii() else normalized(name)
    keys = [part.replace(".", "").replace(",", "").replace("-", "") for part in folded.split()]
    after = -1
    while keys:
        for position, size, term in _TERMS_BY_LAST_WORD.get(keys[-1], ()):
            if position > after and keys[-size:] == term:
                break
        else:
            break
        del keys[-size:]
        del parts[-size:]
        after = position
    return _strip_tail(" ".join(parts))


def _strip_tail(name: str) -> str:
    """cleanco's ``strip_tail``: trailing symbols other than dots removed."""
    tail = _TAIL_RE.search(name)
    return name[: tail.start()] if tail else name


_TRADEMARK_RE = re.compile(r"[™®©℠]|\((?:tm|r|c|sm)\)", re.IGNORECASE)
# Legal forms that cleanco does not see because of parentheses or exact casing.
_PAREN_LEGAL_RE = re.compile(r"\((pty|pvt|pte|private|proprietary)\)", re.IGNORECASE)
_DOTTED_SPA_RE = re.compile(r"(?:,?\s+)(?:S\.p\.A\.?|SpA|S\.P\.A\.?|s\.p\.a\.?)$")
_CJK_LEGAL_RE = re.compile(
    r"^(?:株式会社|有限会社|合同会社|\(株\)|㈱)\s*|\s*(?:株式会社|有限会社|合同会社|\(株\)|㈱)$"
)
_DANGLING_AND_RE = re.compile(r"\s*(?:&|\band)$")
_DOTTED_INITIALS_RE = re.compile(r"(?:\w\.){2,}\w?\.?")
_ORDINAL_RE = re.compile(r"\d+(?:st|nd|rd|th)")
_APOSTROPHE_SPLIT_RE = re.compile(r"(['’])")
_NON_WORD_RE = re.compile(r"[^\w]+")
_TRAILING_NOTE_RE = re.compile(r"\s*\([^()]*\)$")
_TAGLINE_SPLIT_RE = re.compile(r"\s+[|·•]\s+")
_DASH_SPLIT_RE = re.compile(r"\s+[-–—:]\s+")
_LEAD_PUNCT = " \t-–—_,;:|/\\*•·.\"'"
_TRAIL_PUNCT = " \t-–—_,;:|/\\*•·\"'"

# Acronyms and brands that stay upper-case (keys are lowercase).
_KNOWN_CAPS = frozenset(
    {
        "ibm",
        "at&t",
        "3m",
        "hp",
        "ge",
        "bmw",
        "sap",
        "kpmg",
        "ey",
        "ups",
        "bp",
        "bt",
        "cvs",
        "aig",
        "amd",
        "arm",
        "axa",
        "bbc",
        "cnn",
        "dhl",
        "ikea",
        "nasa",
        "nbc",
        "td",
        "ubs",
        "usaa",
        "lg",
        "abb",
        "ing",
        "hsbc",
        "rbc",
        "bnp",
        "cibc",
        "tcs",
        "hcl",
        "ntt",
        "nec",
        "tsmc",
        "amc",
        "adp",
        "cbs",
        "espn",
        "ihs",
        "ncr",
        "nrg",
        "ppg",
        "relx",
        "sgs",
        "tui",
        "aecom",
        "caci",
        "cgi",
        "dxc",
        "epam",
        "iqvia",
        "nvidia",
        "usa",
        "uk",
        "us",
        "eu",
        "ai",
        "it",
        "hr",
        "api",
        "crm",
        "b2b",
        "b2c",
        "iot",
        "pr",
        "roi",
        "aws",
        "gcp",
        "msc",
        "uae",
        "nyc",
        "la",
        "sf",
        "dc",
        "ceo",
        "cto",
        "cpa",
        "llc",
        "plc",
        "gmbh",
        "sas",
        "ag",
        "sa",
        "nv",
        "bv",
        "ab",
        "oy",
        "kk",
        "lp",
        "llp",
        "ltd",
        "inc",
        "xyz",
        "vr",
        "ar",
        "ml",
        "ui",
        "ux",
        "qa",
        "seo",
        "sem",
        "cad",
        "erp",
        "hvac",
        "diy",
        "tv",
        "fm",
        "rv",
        "atm",
        "gps",
        "cnc",
        "led",
        "ict",
        "sms",
        "mba",
        "phd",
        "md",
        "jv",
        "rx",
        "mri",
        "ems",
        "icu",
        "emea",
        "apac",
        "latam",
        "nz",
        "hk",
        "sg",
        "bmc",
        "sbi",
        "icici",
        "hdfc",
        "lvmh",
        "ibm's",
        "kfc",
        "mgm",
        "abc",
        "dbs",
        "uob",
        "aia",
        "rwe",
        "eon",
        "basf",
        "dsm",
        "asml",
        "nxp",
        "rtl",
        "fedex",
        "gsk",
        "bhp",
    }
)
# Words written lowercase inside a repaired name (never first).
_SMALL_WORDS = frozenset(
    {"of", "and", "the", "for", "in", "on", "at", "to", "by", "de", "du", "des", "la", "le",
     "et", "y", "und", "van", "der", "von", "a", "an", "or", "da", "di", "del", "e"}
)  # fmt: skip
_VOWELS = frozenset("aeiouyàáâãäåèéêëìíîïòóôõöùúûüý")
_SPECIAL_FIXES = {"ebay": "eBay", "iphone": "iPhone", "youtube": "YouTube", "linkedin": "LinkedIn"}


def _strip_legal(name: str) -> str:
    """Remove legal-form suffixes repeatedly (``Foo Co., Ltd.`` needs two passes)."""
    text = _PAREN_LEGAL_RE.sub(r"\1", name)
    text = _CJK_LEGAL_RE.sub("", text).strip()
    for _ in range(4):
        spa = _DOTTED_SPA_RE.sub("", text).strip()
        new = _basename(spa)
        new = new.strip(_TRAIL_PUNCT).strip()
        if not new or new.lower() in {"the", "&", "and"}:
            return text
        # "& Co" style leftovers: a dangling ampersand.
        new = _DANGLING_AND_RE.sub("", new).strip(_TRAIL_PUNCT).strip()
        if new == text or not new:
            return new or text
        text = new
    return text


def _cap_word(word: str, first: bool) -> str:
    lower = word.lower()
    if lower in _SPECIAL_FIXES:
        return _SPECIAL_FIXES[lower]
    if lower in _KNOWN_CAPS:
        return word.upper()
    if not first and lower in _SMALL_WORDS:
        return lower
    letters = [ch for ch in lower if ch.isalpha()]
    if _ORDINAL_RE.fullmatch(lower):
        return lower  # 1st, 22nd
    if any(ch.isdigit() for ch in word) and len(letters) <= 3:
        return word.upper()  # 3M, 7UP, A1
    if "&" in word and len(letters) <= 4:
        return word.upper()  # AT&T, P&G, H&M
    if _DOTTED_INITIALS_RE.fullmatch(word):
        return word.upper()  # J.P., U.S.A.
    if 2 <= len(letters) <= 4 and not any(ch in _VOWELS for ch in letters):
        return word.upper()  # HSBC, KPMG, BNP
    if "/" in word:
        parts = word.split("/")
        if all(len(part) <= 3 for part in parts):
            return word.upper()  # AC/DC, I/O, A/B
        return "/".join(_cap_word(part, first) for part in parts)
    return "-".join(_cap_part(part) for part in word.split("-"))


def _cap_part(part: str) -> str:
    if not part:
        return part
    lower = part.lower()
    # Apostrophes: McDonald's keeps "'s", O'Reilly capitalizes after the apostrophe.
    pieces = _APOSTROPHE_SPLIT_RE.split(lower)
    out: list[str] = []
    for idx, piece in enumerate(pieces):
        if idx == 0:
            out.append(_cap_mc(piece))
        elif piece in {"'", "’"} or (
            len(piece) <= 2 and piece in {"s", "t", "ll", "re", "ve", "d", "m"}
        ):
            out.append(piece)
        else:
            out.append(_cap_mc(piece))
    return "".join(out)


def _cap_mc(piece: str) -> str:
    if len(piece) > 3 and piece.startswith("mc"):
        return "Mc" + piece[2:].capitalize()
    if piece[:1].isdigit():
        return piece  # 3albe, 99designs: a brand that starts with a number keeps its letters
    if piece and not piece[0].isalpha():
        # "(abc" -> "(Abc"
        idx = next((i for i, ch in enumerate(piece) if ch.isalpha()), None)
        if idx is None:
            return piece
        return piece[:idx] + piece[idx:].capitalize()
    return piece.capitalize()


def _fix_case(name: str) -> str:
    """Title-case a name written in one case; keep deliberate mixed casing untouched."""
    if not is_one_case(name):
        return name
    words = name.split(" ")
    return " ".join(_cap_word(w, i == 0) for i, w in enumerate(words))


def _tokens(text: str) -> list[str]:
    folded = ascii_fold(text).casefold().replace("&", " ")
    return [t for t in _NON_WORD_RE.split(folded) if t and t != "_"]


def _key_from(text: str) -> str:
    tokens = [t for t in _tokens(text) if t not in {"the", "and"}]
    return "".join(ch for ch in "".join(tokens) if ch.isalnum())


def _consistent(short: str, full: str) -> bool:
    """Is the short name a prefix / token subset / compacted prefix of the full name?"""
    s_tokens, f_tokens = _tokens(short), _tokens(full)
    if not s_tokens or not f_tokens:
        return False
    if f_tokens[: len(s_tokens)] == s_tokens:
        return True
    if set(s_tokens) <= set(f_tokens):
        return True
    s_key, f_key = "".join(s_tokens), "".join(f_tokens)
    return f_key.startswith(s_key) and len(s_key) >= 3


def _base_clean(text: str) -> str:
    text = _TRADEMARK_RE.sub("", text)
    text = unicodedata.normalize("NFKC", text)
    text = collapse_ws(text.replace("’", "'"))
    text = text.strip(_LEAD_PUNCT).rstrip(_TRAIL_PUNCT)
    # A trailing parenthetical is a note, not the name: "Alphabet Inc. (Google)".
    without_note = _TRAILING_NOTE_RE.sub("", text)
    if without_note and not _PAREN_LEGAL_RE.search(text[len(without_note) :]):
        text = without_note.rstrip(_TRAIL_PUNCT)
    # Balance a dangling "(": "Acme (Pty" -> "Acme".
    if text.count("(") > text.count(")"):
        text = text[: text.rfind("(")].rstrip(_TRAIL_PUNCT)
    return text


def _strip_trailing_dot(text: str) -> str:
    if text.endswith(".") and not text.endswith(".."):
        last = text.split(" ")[-1]
        inner = last[:-1]
        if "." not in inner and len(inner) > 4:
            return text[:-1]
    return text


# An office Apollo appends after a hyphen: the name before it ends in a legal form, or the
# office is a word that names no company.
_OFFICE_SUFFIX_RE = re.compile(r"^(?P<base>.*[^\s-])-(?P<office>[^\W\d_][\w .'&]*)$")
_LEGAL_END_RE = re.compile(
    r"(?:\binc\.?|\bllc|\bl\.l\.c\.?|\bltd\.?|\blimited|\bcorp\.|\bcorporation|\bco\.|"
    r"\bl\.?l\.?p\.?|\bplc|\bgmbh|\bpllc|,)$",
    re.IGNORECASE,
)
_OFFICE_WORDS = frozenset(
    {"corporate", "corporate office", "corporate headquarters", "corp office", "hq",
     "headquarters", "head office", "main office", "home office", "global", "hq office",
     "north america", "usa", "us"}
)  # fmt: skip
_US_STATES = frozenset(
    str(sub.name).lower()
    for sub in pycountry.subdivisions.get(country_code="US") or []  # type: ignore[no-untyped-call]
)
_COMPANY_WORD_RE = re.compile(r"(?:\s+(?:&|and))?\s+compan(?:y|ies)\b", re.IGNORECASE)


def _strip_office(text: str) -> str:
    """``text`` without an office suffix Apollo appended (see the module docstring)."""
    found = _OFFICE_SUFFIX_RE.match(text)
    if found is None:
        return text
    base, office = found.group("base"), found.group("office").strip().lower()
    if _LEGAL_END_RE.search(base) or office in _OFFICE_WORDS or office in _US_STATES:
        return base.rstrip(_TRAIL_PUNCT) or text
    return text


def _clean_short(short: str) -> str:
    """Apollo's casual name without legal forms, keeping a "Company" it ends with
    (``Spellbinders Paper Arts Company``, ``RSAV AND COMPANY``)."""
    found = list(_COMPANY_WORD_RE.finditer(short))
    last = found[-1] if found else None
    if last is not None and last.start() > 0:
        tail = short[last.end() :].strip(_TRAIL_PUNCT + ".")
        if not tail or _strip_legal(f"X {tail}") == "X":
            head = _strip_trailing_dot(_strip_legal(short[: last.start()]))
            return head + short[last.start() : last.end()]
    return _strip_trailing_dot(_strip_legal(short))


def _written_in_capitals(name: str, full: str) -> bool:
    """Every word of ``name`` appears in capitals in ``full`` (the brand is styled so, not
    merely typed so by one of the two sources)."""
    words = {word.strip(",.") for word in full.split()}
    return all(word in words for word in name.split())


@lru_cache(maxsize=32768)
def normalize_company_name(name: str | None, short_name: str | None = None) -> CompanyName:
    """Clean a company name (see module docstring); empty input gives ``CompanyName("", "")``."""
    if name is None or not name.strip():
        return CompanyName(name="", match_key="")
    text = _base_clean(repair_mojibake(name))
    # A tagline after " | " is never part of the name.
    parts = _TAGLINE_SPLIT_RE.split(text)
    if len(parts) > 1 and parts[0]:
        text = parts[0]
    text = _strip_office(text)
    cleaned = _strip_trailing_dot(_strip_legal(text)) if text else ""
    if text.endswith("!") and text.startswith(cleaned + "!"):
        cleaned += "!"  # Yahoo!
    short = _base_clean(repair_mojibake(short_name)) if short_name else ""
    from_short = False
    if short and cleaned:
        short_clean = _clean_short(short)
        if short_clean and (_consistent(short_clean, cleaned) or _consistent(short_clean, text)):
            cleaned = _pick_casing(short_clean, cleaned)
            from_short = True
    if not cleaned:
        return CompanyName(name="", match_key="")
    if cleaned.isupper() and (
        (from_short and _written_in_capitals(cleaned, text))
        or (" " not in cleaned and cleaned.isalpha() and len(cleaned) <= 3)
    ):
        display = cleaned  # MTE, GGO: capitals nothing contradicts
    else:
        display = _fix_case(cleaned)
    return CompanyName(name=display, match_key=_key_from(display))


def _pick_casing(short: str, full: str) -> str:
    """Use the short name, but keep the full name's spelling of the same words when the full
    name is deliberately cased (``HubSpot, Inc.`` + ``Hubspot`` -> ``HubSpot``)."""
    prefix = " ".join(full.split()[: len(short.split())])
    if prefix.casefold() == short.casefold() and not is_one_case(prefix):
        return prefix
    return short
