"""E-mail normalization and the verification status an export gives an address.

E-mails go through `email_validator` (syntax only, never DNS) and are lower-cased entirely:
lead lists are matched case-insensitively and no mainstream provider has case-sensitive
mailboxes. Phones are in `phone`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from enrichflow.normalize._text import clean_cell


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


EMAIL_STATUSES = ("verified", "unverified", "guessed", "catch_all", "invalid", "unknown")

# Apollo's Email Status values across its export versions (and common verifier words), by
# key: lower case, words separated by single spaces. "Likely to engage" is Apollo's verified
# address with recent activity; "Update required" flags an address Apollo no longer trusts.
_STATUS_MAP = {
    "verified": "verified",
    "likely to engage": "verified",
    "valid": "verified",
    "deliverable": "verified",
    "safe": "verified",
    "unverified": "unverified",
    "user managed": "unverified",
    "needs verification": "unverified",
    "pending manual verification": "unverified",
    "pending": "unverified",
    "risky": "unverified",
    "guessed": "guessed",
    "extrapolated": "guessed",
    "probable": "guessed",
    "catch all": "catch_all",
    "catchall": "catch_all",
    "accept all": "catch_all",
    "invalid": "invalid",
    "bounced": "invalid",
    "hard bounce": "invalid",
    "undeliverable": "invalid",
    "update required": "invalid",
    "do not email": "invalid",
    "unavailable": "unknown",
    "no email": "unknown",
    "not found": "unknown",
    "unknown": "unknown",
}
_CATCH_ALL = frozenset({"catch all", "catchall", "accept all", "true", "yes", "1"})
_STATUS_SPLIT_RE = re.compile(r"[\s_\-/]+")


@lru_cache(maxsize=256)
def email_status(status: str | None, catch_all: str | None = None) -> str:
    """One of `EMAIL_STATUSES` from an export's ``Email Status`` and ``Primary Email Catch-all
    Status`` cells: a catch-all domain makes a verified or unverified address ``catch_all``
    (the mailbox itself cannot be confirmed); empty or unknown words give ``unknown``."""
    key = _STATUS_SPLIT_RE.sub(" ", (clean_cell(status) or "").lower()).strip()
    found = _STATUS_MAP.get(key, "unknown")
    catch_key = _STATUS_SPLIT_RE.sub(" ", (clean_cell(catch_all) or "").lower()).strip()
    if found in {"verified", "unverified"} and catch_key in _CATCH_ALL:
        return "catch_all"
    return found


def email_valid(email: EmailResult, status: str | None) -> bool | None:
    """Whether to mail the address: syntactically valid and ``verified``; `status` None
    means the file has no status column, so syntax alone decides. None for no address."""
    if email.email is None:
        return None
    return email.valid and (status is None or status == "verified")
