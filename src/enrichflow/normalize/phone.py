"""Phone numbers: E.164 through phonenumbers' public API, extensions, and the choice of a
lead's one ``phone`` among the columns of an export.

Excel's leading apostrophe and the layout characters are dropped before the cached parse, so
all spellings of one number share a cache entry; placeholders and invalid numbers give None.
An extension (``ext 286``, ``ext. 286``, ``x286``, ``extension 286``) is split off first and
returned on its own.

A number written ``+<digits>`` (most of an export's, once its layout is stripped) is read
without parse's generic front end when that front end could change nothing: the country code
is taken as parse takes it, and the number goes to parse itself whenever the rest starts with
0 or with the country's national prefix (which parse might strip); tests compare the two.

The lead's ``phone`` is the person's own line when there is one (work direct, then mobile,
then other, then home), else a generic phone column that is not the company's number, else the
company's (corporate) line: a switchboard reaches the person last.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import NamedTuple

import phonenumbers

from enrichflow.normalize._text import clean_cell
from enrichflow.normalize.geo import country_code as to_country_code


class Phone(NamedTuple):
    """A number in E.164 (None when junk or invalid) and its extension digits."""

    e164: str | None
    extension: str | None


_NO_PHONE = Phone(None, None)
_PHONE_JUNK_RE = re.compile(r"[^\d+]")
_DIGIT_RE = re.compile(r"\d")
_E164 = phonenumbers.PhoneNumberFormat.E164
_PLAIN_PHONE_RE = re.compile(r"\+?[\d\s().\-/]+")
_LAYOUT_RE = re.compile(r"[\s.\-/]|\((?=\d+\))|(?<=\d)\)")
_EXTENSION_RE = re.compile(
    r"\s*[,;]?\s*(?:ext(?:ension)?\.?:?|x\.?|#)\s*(\d{1,7})\s*$", re.IGNORECASE
)


def _without_layout(text: str) -> str:
    """``_LAYOUT_RE`` applied; without parentheses to weigh, four times cheaper as string
    operations (str.split's whitespace is the regex's ``\\s``)."""
    if "(" in text or ")" in text:
        return _LAYOUT_RE.sub("", text)
    return "".join(text.split()).replace(".", "").replace("-", "").replace("/", "")


_PLUS_DIGITS_RE = re.compile(r"\+[1-9][0-9]{2,19}")


@lru_cache(maxsize=1024)
def _national_prefix(country_code: int) -> tuple[bool, re.Pattern[str] | None]:
    """(whether phonenumbers has metadata for the calling code, the pattern of the national
    prefix it strips from a number of that code, if any)."""
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        return False, None
    prefix = metadata.national_prefix_for_parsing
    return True, re.compile(prefix) if prefix else None


def _parse_plus_digits(text: str) -> phonenumbers.PhoneNumber | None:
    """What ``phonenumbers.parse(text)`` gives for ``+<digits>``, or None to let parse decide
    (see the module docstring)."""
    for size in (1, 2, 3):
        country_code = int(text[1 : size + 1])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = text[size + 1 :]
    if not 2 <= len(national) <= 17 or national[0] == "0":
        return None
    known, prefix = _national_prefix(country_code)
    if not known or (prefix is not None and prefix.match(national)):
        return None
    return phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber:
    """``phonenumbers.parse(text, region)``; ``+<digits>`` mostly without its front end."""
    if _PLUS_DIGITS_RE.fullmatch(text):
        number = _parse_plus_digits(text)
        if number is not None:
            return number
    return phonenumbers.parse(text, region)


@lru_cache(maxsize=65536)
def _parse_cached(text: str, region: str | None) -> Phone:
    """The number in ``text`` (layout already stripped when it was plain), valid in
    ``region`` or anywhere; the extension phonenumbers found in it, if any."""
    digits = _PHONE_JUNK_RE.sub("", text)
    if len(digits.lstrip("+")) < 6:
        return _NO_PHONE
    if text.startswith("00"):
        text = "+" + text[2:]
    candidates: list[tuple[str, str | None]] = [(text, region)]
    if not text.startswith("+"):
        if region is None:
            # No country known: maybe the number already carries its country code.
            candidates.append(("+" + text, None))
        elif region != "US" and digits.startswith("1") and len(digits) == 11:
            candidates.append(("+" + digits, None))
    for candidate, reg in candidates:
        try:
            number = _parse(candidate, reg)
        except phonenumbers.NumberParseException:
            continue
        # The expected region first: finding the region of a +1 number walks every NANP region.
        if (
            reg is not None
            and number.country_code == phonenumbers.country_code_for_region(reg)
            and phonenumbers.is_valid_number_for_region(number, reg)
        ) or phonenumbers.is_valid_number(number):
            return Phone(phonenumbers.format_number(number, _E164), number.extension or None)
    return _NO_PHONE


def parse_phone(raw: str | None, country_code: str | None = None) -> Phone:
    """The number in E.164 and its extension; `country_code` (alpha-2, or anything
    `geo.country_code` understands) is used for numbers written without an international
    prefix."""
    text = clean_cell(raw)
    if text is None or _DIGIT_RE.search(text) is None:
        return _NO_PHONE
    region = to_country_code(country_code) if country_code else None
    if region == "XK":
        region = None
    if _PLAIN_PHONE_RE.fullmatch(text):
        # Only digits and layout characters: one canonical cache key for all spellings.
        return _parse_cached(_without_layout(text), region)
    found = _EXTENSION_RE.search(text)
    if found is None or found.start() == 0:
        return _parse_cached(text, region)
    number = text[: found.start()]
    if _PLAIN_PHONE_RE.fullmatch(number):
        number = _without_layout(number)
    phone = _parse_cached(number, region)
    return phone if phone.e164 is None else Phone(phone.e164, found.group(1))


def normalize_phone(raw: str | None, country_code: str | None = None) -> str | None:
    """Return the phone number in E.164 (``+15109443940``) or None if junk/invalid."""
    return parse_phone(raw, country_code).e164


PHONE_TYPES = ("direct", "mobile", "other", "home", "corporate")

# The person's own lines in order of preference, with the type each one gives.
PERSON_PHONE_FIELDS = (
    ("phone_work_direct", "direct"),
    ("phone_mobile", "mobile"),
    ("phone_other", "other"),
    ("phone_home", "home"),
)
# The person's lines that are kinds of their own (`PhoneChoice`), read even once one is chosen.
_KIND_FIELDS = frozenset(("phone_work_direct", "phone_mobile"))
GENERIC_PHONE_FIELD = "phone"
COMPANY_PHONE_FIELDS = ("phone_corporate", "company_phone")
ALL_PHONE_FIELDS = (
    *(field for field, _ in PERSON_PHONE_FIELDS),
    GENERIC_PHONE_FIELD,
    *COMPANY_PHONE_FIELDS,
)


class PhoneChoice(NamedTuple):
    """A lead's phones: the one to call (``phone``, its type and extension) and each kind."""

    phone: str | None
    phone_type: str | None
    phone_extension: str | None
    direct_phone: str | None
    mobile_phone: str | None
    corporate_phone: str | None
    company_phone: str | None


def choose_phones(
    fields: Mapping[str, str | None],
    person_country: str | None,
    company_country: str | None,
) -> PhoneChoice:
    """Normalize the phone columns present in `fields` (canonical names, see
    `ALL_PHONE_FIELDS`) that the choice or a kind needs, and pick the lead's ``phone`` (see the
    module docstring).

    The direct and mobile lines and the company's are always read (each is a kind of its own);
    the other and home lines and the generic column only while no better line was found, since
    parsing is most of a row's cost and nothing else reads them. Person lines are read in the
    person's country first, company lines in the company's."""
    person_region = person_country or company_country
    company_region = company_country or person_country
    own: dict[str, str | None] = {}
    chosen: Phone | None = None
    chosen_type: str | None = None
    for field, line_type in PERSON_PHONE_FIELDS:
        if field in fields and (chosen is None or field in _KIND_FIELDS):
            phone = parse_phone(fields[field], person_region)
            own[field] = phone.e164
            if chosen is None and phone.e164 is not None:
                chosen, chosen_type = phone, line_type
    corporate = parse_phone(fields.get("phone_corporate"), company_region)
    company = parse_phone(fields.get("company_phone"), company_region)
    company_line = corporate if corporate.e164 is not None else company
    if chosen is None:
        generic = parse_phone(fields.get(GENERIC_PHONE_FIELD), person_region)
        if generic.e164 is not None and generic.e164 not in (corporate.e164, company.e164):
            chosen, chosen_type = generic, "other"
        elif company_line.e164 is not None or generic.e164 is not None:
            chosen = company_line if company_line.e164 is not None else generic
            chosen_type = "corporate"
    return PhoneChoice(
        phone=chosen.e164 if chosen is not None else None,
        phone_type=chosen_type,
        phone_extension=chosen.extension if chosen is not None else None,
        direct_phone=own.get("phone_work_direct"),
        mobile_phone=own.get("phone_mobile"),
        corporate_phone=company_line.e164,
        company_phone=company.e164,
    )
