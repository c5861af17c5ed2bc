"""Whether the service a webhook goes to can call back at all.

A Clay table calls back ``{ENRICHFLOW_PUBLIC_URL}/callbacks/<token>``. When that base is unset,
or sits on a narrower network than the webhook's host (loopback while Clay is on the internet),
every row sent waits for a callback that cannot come until its deadline, a day by default. So
every process that sends checks the base before it starts (:func:`check_callback_base`, for the
batches it will drive), the launch and ``doctor`` check it for their targets, and the sender
checks it once more before each send (:func:`callback_base_problem`).
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import Connection, select

from enrichflow.catalog.client_configs import client_configs_by_target
from enrichflow.catalog.registry import registry_list
from enrichflow.catalog.validation import webhook_urls
from enrichflow.db.models import Batch, BatchStep, Client
from enrichflow.errors import ConfigError
from enrichflow.states import BatchStatus, StepType
from enrichflow.webhooks.redact import redact_url

__all__ = [
    "PUBLIC_URL_SETTING",
    "CallbackBaseUnreachable",
    "WebhookTarget",
    "callback_base_problem",
    "check_callback_base",
    "configured_webhook_targets",
    "running_webhook_targets",
    "targets_problems",
]

PUBLIC_URL_SETTING = "ENRICHFLOW_PUBLIC_URL"


class CallbackBaseUnreachable(ConfigError):
    """The callback base URL cannot be reached by the service a webhook goes to."""


class Reach(enum.IntEnum):
    """How far away a host can be reached from: a wider network cannot call a narrower one."""

    LOOPBACK = 0
    PRIVATE = 1
    PUBLIC = 2


def _reach(url: str) -> Reach:
    """Literal addresses and ``localhost`` by their network; any other host name is public (the
    base is never resolved: a tunnel's name may resolve differently where Clay is)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return Reach.LOOPBACK
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return Reach.PUBLIC if host else Reach.LOOPBACK
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback or address.is_unspecified:
        return Reach.LOOPBACK
    if address.is_private or address.is_link_local or address.is_reserved:
        return Reach.PRIVATE
    return Reach.PUBLIC


def callback_base_problem(public_url: str | None, target_url: str, where: str = "") -> str | None:
    """Why a service at ``target_url`` could not call back to ``public_url`` (None: it can).
    ``where`` names the client and workflow the target belongs to."""
    target = f"{where} sends to {redact_url(target_url)}" if where else redact_url(target_url)
    if not public_url:
        return (
            f"{PUBLIC_URL_SETTING} is not set, so the callback URL sent with each row points "
            f"nowhere Clay can reach ({target}): set {PUBLIC_URL_SETTING} to the URL Clay "
            "reaches this receiver at (a tunnel or host name), or to the loopback URL of "
            "`enrichflow serve --port` when only the local sandbox calls back"
        )
    base, reach = _reach(public_url), _reach(target_url)
    if base < reach:
        return (
            f"{PUBLIC_URL_SETTING}={public_url} is a {base.name.lower()} address, but {target} "
            f"({reach.name.lower()}), which cannot call back there: set {PUBLIC_URL_SETTING} "
            "to a URL it can reach (a tunnel or host name)"
        )
    return None


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A webhook URL one client's Clay workflow sends to."""

    client: str
    workflow: str
    workstream: str
    url: str

    @property
    def where(self) -> str:
        return f"client {self.client!r}, workflow {self.workflow!r} in {self.workstream!r}"


def targets_problems(public_url: str | None, targets: Iterable[WebhookTarget]) -> list[str]:
    """The distinct problems of ``targets`` (empty: each can call back)."""
    problems: list[str] = []
    for t in targets:
        problem = callback_base_problem(public_url, t.url, t.where)
        if problem is not None and problem not in problems:
            problems.append(problem)
    return problems


def running_webhook_targets(
    conn: Connection, batch_ids: Iterable[int] | None = None
) -> list[WebhookTarget]:
    """The webhook URLs the running batches' Clay steps send to (``batch_ids``: only those),
    from each batch's client's config; a config that holds no usable URL sends nothing."""
    query = (
        select(Client.name, BatchStep.step_name, Batch.workstream_slug)
        .select_from(Batch)
        .join(Client, Client.id == Batch.client_id)
        .join(BatchStep, BatchStep.batch_id == Batch.id)
        .where(
            Batch.status == BatchStatus.RUNNING.value,
            BatchStep.type == StepType.ASYNC.value,
            BatchStep.handler == "webhook",
        )
        .distinct()
    )
    if batch_ids is not None:
        query = query.where(Batch.id.in_(list(batch_ids)))
    configs = client_configs_by_target(conn)
    targets: list[WebhookTarget] = []
    for client, workflow, workstream in conn.execute(query):
        try:
            urls = webhook_urls(configs.get((client, workflow, workstream), {}))
        except ConfigError:
            continue  # the sender fails those items with the config's own error
        targets.extend(WebhookTarget(client, workflow, workstream, url) for url in urls)
    return targets


def configured_webhook_targets(conn: Connection) -> list[WebhookTarget]:
    """Every webhook URL of every client's config for a Clay (``webhook``) workflow."""
    clay = {(r.workstream_slug, r.slug) for r in registry_list(conn) if r.handler == "webhook"}
    targets: list[WebhookTarget] = []
    for (client, workflow, workstream), config in sorted(client_configs_by_target(conn).items()):
        if (workstream, workflow) not in clay:
            continue
        try:
            urls = webhook_urls(config)
        except ConfigError:
            continue  # doctor's async configs check reports it
        targets.extend(WebhookTarget(client, workflow, workstream, url) for url in urls)
    return targets


def check_callback_base(
    conn: Connection, public_url: str | None, batch_ids: Iterable[int] | None = None
) -> None:
    """:class:`CallbackBaseUnreachable` when a running batch (``batch_ids``: one of those)
    would send a row to a webhook that cannot call ``public_url`` back."""
    problems = targets_problems(public_url, running_webhook_targets(conn, batch_ids))
    if problems:
        raise CallbackBaseUnreachable(
            "refusing to send to Clay: " + "; ".join(problems) + "; nothing was sent"
        )
