"""The services every handler receives, assembled in one place for every process that runs
handlers: the CLI's executor, ``serve``, the Modal worker and the Prefect flow.

A handler gets the public URL callbacks are sent to, the secret key that signs their tokens and
the database-backed webhook ledger; the runner adds ``engine``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from enrichflow.config import Settings
from enrichflow.secret_key import resolve_secret_key
from enrichflow.webhooks.ledger import DatabaseLedger

__all__ = ["build_services"]


def build_services(
    engine: Engine, settings: Settings, public_url: str | None = None
) -> dict[str, Any]:
    """The services every handler receives (the runner adds ``engine``); the signing key comes
    from :func:`enrichflow.secret_key.resolve_secret_key`. ``public_url`` is None when
    ``ENRICHFLOW_PUBLIC_URL`` is unset: the webhook sender then refuses to send."""
    return {
        "public_url": public_url or settings.public_url,
        "secret_key": resolve_secret_key(engine, settings).value,
        "webhook_ledger": DatabaseLedger(engine),
    }
