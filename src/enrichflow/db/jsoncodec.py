"""The JSON codec of every JSON column and JSON parameter: orjson, because decoding
``original_data`` and result payloads with the standard library dominated the cost of a step."""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    """What orjson leaves to us and ``json.dumps`` wrote: named tuples as arrays."""
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def dumps(value: Any) -> str:
    """JSON text; keys that are not strings are written as strings, as ``json.dumps`` does."""
    return orjson.dumps(value, default=_default, option=_OPTIONS).decode()


def loads(text: str | bytes) -> Any:
    return orjson.loads(text)
