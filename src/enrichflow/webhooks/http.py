"""One shared HTTP client and the classification of outcomes into step errors.

* 2xx: the response is returned.
* 408, 429, 5xx, connection errors, protocol errors, timeouts:
  :class:`~enrichflow.errors.RetryableStepError`, with ``retry_after`` taken from a
  ``Retry-After`` header (delta seconds or an HTTP date) when there is one.
* any other status (3xx, 4xx): :class:`~enrichflow.errors.PermanentStepError` with the
  status code and a short redacted excerpt of the response body.
* an unusable URL: :class:`~enrichflow.errors.PermanentStepError`.

Error messages show the URL only as ``scheme://host/…`` and never contain header values,
the caller's ``secrets`` or the URL's path and query (a server may echo them back); response bodies and exception texts are passed through
:func:`~enrichflow.webhooks.redact.redact_text` first. Importing this module also adds a
filter to the ``httpx`` logger that redacts the URLs in its per-request log lines.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from enrichflow.errors import PermanentStepError, RetryableStepError
from enrichflow.webhooks.egress import (
    EgressRefused,
    GuardedClient,
    private_targets_allowed,
    vet_host,
)
from enrichflow.webhooks.redact import excerpt, redact_text, redact_url, url_secrets

__all__ = [
    "DEFAULT_TIMEOUT",
    "close_shared_client",
    "encode_json",
    "parse_retry_after",
    "positive_option",
    "post_json",
    "send_request",
    "shared_client",
]

DEFAULT_TIMEOUT = 30.0
RETRYABLE_STATUSES = frozenset({408, 425, 429})
USER_AGENT = "enrichflow/0.1"


class _RedactUrlsFilter(logging.Filter):
    """httpx logs every request with its full URL at INFO; webhook URLs are credentials."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        record.msg = redact_text(message, ())
        record.args = ()
        return True


_httpx_logger = logging.getLogger("httpx")
if not any(isinstance(f, _RedactUrlsFilter) for f in _httpx_logger.filters):
    _httpx_logger.addFilter(_RedactUrlsFilter())

_client_lock = threading.Lock()
_client: httpx.Client | None = None


def shared_client() -> httpx.Client:
    """The process-wide HTTP client (pooled connections, behind the egress guard; closed at
    interpreter exit)."""
    global _client
    with _client_lock:
        if _client is None or _client.is_closed:
            _client = GuardedClient(
                timeout=httpx.Timeout(DEFAULT_TIMEOUT, connect=10.0),
                limits=httpx.Limits(
                    max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0
                ),
                headers={"user-agent": USER_AGENT},
            )
        return _client


def close_shared_client() -> None:
    """Close the shared client, if one was made; the next :func:`shared_client` makes a new one."""
    global _client
    with _client_lock:
        if _client is not None:
            _client.close()
            _client = None


atexit.register(close_shared_client)


def encode_json(payload: Any) -> bytes:
    """Compact UTF-8 JSON; values JSON cannot represent are sent as their ``str``."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode(
        "utf-8"
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or HTTP date), or ``None``."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if seconds == seconds else None  # NaN -> None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max((when - current).total_seconds(), 0.0)


def _secrets_of(url: str, headers: Mapping[str, str] | None, secrets: Iterable[str]) -> list[str]:
    found = [url, *url_secrets(url), *secrets]
    if headers:
        found.extend(v for v in headers.values() if v)
    return found


def _vet_target(client: httpx.Client, url: str) -> None:
    """The egress check for a client that is not a :class:`GuardedClient` (one a caller
    passed in): every address of the URL's host, before the request."""
    if isinstance(client, GuardedClient) or private_targets_allowed():
        return
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return  # httpx refuses the URL itself, with the usual message
    if host:
        try:
            vet_host(host, port or (443 if parts.scheme == "https" else 80))
        except httpcore.ConnectError as exc:
            raise httpx.ConnectError(str(exc)) from None


def send_request(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    json_body: Any = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    secrets: Iterable[str] = (),
    target: str = "the URL",
) -> httpx.Response:
    """Send one request and return the 2xx response; raise a classified step error otherwise.

    ``content`` (raw bytes, sent as ``application/json``) wins over ``json_body``.
    ``secrets`` are extra strings (tokens, API keys) that must not appear in error messages;
    the URL and every header value are always treated as secrets. ``target`` names the URL in
    the message of an :class:`EgressRefused` (``webhook_url``).
    """
    hidden = _secrets_of(url, headers, secrets)
    where = f"{method.upper()} {redact_url(url)}"
    send_headers = dict(headers or {})
    body: bytes | None = content
    if body is None and json_body is not None:
        body = encode_json(json_body)
    if body is not None and not any(k.lower() == "content-type" for k in send_headers):
        send_headers["content-type"] = "application/json"
    try:
        _vet_target(client, url)
        response = client.request(
            method.upper(),
            url,
            content=body,
            headers=send_headers,
            timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout,
        )
    except EgressRefused as exc:
        raise EgressRefused(
            f"{target} {redact_url(url)} refused, nothing was sent: {exc}"
        ) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise PermanentStepError(
            f"{where}: the URL cannot be used ({type(exc).__name__})"
        ) from None
    except httpx.TimeoutException as exc:
        limit = f" after {timeout:g}s" if timeout is not None else ""
        raise RetryableStepError(f"{where} timed out{limit} ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        detail = excerpt(redact_text(str(exc), hidden), 120)
        raise RetryableStepError(
            f"{where} failed: {type(exc).__name__}" + (f": {detail}" if detail else "")
        ) from None
    status = response.status_code
    if 200 <= status < 300:
        return response
    body_excerpt = excerpt(redact_text(_text_of(response), hidden), 200)
    suffix = f": {body_excerpt}" if body_excerpt else ""
    if status in RETRYABLE_STATUSES or status >= 500:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise RetryableStepError(f"{where} answered HTTP {status}{suffix}", retry_after=retry_after)
    raise PermanentStepError(f"{where} answered HTTP {status}{suffix}")


def _text_of(response: httpx.Response) -> str:
    try:
        return response.text
    except (UnicodeDecodeError, LookupError):
        return response.content.decode("utf-8", errors="replace")


def post_json(
    client: httpx.Client,
    url: str,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    *,
    secrets: Iterable[str] = (),
    target: str = "the URL",
) -> httpx.Response:
    """POST ``payload`` as JSON (``bytes`` are sent as they are); see :func:`send_request`."""
    if isinstance(payload, bytes | bytearray):
        return send_request(
            client,
            "POST",
            url,
            content=bytes(payload),
            headers=headers,
            timeout=timeout,
            secrets=secrets,
            target=target,
        )
    return send_request(
        client,
        "POST",
        url,
        json_body=payload,
        headers=headers,
        timeout=timeout,
        secrets=secrets,
        target=target,
    )


def positive_option(config: Mapping[str, Any], name: str, default: float) -> float:
    """A workflow option that must be a finite positive number; a bad value fails the step
    permanently, since retrying cannot fix a config."""
    value = config.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise PermanentStepError(f"workflow option {name!r} must be a positive number")
    return float(value)
