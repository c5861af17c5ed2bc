"""Keeping webhook URLs and secrets out of error messages, logs and stored metadata.

A Clay webhook URL is itself a credential (anyone holding it can add rows), so URLs are
shown only as scheme and host: ``https://api.clay.com/…``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = ["REDACTED", "excerpt", "redact_text", "redact_url", "url_secrets"]

REDACTED = "[redacted]"
_ELLIPSIS = "…"
_URL_RE = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>`]+""")
# Parts this short are words ("v3", "hooks", "c"), which would be cut out of every message; the
# tokens in a webhook URL are longer.
_MIN_LENGTH = 8


def redact_url(url: str) -> str:
    """Scheme and host (and port) of ``url`` followed by ``…``; never path, query or user info."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except (ValueError, AttributeError):
        return _ELLIPSIS
    if not parts.scheme or not host:
        return _ELLIPSIS
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return f"{parts.scheme}://{netloc}/{_ELLIPSIS}"


def url_secrets(url: str) -> list[str]:
    """The parts of ``url`` a server may echo back that :func:`redact_url` hides: the path,
    its segments, the query, its values and the fragment, as written and percent-decoded (also
    with JSON's escaped slashes), those of at least eight characters; and the user info."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return []
    path = parts.path.strip("/")
    found = [path, *path.split("/"), parts.query, parts.fragment]
    found.extend(v for _, v in parse_qsl(parts.query))
    variants = [*found, *(unquote(f) for f in found)]
    variants.extend(v.replace("/", "\\/") for v in list(variants) if "/" in v)
    kept = [v for v in variants if len(v) >= _MIN_LENGTH]
    if "@" in parts.netloc:
        kept.append(parts.netloc.rpartition("@")[0])
    return list(dict.fromkeys(v for v in kept if v))


def _replacement(secret: str) -> str:
    return redact_url(secret) if _URL_RE.fullmatch(secret) else REDACTED


def redact_text(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of each secret and every URL replaced by its redacted form.

    A secret that is a URL becomes :func:`redact_url` of it; other secrets become
    ``[redacted]``; any other URL in the text becomes :func:`redact_url` of it. Empty
    secrets are ignored.
    """
    unique = sorted({s for s in secrets if s}, key=len, reverse=True)
    alternatives = [re.escape(s) for s in unique]
    alternatives.append(_URL_RE.pattern)
    pattern = re.compile("|".join(f"(?:{a})" for a in alternatives))

    def substitute(match: re.Match[str]) -> str:
        found = match.group(0)
        if found in unique:
            return _replacement(found)
        return redact_url(found)

    result = pattern.sub(substitute, text)
    # A secret may straddle a URL's host, which the URL's redacted form keeps; remove it too.
    for secret in unique:
        if secret in result:
            result = result.replace(secret, REDACTED)
    return result


def excerpt(text: str, limit: int = 200) -> str:
    """``text`` on one line with runs of whitespace collapsed, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[: max(limit - 1, 0)] + _ELLIPSIS
