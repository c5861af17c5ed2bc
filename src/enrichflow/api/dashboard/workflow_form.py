"""The workflow form: each option of a workflow with the input that fits it (a whole number, a
number, a list of names, a field name), read back into typed values. Options the form does not
know (a plugin handler's own) are edited as ``KEY=VALUE`` lines. What a value may be is decided
by the catalog's check at save time, not here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from enrichflow.catalog.assignments import parse_assignments
from enrichflow.catalog.workflow_options import typed_value
from enrichflow.errors import ConfigError
from enrichflow.states import StepType

__all__ = [
    "DEDUPE_SUGGESTIONS",
    "OPTIONS",
    "OptionField",
    "fields_for",
    "mode_read",
    "option_text",
    "options_read",
    "other_options_text",
    "webhook_only_refused",
]

Kind = Literal["int", "number", "list", "field"]


@dataclass(frozen=True, slots=True)
class OptionField:
    key: str
    label: str
    kind: Kind
    help: str
    webhook_only: bool = False
    off_at_zero: bool = False
    """0 is a value (it turns the option off), so the input accepts it."""

    @property
    def input_name(self) -> str:
        return f"opt_{self.key}"

    @property
    def minimum(self) -> int:
        return 1 if self.kind == "int" and not self.off_at_zero else 0


OPTIONS: tuple[OptionField, ...] = (
    OptionField("concurrency", "Concurrency", "int", "Items of this step in flight at once."),
    OptionField("batch_size", "Batch size", "int", "Items handed to a worker together."),
    OptionField("max_attempts", "Max attempts", "int", "Tries before an item fails (3)."),
    OptionField("lease_seconds", "Lease (s)", "number", "How long one try may run (60)."),
    OptionField("backoff_base_seconds", "Back-off base (s)", "number", "First retry delay (2)."),
    OptionField("backoff_max_seconds", "Back-off cap (s)", "number", "Longest retry delay (600)."),
    OptionField(
        "breaker_failures",
        "Breaker: failures in a row",
        "int",
        "The step pauses after this many sends in a row fail the same way (20; 0: off).",
        off_at_zero=True,
    ),
    OptionField(
        "breaker_window_seconds",
        "Breaker: all failing for (s)",
        "number",
        "The step pauses when every send failed for this long (60; 0: off).",
        off_at_zero=True,
    ),
    OptionField(
        "callback_timeout_seconds",
        "Callback deadline (s)",
        "number",
        "How long to wait for Clay's answer (86400).",
        webhook_only=True,
    ),
    OptionField(
        "rate_per_second", "Sends per second", "number", "Per webhook URL (10).", webhook_only=True
    ),
    OptionField("burst", "Burst", "int", "Sends allowed at once above the rate (20).", True),
    OptionField(
        "rate_limit_wait_seconds",
        "Rate-limit wait (s)",
        "number",
        "Longest wait for the local limit before trying later (30).",
        webhook_only=True,
    ),
    OptionField("timeout_seconds", "HTTP timeout (s)", "number", "Of each send (30).", True),
    OptionField(
        "max_payload_bytes", "Max payload (bytes)", "int", "Larger sends fail (102400).", True
    ),
    OptionField(
        "max_submissions",
        "Rows per webhook URL",
        "int",
        "Clay's lifetime limit of one webhook source (50000).",
        webhook_only=True,
    ),
    OptionField(
        "dedupe_by",
        "De-duplicate by",
        "field",
        "Send one row per value: company_domain, website, or step.field of an earlier result. "
        "Empty: send every row.",
        webhook_only=True,
    ),
    OptionField(
        "fields",
        "Fields sent",
        "list",
        "Input columns and earlier steps to send, one per line. Empty: send everything.",
        webhook_only=True,
    ),
)

DEDUPE_SUGGESTIONS = (
    "company_domain",
    "website",
    "company_name",
    "normalize_company_domain.company_domain",
)


def fields_for(handler: str) -> list[OptionField]:
    """The options the form shows for a workflow run by ``handler``."""
    return [o for o in OPTIONS if handler == "webhook" or not o.webhook_only]


def _number(option: OptionField, text: str) -> int | float:
    try:
        return int(text) if option.kind == "int" else float(text)
    except ValueError:
        whole = "a whole number" if option.kind == "int" else "a number"
        raise ConfigError(f"{option.label} ({option.key}) must be {whole}, got {text!r}") from None


def options_read(
    handler: str, form: Mapping[str, str], stored: Mapping[str, Any]
) -> tuple[dict[str, Any], set[str]]:
    """The options to set and the keys to remove, from the submitted ``form``: an empty input
    removes its option; ``other_options`` holds ``KEY=VALUE`` lines for keys the form does
    not show (the ones it leaves out are removed)."""
    values: dict[str, Any] = {}
    remove: set[str] = set()
    shown = fields_for(handler)
    for option in shown:
        text = form.get(option.input_name, "").strip()
        if not text:
            remove.add(option.key)
        elif option.kind == "list":
            values[option.key] = [
                n.strip() for line in text.splitlines() for n in line.split(",") if n.strip()
            ]
        elif option.kind == "field":
            values[option.key] = text
        else:
            values[option.key] = _number(option, text)
    known = {o.key for o in shown}
    lines = [line.strip() for line in form.get("other_options", "").splitlines() if line.strip()]
    others = parse_assignments(lines)
    for key, value in others.set.items():
        if key in known:
            raise ConfigError(f"{key} has its own input above; set it there")
        values[key] = (
            [typed_value(v) for v in value] if isinstance(value, list) else (typed_value(value))
        )
    if others.append:
        raise ConfigError("write other options as KEY=VALUE lines (no +=)")
    remove |= {k for k in stored if k not in known and k not in values}
    return values, remove


def _shown(value: Any) -> str:
    """A value as ``typed_value`` reads it back: JSON for an object, true/false, text."""
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def other_options_text(handler: str, stored: Mapping[str, Any]) -> str:
    """The stored options the form has no input for, as ``KEY=VALUE`` lines."""
    known = {o.key for o in fields_for(handler)}
    lines = []
    for key, value in stored.items():
        if key in known:
            continue
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key}={_shown(item)}")
    return "\n".join(lines)


def option_text(option: OptionField, stored: Mapping[str, Any]) -> str:
    """What the option's input shows for the stored value."""
    value = stored.get(option.key)
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def webhook_only_refused(handler: str, form: Mapping[str, str]) -> None:
    """:class:`ConfigError` naming a Clay-only option filled in for a workflow of another
    handler, which would never read it (the add form shows every option)."""
    if handler == "webhook":
        return
    filled = [o for o in OPTIONS if o.webhook_only and form.get(o.input_name, "").strip()]
    if filled:
        names = ", ".join(f"{o.label} ({o.key})" for o in filled)
        raise ConfigError(f"{names}: only webhook workflows read this; {handler!r} does not")


def mode_read(text: str) -> StepType | None:
    """The step type chosen on the add form; None (empty) lets the handler decide."""
    if not text:
        return None
    try:
        return StepType(text)
    except ValueError:
        raise ConfigError(f"type must be SYNC or ASYNC, got {text!r}") from None
