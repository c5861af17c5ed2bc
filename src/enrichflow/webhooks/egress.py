"""The egress guard: outbound requests reach public addresses only.

A webhook URL or an ``http`` step URL is configuration an operator types, or fills from a CSV
cell; without this guard either could point the server at itself, its database or a cloud
metadata endpoint, and the stored answer excerpt would read it back. Every address a host name
resolves to is checked, and the connection is opened to an address that passed the check, so a
DNS answer that changes between the check and the connection cannot slip past it. The check
runs in the network layer of the HTTP client, hence for every connection, including the one a
redirect would open.

Loopback, private, link-local, multicast, reserved, unspecified and other non-global addresses
(IPv4 and IPv6, including IPv4-mapped IPv6) are refused unless
``ENRICHFLOW_ALLOW_PRIVATE_TARGETS=1`` (the sandbox, local development and tests talking to
loopback servers).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from enrichflow.config import get_settings
from enrichflow.errors import PermanentStepError
from enrichflow.webhooks.redact import redact_url

__all__ = [
    "ALLOW_ENV",
    "EgressRefused",
    "GuardedClient",
    "address_problem",
    "check_url_template",
    "literal_target_problem",
    "private_targets_allowed",
    "url_origin",
    "vet_host",
]

ALLOW_ENV = "ENRICHFLOW_ALLOW_PRIVATE_TARGETS"
_ALLOW_HINT = f"set {ALLOW_ENV}=1 to allow"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class EgressRefused(PermanentStepError):
    """The target of an outbound request is not a public address; nothing was sent."""


def private_targets_allowed() -> bool:
    """Whether the operator allowed non-public targets (``ENRICHFLOW_ALLOW_PRIVATE_TARGETS``)."""
    return get_settings().allow_private_targets


def address_problem(address: IPAddress) -> str | None:
    """What kind of non-public address ``address`` is (``"a loopback address"``), or ``None``
    when it is a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return address_problem(embedded)
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "a non-public address"),
    )
    for matched, kind in checks:
        if matched:
            return kind
    return None


def _refusal(host: str, address: IPAddress, kind: str) -> str:
    shown = host.strip("[]")
    if _literal_address(host) == address:
        return f"{shown} is {kind}; {_ALLOW_HINT}"
    return f"{shown} resolves to {address}, {kind}; {_ALLOW_HINT}"


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


def vet_host(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, when every one of them is public; otherwise
    :class:`EgressRefused` naming the host and the first address that is not. A name that does
    not resolve is an :class:`httpcore.ConnectError` (retryable, as any connection failure)."""
    literal = _literal_address(host)
    if literal is not None:
        found: Iterable[IPAddress] = [literal]
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"{host} cannot be resolved ({exc})") from None
        found = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    addresses: list[str] = []
    for address in found:
        kind = address_problem(address)
        if kind is not None:
            raise EgressRefused(_refusal(host, address, kind))
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise httpcore.ConnectError(f"{host} resolves to no address")
    return addresses


def literal_target_problem(url: str) -> str | None:
    """Why ``url`` is refused without looking anything up (an IP literal that is not public,
    or ``localhost``), or ``None``; for checking a URL where it is configured."""
    if private_targets_allowed():
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    if not host:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host} is a loopback address; {_ALLOW_HINT}"
    literal = _literal_address(host)
    if literal is None:
        return None
    kind = address_problem(literal)
    return None if kind is None else _refusal(host, literal, kind)


# scheme://authority up to the character that ends the authority, all written out
_FIXED_ORIGIN = re.compile(r"(?i)(https?)://([^/?#{}]+)[/?#]")

Origin = tuple[str, str | None, int | None]


def url_origin(url: str) -> Origin | None:
    """``(scheme, host, port)`` of ``url``, or ``None`` when it cannot be parsed."""
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.hostname, parts.port
    except ValueError:
        return None


def check_url_template(template: Any) -> Origin:
    """The ``(scheme, host, port)`` an ``http`` step's ``url`` template always sends to; a
    :class:`PermanentStepError` when it is not an http(s) URL, when a placeholder would fill
    its scheme, host or port (a CSV cell must not choose where the request goes), or when the
    host is a literal non-public address (unless ``ENRICHFLOW_ALLOW_PRIVATE_TARGETS=1``)."""
    if not isinstance(template, str) or not template.strip():
        raise PermanentStepError("workflow option 'url' must be a URL template")
    template = template.strip()
    shown = redact_url(template)
    if "{" in template:
        fixed = _FIXED_ORIGIN.match(template)
        if fixed is None or "{" in template[: fixed.end()]:
            raise PermanentStepError(
                f"url template {shown!r}: placeholders may fill the path, query and fragment "
                "only; write the scheme, host and port out "
                "(https://api.example.com/companies/{company_domain})"
            )
        prefix = template[: fixed.end()]
    else:
        prefix = template
    origin = url_origin(prefix)
    if origin is None or origin[0] not in ("http", "https") or not origin[1]:
        raise PermanentStepError(f"url template {shown!r} must be an http(s) URL with a host")
    problem = literal_target_problem(prefix)
    if problem is not None:
        raise PermanentStepError(f"url template {shown!r}: {problem}")
    return origin


class _GuardedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to vetted addresses; TLS still verifies the host name,
    since the connection pool passes the URL's host to ``start_tls``."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if private_targets_allowed():
            return self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in vet_host(host, port):
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # vet_host returns at least one address
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise EgressRefused("outbound requests may not use a Unix socket")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose network layer is the guard."""

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        # httpx takes no network backend of its own, so its pool is replaced by one that has it.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_GuardedBackend(),
        )


class GuardedClient(httpx.Client):
    """An ``httpx.Client`` whose every connection goes through the egress guard; it never
    follows redirects and uses no proxy (a proxy would be the only address checked)."""

    def __init__(self, *, limits: httpx.Limits | None = None, **kwargs: Any) -> None:
        super().__init__(
            transport=_GuardedTransport(limits or httpx.Limits()),
            follow_redirects=False,
            trust_env=False,
            **kwargs,
        )
