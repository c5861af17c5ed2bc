"""Company domains: registrable domain extraction and usability checks.

The registrable domain ("eTLD+1") is computed with `tldextract` against the public suffix
list snapshot bundled with the library (``suffix_list_urls=()``): no network access, ever.
Internationalized domains are returned in their Unicode form (punycode input is decoded),
lower-cased and NFC-normalized, so both spellings of a domain give the same key.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal
from urllib.parse import urlsplit

import idna
import tldextract

from enrichflow.normalize._text import clean_cell

_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_HOST_OK_RE = re.compile(r"^[\w.-]+$")

# Sites that host someone else's presence: a lead's "website" pointing there is not the
# company's own domain. Matched on the registrable domain.
_NON_COMPANY_SITES = frozenset(
    {
        # social networks and profiles
        "linkedin.com",
        "lnkd.in",
        "facebook.com",
        "fb.com",
        "fb.me",
        "twitter.com",
        "x.com",
        "instagram.com",
        "youtube.com",
        "youtu.be",
        "tiktok.com",
        "pinterest.com",
        "reddit.com",
        "snapchat.com",
        "threads.net",
        "tumblr.com",
        "vk.com",
        "xing.com",
        "wa.me",
        "t.me",
        "telegram.me",
        "whatsapp.com",
        "discord.gg",
        "medium.com",
        "substack.com",
        "github.com",
        "gitlab.com",
        # directories and data providers
        "crunchbase.com",
        "angel.co",
        "wellfound.com",
        "glassdoor.com",
        "indeed.com",
        "yelp.com",
        "wikipedia.org",
        "bloomberg.com",
        "zoominfo.com",
        "apollo.io",
        "clay.com",
        "yellowpages.com",
        "goo.gl",
        "g.page",
        "apps.apple.com",
        "play.google.com",
        # link shorteners and link-in-bio pages
        "bit.ly",
        "bitly.com",
        "t.co",
        "tinyurl.com",
        "ow.ly",
        "buff.ly",
        "is.gd",
        "rebrand.ly",
        "cutt.ly",
        "shorturl.at",
        "tiny.cc",
        "rb.gy",
        "linktr.ee",
        "linkin.bio",
        "beacons.ai",
        "bio.link",
        "lnk.bio",
        # free site builders / hosted sub-domains
        "wixsite.com",
        "blogspot.com",
        "wordpress.com",
        "weebly.com",
        "godaddysites.com",
        "business.site",
        "carrd.co",
        "notion.site",
        "webflow.io",
        "github.io",
        "herokuapp.com",
        "netlify.app",
        "vercel.app",
        "myshopify.com",
        "square.site",
        "jimdosite.com",
        "strikingly.com",
        "mystrikingly.com",
        "sites.google.com",
    }
)


def _load_free_mail() -> tuple[frozenset[str], frozenset[str]]:
    text = resources.files(__package__).joinpath("free_mail_domains.txt").read_text("utf-8")
    exact: set[str] = set()
    labels: set[str] = set()
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if not entry:
            continue
        if entry.endswith(".*"):
            labels.add(entry[:-2])
        else:
            exact.add(entry)
    return frozenset(exact), frozenset(labels)


_FREE_MAIL_EXACT, _FREE_MAIL_LABELS = _load_free_mail()


@lru_cache(maxsize=65536)
def _host_of(text: str) -> str | None:
    """The lower-cased Unicode host of a URL, host or e-mail (cached: ``company_domain``
    asks twice for a website, through ``registrable_domain`` and ``is_non_company_site``)."""
    if "@" in text and "/" not in text:
        text = text.rsplit("@", 1)[1]
    if text.startswith("//"):
        text = "http:" + text
    elif not _SCHEME_RE.match(text):
        text = "http://" + text
    try:
        host = urlsplit(text).hostname
    except ValueError:
        return None
    if not host:
        return None
    host = host.strip().rstrip(".").lower()
    if "xn--" in host:
        try:
            # idna (IDNA 2008): Python's own codec is IDNA 2003, which maps "ß" to "ss" and
            # so refuses to decode labels such as "xn--fuball-cta" (fußball).
            host = ".".join(
                idna.decode(label) if label.startswith("xn--") else label
                for label in host.split(".")
            )
        except (UnicodeError, ValueError):  # idna.IDNAError is a UnicodeError
            return None
    host = unicodedata.normalize("NFC", host).lower()
    if not _HOST_OK_RE.match(host) or ".." in host:
        return None
    return host


@lru_cache(maxsize=65536)
def registrable_domain(url_or_host: str | None) -> str | None:
    """Return the registrable domain (``globex.co.uk``) of a URL, host or e-mail, or None.

    Strips scheme, credentials, ``www``/sub-domains, port, path, query and trailing dot.
    IP addresses, single-label hosts and bare public suffixes give None.
    """
    text = clean_cell(url_or_host)
    if text is None:
        return None
    host = _host_of(text)
    if host is None:
        return None
    result = _EXTRACTOR(host)
    if not result.suffix or not result.domain:
        return None
    return f"{result.domain}.{result.suffix}"


def _site_key(domain: str) -> tuple[str | None, str]:
    text = clean_cell(domain) or ""
    host = _host_of(text) if text else None
    return registrable_domain(text), host or ""


def is_non_company_site(domain: str | None) -> bool:
    """True for social networks, link shorteners, directories and free site builders."""
    if domain is None:
        return False
    reg, host = _site_key(domain)
    if reg is None:
        return False
    if reg in _NON_COMPANY_SITES:
        return True
    # Entries like sites.google.com are deeper than the registrable domain.
    parts = host.split(".")
    return any(".".join(parts[i:]) in _NON_COMPANY_SITES for i in range(len(parts) - 1))


def is_free_mail_domain(domain: str | None) -> bool:
    """True when the domain (or the domain part of an e-mail) is a free mail provider."""
    if domain is None:
        return False
    reg = registrable_domain(domain)
    if reg is None:
        return False
    if reg in _FREE_MAIL_EXACT:
        return True
    label = _EXTRACTOR(reg).domain
    return bool(label in _FREE_MAIL_LABELS)


@dataclass(frozen=True, slots=True)
class DomainResult:
    """The company's own domain and where it came from; `reason` says why none was usable."""

    domain: str | None
    source: Literal["website", "email"] | None
    reason: str | None


def company_domain(website: str | None, email: str | None) -> DomainResult:
    """Pick the company domain: the website's if it is the company's own site, else the
    e-mail's if it is not a free-mail provider."""
    site_text = clean_cell(website)
    mail_text = clean_cell(email)
    # The answer depends on the e-mail only through the part after its last "@" (or its
    # absence): cached on that, colleagues of one company cost one computation.
    if mail_text is None:
        return _company_domain(site_text, None)
    at = mail_text.rfind("@")
    return _company_domain(site_text, mail_text[at + 1 :] if at >= 0 else None, at < 0)


@lru_cache(maxsize=65536)
def _company_domain(
    site_text: str | None, mail_tail: str | None, mail_invalid: bool = False
) -> DomainResult:
    """``company_domain`` of cleaned cells; ``mail_tail`` is what follows the e-mail's "@"."""
    problems: list[str] = []
    if site_text is None:
        problems.append("website missing")
    else:
        site = registrable_domain(site_text)
        if site is None:
            problems.append(f"website unparseable ({site_text})")
        elif is_non_company_site(site_text):
            problems.append(f"website is not the company's own site ({site})")
        else:
            return DomainResult(domain=site, source="website", reason=None)
    if mail_invalid:
        problems.append("email invalid")
    elif mail_tail is None:
        problems.append("email missing")
    else:
        mail_domain = registrable_domain(mail_tail)
        if mail_domain is None:
            problems.append("email invalid")
        elif is_free_mail_domain(mail_domain):
            problems.append(f"email is a free-mail address ({mail_domain})")
        else:
            return DomainResult(domain=mail_domain, source="email", reason=None)
    return DomainResult(domain=None, source=None, reason="; ".join(problems))
