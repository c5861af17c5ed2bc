"""The garbage collector's threshold in enrichflow's processes (enrichflow.gc_tuning)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from enrichflow import cli
from enrichflow.gc_tuning import GEN0_THRESHOLD, tune_gc


@pytest.fixture
def default_threshold() -> Iterator[tuple[int, int, int]]:
    """CPython's default thresholds for the test, the suite's own restored afterwards."""
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*saved)


def test_the_cli_raises_the_youngest_generation_only(
    default_threshold: tuple[int, int, int], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'enrichflow.db'}"
    result = CliRunner().invoke(cli.app, ["init", "--database-url", url], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert gc.get_threshold() == (GEN0_THRESHOLD, 10, 10)


def test_a_higher_threshold_is_left_alone(default_threshold: tuple[int, int, int]) -> None:
    gc.set_threshold(GEN0_THRESHOLD * 5, 20, 30)
    tune_gc()
    assert gc.get_threshold() == (GEN0_THRESHOLD * 5, 20, 30)
