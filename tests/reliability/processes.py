"""Real ``enrichflow`` CLI processes for the crash scenarios: start, kill -9, wait with deadlines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, update

from enrichflow.db.models import EnrichmentRegistry
from enrichflow.seed import APOLLO

ENRICHFLOW = str(Path(sys.executable).with_name("enrichflow"))


def cli_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a CLI child: its database, few workers, a fast poll."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENRICHFLOW_")}
    env.update(
        ENRICHFLOW_DATABASE_URL=database_url,
        ENRICHFLOW_WORKERS="4",
        ENRICHFLOW_CHUNK_SIZE="200",
        ENRICHFLOW_POLL_INTERVAL="0.2",
        # the Clay stand-ins listen on loopback
        ENRICHFLOW_ALLOW_PRIVATE_TARGETS="1",
    )
    env.update(extra)
    return env


def start_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [ENRICHFLOW, *args], env=env, stdout=handle, stderr=subprocess.STDOUT, cwd=log.parent
        )


def kill_9(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """SIGKILL the child and wait (bounded) until it is gone."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=timeout)
    assert proc.returncode == -signal.SIGKILL


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Best-effort clean-up of a child that may still run."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=20)


def tune(engine: Engine, slug: str, **config: Any) -> None:
    """Merge ``config`` into a registry row (launches snapshot it)."""
    with engine.begin() as conn:
        current = conn.execute(
            select(EnrichmentRegistry.config).where(
                EnrichmentRegistry.slug == slug, EnrichmentRegistry.workstream_slug == APOLLO
            )
        ).scalar_one()
        conn.execute(
            update(EnrichmentRegistry)
            .where(EnrichmentRegistry.slug == slug, EnrichmentRegistry.workstream_slug == APOLLO)
            .values(config={**current, **config})
        )
