"""Imports every built-in handler module so that their ``@handler`` registrations run."""

from __future__ import annotations

from enrichflow.steps import apollo, noop, normalization  # noqa: F401
from enrichflow.webhooks import http_step, sender  # noqa: F401
