"""``enrichflow sandbox``: a local stand-in for Clay tables."""

from __future__ import annotations

from typing import Annotated

import typer

from enrichflow.cli.root import console, fail


def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    delay: Annotated[float, typer.Option(help="Seconds before calling back.")] = 0.5,
    fail_rate: Annotated[float, typer.Option(help="Share of rows answered 500.")] = 0.0,
    duplicate_rate: Annotated[float, typer.Option(help="Share of rows called back twice.")] = 0.0,
    late_seconds: Annotated[float, typer.Option(help="Extra delay for late rows.")] = 0.0,
    late_rate: Annotated[float, typer.Option(help="Share of rows that are late.")] = 1.0,
    loss_rate: Annotated[
        float, typer.Option(help="Share of accepted rows never called back (lost).")
    ] = 0.0,
    rate_per_second: Annotated[
        float | None,
        typer.Option(help="Rows per second each webhook takes; more are answered 429."),
    ] = None,
    burst: Annotated[int, typer.Option(help="Burst of the per-webhook rate limit.")] = 1,
    max_submissions: Annotated[
        int | None,
        typer.Option(help="Lifetime rows each webhook accepts; more are answered 403."),
    ] = None,
    auth_token: Annotated[
        str | None, typer.Option(help="Require this x-clay-webhook-auth header.")
    ] = None,
    refuse_status: Annotated[
        int | None,
        typer.Option(help="Answer every row with this HTTP status (404: a deleted table)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fault injection.")] = 0,
) -> None:
    """A local stand-in for a Clay table: POST rows to http://HOST:PORT/webhook/TABLE."""
    console.print(
        f"Clay sandbox on http://{host}:{port}/webhook/<table> "
        "(a table name containing 'person' returns person data, any other company data)"
    )
    from enrichflow.webhooks.sandbox import run_sandbox

    try:
        run_sandbox(
            host,
            port,
            delay_seconds=delay,
            fail_rate=fail_rate,
            duplicate_rate=duplicate_rate,
            late_seconds=late_seconds,
            late_rate=late_rate,
            loss_rate=loss_rate,
            rate_per_second=rate_per_second,
            burst=burst,
            max_submissions=max_submissions,
            auth_token=auth_token,
            refuse_status=refuse_status,
            seed=seed,
        )
    except ValueError as exc:
        raise fail(str(exc)) from exc
