"""Imports every built-in handler module so that their ``@handler`` registrations run."""

from __future__ import annotations

from enrichflow.steps import (  # noqa: F401
    apollo_split,
    consolidate,
    http,
    noop,
    normalization,
    webhook,
)
