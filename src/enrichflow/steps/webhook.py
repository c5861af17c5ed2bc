"""The ``webhook`` handler: send one item to a Clay table webhook and wait for its callback.

A workflow is data: a registry row with handler ``webhook``, the registry config
(``ctx.workflow_config``) and the client's config (``ctx.client_config``). No code is
written per workflow.

Client config (secrets; never stored in the registry):

* ``webhook_url`` — a URL, or a list of URLs used in order: each Clay webhook source
  accepts :data:`DEFAULT_MAX_SUBMISSIONS` rows in its lifetime, so when one fills up the
  next one is used.
* ``auth_token`` (optional) — sent as the ``x-clay-webhook-auth`` header.

Workflow config (all optional):

* ``fields`` — list of names restricting what is sent (see *Payload*).
* ``max_payload_bytes`` (102400) — larger encoded payloads fail permanently.
* ``rate_per_second`` (10), ``burst`` (20) — token bucket shared by every item of this
  workflow (step slug) and webhook URL in the process.
* ``concurrency`` (10) — requests in flight at once for this workflow and URL.
* ``rate_limit_wait_seconds`` (30) — longest wait for the local limits before the attempt
  is given back as retryable.
* ``timeout_seconds`` (30) — HTTP timeout of the POST.
* ``max_submissions`` (50000) — lifetime submissions per webhook URL; a warning is logged
  for every 1% of it used from 90% on.
* ``callback_timeout_seconds`` (86400) — the deadline of the returned :class:`Deferred`.
* ``dedupe_by`` — company-level de-duplication: ``company`` (the normalized company domain,
  else company LinkedIn page, else name match key: :func:`enrichflow.steps.clay_values.company_key`;
  the seeded company workflow's setting), a payload identity field (``company_domain``, by its
  normalized value), a canonical field (``website``) or ``step.field`` of an earlier result
  (``normalize_company_domain.company_domain``); ``off`` or ``none`` turn it off.
  Within a batch, the first item with a given
  (trimmed, case-folded) value sends; the others send nothing and wait on it
  (``Deferred(waiting_on=<leader state id>)``), or take its result at once
  when it already landed. See :mod:`enrichflow.db.states.followers` for how they complete or fail.
  Items without a value send normally. Leaders are chosen for a whole chunk at once, in one
  short transaction committed before the chunk's first send.
* ``reuse_days`` (30 with ``dedupe_by``, else 0) — an item whose key a COMPLETED state of this
  workflow and workstream, of the same client, sent for within that many days completes with
  its result and sends nothing (``db.states.reuse``); the state's meta names the source. The
  chunk's keys are looked up in one statement, in the runner's read of the chunk
  (:func:`prepare_dedupe`).
* ``reuse_across_clients`` (false) — reuse other clients' results too.

Payload (one JSON object, compact UTF-8)::

    {"item_id": 1, "batch_id": 2, "step": "find_people", "workstream": "outbound",
     "row_number": 7, "callback_url": "https://…/callbacks/<signed token>",
     "company_name": …, "company_domain": …, "company_linkedin_url": …,
     "linkedin_url": …, "industry": …, "person_name": …, "first_name": …,
     "last_name": …, "email": …, "title": …,   # identity fields, null when unknown
     "results": {"<earlier step slug>": {…}, …},
     "original_data": {"<input column>": …, …}}

The control fields and the identity fields are always sent (Clay columns map to
top-level keys); each identity field is the normalization steps' value when they produced one,
else the raw cell (:func:`enrichflow.steps.clay_values.payload_values`). Without ``fields`` all of ``original_data`` and all earlier ``results``
are sent. With ``fields`` (a list of strings) only the ``original_data`` keys named in
it and only the ``results`` of the step slugs named in it are sent; a name may match an
input column, a step slug or both, and names matching neither are ignored (rows may lack
optional columns). ``fields: []`` sends no original data and no results. The
``results`` and ``original_data`` objects are always present, possibly empty.

Submission ledger: ``ctx.services["webhook_ledger"]`` (a :class:`WebhookLedger`) counts
submissions per URL under ``sha256(url).hexdigest()``, never the URL itself. A slot is
reserved (``record_submission``) before the POST, so concurrent workers cannot overshoot
the limit; failed sends still count, which errs on the safe side.

Services read: ``webhook_ledger`` (required), ``dedupe_leaders`` (with ``dedupe_by``; the
runner passes it), ``public_url`` and ``secret_key``
(required; ``secret_key`` may be a ``str`` or a pydantic ``SecretStr``; an item whose webhook
could not call ``public_url`` back fails unsent, :mod:`enrichflow.webhooks.callback_base`) and
``http_client`` (optional ``httpx.Client``; the process-wide shared client otherwise).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar, runtime_checkable

import httpx
from sqlalchemy import Connection

from enrichflow.catalog.validation import (
    CLIENT_KEYS,
    WebhookOptions,
    fields_option,
    webhook_options,
    webhook_urls,
)
from enrichflow.db.engine import now_ms
from enrichflow.db.states import DedupeDecision, ReusableResult, dedupe_key_text
from enrichflow.defaults import DEFAULT_MAX_SUBMISSIONS
from enrichflow.errors import ConfigError, PermanentStepError
from enrichflow.steps.base import Completed, Deferred, StepContext
from enrichflow.steps.clay_values import COMPANY_KEY, company_key, payload_values
from enrichflow.steps.registry import handler
from enrichflow.types import ItemIdentity
from enrichflow.webhooks.callback_base import callback_base_problem
from enrichflow.webhooks.http import encode_json, post_json, shared_client
from enrichflow.webhooks.ledger import has_room, url_key
from enrichflow.webhooks.ratelimit import concurrency_slot, limiter_for
from enrichflow.webhooks.redact import redact_url
from enrichflow.webhooks.signing import callback_token, callback_url

__all__ = [
    "AUTH_HEADER",
    "CLIENT_KEYS",
    "DEFAULT_MAX_SUBMISSIONS",
    "DedupeLeaders",
    "WebhookLedger",
    "WebhookOptions",
    "build_payload",
    "prepare_dedupe",
    "send_webhook",
    "url_key",
    "webhook_options",
]

AUTH_HEADER = "x-clay-webhook-auth"
MS_PER_DAY = 86_400_000
WARN_FRACTION = 0.9
_T = TypeVar("_T")


@runtime_checkable
class WebhookLedger(Protocol):
    """Lifetime submission counts per webhook URL, keyed by :func:`url_key`."""

    def submissions(self, url_key: str) -> int:
        """How many submissions were recorded for ``url_key``."""
        ...

    def record_submission(self, url_key: str, url_redacted: str = "") -> int:
        """Atomically add one submission for ``url_key``; the new count. ``url_redacted``
        (``scheme://host/…``) is kept for display."""
        ...


@runtime_checkable
class DedupeLeaders(Protocol):
    """The leader of each ``dedupe_by`` value of a (batch, step), decided for a chunk of items
    at once; the runner provides one per chunk. ``key_of`` gives an item's key."""

    def look_up(
        self,
        conn: Connection,
        key_of: Callable[[StepContext], str | None],
        reuse_since_ms: int | None,
        across_clients: bool,
    ) -> None:
        """Through ``conn``: the earlier results the chunk's keys can reuse (none when
        ``reuse_since_ms`` is None) and the leaders its other keys already have."""
        ...

    def reusable(
        self,
        ctx: StepContext,
        key_of: Callable[[StepContext], str | None],
        since_ms: int,
        across_clients: bool,
    ) -> ReusableResult | None:
        """An earlier batch's COMPLETED result for ``ctx``'s key, paid for at or after
        ``since_ms`` by the same client (any client with ``across_clients``)."""
        ...

    def join(
        self,
        ctx: StepContext,
        key_of: Callable[[StepContext], str | None],
        may_lead: Callable[[StepContext], bool] | None = None,
    ) -> DedupeDecision:
        """Make ``ctx`` the leader of its key unless another state already is; who is. Items
        decided with it lead a new key only when ``may_lead`` says they would send."""
        ...


_IDENTITY_FIELDS = frozenset(ItemIdentity._fields) | {
    "company_linkedin_url",
    "first_name",
    "last_name",
}


def _where(ctx: StepContext) -> str:
    return f"client {ctx.client!r}, workflow {ctx.step!r}, workstream {ctx.workstream!r}"


def _config_set_command(ctx: StepContext) -> str:
    """The ``enrichflow config set`` command line for this client, workflow and workstream."""
    return (
        f"enrichflow config set {shlex.quote(ctx.client)} {shlex.quote(ctx.step)} "
        f"--workstream {shlex.quote(ctx.workstream)}"
    )


def _checked(read: Callable[[Mapping[str, Any]], _T], config: Mapping[str, Any]) -> _T:
    """An option read by the catalog's validator; a bad one fails the item permanently."""
    try:
        return read(config)
    except ConfigError as exc:
        raise PermanentStepError(str(exc)) from None


def _webhook_urls(ctx: StepContext) -> list[str]:
    try:
        urls = webhook_urls(ctx.client_config)
    except ConfigError as exc:
        raise PermanentStepError(f"{exc} ({_where(ctx)})") from None
    if not urls:
        raise PermanentStepError(
            f"no webhook_url configured for {_where(ctx)}; set it with: "
            f"{_config_set_command(ctx)} webhook_url=<url>"
        )
    return urls


def _secret_text(value: Any) -> str:
    getter = getattr(value, "get_secret_value", None)
    if callable(getter):
        value = getter()
    if not isinstance(value, str) or not value:
        raise PermanentStepError("the secret_key service is not configured")
    return value


def build_payload(ctx: StepContext, callback: str) -> dict[str, Any]:
    """The JSON object sent for ``ctx`` (see the module docstring for the exact shape)."""
    selected = _checked(fields_option, ctx.workflow_config)
    wanted = None if selected is None else set(selected)
    payload: dict[str, Any] = {
        "item_id": ctx.item_id,
        "batch_id": ctx.batch_id,
        "step": ctx.step,
        "workstream": ctx.workstream,
        "row_number": ctx.row_number,
        "callback_url": callback,
    }
    payload.update(payload_values(ctx))
    payload["results"] = {
        slug: dict(result)
        for slug, result in ctx.results.items()
        if wanted is None or slug in wanted
    }
    payload["original_data"] = {
        key: value for key, value in ctx.original_data.items() if wanted is None or key in wanted
    }
    return payload


def _reserve_url(
    ctx: StepContext, urls: list[str], ledger: WebhookLedger, limit: int
) -> tuple[str, str, int]:
    """The first URL with room, its key and the reserved submission number (the preflight of
    a launch looks for a URL with room the same way)."""
    for url in urls:
        key = url_key(url)
        if not has_room(ledger.submissions(key), limit):
            continue
        count = ledger.record_submission(key, redact_url(url))
        if count > limit:  # another worker took the last slot
            continue
        _warn_if_filling(ctx, url, count, limit)
        return url, key, count
    raise PermanentStepError(
        f"every webhook URL configured for {_where(ctx)} ({len(urls)}) has reached its "
        f"{limit:,} submission limit; create a fresh webhook on the Clay table and add its "
        f"URL to the webhook_url list with: {_config_set_command(ctx)} 'webhook_url+=<url>'"
    )


def _warn_if_filling(ctx: StepContext, url: str, count: int, limit: int) -> None:
    threshold = math.ceil(limit * WARN_FRACTION)
    if count < threshold:
        return
    step = max(limit // 100, 1)
    if count == limit or (count - threshold) % step == 0:
        ctx.logger.warning(
            "webhook %s for %s has used %d of its %d submissions; add a fresh webhook URL "
            "before it fills up",
            redact_url(url),
            _where(ctx),
            count,
            limit,
        )


def _key_of(name: str, ctx: StepContext) -> str | None:
    return dedupe_key_text(dedupe_value(ctx, name))


def dedupe_value(ctx: StepContext, name: str) -> Any:
    """The value ``dedupe_by`` names: ``company`` (the normalized company key), a payload
    identity field (``company_domain``: its normalized value), else a canonical field
    (``website``), else ``step.field`` of an earlier step's result
    (``normalize_company_domain.company_domain``)."""
    if name == COMPANY_KEY:
        return company_key(ctx)
    if name in _IDENTITY_FIELDS:
        value = payload_values(ctx).get(name)
        if value:
            return value
    if name in ctx.fields:
        return ctx.fields[name]
    step, _, field_name = name.partition(".")
    if field_name and isinstance(ctx.results.get(step), Mapping):
        return ctx.results[step].get(field_name)
    return None


def _dedupe(
    ctx: StepContext, options: WebhookOptions, may_lead: Callable[[StepContext], bool]
) -> Completed | Deferred | None:
    """Company-level de-duplication (``dedupe_by``): ``None`` when this item sends (no key,
    or it leads it); an earlier batch's result within ``reuse_days``; the leader's result when
    it already landed; else a wait on the leader."""
    name = options.dedupe_by
    if name is None:
        return None
    key = dedupe_key_text(dedupe_value(ctx, name))
    if key is None:
        return None
    leaders = ctx.services.get("dedupe_leaders")
    if not isinstance(leaders, DedupeLeaders):
        raise PermanentStepError(
            "the dedupe_leaders service is not configured (needed by dedupe_by)"
        )
    if options.reuse_days > 0:
        earlier = leaders.reusable(
            ctx, partial(_key_of, name), _reuse_window(options), options.reuse_across_clients
        )
        if earlier is not None:
            return Completed(
                dict(earlier.payload),
                meta={
                    "reused_from": earlier.state_id,
                    "reused_from_batch": earlier.batch_id,
                    "dedupe_key": key,
                },
            )
    decision = leaders.join(ctx, partial(_key_of, name), may_lead)
    if decision.leads(ctx.state_id) or decision.leader_status is None:
        return None
    if decision.payload is not None:
        ctx.logger.info(
            "item %s: %s %r was enriched by state %s; reusing its result",
            ctx.item_id,
            name,
            key,
            decision.leader_state_id,
        )
        return Completed(
            dict(decision.payload),
            meta={"dedupe_by": name},
            waiting_on=decision.leader_state_id,
        )
    remaining = 0.0
    if decision.leader_lease_until is not None:
        remaining = (decision.leader_lease_until - now_ms()) / 1000
    return Deferred(
        deadline_seconds=max(options.callback_timeout_seconds, remaining),
        meta={"dedupe_by": name},
        waiting_on=decision.leader_state_id,
    )


def _reuse_window(options: WebhookOptions) -> int:
    """The oldest paid result (ms since the epoch) an item may reuse."""
    return now_ms() - int(options.reuse_days * MS_PER_DAY)


def prepare_dedupe(conn: Connection, contexts: Sequence[StepContext]) -> None:
    """Look up, through the runner's read of the chunk, the reusable results and the existing
    leaders of all its keys: deciding a chunk then costs two or three statements and, unless
    some key is new, no connection or transaction of its own."""
    if not contexts:
        return
    first = contexts[0]
    try:
        options = webhook_options(first.workflow_config)
    except ConfigError:
        return  # every item's call fails on the same option, with the item's context
    leaders = first.services.get("dedupe_leaders")
    if options.dedupe_by is None or not isinstance(leaders, DedupeLeaders):
        return
    since = _reuse_window(options) if options.reuse_days > 0 else None
    leaders.look_up(conn, partial(_key_of, options.dedupe_by), since, options.reuse_across_clients)


@handler("webhook", prepare=prepare_dedupe)
def send_webhook(ctx: StepContext) -> Completed | Deferred:
    """Send the item to the client's Clay webhook; the result arrives by callback."""
    options: WebhookOptions = _checked(webhook_options, ctx.workflow_config)
    urls = _webhook_urls(ctx)

    public_url = ctx.services.get("public_url")
    if public_url is not None and not isinstance(public_url, str):
        raise PermanentStepError("the public_url service is not a URL")
    # A row Clay cannot call back about would wait out its deadline unseen: refuse it now.
    where = f"client {ctx.client!r}, workflow {ctx.step!r}"
    problem = next(filter(None, (callback_base_problem(public_url, u, where) for u in urls)), None)
    if problem is not None or public_url is None:
        raise PermanentStepError(f"{problem}; nothing was sent")
    secret = _secret_text(ctx.services.get("secret_key"))
    ledger = ctx.services.get("webhook_ledger")
    if ledger is None or not isinstance(ledger, WebhookLedger):
        raise PermanentStepError("the webhook_ledger service is not configured")
    client = ctx.services.get("http_client")
    if not isinstance(client, httpx.Client):
        client = shared_client()

    def encoded(item: StepContext) -> bytes:
        token = callback_token(item.state_id, item.attempt, secret)
        return encode_json(build_payload(item, callback_url(public_url, token)))

    body = encoded(ctx)
    max_bytes = options.max_payload_bytes
    if len(body) > max_bytes:
        raise PermanentStepError(
            f"the payload for item {ctx.item_id} is {len(body):,} bytes, more than the "
            f"{max_bytes:,} allowed (max_payload_bytes); restrict it with the workflow's "
            "'fields' option"
        )

    # Company-level de-duplication comes before any submission is counted or sent.
    # An item refused for its size never sends, so it must not lead its company.
    shared = _dedupe(ctx, options, lambda item: len(encoded(item)) <= max_bytes)
    if shared is not None:
        return shared

    url, key, _count = _reserve_url(ctx, urls, ledger, options.max_submissions)
    headers: dict[str, str] = {}
    auth_token = ctx.client_config.get("auth_token")
    if auth_token:
        headers[AUTH_HEADER] = str(auth_token)

    limit_key = f"webhook:{ctx.step}:{key}"
    wait = options.rate_limit_wait_seconds
    limiter_for(limit_key, options.rate_per_second, options.burst).acquire(timeout=wait)
    with concurrency_slot(limit_key, options.concurrency, timeout=wait):
        response = post_json(
            client,
            url,
            body,
            headers,
            options.timeout_seconds,
            secrets=[str(auth_token or ""), secret],
            target="webhook_url",
        )
    ctx.logger.info(
        "sent item %s (%d bytes) to %s: HTTP %d",
        ctx.item_id,
        len(body),
        redact_url(url),
        response.status_code,
    )
    return Deferred(
        deadline_seconds=options.callback_timeout_seconds,
        meta={
            "webhook": redact_url(url),
            "status_code": response.status_code,
            "sent_at": datetime.now(UTC).isoformat(),
            "payload_bytes": len(body),
        },
    )
