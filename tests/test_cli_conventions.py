"""The conventions a Python user expects of the command line, checked on real processes:

* ``--json`` prints plain JSON on stdout, with no colour codes even under ``FORCE_COLOR=1``,
  so it pipes into ``python -m json.tool``; every command that has ``--json`` is covered;
* every command's ``--help`` shows its help as plain sentences (no reStructuredText double
  backticks, no Markdown code spans, nothing the rendering swallows);
* ``python -m enrichflow --help`` works.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from enrichflow.cli import app
from enrichflow.db.engine import make_engine
from handlers_for_tests import make_batch, write_csv

ENRICHFLOW = str(Path(sys.executable).with_name("enrichflow"))
ANSI = "\x1b["
CLAY_PERSON = "enrich_person_via_waterfall_in_clay"


def env_for(database_url: str) -> dict[str, str]:
    """A child's environment: this shell's ENRICHFLOW_* settings dropped, colour forced."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENRICHFLOW_")}
    env.update(ENRICHFLOW_DATABASE_URL=database_url, FORCE_COLOR="1", ENRICHFLOW_WORKERS="2")
    env.pop("NO_COLOR", None)
    return env


def piped_into_json_tool(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """``enrichflow ARGS | python -m json.tool``: the command's exit code and what json.tool
    printed; fails the test when json.tool cannot parse the output."""
    command = subprocess.Popen(
        [ENRICHFLOW, *args], env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert command.stdout is not None
    tool = subprocess.run(
        [sys.executable, "-m", "json.tool"],
        stdin=command.stdout,
        capture_output=True,
        text=True,
        timeout=120,
    )
    command.stdout.close()
    _, stderr = command.communicate(timeout=120)
    assert tool.returncode == 0, f"enrichflow {' '.join(args)}: {tool.stderr}\n{stderr.decode()}"
    assert ANSI not in tool.stdout
    return command.returncode, tool.stdout


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command and group under ``group`` (a click group; Typer carries its
    own copy of click, so groups are told by their ``commands``)."""
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if hasattr(command, "commands"):
            yield from commands(command, (*path, name))


ROOT = typer.main.get_command(app)


def command_at(path: tuple[str, ...]) -> Any:
    command = ROOT
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


def options_help(command: Any) -> list[str]:
    return [p.help for p in command.params if p.param_type_name == "option" and p.help]


def test_every_json_flag_prints_plain_json_under_force_color(tmp_path: Path) -> None:
    """On SQLite: what is printed does not depend on the store."""
    database_url = f"sqlite:///{tmp_path / 'conventions.db'}"
    env = env_for(database_url)
    csv = write_csv(tmp_path / "leads.csv", 3)
    code, printed = piped_into_json_tool(
        ["run", str(csv), "--client", "acme", "--steps", "noop", "--json"], env, tmp_path
    )
    assert code == 0 and '"noop"' in printed
    batch_id = re.search(r'"batch_id": (\d+)', printed)
    assert batch_id is not None
    saved = subprocess.run(
        [ENRICHFLOW, "pipeline", "save", "acme", "quick", "--steps", "noop"],
        env=env, cwd=tmp_path, capture_output=True, timeout=120,
    )  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    engine = make_engine(database_url)
    try:
        waiting = str(make_batch(engine, tmp_path, [CLAY_PERSON], n=2))
    finally:
        engine.dispose()
    covered = {
        ("run",): None,
        ("status",): [batch_id.group(1)],
        ("doctor",): [],
        ("config", "list"): ["acme"],
        ("pipeline", "list"): [],
        ("pipeline", "show"): ["acme", "quick"],
        ("workflow", "list"): [],
        ("workflow", "show"): ["noop"],
        ("workflow", "add"): ["counted", "--handler", "noop"],
        ("workstream", "list"): [],
        ("workstream", "add"): ["contacts"],
        ("pause",): [waiting],
        ("resume",): [waiting],
        ("resend",): [waiting, "--step", CLAY_PERSON],
        ("cancel",): [waiting],
    }
    with_json = {
        path
        for path in commands(ROOT)
        if any("--json" in getattr(p, "opts", ()) for p in command_at(path).params)
    }
    assert with_json == set(covered), "a command with --json is not covered here"
    for path, args in covered.items():
        if args is not None:
            code, _ = piped_into_json_tool([*path, *args, "--json"], env, tmp_path)
            assert code in (0, 1), path  # doctor exits 1 when a check fails


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"\s+", text) if w]


def test_every_help_is_plain_sentences() -> None:
    """Each command's help renders every word it was given, with no double backticks, and
    ends its sentences (the commands list shows the first one)."""
    runner = CliRunner()
    for path in [(), *commands(ROOT)]:
        command = command_at(path)
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
        assert shown.exit_code == 0, (path, shown.output)
        flat = " ".join(re.sub(r"[│╭╮╰╯─]", " ", shown.output).split())
        texts = [command.help or "", *options_help(command)]
        assert command.help, f"enrichflow {' '.join(path)} has no help"
        for text in texts:
            assert "`" not in text, f"enrichflow {' '.join(path)}: help is plain text: {text!r}"
            for word in _words(text):
                assert word in flat, f"enrichflow {' '.join(path)} --help lost {word!r}"
        assert "``" not in shown.output


def test_python_dash_m_enrichflow_is_the_same_command_line(tmp_path: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "enrichflow", "--help"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "Usage: python -m enrichflow" in shown.stdout
    for path in commands(ROOT):
        if len(path) == 1:
            assert f" {path[0]} " in shown.stdout, path
