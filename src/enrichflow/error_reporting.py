"""Optional Sentry reporting of unexpected errors, with secrets scrubbed before anything leaves.

Enabled only when ``SENTRY_DSN`` is set (:attr:`Settings.sentry_dsn`). The conductor, the
runner and the executors log unexpected exceptions at ERROR with the traceback; Sentry's
logging integration turns those records into events, and its FastAPI and excepthook
integrations report unhandled exceptions in the API and the CLI.

What is sent is limited on purpose: no local variables (they hold lead rows, i.e. people's
personal data, and configs), no request bodies, no default PII, no trace headers on outgoing
requests (Clay would receive them). Every string left in an event (messages, exception
values, breadcrumbs, request URL and query, ``sys.argv``) goes through :func:`scrub_text`:
every URL is cut to scheme and host (a Clay webhook URL is a credential; the database URL
carries a password; callback URLs carry their token), the process's own secrets are
replaced, and ``key=value`` / ``Authorization: Bearer`` credentials are masked. If scrubbing
fails the event is dropped, never sent raw.

The same error logged for 10,000 items would be 10,000 events; :class:`Throttle` lets one
through per error kind per minute.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from typing import Any

from enrichflow.config import Settings
from enrichflow.errors import ConfigError
from enrichflow.webhooks.redact import REDACTED, redact_text

__all__ = ["Throttle", "init_error_reporting", "scrub_event", "scrub_text", "secrets_of"]

log = logging.getLogger(__name__)

THROTTLE_SECONDS = 60.0

_SENSITIVE_KEY = re.compile(
    r"token|secret|passw|pwd|api[_-]?key|apikey|auth|cookie|session|credential|dsn"
    r"|webhook_url|database_url|private[_-]?key",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(bearer)(\s+)[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"""(?P<key>[\w\-]*(?:api[_\-]?key|apikey|token|secret|passw(?:or)?d|pwd|authorization"""
    r"""|x-clay-webhook-auth|credential|private[_\-]?key)[\w\-]*)"""
    r"""(?P<sep>["']?\s*[:=]\s*["']?)"""
    r"""(?P<value>(?:(?:bearer|basic|token)\s+)?(?!\[redacted\])[^\s"'&,;})\]]+)""",
    re.IGNORECASE,
)
_CALLBACK_TOKEN = re.compile(r"\b\d+\.\d+\.[A-Za-z0-9_\-]{43}(?![A-Za-z0-9_\-])")
_CALLBACK_PATH = re.compile(r"(/callbacks/)[^\s/?#\"']+")


def secrets_of(settings: Settings, environ: dict[str, str] | None = None) -> list[str]:
    """This process's own secrets: keys, tokens, passwords, the database password."""
    from sqlalchemy.engine import make_url

    environ = dict(os.environ) if environ is None else environ
    found = [
        s.get_secret_value()
        for s in (settings.secret_key, settings.api_token, settings.admin_password)
        if s is not None
    ]
    try:
        url = settings.database_url
        password = make_url(url.replace("postgres://", "postgresql://", 1)).password
    except Exception:
        password = None
    if password:
        found.append(str(password))
    found += [environ.get(k, "") for k in ("MODAL_TOKEN_SECRET", "MODAL_TOKEN_ID")]
    # Short values would blank out ordinary words; those are caught by the patterns instead.
    return [s for s in found if s and len(s) >= 6]


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URLs cut to scheme and host, known secrets and credentials masked."""
    text = redact_text(text, secrets)
    text = _CALLBACK_PATH.sub(rf"\1{REDACTED}", text)
    text = _CALLBACK_TOKEN.sub(REDACTED, text)
    text = _KEY_VALUE.sub(lambda m: f"{m['key']}{m['sep']}{REDACTED}", text)
    return _BEARER.sub(rf"\1\2{REDACTED}", text)


def _scrub(value: Any, secrets: list[str], key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _scrub(v, secrets, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v, secrets, key) for v in value]
    if isinstance(value, str):
        if key and _SENSITIVE_KEY.search(key) and value:
            return REDACTED
        return scrub_text(value, secrets)
    return value


def scrub_event(event: dict[str, Any], secrets: Iterable[str] = ()) -> dict[str, Any]:
    """A copy of a (serialized) Sentry event or breadcrumb with every string scrubbed, and any
    value under a sensitive-looking key (``auth_token``, ``Authorization``, ...) replaced."""
    scrubbed = _scrub(event, sorted(set(secrets), key=len, reverse=True))
    for exception in (scrubbed.get("exception") or {}).get("values") or []:
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    return dict(scrubbed)


class Throttle:
    """At most one event per kind (logger and message template, else exception type and
    where it was raised) per ``interval`` seconds."""

    def __init__(
        self, interval: float = THROTTLE_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.dropped = 0
        self._last: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def kind(event: dict[str, Any]) -> tuple[str, ...]:
        entry = event.get("logentry") or {}
        template = entry.get("message") if isinstance(entry, dict) else None
        if template:
            return ("log", str(event.get("logger", "")), str(template))
        values = (event.get("exception") or {}).get("values") or []
        if values:
            last = values[-1]
            frames = (last.get("stacktrace") or {}).get("frames") or [{}]
            top = frames[-1]
            return (
                "exception",
                str(last.get("type", "")),
                str(top.get("module", "")),
                str(top.get("function", "")),
            )
        return ("message", str(event.get("message", "")))

    def allow(self, event: dict[str, Any]) -> bool:
        key = self.kind(event)
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self.dropped += 1
                return False
            self._last[key] = now
            return True


def _before_send(secrets: list[str], throttle: Throttle) -> Callable[[Any, Any], Any]:
    def before_send(event: Any, hint: Any) -> Any:
        try:
            if not throttle.allow(event):
                return None
            return scrub_event(event, secrets)
        except Exception:
            return None  # fail closed: an event we could not scrub is not sent

    return before_send


def _before_breadcrumb(secrets: list[str]) -> Callable[[Any, Any], Any]:
    def before_breadcrumb(crumb: Any, hint: Any) -> Any:
        try:
            return scrub_event(crumb, secrets)
        except Exception:
            return None

    return before_breadcrumb


_lock = threading.Lock()
_active_dsn: str | None = None


def _release() -> str | None:
    try:
        return f"enrichflow@{metadata.version('enrichflow')}"
    except metadata.PackageNotFoundError:
        return None


def init_error_reporting(settings: Settings, **options: Any) -> bool:
    """Start Sentry when ``SENTRY_DSN`` is set; True if reporting is on. Safe to call again
    (the CLI and the app factory both call it). ``options`` override ``sentry_sdk.init``'s
    (tests). :class:`ConfigError` for a malformed DSN, without echoing it."""
    global _active_dsn
    dsn = settings.sentry_dsn.get_secret_value().strip() if settings.sentry_dsn else ""
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.logging import LoggingIntegration
    from sentry_sdk.utils import BadDsn

    with _lock:
        if _active_dsn == dsn and sentry_sdk.get_client().is_active():
            return True
        secrets = secrets_of(settings)
        # PII stays off: send_default_pii is left at its default (setting it is deprecated).
        try:
            sentry_sdk.init(
                dsn=dsn,
                release=_release(),
                include_local_variables=False,
                max_request_body_size="never",
                trace_propagation_targets=[],
                before_send=_before_send(secrets, Throttle()),
                before_breadcrumb=_before_breadcrumb(secrets),
                integrations=[LoggingIntegration(level=logging.INFO, event_level=logging.ERROR)],
                **options,
            )
        except BadDsn as exc:
            raise ConfigError(
                f"SENTRY_DSN is not a valid Sentry DSN ({type(exc).__name__}); unset it or fix it"
            ) from None
        _active_dsn = dsn
    log.info("error reporting to Sentry is on")
    return True


def shutdown_error_reporting() -> None:
    """Flush and detach the Sentry client (tests; a process exiting flushes by itself)."""
    global _active_dsn
    import sentry_sdk

    with _lock:
        client = sentry_sdk.get_client()
        if client.is_active():
            client.close(timeout=5)
        sentry_sdk.get_global_scope().set_client(None)
        _active_dsn = None
