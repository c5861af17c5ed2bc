"""E-mail and phone normalization.

E-mails go through `email_validator` (syntax only, never DNS) and are lower-cased entirely:
lead lists are matched case-insensitively and no mainstream provider has case-sensitive
mailboxes. Phones go through `phonenumbers` and come out in E.164; Excel's leading apostrophe
and extensions are dropped, placeholders and invalid numbers give None.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from phonenumbers import PhoneMetadata, ValidationResult, region_code_for_country_code
from phonenumbers.phonenumberutil import (
    _MAX_LENGTH_FOR_NSN,
    _MIN_LENGTH_FOR_NSN,
    _extract_country_code,
    _is_number_matching_desc,
    _maybe_strip_national_prefix_carrier_code,
    _set_italian_leading_zeros_for_phone_number,
    _test_number_length,
)

from enrichflow.normalize._text import clean_cell
from enrichflow.normalize.geo import country_code as to_country_code


class EmailResult(NamedTuple):
    """Normalized e-mail: `email` is None only when the cell is empty/placeholder (a tuple:
    built once per row by the split and the core step, at half a frozen dataclass's cost)."""

    email: str | None
    valid: bool


_MAILTO_RE = re.compile(r"^mailto:", re.IGNORECASE)

# Fast path for the common plain-ASCII address. It accepts only a strict subset of what
# email_validator accepts (dot-atom local part, LDH labels without "--", alphabetic TLD,
# RFC length limits, no special-use domain), so results are identical; everything else
# goes through email_validator. tests/test_normalize_contact.py checks the agreement.
_ATEXT = r"[a-z0-9_!#$%&'*+/=?^`{|}~-]+"
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_FAST_LOCAL_RE = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*")
_FAST_DOMAIN_RE = re.compile(rf"(?:{_LABEL}\.)+[a-z]{{2,63}}")
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def _fast_valid(text: str) -> bool:
    local, at, domain = text.partition("@")
    return (
        bool(at)
        and len(text) <= 254
        and len(local) <= 64
        and _FAST_LOCAL_RE.fullmatch(local) is not None
        and _fast_valid_domain(domain)
    )


@lru_cache(maxsize=16384)
def _fast_valid_domain(domain: str) -> bool:
    """The fast path's domain checks: colleagues share a domain, so they are cached."""
    if len(domain) > 253 or "--" in domain or _FAST_DOMAIN_RE.fullmatch(domain) is None:
        return False
    return domain.rsplit(".", 1)[-1] not in _SPECIAL_USE and not any(
        domain.endswith("." + name) for name in _SPECIAL_USE
    )


def _normalize_email_text(text: str) -> EmailResult:
    lowered = text.lower()
    if _fast_valid(lowered):
        return EmailResult(email=lowered, valid=True)
    return _validated_email(text)


@lru_cache(maxsize=65536)
def _validated_email(text: str) -> EmailResult:
    """email_validator's verdict, for what the fast path does not accept."""
    try:
        info = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return EmailResult(email=text.lower(), valid=False)
    return EmailResult(email=info.normalized.lower(), valid=True)


def normalize_email(raw: str | None) -> EmailResult:
    """Trim, strip ``mailto:``/angle brackets, lower-case and syntax-check an e-mail."""
    text = clean_cell(raw)
    if text is None:
        return EmailResult(email=None, valid=False)
    # a mailto: prefix needs a colon; plain addresses skip the regex
    if "<" in text or ">" in text or (":" in text and _MAILTO_RE.match(text)):
        text = _MAILTO_RE.sub("", text).strip()
        if "<" in text and text.endswith(">"):  # "Jane Doe <jane@acme.com>"
            text = text[text.rindex("<") + 1 : -1].strip()
        text = _MAILTO_RE.sub("", text.strip("<> ")).strip()
        if not text:
            return EmailResult(email=None, valid=False)
    return _normalize_email_text(text)


_PHONE_JUNK_RE = re.compile(r"[^\d+]")
_DIGIT_RE = re.compile(r"\d")
_E164 = phonenumbers.PhoneNumberFormat.E164
_PLAIN_PHONE_RE = re.compile(r"\+?[\d\s().\-/]+")
_LAYOUT_RE = re.compile(r"[\s.\-/]|\((?=\d+\))|(?<=\d)\)")


def _without_layout(text: str) -> str:
    """``_LAYOUT_RE`` applied; without parentheses to weigh, four times cheaper as string
    operations (str.split's whitespace is the regex's ``\\s``)."""
    if "(" in text or ")" in text:
        return _LAYOUT_RE.sub("", text)
    return "".join(text.split()).replace(".", "").replace("-", "").replace("/", "")


@lru_cache(maxsize=65536)
def _normalize_phone_cached(text: str, region: str | None) -> str | None:
    digits = _PHONE_JUNK_RE.sub("", text)
    if len(digits.lstrip("+")) < 6:
        return None
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
        if _is_valid(number, reg):
            return str(phonenumbers.format_number(number, _E164))
    return None


_INTERNATIONAL_RE = re.compile(r"\+[0-9]{3,20}")
_UNUSABLE_LENGTH = (
    ValidationResult.TOO_SHORT,
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ValidationResult.INVALID_LENGTH,
)


def _parse(text: str, region: str | None) -> phonenumbers.PhoneNumber:
    """``phonenumbers.parse(text, region)``; most numbers take the shortcut below."""
    if _INTERNATIONAL_RE.fullmatch(text):
        number = _parse_international(text[1:])
        if number is not None:
            return number
    return phonenumbers.parse(text, region)


def _parse_international(digits: str) -> phonenumbers.PhoneNumber | None:
    """What ``parse`` gives for ``"+" + digits`` (ASCII digits), else None to let it decide.

    Such a text needs none of parse's generic front end (finding a number in free text,
    extensions, normalising every character, which cost half of parse), and the region
    does not matter once the number carries a country code. The steps that follow are
    parse's own (tests/test_normalize_contact.py compares the two)."""
    country_code, national = _extract_country_code(digits)
    if country_code == 0:
        return None
    region = region_code_for_country_code(country_code)
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None or len(national) < _MIN_LENGTH_FOR_NSN:
        return None
    _, without_prefix, _ = _maybe_strip_national_prefix_carrier_code(national, metadata)
    if _test_number_length(without_prefix, metadata) not in _UNUSABLE_LENGTH:
        national = without_prefix
    if not _MIN_LENGTH_FOR_NSN <= len(national) <= _MAX_LENGTH_FOR_NSN:
        return None
    number = phonenumbers.PhoneNumber(country_code=country_code)
    _set_italian_leading_zeros_for_phone_number(national, number)
    number.national_number = int(national)
    return number


def _is_valid(number: phonenumbers.PhoneNumber, region: str | None) -> bool:
    """is_valid_number, asking the expected region first: finding the region of a +1 number
    walks all NANP regions and is the slowest part of validation."""
    if (
        region is not None
        and number.country_code == phonenumbers.country_code_for_region(region)
        and _is_valid_for_region(number, region)
    ):
        return True
    home = phonenumbers.region_code_for_number(number)
    if home is None or home == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return bool(phonenumbers.is_valid_number(number))
    return _is_valid_for_region(number, home)  # what is_valid_number asks, answered faster


def _is_valid_for_region(number: phonenumbers.PhoneNumber, region: str) -> bool:
    """``is_valid_number_for_region`` for a region of the number's country code.

    The library finds the number's type, trying eight rare types before the fixed-line and
    mobile patterns most numbers match; valid means that some type matches, so the common
    ones go first (tests/test_normalize_contact.py compares the two)."""
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return False
    nsn = phonenumbers.national_significant_number(number)
    if not _is_number_matching_desc(nsn, metadata.general_desc):
        return False
    # Like the library, the mobile pattern only counts where it differs from the fixed-line one.
    mobile = None if metadata.same_mobile_and_fixed_line_pattern else metadata.mobile
    return any(
        _is_number_matching_desc(nsn, desc)
        for desc in (
            metadata.fixed_line,
            mobile,
            metadata.premium_rate,
            metadata.toll_free,
            metadata.shared_cost,
            metadata.voip,
            metadata.personal_number,
            metadata.pager,
            metadata.uan,
            metadata.voicemail,
        )
    )


def _normalize_phone_public(text: str, region: str | None) -> str | None:
    """``_normalize_phone_cached`` through phonenumbers' public API only (parse, then
    is_valid_number_for_region in the expected region, else is_valid_number)."""
    digits = _PHONE_JUNK_RE.sub("", text)
    if len(digits.lstrip("+")) < 6:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    candidates: list[tuple[str, str | None]] = [(text, region)]
    if not text.startswith("+"):
        if region is None:
            candidates.append(("+" + text, None))
        elif region != "US" and digits.startswith("1") and len(digits) == 11:
            candidates.append(("+" + digits, None))
    for candidate, reg in candidates:
        try:
            number = phonenumbers.parse(candidate, reg)
        except phonenumbers.NumberParseException:
            continue
        if (
            reg is not None
            and number.country_code == phonenumbers.country_code_for_region(reg)
            and phonenumbers.is_valid_number_for_region(number, reg)
        ) or phonenumbers.is_valid_number(number):
            return str(phonenumbers.format_number(number, _E164))
    return None


def normalize_phone(raw: str | None, country_code: str | None = None) -> str | None:
    """Return the phone number in E.164 (``+15109443940``) or None if junk/invalid.

    `country_code` (alpha-2, or anything `geo.country_code` understands) is used for
    numbers written without an international prefix.
    """
    text = clean_cell(raw)
    if text is None or _DIGIT_RE.search(text) is None:
        return None
    region = to_country_code(country_code) if country_code else None
    if region == "XK":
        region = None
    if _PLAIN_PHONE_RE.fullmatch(text):
        # Only digits and layout characters: one canonical cache key for all spellings.
        text = _without_layout(text)
    return _normalize_phone_cached(text, region)
