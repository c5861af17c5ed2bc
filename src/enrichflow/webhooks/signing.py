"""Signed callback tokens.

A token names the state and the attempt it was issued for and carries an HMAC-SHA256
signature over both, so the callback receiver can trust the URL without a lookup table::

    <state_id>.<attempt>.<base64url(HMAC-SHA256(secret, f"{state_id}.{attempt}"))>

The token is URL-safe (digits, dots, ``A-Z a-z 0-9 - _``; no padding). Verification
accepts only the canonical spelling, so changing any character of a valid token makes it
invalid, and compares signatures in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from enrichflow.errors import EnrichflowError

__all__ = ["InvalidCallbackToken", "callback_token", "callback_url", "verify_callback_token"]

_MAX_TOKEN_LENGTH = 200


class InvalidCallbackToken(EnrichflowError):
    """The callback token is malformed or its signature does not match."""


def _signature(state_id: int, attempt: int, secret: str) -> str:
    mac = hmac.new(
        secret.encode("utf-8"), f"{state_id}.{attempt}".encode("ascii"), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def callback_token(state_id: int, attempt: int, secret: str) -> str:
    """The signed token for ``(state_id, attempt)``."""
    if not secret:
        raise ValueError("callback tokens need a non-empty secret")
    if isinstance(state_id, bool) or isinstance(attempt, bool):
        raise TypeError("state_id and attempt must be integers")
    if state_id < 0 or attempt < 0:
        raise ValueError("state_id and attempt must not be negative")
    return f"{state_id}.{attempt}.{_signature(state_id, attempt, secret)}"


def _canonical_int(text: str) -> int:
    """A non-negative decimal integer spelled exactly as ``str(int)`` spells it."""
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise InvalidCallbackToken()
    return int(text)


def verify_callback_token(token: str, secret: str) -> tuple[int, int]:
    """``(state_id, attempt)`` of a valid token; :class:`InvalidCallbackToken` otherwise."""
    if not secret:
        raise ValueError("callback tokens need a non-empty secret")
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH:
        raise InvalidCallbackToken()
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidCallbackToken()
    state_id = _canonical_int(parts[0])
    attempt = _canonical_int(parts[1])
    expected = _signature(state_id, attempt, secret)
    if not parts[2].isascii() or not hmac.compare_digest(
        parts[2].encode("ascii"), expected.encode("ascii")
    ):
        raise InvalidCallbackToken()
    return state_id, attempt


def callback_url(public_url: str, token: str) -> str:
    """The URL an external service calls back: ``{public_url}/callbacks/{token}``."""
    return f"{public_url.rstrip('/')}/callbacks/{token}"
