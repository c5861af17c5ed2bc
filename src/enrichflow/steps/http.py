"""The ``http`` handler: call a JSON API synchronously and keep parts of its answer.

Workflow config (registry; never secrets):

* ``url`` (required) — a template, e.g. ``"https://api.example.com/companies/{company_domain}"``.
  Substituted values are percent-encoded (``quote(value, safe="")``), so a placeholder
  fills one path segment or query value. Placeholders may fill only the path, query and
  fragment: the scheme, host and port are written out, so a CSV cell cannot choose where the
  request goes (:func:`check_url_template`, at ``workflow set`` and before every call).
* ``method`` (``"POST"``) — GET, POST, PUT, PATCH or DELETE. GET and DELETE send no body.
* ``headers`` — ``{name: template}``; values may use ``{secret:NAME}``.
* ``body`` — a JSON template: nested dicts/lists whose string values may hold
  placeholders. A string that is exactly one placeholder (``"{employees}"``) is replaced by
  the value itself (number, object, list...); other strings get the value's text (objects,
  lists, booleans and null as JSON). Dict keys are not templated. Omitted: no body.
* ``keep`` — what to return from the JSON response. Omitted: the whole response object
  (a non-object JSON value is returned as ``{"data": value}``). A list of dotted paths
  (``["data.company.employees", "data.industry"]``; digits index lists) returns those
  values at the same nested place (``{"data": {"company": {"employees": 12}, ...}}``);
  a dict ``{"employees": "data.company.employees"}`` returns them under new flat names.
  Paths absent from the response are left out.
* ``rate_per_second`` (10), ``burst`` (20), ``concurrency`` (10),
  ``rate_limit_wait_seconds`` (30), ``timeout_seconds`` (30) — as for the ``webhook``
  handler; the limits are shared per workflow (step slug) and host.

Placeholders (``{name}``; no conversions or format specs):

* ``{secret:NAME}`` — ``ctx.client_config[NAME]`` (client config holds secrets);
  usable in the URL, headers and body.
* ``{identity.X}``, ``{fields.X}`` (canonical field, ``ctx.fields``), ``{original_data.X}``
  (alias ``{row.X}``), ``{results.STEP.PATH}`` — explicit.
* ``{X}`` — the identity field ``X`` if set, else the canonical field ``X``, else the input
  column ``X``, else, when ``X`` is ``STEP.PATH``, that path in the earlier step's result.

A missing placeholder value (absent or null) is a :class:`PermanentStepError` naming it.
Errors follow :mod:`enrichflow.webhooks.http`: retryable for 408/429/5xx/network,
permanent for other statuses, URLs and secrets redacted.

Services read: ``http_client`` (optional ``httpx.Client``).
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from enrichflow.catalog.validation import HTTP_METHODS
from enrichflow.errors import PermanentStepError
from enrichflow.steps.base import JSON, StepContext
from enrichflow.steps.registry import handler
from enrichflow.webhooks.egress import check_url_template, url_origin
from enrichflow.webhooks.http import positive_option, send_request, shared_client
from enrichflow.webhooks.ratelimit import concurrency_slot, limiter_for
from enrichflow.webhooks.redact import excerpt, redact_text, redact_url

__all__ = [
    "TemplateContext",
    "call_http",
    "keep_paths",
    "render_template",
]

_FORMATTER = string.Formatter()
_BODYLESS = frozenset({"GET", "DELETE"})
_MISSING = object()


class TemplateContext:
    """Resolves placeholder names against one item; remembers the secrets it handed out."""

    def __init__(self, ctx: StepContext) -> None:
        self._ctx = ctx
        self._identity = {
            name: value for name, value in ctx.identity._asdict().items() if value is not None
        }
        self.secrets_used: list[str] = []

    def secret(self, name: str) -> str:
        value = self._ctx.client_config.get(name)
        if value is None or value == "":
            raise PermanentStepError(
                f"template needs secret {name!r}, which is not in the client config of "
                f"client {self._ctx.client!r}, workflow {self._ctx.step!r}, "
                f"workstream {self._ctx.workstream!r}"
            )
        text = str(value)
        self.secrets_used.append(text)
        return text

    def value(self, name: str) -> Any:
        found = self._lookup(name)
        if found is _MISSING or found is None:
            raise PermanentStepError(
                f"template field {name!r} has no value for item {self._ctx.item_id}"
            )
        return found

    def _lookup(self, name: str) -> Any:
        ctx = self._ctx
        root, _, rest = name.partition(".")
        if rest:
            if root == "identity":
                return self._identity.get(rest, _MISSING)
            if root in ("original_data", "row"):
                if rest in ctx.original_data:
                    return ctx.original_data[rest]
                return _walk(ctx.original_data, rest.split("."))
            if root == "results":
                return _walk(ctx.results, rest.split("."))
            if root == "fields":
                return ctx.fields.get(rest, _MISSING)
        if name in self._identity:
            return self._identity[name]
        if name in ctx.fields:
            return ctx.fields[name]
        if name in ctx.original_data:
            return ctx.original_data[name]
        if rest and root in ctx.results:
            return _walk(ctx.results[root], rest.split("."))
        return _MISSING


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(value, Mapping):
            if part not in value:
                return _MISSING
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def render_template(
    template: str,
    names: TemplateContext,
    *,
    encode: Callable[[str], str] | None = None,
    whole_value: bool = False,
) -> Any:
    """``template`` with its placeholders filled; ``encode`` is applied to each value's text.

    With ``whole_value``, a template that is exactly one (non-secret) placeholder yields the
    value itself rather than its text.
    """
    try:
        pieces = list(_FORMATTER.parse(template))
    except ValueError as exc:
        raise PermanentStepError(f"bad template {excerpt(template, 80)!r}: {exc}") from None
    if (
        whole_value
        and len(pieces) == 1
        and pieces[0][0] == ""
        and pieces[0][1]
        and pieces[0][1] != "secret"
        and not pieces[0][2]
        and not pieces[0][3]
    ):
        return names.value(pieces[0][1])
    out: list[str] = []
    for literal, field, spec, conversion in pieces:
        out.append(literal)
        if field is None:
            continue
        if conversion:
            raise PermanentStepError(f"template conversion '!{conversion}' is not supported")
        if field == "secret":
            if not spec:
                raise PermanentStepError("write secret placeholders as {secret:NAME}")
            text = names.secret(spec)
        elif spec:
            raise PermanentStepError(f"template format spec in {{{field}:…}} is not supported")
        elif not field:
            raise PermanentStepError("empty placeholder {} in template; name a field")
        else:
            text = _as_text(names.value(field))
        out.append(encode(text) if encode else text)
    return "".join(out)


def _render_body(template: Any, names: TemplateContext) -> Any:
    if isinstance(template, str):
        return render_template(template, names, whole_value=True)
    if isinstance(template, Mapping):
        return {str(k): _render_body(v, names) for k, v in template.items()}
    if isinstance(template, list | tuple):
        return [_render_body(v, names) for v in template]
    return template


def keep_paths(data: Any, keep: Any) -> JSON:
    """Select from a JSON response as the ``keep`` option describes (module docstring)."""
    if keep is None:
        return dict(data) if isinstance(data, Mapping) else {"data": data}
    if isinstance(keep, Mapping):
        kept: JSON = {}
        for out_name, path in keep.items():
            if not isinstance(path, str):
                raise PermanentStepError("'keep' paths must be strings")
            value = _walk(data, path.split("."))
            if value is not _MISSING:
                kept[str(out_name)] = value
        return kept
    if not isinstance(keep, list) or not all(isinstance(p, str) and p for p in keep):
        raise PermanentStepError("'keep' must be a list of dotted paths or a {name: path} map")
    result: JSON = {}
    for path in keep:
        parts = path.split(".")
        value = _walk(data, parts)
        if value is _MISSING:
            continue
        target = result
        for part in parts[:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                target[part] = nxt
            target = nxt
        target[parts[-1]] = value
    return result


@handler("http")
def call_http(ctx: StepContext) -> JSON:
    """Call the configured API for this item and return the kept part of its JSON answer."""
    config = ctx.workflow_config
    method = str(config.get("method", "POST")).upper()
    if method not in HTTP_METHODS:
        raise PermanentStepError(f"workflow option 'method' must be one of {sorted(HTTP_METHODS)}")
    url_template = config.get("url")
    if not isinstance(url_template, str) or not url_template:
        raise PermanentStepError(f"workflow {ctx.step!r} has no 'url' template")
    origin = check_url_template(url_template)

    names = TemplateContext(ctx)
    url = str(render_template(url_template.strip(), names, encode=lambda t: quote(t, safe="")))
    if url_origin(url) != origin:
        raise PermanentStepError(
            f"item {ctx.item_id}: the url template's values changed where it sends "
            f"({redact_url(url)}); placeholders may fill the path, query and fragment only"
        )
    header_templates = config.get("headers") or {}
    if not isinstance(header_templates, Mapping):
        raise PermanentStepError("workflow option 'headers' must be a {name: value} map")
    headers: dict[str, str] = {}
    for name, template in header_templates.items():
        value = str(render_template(str(template), names))
        if "\r" in value or "\n" in value:
            raise PermanentStepError(f"header {name!r} would contain a line break")
        headers[str(name)] = value
    body = _render_body(config["body"], names) if config.get("body") is not None else None
    if method in _BODYLESS:
        body = None

    rate = positive_option(config, "rate_per_second", 10.0)
    burst = int(positive_option(config, "burst", 20))
    concurrency = int(positive_option(config, "concurrency", 10))
    wait = positive_option(config, "rate_limit_wait_seconds", 30.0)
    timeout = positive_option(config, "timeout_seconds", 30.0)
    client = ctx.services.get("http_client")
    if not isinstance(client, httpx.Client):
        client = shared_client()

    limit_key = f"http:{ctx.step}:{origin[1]}"
    limiter_for(limit_key, rate, burst).acquire(timeout=wait)
    with concurrency_slot(limit_key, concurrency, timeout=wait):
        response = send_request(
            client,
            method,
            url,
            json_body=body,
            headers=headers,
            timeout=timeout,
            secrets=names.secrets_used,
            target="url",
        )
    ctx.logger.debug(
        "%s %s for item %s: HTTP %d", method, redact_url(url), ctx.item_id, response.status_code
    )
    keep = config.get("keep")
    if not response.content:
        if keep is not None:
            raise PermanentStepError(
                f"{method} {redact_url(url)} answered HTTP {response.status_code} with no body"
            )
        return {"status_code": response.status_code}
    try:
        data = response.json()
    except ValueError:
        if keep is not None:
            raise PermanentStepError(
                f"{method} {redact_url(url)} answered HTTP {response.status_code} with a "
                "body that is not JSON"
            ) from None
        hidden = [*names.secrets_used, *headers.values()]
        text = redact_text(response.text[:2000], hidden)
        return {"status_code": response.status_code, "text": text}
    return keep_paths(data, keep)
