"""Steps from other packages: the example plugin (examples/enrichflow-title-length, installed by
``make install``) found through its entry point, modules named in ``ENRICHFLOW_PLUGINS``, its
workflow registered with ``enrichflow workflow add`` (no SQL), and both run by real
``enrichflow`` processes (``run``, ``conductor``, ``serve``) on SQLite and Postgres. Every
process is a fresh interpreter, so nothing is loaded by this test's own imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select

from enrichflow.db.models import EnrichmentResult, WorkflowState
from enrichflow.seed import APOLLO
from handlers_for_tests import write_csv
from webhooks.webhook_servers import free_port

ENRICHFLOW = str(Path(sys.executable).with_name("enrichflow"))
STEP = "title_length"
TOKEN = "plugin-test-token-0123456789abcdef"
rs = EnrichmentResult.__table__
ws = WorkflowState.__table__


def env_for(database_url: str | None = None, **extra: str) -> dict[str, str]:
    """A child's environment without this shell's ENRICHFLOW_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENRICHFLOW_")}
    if database_url is not None:
        env["ENRICHFLOW_DATABASE_URL"] = database_url
    env.update(ENRICHFLOW_WORKERS="2", ENRICHFLOW_POLL_INTERVAL="0.2", **extra)
    return env


def python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENRICHFLOW, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def register_plugin_step(database_url: str, cwd: Path, workstream: str = APOLLO) -> None:
    """The workflow running the plugin's handler, added as an operator would add it."""
    added = cli(
        "workflow", "add", STEP, "--handler", STEP, "--workstream", workstream, "--json",
        env=env_for(database_url), cwd=cwd,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {
        "workflow": STEP,
        "workstream": workstream,
        "name": "Title length",
        "type": "SYNC",
        "handler": STEP,
        "description": None,
        "config": {},
    }


def leads(tmp_path: Path) -> Path:
    """Three titled rows ("CEO") and one without a title."""
    return write_csv(
        tmp_path / "leads.csv",
        3,
        extra=[("Ann", "Lee", "ann@lee.example", "Lee Co", "https://lee.example", "")],
    )


def stored_lengths(engine: Engine, batch_id: int) -> dict[str, int]:
    """Status -> count of the plugin step's states, and the distinct lengths it stored."""
    with engine.connect() as conn:
        statuses = conn.execute(
            select(ws.c.status).where(ws.c.batch_id == batch_id, ws.c.step_name == STEP)
        ).scalars()
        counts: dict[str, int] = {}
        for status in statuses:
            counts[status] = counts.get(status, 0) + 1
        payloads = conn.execute(
            select(rs.c.payload).where(rs.c.batch_id == batch_id, rs.c.step_name == STEP)
        ).scalars()
        for payload in payloads:
            key = f"length={payload['length']}"
            counts[key] = counts.get(key, 0) + 1
    return counts


EXPECTED = {"COMPLETED": 3, "SKIPPED": 1, "length=3": 3}


def write_module(directory: Path, name: str, body: str) -> Path:
    (directory / f"{name}.py").write_text(body, encoding="utf-8")
    return directory


# --------------------------------------------------------------------------- loading


def test_the_installed_example_is_loaded_through_its_entry_point(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from enrichflow.steps.registry import handler_names\n"
        "print('title_length' in handler_names(), 'enrichflow_title_length' in sys.modules)\n"
    )
    shown = python(probe, env_for(), tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["True", "True"], (
        "the example plugin is not installed in this environment: run `make install`"
    )


def test_modules_named_in_enrichflow_plugins_are_loaded(tmp_path: Path) -> None:
    plugin = write_module(
        tmp_path,
        "shout_steps",
        "from enrichflow import handler\n\n"
        "@handler('shout')\n"
        "def shout(ctx):\n"
        "    return {'title': (ctx.fields.get('title') or '').upper()}\n",
    )
    probe = "from enrichflow.steps.registry import has_handler\nprint(has_handler('shout'))\n"
    env = env_for(ENRICHFLOW_PLUGINS=" shout_steps , ", PYTHONPATH=str(plugin))
    shown = python(probe, env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "True"
    assert python(probe, env_for(PYTHONPATH=str(plugin)), tmp_path).stdout.strip() == "False"


@pytest.mark.parametrize(
    ("module", "body", "expected"),
    [
        ("absent_steps", None, "No module named 'absent_steps'"),
        ("broken_steps", "raise RuntimeError('the vendor SDK is missing')\n", "vendor SDK"),
        (
            "twice_steps",
            "from enrichflow import handler\n\n@handler('noop')\ndef again(ctx):\n    return {}\n",
            "handler 'noop' is registered twice",
        ),
    ],
)
def test_a_plugin_that_fails_to_import_stops_the_command_naming_it(
    tmp_path: Path, module: str, body: str | None, expected: str
) -> None:
    if body is not None:
        write_module(tmp_path, module, body)
    env = env_for(
        f"sqlite:///{tmp_path / 'plugins.db'}", ENRICHFLOW_PLUGINS=module, PYTHONPATH=str(tmp_path)
    )
    result = cli("run", str(leads(tmp_path)), "--steps", "noop", env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert f"step plugin '{module}' (ENRICHFLOW_PLUGINS) failed to import" in message
    assert expected in message


def test_doctor_fails_its_handlers_check_on_a_plugin_that_does_not_import(
    tmp_path: Path,
) -> None:
    write_module(tmp_path, "broken_steps", "raise RuntimeError('the vendor SDK is missing')\n")
    env = env_for(
        f"sqlite:///{tmp_path / 'plugins.db'}",
        ENRICHFLOW_PLUGINS="broken_steps",
        PYTHONPATH=str(tmp_path),
    )
    assert cli("init", env=env, cwd=tmp_path).returncode == 0
    result = cli("doctor", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    checks = {c["check"]: c for c in json.loads(result.stdout)}
    assert not checks["handlers"]["ok"]
    assert "step plugin 'broken_steps' (ENRICHFLOW_PLUGINS)" in checks["handlers"]["detail"]
    assert "the vendor SDK is missing" in checks["handlers"]["detail"]


def test_doctor_names_the_loaded_plugins(db_url: str, tmp_path: Path) -> None:
    result = cli("doctor", "--json", env=env_for(db_url), cwd=tmp_path)
    checks = {c["check"]: c for c in json.loads(result.stdout)}
    assert checks["handlers"]["ok"], checks["handlers"]
    assert "plugins: enrichflow_title_length" in checks["handlers"]["detail"]


# --------------------------------------------------------------------------- running


def test_workflow_add_refuses_a_handler_no_loaded_module_provides(
    db_url: str, tmp_path: Path
) -> None:
    refused = cli(
        "workflow", "add", "title_words", "--handler", "title_words",
        env=env_for(db_url), cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode == 2, refused.stdout + refused.stderr
    message = " ".join(refused.stderr.split())
    assert "no handler named 'title_words' is loaded" in message
    loaded = message.split("(loaded: ", 1)[1].split(")", 1)[0].split(", ")
    assert {"title_length", "webhook", "http", "noop"} <= set(loaded)
    listed = cli("workflow", "list", "--json", env=env_for(db_url), cwd=tmp_path)
    assert "title_words" not in {w["workflow"] for w in json.loads(listed.stdout)}


def test_run_steps_runs_the_plugin_step_in_a_workstream_of_its_own(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    env = env_for(db_url)
    made = cli("workstream", "add", "titles", "--description", "Job titles", env=env, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    register_plugin_step(db_url, tmp_path, "titles")
    out = tmp_path / "leads_out.csv"
    result = cli(
        "run", str(leads(tmp_path)), "--workstream", "titles", "--steps", STEP,
        "--out", str(out), "--json",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["steps"][STEP] == {"COMPLETED": 3, "SKIPPED": 1}
    assert stored_lengths(engine, summary["batch_id"]) == EXPECTED
    assert f"{STEP}.length" in out.read_text(encoding="utf-8").splitlines()[0]


def test_the_conductor_runs_the_plugin_step(db_url: str, engine: Engine, tmp_path: Path) -> None:
    """A batch launched here (this process loads the plugin to check the launch) is run by a
    separate ``enrichflow conductor``, which loads it on its own."""
    from enrichflow.ingest.loader import ingest_csv
    from enrichflow.launch import launch

    register_plugin_step(db_url, tmp_path)
    report = ingest_csv(engine, leads(tmp_path))
    batch_id = launch(engine, "acme", APOLLO, report.upload_id, None, [STEP], create_client=True)
    result = cli("conductor", "--until-idle", env=env_for(db_url), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert stored_lengths(engine, batch_id) == EXPECTED


@contextmanager
def serving(database_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    env = env_for(database_url, ENRICHFLOW_API_TOKEN=TOKEN)
    proc = subprocess.Popen(
        [ENRICHFLOW, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as client:
            wait_until(lambda: _healthy(client) or proc.poll() is not None, 60, "serve to start")
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            yield client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        log.close()


def _healthy(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def test_serve_runs_the_plugin_step_launched_through_the_api(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    register_plugin_step(db_url, tmp_path)
    with serving(db_url, tmp_path) as api:
        handlers = {h["name"]: h["types"] for h in api.get("/api/handlers").json()}
        assert handlers[STEP] == ["ASYNC", "SYNC"] and handlers["webhook"] == ["ASYNC"]
        refused = api.post(
            "/api/workflows",
            json={"slug": "title_words", "workstream": APOLLO, "handler": "title_words"},
        )
        assert refused.status_code == 422, refused.text
        assert "no handler named 'title_words' is loaded" in refused.json()["detail"]
        assert STEP in refused.json()["detail"].split("(loaded: ", 1)[1]
        client = api.post("/api/clients", json={"name": "acme"})
        assert client.status_code == 201, client.text
        client_id = client.json()["id"]
        with leads(tmp_path).open("rb") as handle:
            upload = api.post(
                "/api/uploads",
                data={"client_id": str(client_id)},
                files={"file": ("leads.csv", handle, "text/csv")},
            )
        assert upload.status_code == 201, upload.text
        pipeline = {"client_id": client_id, "workstream": APOLLO, "name": "titles"}
        saved = api.post("/api/pipelines", json={**pipeline, "steps": [STEP]})
        assert saved.status_code == 201, saved.text
        launched = api.post(
            "/api/batches",
            json={
                "upload_id": upload.json()["id"],
                "workstream": APOLLO,
                "pipeline": "titles",
                "client_id": client_id,
            },
        )
        assert launched.status_code == 201, launched.text
        batch_id = launched.json()["id"]
        wait_until(
            lambda: api.get(f"/api/batches/{batch_id}").json()["status"] == "COMPLETED",
            60,
            f"batch {batch_id} to complete under serve",
        )
    assert stored_lengths(engine, batch_id) == EXPECTED
