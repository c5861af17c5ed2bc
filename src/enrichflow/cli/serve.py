"""``enrichflow serve``: the dashboard, the JSON API and callbacks, with the conductor."""

from __future__ import annotations

from typing import Annotated

import typer

from enrichflow.cli.root import DatabaseUrl, console, engine_for, error_reporting, fail
from enrichflow.config import get_settings
from enrichflow.errors import ConfigError


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the dashboard (/clients), the JSON API (/api/), callbacks (/callbacks/TOKEN)
    and /healthz, and run the conductor."""
    from enrichflow.api.auth import check_admin_password
    from enrichflow.api.server import serve_forever
    from enrichflow.secret_key import resolve_secret_key
    from enrichflow.seed import init_database
    from enrichflow.webhooks.callback_base import PUBLIC_URL_SETTING

    error_reporting()
    engine = engine_for(database_url)
    init_database(engine)
    settings = get_settings()
    try:
        check_admin_password(settings)
        key = resolve_secret_key(engine, settings)
    except ConfigError as exc:
        raise fail(str(exc)) from exc
    console.print(f"signing key: from the {key.source}")
    if settings.admin_password is None or not settings.admin_password.get_secret_value():
        console.print(
            "[yellow]ENRICHFLOW_ADMIN_PASSWORD is not set: the dashboard refuses every login "
            "(callbacks and /healthz work)[/]"
        )
    if settings.public_url:
        callbacks = f"callbacks are sent to {settings.public_url.rstrip('/')}/callbacks/…"
    else:
        callbacks = f"[yellow]{PUBLIC_URL_SETTING} is not set: nothing is sent to Clay[/]"
    console.print(f"serving on http://{host}:{port}; {callbacks}")
    try:
        serve_forever(engine, settings, host, port)
    except ConfigError as exc:  # a running batch's Clay could not call back
        raise fail(str(exc)) from exc
