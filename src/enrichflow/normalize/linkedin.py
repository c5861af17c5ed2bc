"""Canonical LinkedIn profile and company URLs.

Person URLs become ``https://www.linkedin.com/in/<slug>`` and company URLs
``https://www.linkedin.com/company/<slug>``, whatever the country sub-domain, scheme,
tracking query, trailing path (``/about``, ``/details/...``) or case. Slugs are
percent-decoded, lower-cased and re-encoded so that ``josé`` and ``jos%C3%A9`` collapse to
the same key. A URL of the other kind (company passed to the person function) gives None.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

from enrichflow.normalize._text import clean_cell

_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_SLUG_SAFE = "-_.~!*()"
_PERSON_PREFIXES = frozenset({"in", "pub"})
_COMPANY_PREFIXES = frozenset({"company", "company-beta"})


def _path_segments(raw: str | None) -> list[str] | None:
    text = clean_cell(raw)
    if text is None:
        return None
    text = text.strip("<>\"' ")
    if text.startswith("//"):
        text = "https:" + text
    elif not _SCHEME_RE.match(text):
        text = "https://" + text
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").rstrip(".").lower()
    except ValueError:
        return None
    if host != "linkedin.com" and not host.endswith(".linkedin.com"):
        return None
    segments = [s for s in parts.path.split("/") if s]
    # Mobile/lite prefixes: /mwlite/in/..., /m/in/...
    while segments and segments[0].lower() in {"mwlite", "m", "touch"}:
        segments = segments[1:]
    return segments


def _canonical_slug(segment: str) -> str | None:
    slug = unquote(segment).strip().lower()
    if not slug or slug in {".", ".."}:
        return None
    return quote(slug, safe=_SLUG_SAFE).lower()


# The usual spelling of a profile URL: optional http(s) scheme, optional www. or country
# sub-domain, /in/<slug>, optional trailing slash, a slug of characters that unquote() and
# quote() leave alone. The general path gives such a URL's slug lower-cased, without parsing.
_PLAIN_PERSON_URL_RE = re.compile(
    r"(?:https?://)?(?:[a-z]{2,3}\.)?linkedin\.com/in/([A-Za-z0-9_~-]+)/?"
)


def normalize_linkedin_person_url(raw: str | None) -> str | None:
    """Return ``https://www.linkedin.com/in/<slug>`` for a person profile URL, else None.

    Old public URLs ``/pub/<name>/<a>/<b>/<c>`` are mapped to the ``/in/<name>-<c><b><a>``
    form LinkedIn redirects them to (middle parts zero-padded to three characters).
    """
    if raw is not None:
        plain = _PLAIN_PERSON_URL_RE.fullmatch(raw)
        if plain is not None:
            return f"https://www.linkedin.com/in/{plain.group(1).lower()}"
    return _person_url(raw)


@lru_cache(maxsize=65536)
def _person_url(raw: str | None) -> str | None:
    """``normalize_linkedin_person_url`` of any spelling (a URL's parts are parsed)."""
    segments = _path_segments(raw)
    if not segments or len(segments) < 2:
        return None
    kind = segments[0].lower()
    if kind not in _PERSON_PREFIXES:
        return None
    if kind == "pub":
        name = segments[1]
        ids = segments[2:5]
        if len(ids) == 3 and all(re.fullmatch(r"[0-9a-zA-Z]{1,3}", part) for part in ids):
            a, b, c = ids
            name = f"{name}-{c.zfill(3)}{b.zfill(3)}{a}"
        elif ids:
            return None
        return _finish("in", name)
    return _finish("in", segments[1])


@lru_cache(maxsize=65536)
def normalize_linkedin_company_url(raw: str | None) -> str | None:
    """Return ``https://www.linkedin.com/company/<slug>`` for a company page URL, else None.

    Numeric company ids (``/company/12345``) are kept as they are.
    """
    segments = _path_segments(raw)
    if not segments or len(segments) < 2:
        return None
    if segments[0].lower() not in _COMPANY_PREFIXES:
        return None
    return _finish("company", segments[1])


def _finish(kind: str, segment: str) -> str | None:
    slug = _canonical_slug(segment)
    if slug is None:
        return None
    return f"https://www.linkedin.com/{kind}/{slug}"
