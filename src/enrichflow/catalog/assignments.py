"""What a change to a config asks for: values to set, to append to a stored list, keys to remove.

The CLI and the dashboard's form give ``KEY=VALUE`` text (:func:`parse_assignments`); the JSON
API gives typed values (:func:`assignments_build`); both pass the same checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from enrichflow.errors import ConfigError
from enrichflow.webhooks.redact import redact_url

__all__ = ["Assignments", "assignments_build", "config_merge", "parse_assignments"]

_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL_KEYS = ("webhook_url",)


@dataclass(frozen=True, slots=True)
class Assignments:
    """What ``KEY=VALUE`` arguments ask for."""

    set: dict[str, Any]
    append: dict[str, list[Any]]
    remove: frozenset[str]


def _check_key(key: str) -> None:
    if not _KEY_RE.match(key):
        raise ConfigError(f"invalid setting name {key!r}")


def _check_url(key: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key} must be an http(s) URL, got {redact_url(value)!r}")


def _assignments(
    sets: dict[str, list[str]], appends: dict[str, list[str]], removes: set[str]
) -> Assignments:
    clash = removes & (set(sets) | set(appends))
    if clash:
        raise ConfigError(f"{', '.join(sorted(clash))} both set and removed")
    return Assignments(
        set={k: v[0] if len(v) == 1 else v for k, v in sets.items()},
        append=appends,
        remove=frozenset(removes),
    )


def parse_assignments(args: Iterable[str]) -> Assignments:
    """``key=value`` (repeated: a list, in order), ``key+=value`` (append to the stored list),
    ``key=`` (remove the key). :class:`ConfigError` for anything else."""
    sets: dict[str, list[str]] = {}
    appends: dict[str, list[str]] = {}
    removes: set[str] = set()
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep:
            raise ConfigError(f"expected KEY=VALUE, got {arg!r}")
        target = sets
        if key.endswith("+"):
            key, target = key[:-1], appends
        _check_key(key)
        value = value.strip()
        if key in _URL_KEYS and value:
            _check_url(key, value)
        if not value:
            if target is appends:
                raise ConfigError(f"nothing to append to {key!r}")
            removes.add(key)
            continue
        target.setdefault(key, []).append(value)
    return _assignments(sets, appends, removes)


def assignments_build(
    sets: Mapping[str, Sequence[str]], removes: Iterable[str] = ()
) -> Assignments:
    """Set each key to its values (several: a list, in order) and remove ``removes``; the checks
    of :func:`parse_assignments`. Values are non-empty (an empty value is not a removal here)."""
    for key, given in sets.items():
        if not given or any(not value.strip() for value in given):
            raise ConfigError(f"{key!r}: empty value (use 'remove' to delete a key)")
    values: dict[str, list[str]] = {}
    for key, given in sets.items():
        _check_key(key)
        values[key] = []
        for value in given:
            value = value.strip()
            if key in _URL_KEYS:
                _check_url(key, value)
            values[key].append(value)
    removed = set()
    for key in removes:
        _check_key(key)
        removed.add(key)
    return _assignments(values, {}, removed)


def config_merge(current: dict[str, Any], changes: Assignments) -> dict[str, Any]:
    """``current`` with ``changes`` applied (a new dict)."""
    merged = {k: v for k, v in current.items() if k not in changes.remove}
    merged.update(changes.set)
    for key, values in changes.append.items():
        existing = merged.get(key)
        if existing is None or existing == "":
            base: list[Any] = []
        elif isinstance(existing, list):
            base = list(existing)
        else:
            base = [existing]
        merged[key] = base + [v for v in values if v not in base]
    return merged
