"""The Prefect flow (deploy/prefect_flow.py) over real batches, against Prefect's own temporary
server, on SQLite and Postgres.

Prefect runs in its own venv (``.venv-prefect``, ``make prefect-venv``; docs/prefect.md says
why), so every Prefect call here is a subprocess of ``.venv-prefect/bin/python``. The server
is Prefect's temporary local server (``SubprocessASGIServer``, what Prefect starts when no
``PREFECT_API_URL`` is set), started once for the module, on 127.0.0.1, with ``PREFECT_HOME``
in a temp dir and analytics off. Without the venv these tests skip, except under CI=true.

Not marked ``slow``: the flow is how production conducts, so every run of the suite checks it;
the server starts once for the module.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select, text, update

from enrichflow.api.app import create_app
from enrichflow.catalog.assignments import parse_assignments
from enrichflow.catalog.client_configs import client_config_set
from enrichflow.config import Settings
from enrichflow.db.engine import make_engine
from enrichflow.db.models import EnrichmentResult, WorkflowState
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.seed import APOLLO
from enrichflow.webhooks.sandbox import create_sandbox_app
from handlers_for_tests import IN_CI
from webhooks.webhook_servers import UvicornThread

ROOT = Path(__file__).resolve().parents[1]
PREFECT_PYTHON = ROOT / ".venv-prefect" / "bin" / "python"
FLOW = ROOT / "deploy" / "prefect_flow.py"
STEPS = ["normalize_company_name", "normalize_company_domain", "normalize_all_core_values"]
PARTS = {"sequencer", "rollup", "reaper", "settler", "statistics", "dispatcher"}
"""The conductor's parts, each recorded as a task run under its own name."""
COMPANY = "enrich_company_via_waterfall_in_clay"
PERSON = "enrich_person_via_waterfall_in_clay"
SECRET = "prefect-flow-test-secret-of-32-bytes-long"

# Starts the temporary server in the prefect venv, prints its API URL, and stops it when its
# stdin closes (the fixture's teardown).
SERVE = """
import sys
import time
from prefect.server.api.server import SubprocessASGIServer
server = SubprocessASGIServer()
server.start(timeout=150)
print(server.api_url, flush=True)
sys.stdin.read()
server.stop()
"""

# Registers the deployment the way `prefect_flow.py deploy` does, after saving the Secret
# blocks and creating a process work pool; reads it back (job variables resolved the way a
# worker resolves them, the trigger's automation); emits a launch event through
# enrichflow.prefect_events and waits for the automation to create a flow run.
DEPLOY_CHECK = """
import asyncio, json, sys, time
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.events.worker import EventsWorker
from prefect.utilities.templating import resolve_block_document_references, resolve_variables
from deploy import prefect_flow
from enrichflow import prefect_events

pool, db_url, secret_key, batch_id = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
Secret(value=db_url).save(prefect_flow.SECRET_ENV["ENRICHFLOW_DATABASE_URL"], overwrite=True)
Secret(value=secret_key).save(prefect_flow.SECRET_ENV["ENRICHFLOW_SECRET_KEY"], overwrite=True)
with get_client(sync_client=True) as client:
    client.create_work_pool(WorkPoolCreate(name=pool, type="process"), overwrite=True)
deployment_id = prefect_flow.deploy(pool, budget_seconds=120)


async def read_back():
    async with get_client() as client:
        dep = await client.read_deployment(deployment_id)
        resolved = await resolve_block_document_references(dep.job_variables, client=client)
        resolved = await resolve_variables(resolved, client=client)
        autos = await client.read_resource_related_automations(
            f"prefect.deployment.{deployment_id}"
        )
        return dep, resolved, autos


dep, resolved, autos = asyncio.run(read_back())
out = {
    "deployment_id": str(deployment_id),
    "entrypoint": dep.entrypoint,
    "job_variables": dep.job_variables,
    "resolved_env": resolved["env"],
    "automations": [
        {
            "expect": sorted(a.trigger.expect),
            "actions": [[x.type, str(getattr(x, "deployment_id", ""))] for x in a.actions],
        }
        for a in autos
    ],
}
out["emitted"] = prefect_events.batch_launched(batch_id, "prefect", "apollo_scrape")
out["callback_emitted"] = prefect_events.callback_received(424242, "completed")
EventsWorker.drain_all(timeout=30)
runs = []
deadline = time.monotonic() + 90
with get_client(sync_client=True) as client:
    while not runs and time.monotonic() < deadline:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )
        time.sleep(0.5)
out["triggered_runs"] = [str(r.id) for r in runs]
print(json.dumps(out))
"""


WORKER = ["--type", "process", "--run-once"]


def prefect_python() -> Path:
    if not PREFECT_PYTHON.exists():
        message = f"{PREFECT_PYTHON} is missing (make prefect-venv)"
        if IN_CI:
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(f"!!! SKIPPING PREFECT TESTS: {message}")
    return PREFECT_PYTHON


def prefect_env(home: Path) -> dict[str, str]:
    """This process's environment plus: Prefect's home in ``home``, no analytics, loopback only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_LOGGING_LEVEL="WARNING",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running Prefect temporary server; yields the environment that points at it."""
    python = prefect_python()
    env = prefect_env(tmp_path_factory.mktemp("prefect-home"))
    proc = subprocess.Popen(
        [str(python), "-c", SERVE],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    url = proc.stdout.readline().strip()
    try:
        assert url.startswith("http://127.0.0.1:"), f"server did not start (got {url!r})"
        yield {**env, "PREFECT_API_URL": url}
    finally:
        proc.stdin.close()
        proc.stdout.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def api(env: dict[str, str], path: str, body: dict[str, object]) -> object:
    """POST to the Prefect server's API (loopback only, no proxies)."""
    with httpx.Client(base_url=env["PREFECT_API_URL"], trust_env=False, timeout=30) as client:
        response = client.post(path, json=body)
        response.raise_for_status()
        return response.json()


def write_leads(path: Path, n: int) -> Path:
    """``n`` complete Apollo rows (every step has something to normalize, so none skips)."""
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["First Name", "Last Name", "Company Name", "Email", "Website", "Title"])
        for i in range(n):
            w.writerow(
                [
                    f"Ann{i}",
                    f"Lee{i}",
                    f"Acme {i} Inc.",
                    f"ann{i}@acme{i}.com",
                    f"acme{i}.com",
                    "CTO",
                ]
            )
    return path


def launch_sample(engine: Engine, tmp_path: Path, n: int = 150) -> tuple[int, int]:
    """A RUNNING batch of ``n`` items through three built-in SYNC steps; (id, items)."""
    report = ingest_csv(engine, write_leads(tmp_path / "leads.csv", n))
    batch_id = launch(engine, "prefect", APOLLO, report.upload_id, steps=STEPS, create_client=True)
    with engine.connect() as conn:
        items = conn.execute(
            text("SELECT count(*) FROM batch_items WHERE batch_id = :b"), {"b": batch_id}
        ).scalar_one()
    return batch_id, int(items)


def run_flow(
    env: dict[str, str], db_url: str, cwd: Path, *args: str, **settings: str
) -> dict[str, object]:
    """Run the flow in the prefect venv; ``settings`` are more ENRICHFLOW_* variables."""
    proc = subprocess.run(
        [str(prefect_python()), str(FLOW), "run", *args],
        env={**env, "ENRICHFLOW_DATABASE_URL": db_url, **settings},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def task_names(env: dict[str, str], flow_run_id: object) -> set[str]:
    """The names of the task runs of a flow run, without Prefect's numeric suffix."""
    runs = api(env, "/flow_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}})
    assert isinstance(runs, list) and len(runs) == 1
    assert runs[0]["state_type"] == "COMPLETED"
    names: set[str] = set()
    offset = 0
    while True:
        page = api(
            env,
            "/task_runs/filter",
            {"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200, "offset": offset},
        )
        assert isinstance(page, list)
        names |= {t["name"].rsplit("-", 1)[0] for t in page}
        if len(page) < 200:
            return names
        offset += len(page)


def test_orchestrator_main_runs_a_batch_to_completion(
    db_url: str, prefect_server: dict[str, str], tmp_path: Path
) -> None:
    """Every (item, step) ends COMPLETED, the batch is COMPLETED, and Prefect recorded a
    COMPLETED run of orchestrator_main whose task runs are the conductor's parts (the runner
    chains these SYNC steps itself, so the sequencer has nothing to advance here)."""
    engine = make_engine(db_url)
    try:
        batch_id, items = launch_sample(engine, tmp_path)
        assert items == 150
        result = run_flow(prefect_server, db_url, tmp_path, "--budget", "120", "--workers", "2")
        assert result["outcome"] == "idle"
        assert isinstance(result["dispatched"], int) and result["dispatched"] > 0
        with engine.connect() as conn:
            statuses = dict(
                conn.execute(
                    text(
                        "SELECT status, count(*) FROM workflow_states WHERE batch_id = :b "
                        "GROUP BY status"
                    ),
                    {"b": batch_id},
                ).all()
            )
            per_item = conn.execute(
                text(
                    "SELECT count(*) FROM batch_items i WHERE i.batch_id = :b AND "
                    "(SELECT count(*) FROM workflow_states s WHERE s.item_id = i.id "
                    "AND s.status = 'COMPLETED') = :n"
                ),
                {"b": batch_id, "n": len(STEPS)},
            ).scalar_one()
            batch_status = conn.execute(
                text("SELECT status FROM batches WHERE id = :b"), {"b": batch_id}
            ).scalar_one()
    finally:
        engine.dispose()
    assert statuses == {"COMPLETED": items * len(STEPS)}
    assert per_item == items
    assert batch_status == "COMPLETED"

    names = task_names(prefect_server, result["flow_run_id"])
    assert {"rollup", "reaper", "dispatcher"} <= names <= PARTS


def test_orchestrator_main_runs_an_async_batch_through_the_sandbox(
    db_url: str, prefect_server: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch with two ASYNC (Clay) steps runs to COMPLETED under the flow: the flow's local
    executor gets the services the CLI's gets (public URL, secret key, webhook ledger), so its
    handlers send every row to the sandbox standing in for Clay (Clay's cloud cannot run here),
    whose callbacks land on a real callback receiver on loopback; the flow's sequencer then
    moves each item to the next step."""
    monkeypatch.setenv("ENRICHFLOW_ALLOW_PRIVATE_TARGETS", "1")  # sandbox, receiver: loopback
    engine = make_engine(db_url)
    receiver_settings = Settings(_env_file=None, secret_key=SECRET)  # type: ignore[call-arg]
    try:
        with (
            UvicornThread(create_sandbox_app(delay_seconds=0.05)) as clay,
            UvicornThread(create_app(engine, receiver_settings)) as receiver,
        ):
            with engine.begin() as conn:
                for slug, table in ((COMPANY, "company-table"), (PERSON, "person-table")):
                    assignment = f"webhook_url={clay.url}/webhook/{table}"
                    client_config_set(
                        conn, "prefect", slug, APOLLO, parse_assignments([assignment])
                    )
            report = ingest_csv(engine, write_leads(tmp_path / "leads.csv", 6))
            launched_with = Settings(_env_file=None, public_url=receiver.url)  # type: ignore[call-arg]
            batch_id = launch(
                engine, "prefect", APOLLO, report.upload_id,
                steps=["normalize_company_name", COMPANY, PERSON], create_client=True,
                settings=launched_with,
            )  # fmt: skip
            result = run_flow(
                prefect_server, db_url, tmp_path, "--budget", "120",
                ENRICHFLOW_PUBLIC_URL=receiver.url,
                ENRICHFLOW_SECRET_KEY=SECRET,
                ENRICHFLOW_EXECUTOR="local",
                ENRICHFLOW_ALLOW_PRIVATE_TARGETS="1",
                ENRICHFLOW_POLL_INTERVAL="0.1",
            )  # fmt: skip
            stats = httpx.get(f"{clay.url}/stats", trust_env=False).json()
        with engine.connect() as conn:
            statuses = dict(
                conn.execute(
                    text(
                        "SELECT status, count(*) FROM workflow_states WHERE batch_id = :b "
                        "GROUP BY status"
                    ),
                    {"b": batch_id},
                ).all()
            )
            batch_status = conn.execute(
                text("SELECT status FROM batches WHERE id = :b"), {"b": batch_id}
            ).scalar_one()
            rs = EnrichmentResult.__table__
            payloads = conn.execute(
                select(rs.c.step_name, rs.c.payload).where(
                    rs.c.batch_id == batch_id, rs.c.step_name.in_([COMPANY, PERSON])
                )
            ).all()
    finally:
        engine.dispose()
    assert result["outcome"] == "idle"
    assert statuses == {"COMPLETED": 18}
    assert batch_status == "COMPLETED"
    assert sorted(step for step, _ in payloads) == [COMPANY] * 6 + [PERSON] * 6
    assert all(payload["sandbox"] is True for _, payload in payloads)
    assert stats["called_back"] == 12
    names = task_names(prefect_server, result["flow_run_id"])
    assert {"sequencer", "rollup", "reaper", "dispatcher"} <= names <= PARTS


def test_orchestrator_main_stops_when_its_budget_ends(
    prefect_server: dict[str, str], tmp_path: Path, sqlite_template: Path
) -> None:
    """A batch whose states cannot run yet (backoff far ahead) keeps the flow busy until its
    budget ends; it returns 'budget' and leaves the states PENDING for the next run."""
    db = tmp_path / "budget.db"
    db.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite:///{db}"
    engine = make_engine(url)
    try:
        batch_id, items = launch_sample(engine, tmp_path)
        with engine.begin() as conn:
            conn.execute(
                update(WorkflowState)
                .where(WorkflowState.batch_id == batch_id)
                .values(not_before=2**53)
            )
        result = run_flow(prefect_server, url, tmp_path, "--budget", "2")
        with engine.connect() as conn:
            pending = conn.execute(
                text(
                    "SELECT count(*) FROM workflow_states WHERE batch_id = :b AND status = 'PENDING'"
                ),
                {"b": batch_id},
            ).scalar_one()
    finally:
        engine.dispose()
    assert result["outcome"] == "budget"
    assert result["dispatched"] == 0
    assert pending == items


def test_deploy_registers_secret_env_and_a_launch_trigger_that_runs_the_batch(
    prefect_server: dict[str, str], tmp_path: Path, sqlite_template: Path
) -> None:
    """The deployment path end to end on the local server: ``deploy()`` registers
    orchestrator_main with ``job_variables.env`` templated from Secret blocks (no secret in
    clear) and an automation on ``enrichflow.batch.launched``; a launch event emitted by
    enrichflow.prefect_events makes the automation create a flow run; a real process worker
    (``prefect worker start --run-once``) runs it with the database URL taken from the Secret
    block, and the batch ends COMPLETED. Not reached: Prefect Cloud and a remote work pool
    (Docker/Kubernetes); the process worker here runs the same job on this machine."""
    python = prefect_python()
    db = tmp_path / "deploy.db"
    db.write_bytes(sqlite_template.read_bytes())
    url = f"sqlite:///{db}"
    engine = make_engine(url)
    # the worker and the check must get the database URL from Prefect, not from our env
    env = {k: v for k, v in prefect_server.items() if not k.startswith("ENRICHFLOW_")}
    try:
        batch_id, items = launch_sample(engine, tmp_path)
        check = subprocess.run(
            [str(python), "-c", DEPLOY_CHECK, "ef-test-pool", url, "s" * 40, str(batch_id)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert check.returncode == 0, check.stderr[-4000:]
        out = json.loads(check.stdout.strip().splitlines()[-1])
        assert out["entrypoint"] == "deploy/prefect_flow.py:orchestrator_main"
        assert out["job_variables"]["working_dir"] == str(ROOT)
        assert out["job_variables"]["env"] == {
            "ENRICHFLOW_DATABASE_URL": "{{ prefect.blocks.secret.enrichflow-database-url }}",
            "ENRICHFLOW_SECRET_KEY": "{{ prefect.blocks.secret.enrichflow-secret-key }}",
        }
        assert out["resolved_env"] == {
            "ENRICHFLOW_DATABASE_URL": url,
            "ENRICHFLOW_SECRET_KEY": "s" * 40,
        }
        assert out["automations"] == [
            {
                "expect": ["enrichflow.batch.launched"],
                "actions": [["run-deployment", out["deployment_id"]]],
            }
        ]
        assert out["emitted"] is True and out["callback_emitted"] is True
        assert len(out["triggered_runs"]) == 1
        worker = subprocess.run(
            [str(python), "-m", "prefect", "worker", "start", "--pool", "ef-test-pool", *WORKER],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
        )
        assert worker.returncode == 0, worker.stderr[-4000:]
        with engine.connect() as conn:
            statuses = dict(
                conn.execute(
                    text(
                        "SELECT status, count(*) FROM workflow_states WHERE batch_id = :b "
                        "GROUP BY status"
                    ),
                    {"b": batch_id},
                ).all()
            )
            batch_status = conn.execute(
                text("SELECT status FROM batches WHERE id = :b"), {"b": batch_id}
            ).scalar_one()
    finally:
        engine.dispose()
    assert statuses == {"COMPLETED": items * len(STEPS)}, worker.stderr[-4000:]
    assert batch_status == "COMPLETED"
    run = api(
        prefect_server,
        "/flow_runs/filter",
        {"flow_runs": {"id": {"any_": out["triggered_runs"]}}},
    )
    assert [r["state_type"] for r in run] == ["COMPLETED"]  # type: ignore[union-attr]
    # the server persists events in the background: wait for them (bounded), then check
    wanted = {
        ("enrichflow.batch.launched", f"enrichflow.batch.{batch_id}"),
        ("enrichflow.callback.received", "enrichflow.state.424242"),
    }
    received: set[tuple[str, str]] = set()
    deadline = time.monotonic() + 60
    while True:
        events = api(
            prefect_server, "/events/filter", {"filter": {"event": {"prefix": ["enrichflow."]}}}
        )
        received = {
            (e["event"], e["resource"]["prefect.resource.id"])
            for e in events["events"]  # type: ignore[index]
        }
        if wanted <= received or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert wanted <= received, received


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
