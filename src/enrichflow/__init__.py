"""enrichflow: durable B2B data-enrichment pipelines with the database as the only source of truth.

The names below are the stable API for writing a step (docs/usage.md, "Writing a step"); they
are imported on first use, so ``import enrichflow`` stays as light as the CLI's start needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from enrichflow.errors import PermanentStepError, RetryableStepError, StepError
    from enrichflow.steps.base import Deferred, ItemIdentity, Skip, StepContext
    from enrichflow.steps.registry import chunk_handler, handler

    __version__: str

__all__ = [
    "Deferred",
    "ItemIdentity",
    "PermanentStepError",
    "RetryableStepError",
    "Skip",
    "StepContext",
    "StepError",
    "__version__",
    "chunk_handler",
    "handler",
]

_PUBLIC = {
    "Deferred": "enrichflow.steps.base",
    "ItemIdentity": "enrichflow.steps.base",
    "Skip": "enrichflow.steps.base",
    "StepContext": "enrichflow.steps.base",
    "PermanentStepError": "enrichflow.errors",
    "RetryableStepError": "enrichflow.errors",
    "StepError": "enrichflow.errors",
    "chunk_handler": "enrichflow.steps.registry",
    "handler": "enrichflow.steps.registry",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("enrichflow")  # pyproject.toml's version is the only one
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'enrichflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
