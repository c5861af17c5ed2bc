"""The CLI starts fast: importing it loads none of the heavy modules a command may need (each
command imports those itself), and ``--help`` still lists every command."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from enrichflow.cli import app

ALEMBIC = "alembic"
"""Migrations: only the commands that migrate the database need them."""

NORMALIZE = "enrichflow.normalize"
"""The normalizers (tldextract, cleanco, phonenumbers, pycountry): a quarter of a second."""

EXPORT = "enrichflow.export"
"""The export, which imports the normalizers."""

CONDUCTOR = "enrichflow.conductor"
"""The conductor, which imports the doctor and psycopg."""

PSYCOPG = "psycopg"
"""The Postgres driver: imported when a command connects to Postgres, not to print help."""

HTTPX = "httpx"
"""The HTTP client of the webhook handlers."""

MODELS = "enrichflow.db.models"
"""The ORM models (sqlalchemy.orm and every table): a sixth of a second."""

API_APP = "enrichflow.api.app"
"""The web app, served only by ``serve`` and by ``run`` with ASYNC steps."""

FASTAPI = "fastapi"
"""The web framework under the app."""

UVICORN = "uvicorn"
"""The web server."""

HEAVY = (ALEMBIC, NORMALIZE, EXPORT, CONDUCTOR, PSYCOPG, HTTPX, MODELS, API_APP, FASTAPI, UVICORN)


def test_importing_the_cli_loads_no_heavy_module() -> None:
    probe = "import enrichflow.cli, sys; print(sorted(m for m in sys.modules))"
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(ast.literal_eval(shown))
    assert "enrichflow.cli" in loaded
    assert [m for m in HEAVY if m in loaded] == []


def _listed(*path: str) -> list[str]:
    """The names in the Commands panel of ``enrichflow PATH --help``."""
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    panel = result.output.split("Commands")[1]
    return re.findall(r"^│ ([\w-]+) ", panel, re.MULTILINE)


def _registered(group: typer.Typer) -> list[str]:
    commands = [
        c.name or typer.main.get_command_name(c.callback.__name__)
        for c in group.registered_commands
        if c.callback is not None
    ]
    return commands + [g.name for g in group.registered_groups if g.name is not None]


def test_help_lists_every_command() -> None:
    """Building the help resolves every command's parameter annotations, so a name they use
    that was moved under ``TYPE_CHECKING`` fails here."""
    assert _listed() == _registered(app)


@pytest.mark.parametrize("name", [g.name for g in app.registered_groups])
def test_group_help_lists_every_command(name: str) -> None:
    group = next(g.typer_instance for g in app.registered_groups if g.name == name)
    assert group is not None
    assert _listed(name) == _registered(group)


@pytest.mark.parametrize("command", [["pipeline", "list"], ["doctor"]])
def test_a_command_on_a_migrated_database_does_not_load_alembic(
    db_url: str, command: list[str]
) -> None:
    """Commands migrate the database first; when it is already at the head, that check reads
    the revision without Alembic, whose import would dominate a command's start."""
    probe = (
        "import sys\n"
        "from enrichflow.cli import app\n"
        f"try:\n    app({command!r})\nexcept SystemExit:\n    pass\n"
        "print('ALEMBIC' if 'alembic' in sys.modules else 'NO-ALEMBIC')\n"
    )
    env = {**os.environ, "ENRICHFLOW_DATABASE_URL": db_url}
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert shown.strip().splitlines()[-1] == "NO-ALEMBIC", shown[-2000:]
