"""The one check of a workflow's options and of a client's config for it.

Every place a value is set (``enrichflow workflow set`` / ``config set``, the REST API, the
dashboard's forms), the launch and the Clay sender read options through these functions, so a
value that would fail every item is refused where it is typed, with the key named. They raise
:class:`~enrichflow.errors.ConfigError`; the sender turns that into a permanent step failure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from enrichflow.defaults import DEFAULT_MAX_SUBMISSIONS
from enrichflow.errors import ConfigError, PermanentStepError
from enrichflow.webhooks.egress import check_url_template, literal_target_problem
from enrichflow.webhooks.redact import redact_url

__all__ = [
    "CLIENT_KEYS",
    "DEFAULTS",
    "HTTP_METHODS",
    "HTTP_OPTION_KEYS",
    "LIST_OPTIONS",
    "WEBHOOK_OPTION_KEYS",
    "BreakerOptions",
    "StepDefaults",
    "WebhookOptions",
    "breaker_options",
    "client_config_check",
    "dedupe_by_option",
    "fields_option",
    "http_options_check",
    "reuse_days_option",
    "step_limits",
    "webhook_options",
    "webhook_urls",
    "where_workflow",
    "workflow_options_check",
]

CLIENT_KEYS = ("webhook_url", "auth_token")
"""All the ``webhook`` handler reads from a client's config; every other option is the
workflow's."""

LIST_OPTIONS = frozenset({"fields"})
"""Options whose value is a list of names, so ``KEY=VALUE`` on the command line means a list."""

MAX_NUMBER = 1_000_000_000
"""The largest numeric option: larger ones overflow the snapshot's columns and timers."""
DEFAULT_MAX_PAYLOAD_BYTES = 102_400
DEFAULT_CALLBACK_TIMEOUT = 86_400.0


@dataclass(frozen=True, slots=True)
class StepDefaults:
    """Defaults for a workflow's config keys when its registry row leaves them out."""

    max_attempts: int = 3
    lease_seconds: float = 60.0
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 600.0
    callback_timeout_seconds: float = DEFAULT_CALLBACK_TIMEOUT
    concurrency: int = 64


DEFAULTS = StepDefaults()

STEP_KEYS = frozenset(
    {
        "max_attempts",
        "lease_seconds",
        "backoff_base_seconds",
        "backoff_max_seconds",
        "callback_timeout_seconds",
        "concurrency",
        "batch_size",
        "breaker_failures",
        "breaker_window_seconds",
    }
)
"""Options every step has: the launch snapshots them into ``batch_steps``."""

DEFAULT_BREAKER_FAILURES = 20
DEFAULT_BREAKER_WINDOW_SECONDS = 60.0
BREAKER_WINDOW_MIN_FAILURES = 3
"""The window rule needs this many failures, so two sends far apart do not pause a step."""


class BreakerOptions(NamedTuple):
    """When the circuit breaker pauses a step of a batch (0 turns a rule off)."""

    failures: int
    """This many sends in a row failed the same non-retryable way (``HTTP 404``)."""
    window_seconds: float
    """Every send failed for this long (and at least :data:`BREAKER_WINDOW_MIN_FAILURES`)."""


def breaker_options(config: Mapping[str, Any], where: str = "") -> BreakerOptions:
    """``breaker_failures`` and ``breaker_window_seconds``, checked; :class:`ConfigError`
    naming the key."""
    prefix = f"{where}: " if where else ""
    failures = config.get("breaker_failures", DEFAULT_BREAKER_FAILURES)
    if (
        isinstance(failures, bool)
        or not isinstance(failures, int)
        or not 0 <= failures <= MAX_NUMBER
    ):
        raise ConfigError(
            f"{prefix}config 'breaker_failures' must be a whole number from 0 (off) to "
            f"{MAX_NUMBER:,}, got {failures!r}"
        )
    window = config.get("breaker_window_seconds", DEFAULT_BREAKER_WINDOW_SECONDS)
    if (
        isinstance(window, bool)
        or not isinstance(window, int | float)
        or not math.isfinite(window)
        or not 0 <= window <= MAX_NUMBER
    ):
        raise ConfigError(
            f"{prefix}config 'breaker_window_seconds' must be a number of seconds from 0 (off) "
            f"to {MAX_NUMBER:,}, got {window!r}"
        )
    return BreakerOptions(failures, float(window))


def _too_large(value: Any) -> str:
    big = isinstance(value, int | float) and not isinstance(value, bool) and value > MAX_NUMBER
    return f" (at most {MAX_NUMBER:,})" if big else ""


def _number(config: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = config.get(key, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= MAX_NUMBER
    ):
        raise ConfigError(
            f"{where}: config {key!r} must be a positive number, got {value!r}{_too_large(value)}"
        )
    return float(value)


def step_limits(config: Mapping[str, Any], where: str) -> dict[str, int]:
    """The ``batch_steps`` limits of a workflow's options (attempts, lease, back-off, callback
    timeout, concurrency); ``where`` names the workflow in the error."""
    if "batch_size" in config:
        _number(config, "batch_size", 1, where)
    breaker_options(config, where)
    return {
        "max_attempts": int(_number(config, "max_attempts", DEFAULTS.max_attempts, where)),
        "lease_ms": int(_number(config, "lease_seconds", DEFAULTS.lease_seconds, where) * 1000),
        "backoff_base_ms": int(
            _number(config, "backoff_base_seconds", DEFAULTS.backoff_base_seconds, where) * 1000
        ),
        "backoff_max_ms": int(
            _number(config, "backoff_max_seconds", DEFAULTS.backoff_max_seconds, where) * 1000
        ),
        "callback_timeout_ms": int(
            _number(config, "callback_timeout_seconds", DEFAULTS.callback_timeout_seconds, where)
            * 1000
        ),
        "concurrency": int(_number(config, "concurrency", DEFAULTS.concurrency, where)),
    }


class WebhookOptions(NamedTuple):
    """A Clay workflow's sending options, with their defaults applied."""

    max_payload_bytes: int
    max_submissions: int
    rate_per_second: float
    burst: int
    concurrency: int
    rate_limit_wait_seconds: float
    timeout_seconds: float
    callback_timeout_seconds: float
    fields: tuple[str, ...] | None
    dedupe_by: str | None
    reuse_days: float
    """How old a COMPLETED result of the same de-duplication key may be to be reused instead
    of a send (0: never reuse)."""
    reuse_across_clients: bool
    """Reuse results paid for by other clients too (off: a client's results are its own)."""


def _whole(config: Mapping[str, Any], name: str, default: int) -> int:
    value = config.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 1 <= value <= MAX_NUMBER
    ):
        raise ConfigError(
            f"workflow option {name!r} must be a number from 1 to {MAX_NUMBER:,}, got {value!r}"
        )
    return int(value)


def _positive(config: Mapping[str, Any], name: str, default: float) -> float:
    value = config.get(name, default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 < value <= MAX_NUMBER
    ):
        raise ConfigError(
            f"workflow option {name!r} must be a positive number, got {value!r}{_too_large(value)}"
        )
    return float(value)


def fields_option(config: Mapping[str, Any]) -> tuple[str, ...] | None:
    """``fields``: the names of what is sent (None: everything)."""
    value = config.get("fields")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(f, str) and f.strip() for f in value):
        raise ConfigError(
            f"workflow option 'fields' must be a list of names, got {value!r} "
            "(on the command line: fields=NAME, repeated for several)"
        )
    return tuple(value)


DEDUPE_OFF = frozenset({"off", "none"})
"""``dedupe_by`` values that turn de-duplication off explicitly."""
DEFAULT_REUSE_DAYS = 30.0
"""The reuse window of a de-duplicated (company-level) workflow when it sets none."""
MAX_REUSE_DAYS = 3650


def dedupe_by_option(config: Mapping[str, Any]) -> str | None:
    """``dedupe_by``: the field whose value de-duplicates sends (None: no de-duplication;
    ``company`` is the normalized company key, ``off`` or ``none`` turn it off)."""
    value = config.get("dedupe_by")
    if value is None or value is False:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            "workflow option 'dedupe_by' must be a field name (company, company_domain, website "
            f"or step.field) or off, got {value!r}"
        )
    name = value.strip()
    return None if name.casefold() in DEDUPE_OFF else name


def reuse_days_option(config: Mapping[str, Any], dedupe_by: str | None) -> float:
    """``reuse_days``: the reuse window; by default 30 days when the workflow de-duplicates
    (company-level), 0 otherwise (a person is not shared between rows)."""
    default = DEFAULT_REUSE_DAYS if dedupe_by is not None else 0.0
    value = config.get("reuse_days", default)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not 0 <= value <= MAX_REUSE_DAYS
    ):
        raise ConfigError(
            f"workflow option 'reuse_days' must be a number of days from 0 to {MAX_REUSE_DAYS}, "
            f"got {value!r}"
        )
    if value and dedupe_by is None:
        raise ConfigError(
            "workflow option 'reuse_days' needs a de-duplication key: set dedupe_by too "
            "(dedupe_by=company for company-level workflows)"
        )
    return float(value)


def _flag(config: Mapping[str, Any], name: str) -> bool:
    value = config.get(name, False)
    if not isinstance(value, bool):
        raise ConfigError(f"workflow option {name!r} must be true or false, got {value!r}")
    return value


def webhook_options(config: Mapping[str, Any]) -> WebhookOptions:
    """Every option of a Clay (``webhook``) workflow, checked: :class:`ConfigError` naming the
    first bad one. The handler reads its options through this before every send."""
    dedupe = dedupe_by_option(config)
    return WebhookOptions(
        _whole(config, "max_payload_bytes", DEFAULT_MAX_PAYLOAD_BYTES),
        _whole(config, "max_submissions", DEFAULT_MAX_SUBMISSIONS),
        _positive(config, "rate_per_second", 10.0),
        _whole(config, "burst", 20),
        _whole(config, "concurrency", 10),
        _positive(config, "rate_limit_wait_seconds", 30.0),
        _positive(config, "timeout_seconds", 30.0),
        _positive(config, "callback_timeout_seconds", DEFAULT_CALLBACK_TIMEOUT),
        fields_option(config),
        dedupe,
        reuse_days_option(config, dedupe),
        _flag(config, "reuse_across_clients"),
    )


WEBHOOK_OPTION_KEYS = STEP_KEYS | set(WebhookOptions._fields)
"""Every option a Clay workflow has; any other key would be stored and never read."""


HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
HTTP_OPTION_KEYS = STEP_KEYS | {
    "url",
    "method",
    "headers",
    "body",
    "keep",
    "rate_per_second",
    "burst",
    "rate_limit_wait_seconds",
    "timeout_seconds",
}
"""Every option an ``http`` workflow has (``steps/http.py`` describes them)."""


def _text_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def http_options_check(config: Mapping[str, Any]) -> None:
    """:class:`ConfigError` naming the first option of an ``http`` workflow that every call
    would fail on: no ``url``, a template whose placeholders could choose the host, an unknown
    method, ``headers`` or ``keep`` of the wrong shape, a bad limit, or an unknown key."""
    unknown = sorted(set(config) - HTTP_OPTION_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(an http workflow reads: {', '.join(sorted(HTTP_OPTION_KEYS))})"
        )
    url = config.get("url")
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            "option 'url' is required: the URL template of the API, e.g. "
            "url=https://api.example.com/companies/{company_domain}"
        )
    try:
        check_url_template(url)
    except PermanentStepError as exc:
        raise ConfigError(str(exc)) from None
    method = config.get("method", "POST")
    if not isinstance(method, str) or method.upper() not in HTTP_METHODS:
        raise ConfigError(
            f"option 'method' must be one of {', '.join(sorted(HTTP_METHODS))}, got {method!r}"
        )
    if config.get("headers") is not None and not _text_map(config["headers"]):
        raise ConfigError(
            "option 'headers' must be a JSON object of text values, e.g. "
            """headers='{"x-api-key": "{secret:api_key}"}'"""
        )
    keep = config.get("keep")
    listed = isinstance(keep, list) and all(isinstance(p, str) and p for p in keep)
    if keep is not None and not listed and not _text_map(keep):
        raise ConfigError(
            "option 'keep' must be a list of dotted paths (keep=data.employees, repeated) or "
            """a JSON object of new names to paths (keep='{"employees": "data.employees"}')"""
        )
    for name, default in (
        ("rate_per_second", 10.0),
        ("rate_limit_wait_seconds", 30.0),
        ("timeout_seconds", 30.0),
    ):
        _positive(config, name, default)
    _whole(config, "burst", 20)


def where_workflow(workflow: str, workstream: str) -> str:
    return f"workflow {workflow!r} in workstream {workstream!r}"


def workflow_options_check(
    handler: str, config: Mapping[str, Any], workflow: str, workstream: str
) -> dict[str, int]:
    """:class:`ConfigError` naming the key when ``config`` could not be launched or sent with:
    the step limits of every workflow, and for a Clay or ``http`` workflow every option and no
    unknown or secret key. The step limits (:func:`step_limits`) when it can."""
    where = where_workflow(workflow, workstream)
    secrets = sorted(set(config) & set(CLIENT_KEYS))
    if secrets:
        raise ConfigError(
            f"{', '.join(secrets)}: a client's setting (a secret), never stored with the "
            f"workflow: enrichflow config set CLIENT {workflow} {secrets[0]}=..."
        )
    limits = step_limits(config, where)
    if handler == "http":
        try:
            http_options_check(config)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    if handler != "webhook":
        return limits
    unknown = sorted(set(config) - WEBHOOK_OPTION_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"(a Clay workflow reads: {', '.join(sorted(WEBHOOK_OPTION_KEYS))})"
        )
    try:
        webhook_options(config)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return limits


def _url_checked(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"webhook_url must be a URL or a list of URLs, got {value!r}")
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"webhook_url must be an http(s) URL, got {redact_url(url)!r}")
    problem = literal_target_problem(url)
    if problem is not None:
        raise ConfigError(f"webhook_url {redact_url(url)}: {problem}")
    return url


def webhook_urls(config: Mapping[str, Any]) -> list[str]:
    """The client's webhook URLs in the order they are used (empty when none is set);
    :class:`ConfigError` when the value is not a URL or a list of URLs."""
    raw = config.get("webhook_url")
    if raw is None or raw == "" or raw == []:
        return []
    return [_url_checked(u) for u in (raw if isinstance(raw, list) else [raw])]


def client_config_check(handler: str, config: Mapping[str, Any], workflow: str) -> None:
    """:class:`ConfigError` naming the key when a client's config for a Clay workflow holds
    anything but its URLs and token (any other key would be stored and silently ignored), or
    a URL that is not one. Other handlers' configs are their own."""
    if handler != "webhook":
        return
    foreign = sorted(set(config) - set(CLIENT_KEYS))
    if foreign:
        names = ", ".join(foreign)
        raise ConfigError(
            f"{names}: not a client setting of {workflow!r}, whose handler (webhook) reads "
            f"only {' and '.join(CLIENT_KEYS)} from a client's config; {names} "
            f"{'is a workflow option' if len(foreign) == 1 else 'are workflow options'}, "
            f"the same for every client: enrichflow workflow set {workflow} {foreign[0]}=..."
        )
    webhook_urls(config)
    token = config.get("auth_token")
    if token is not None and not isinstance(token, str):
        raise ConfigError("auth_token must be text")
