"""The JSON codec every JSON column and parameter goes through (orjson underneath)."""

from __future__ import annotations

import json
from collections import namedtuple
from decimal import Decimal

import pytest

from enrichflow.db import jsoncodec


def test_round_trip_matches_the_standard_library() -> None:
    value = {"a": [1, 2.5, None, True], "ü": "naïve \u0000 \n", "n": {"1": "x"}}
    assert jsoncodec.loads(jsoncodec.dumps(value)) == json.loads(json.dumps(value))


def test_named_tuples_become_arrays_and_int_keys_strings() -> None:
    Pair = namedtuple("Pair", "left right")
    assert json.loads(jsoncodec.dumps([Pair(1, "b")])) == [[1, "b"]]
    assert json.loads(jsoncodec.dumps({1: "x"})) == {"1": "x"}


def test_unsupported_values_raise() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        jsoncodec.dumps({"amount": Decimal("1.5")})
