"""enrichflow's conductor as a Prefect 3 flow, and the deployment that runs it on a launch.

    .venv-prefect/bin/python deploy/prefect_flow.py run [--budget 600]       # run the flow here
    .venv-prefect/bin/python deploy/prefect_flow.py deploy --work-pool NAME  # register it

``orchestrator_main`` runs the conductor's own functions as Prefect tasks, tick after tick:
the *sequencer* (``states_advance`` + ``batches_rollup``), the *reaper* (``states_reap`` +
de-duplication settling, every ``housekeeping`` seconds) and the *dispatcher*
(``Conductor.dispatch`` into the local executor, whose threads run the steps). It stops when no
RUNNING batch is left and nothing is in flight, or when ``budget_seconds`` have passed. All
state stays in enrichflow's database: Prefect only sees task runs, so a lost or slow Prefect
server costs observability, never an item; a run cut short is resumed by the next one.

The database URL is read from ``ENRICHFLOW_DATABASE_URL`` (never a flow parameter, which
Prefect would store in clear). The deployment's ``job_variables.env`` fills it and the other
credentials from Prefect Secret blocks (:data:`SECRET_ENV`), and its event trigger starts a
run on every ``enrichflow.batch.launched`` event (see ``src/enrichflow/prefect_events.py``).
Prefect runs in its own venv (``make prefect-venv``); docs/prefect.md says why.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect import runtime as prefect_runtime
from prefect.cache_policies import NO_CACHE
from prefect.events import DeploymentEventTrigger
from sqlalchemy import Engine, select

from enrichflow.conductor.loop import Conductor
from enrichflow.config import get_settings
from enrichflow.db.engine import make_engine, reading
from enrichflow.db.models import Batch
from enrichflow.db.states import (
    batches_rollup,
    conductor_work_pending,
    states_advance,
    states_reap,
)
from enrichflow.executors.local import LocalExecutor
from enrichflow.gc_tuning import tune_gc
from enrichflow.prefect_events import BATCH_LAUNCHED
from enrichflow.states import BatchStatus

ROOT = Path(__file__).resolve().parents[1]
DEPLOYMENT_NAME = "enrichflow-orchestrator"
SECRET_ENV = {
    "ENRICHFLOW_DATABASE_URL": "enrichflow-database-url",
    "ENRICHFLOW_SECRET_KEY": "enrichflow-secret-key",
}
"""Worker environment variable -> name of the Prefect Secret block that holds its value."""


TASK_OPTIONS: dict[str, Any] = {
    "cache_policy": NO_CACHE,
    "persist_result": False,
    # a database blip (server restart, SQLite busy) is retried; every statement is an
    # idempotent, set-based transaction, so a retry never applies anything twice
    "retries": 3,
    "retry_delay_seconds": [1, 2, 5],
}


@dataclass
class _Runtime:
    engine: Engine
    executor: LocalExecutor
    conductor: Conductor


_runtime: _Runtime | None = None
"""The flow run's engine, executor and conductor; tasks run in the flow's process and share it
(tasks take no arguments, so nothing about the database reaches Prefect's API)."""


def _rt() -> _Runtime:
    if _runtime is None:
        raise RuntimeError("enrichflow tasks run only inside orchestrator_main")
    return _runtime


@task(name="sequencer", **TASK_OPTIONS)
def sequencer() -> dict[str, int]:
    """Create next-step states for finished ones, then roll finished batches up."""
    c = _rt().conductor
    advanced = finished = 0
    with reading(c.engine) as reader:
        must_advance, must_roll_up = conductor_work_pending(reader)
    with c.engine.connect() as conn:
        while must_advance:
            with conn.begin():
                n = states_advance(conn, c.clock())
            advanced += n
            if n == 0:
                break
        if must_roll_up:
            with conn.begin():
                finished = batches_rollup(conn, datetime.now(UTC))
    return {"advanced": advanced, "finished_batches": finished}


@task(name="reaper", **TASK_OPTIONS)
def reaper() -> dict[str, int]:
    """Take back states past their lease or callback deadline; settle de-duplication."""
    c = _rt().conductor
    with c.engine.connect() as conn, conn.begin():
        reaped = states_reap(conn, c.clock())
    return {"reaped": reaped, "settled": c.settle()}


@task(name="dispatcher", **TASK_OPTIONS)
def dispatcher() -> int:
    """Claim runnable states while the local executor has room and hand them to it."""
    return _rt().conductor.dispatch()


def _idle(rt: _Runtime) -> bool:
    """No RUNNING batch left and no chunk in flight."""
    with reading(rt.engine) as conn:
        running = conn.execute(
            select(Batch.id).where(Batch.status == BatchStatus.RUNNING.value).limit(1)
        ).first()
    return running is None and not rt.executor.busy()


@flow(name="orchestrator_main", persist_result=False, log_prints=False)
def orchestrator_main(
    budget_seconds: float = 3300.0,
    workers: int | None = None,
    chunk_size: int | None = None,
    housekeeping: float = 5.0,
) -> dict[str, Any]:
    """Tick (sequencer, reaper, dispatcher) until no work is left or the budget ends."""
    global _runtime
    logger = get_run_logger()
    settings = get_settings()
    tune_gc()  # the flow's process runs the steps, as `enrichflow run` does
    engine = make_engine(settings.database_url)
    executor = LocalExecutor(engine, workers or settings.workers)
    conductor = Conductor(
        engine, executor, chunk_size=chunk_size or settings.chunk_size, listen=False
    )
    _runtime = rt = _Runtime(engine, executor, conductor)
    totals = {"ticks": 0, "advanced": 0, "finished_batches": 0, "reaped": 0, "dispatched": 0}
    deadline = time.monotonic() + budget_seconds
    next_housekeeping = 0.0
    outcome = "idle"
    try:
        while True:
            totals["ticks"] += 1
            seq = sequencer()
            totals["advanced"] += seq["advanced"]
            totals["finished_batches"] += seq["finished_batches"]
            if time.monotonic() >= next_housekeeping:
                totals["reaped"] += reaper()["reaped"]
                next_housekeeping = time.monotonic() + housekeeping
            totals["dispatched"] += dispatcher()
            if _idle(rt):
                break
            if time.monotonic() >= deadline:
                outcome = "budget"
                break
            # a finished chunk wakes the executor at once; the poll is the safety net
            executor.wait(0.5 if executor.busy() else settings.poll_interval)
    finally:
        executor.close()  # lets in-flight chunks finish and record their outcomes
        engine.dispose()
        _runtime = None
    logger.info("orchestrator_main %s: %s", outcome, totals)
    return {"outcome": outcome, "flow_run_id": str(prefect_runtime.flow_run.id), **totals}


def build_deployment(
    work_pool: str | None = None,
    name: str = DEPLOYMENT_NAME,
    budget_seconds: float = 3300.0,
    working_dir: str | None = str(ROOT),
) -> Any:
    """The deployment (not yet registered): worker env from Secret blocks, launch trigger.

    ``working_dir`` (a process pool's job variable) is where the worker finds
    ``deploy/prefect_flow.py``; None for image-based pools, whose image holds the code."""
    env = {var: "{{ prefect.blocks.secret." + block + " }}" for var, block in SECRET_ENV.items()}
    job_variables: dict[str, Any] = {"env": env}
    if working_dir:
        job_variables["working_dir"] = working_dir
    return orchestrator_main.to_deployment(
        name=name,
        work_pool_name=work_pool,
        job_variables=job_variables,
        parameters={"budget_seconds": budget_seconds},
        # one run at a time; launches during a run queue one more, which finds what is left
        concurrency_limit=1,
        triggers=[
            DeploymentEventTrigger(
                name="enrichflow batch launched",
                expect={BATCH_LAUNCHED},
                match={"prefect.resource.id": "enrichflow.batch.*"},
            )
        ],
        tags=["enrichflow"],
    )


def deploy(
    work_pool: str,
    name: str = DEPLOYMENT_NAME,
    budget_seconds: float = 3300.0,
    image: str | None = None,
) -> Any:
    """Register the deployment (and its trigger) with the server named by PREFECT_API_URL.
    Run it from the repository root: the entrypoint is recorded relative to the current
    directory (``deploy/prefect_flow.py:orchestrator_main``)."""
    deployment = build_deployment(work_pool, name, budget_seconds, None if image else str(ROOT))
    return deployment.apply(work_pool_name=work_pool, image=image)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run orchestrator_main in this process")
    run.add_argument("--budget", type=float, default=3300.0)
    run.add_argument("--workers", type=int)
    dep = sub.add_parser("deploy", help="register the deployment with its trigger")
    dep.add_argument("--work-pool", required=True)
    dep.add_argument("--name", default=DEPLOYMENT_NAME)
    dep.add_argument("--budget", type=float, default=3300.0)
    dep.add_argument("--image")
    args = parser.parse_args()
    if args.command == "run":
        print(json.dumps(orchestrator_main(budget_seconds=args.budget, workers=args.workers)))
    else:
        print(deploy(args.work_pool, args.name, args.budget, args.image))


if __name__ == "__main__":
    main()
