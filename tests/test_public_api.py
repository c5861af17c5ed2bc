"""What a Python user imports and runs: the step API from ``enrichflow`` itself, one version from
the package metadata, and ``python -m enrichflow``."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

import enrichflow
from enrichflow import errors
from enrichflow.config import Settings
from enrichflow.steps import base, registry

ROOT = Path(__file__).resolve().parents[1]


def test_the_step_api_is_importable_from_enrichflow() -> None:
    from enrichflow import (
        Deferred,
        ItemIdentity,
        PermanentStepError,
        RetryableStepError,
        Skip,
        StepContext,
        StepError,
        chunk_handler,
        handler,
    )

    assert (handler, chunk_handler) == (registry.handler, registry.chunk_handler)
    assert (StepContext, Skip, Deferred, ItemIdentity) == (
        base.StepContext,
        base.Skip,
        base.Deferred,
        base.ItemIdentity,
    )
    assert (StepError, RetryableStepError, PermanentStepError) == (
        errors.StepError,
        errors.RetryableStepError,
        errors.PermanentStepError,
    )
    assert set(enrichflow.__all__) <= set(dir(enrichflow))
    with pytest.raises(AttributeError, match="no attribute 'handlers'"):
        enrichflow.handlers  # noqa: B018


def test_importing_enrichflow_loads_none_of_the_step_modules() -> None:
    probe = "import enrichflow, sys; print(sorted(m for m in sys.modules if 'enrichflow' in m))"
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "['enrichflow']"


def test_the_version_has_one_source() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert enrichflow.__version__ == version("enrichflow") == declared["project"]["version"]

    from enrichflow.api.app import create_app
    from enrichflow.db.engine import make_engine

    engine = make_engine("sqlite://")
    try:
        # an empty database cannot keep a generated key: the environment's is used
        settings = Settings(_env_file=None, secret_key="version-test-key-of-at-least-32-bytes")  # type: ignore[call-arg]
        app = create_app(engine, settings)
        assert app.version == enrichflow.__version__
    finally:
        engine.dispose()


def test_the_cli_prints_the_installed_version() -> None:
    for argv in (
        [str(Path(sys.executable).with_name("enrichflow"))],
        [sys.executable, "-m", "enrichflow"],
    ):
        shown = subprocess.run(
            [*argv, "--version"], capture_output=True, text=True, check=True, timeout=60
        )
        assert shown.stdout == f"enrichflow {version('enrichflow')}\n"


def test_python_m_enrichflow_is_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "enrichflow", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "run" in result.stdout and "serve" in result.stdout
