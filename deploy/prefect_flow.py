"""enrichflow's conductor as a Prefect 3 flow, and the deployment that runs it on a launch.

    .venv-prefect/bin/python deploy/prefect_flow.py run [--budget 600]       # run the flow here
    .venv-prefect/bin/python deploy/prefect_flow.py deploy --work-pool NAME  # register it

``orchestrator_main`` runs exactly what ``enrichflow conductor --until-idle`` runs: the executor
named by ``ENRICHFLOW_EXECUTOR`` (local threads with the handlers' services, or Modal) and the
conductor's loop composing its parts, both built by :mod:`enrichflow.conductor.assembly`. The
only difference is the :class:`~enrichflow.conductor.loop.PhaseRunner`: each part a tick runs
(sequencer, roll-up, reaper, settler, statistics, dispatcher) is recorded as a Prefect task
run. It stops when no RUNNING batch is left and nothing is in flight, or when
``budget_seconds`` have passed. All state stays in enrichflow's database: Prefect only sees
task runs, so a lost or slow Prefect server costs observability, never an item; a run cut
short is resumed by the next one.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from prefect import Task, flow, get_run_logger, task
from prefect import runtime as prefect_runtime
from prefect.cache_policies import NO_CACHE
from prefect.events import DeploymentEventTrigger

from enrichflow.conductor.assembly import conductor_for, executor_for
from enrichflow.conductor.loop import TickReport
from enrichflow.config import get_settings
from enrichflow.db.engine import make_engine
from enrichflow.gc_tuning import tune_gc
from enrichflow.prefect_events import BATCH_LAUNCHED

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
    # no task retries: a database blip fails the tick, and the conductor's loop backs off and
    # ticks again, as the CLI conductor does
    "retries": 0,
}

R = TypeVar("R")

_phase_tasks: dict[str, Task[..., Any]] = {}


def _run_part(run: Callable[[], Any]) -> Any:
    return run()


def as_prefect_task(name: str, run: Callable[[], R]) -> R:
    """The flow's PhaseRunner: the part runs in the flow's thread as a task run named after it
    (its only argument is the bound ``run_once``, so nothing about the database reaches
    Prefect's API)."""
    if name not in _phase_tasks:
        _phase_tasks[name] = task(name=name, **TASK_OPTIONS)(_run_part)
    result: R = _phase_tasks[name](run)
    return result


@flow(name="orchestrator_main", persist_result=False, log_prints=False)
def orchestrator_main(
    budget_seconds: float = 3300.0,
    workers: int | None = None,
    chunk_size: int | None = None,
    housekeeping: float = 5.0,
) -> dict[str, Any]:
    """Run the conductor until no work is left or the budget ends. ``housekeeping`` is the
    reaper's interval: each housekeeping pass is a task run, so it is longer than the CLI's."""
    logger = get_run_logger()
    settings = get_settings()
    overrides = {"workers": workers, "chunk_size": chunk_size}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    tune_gc()  # the flow's process runs the steps, as `enrichflow conductor` does
    engine = make_engine(settings.database_url)
    executor = executor_for(engine, settings)
    conductor = conductor_for(
        engine, executor, settings, housekeeping_interval=housekeeping, phase=as_prefect_task
    )
    totals = {"ticks": 0, "advanced": 0, "finished_batches": 0, "reaped": 0, "dispatched": 0}
    deadline = time.monotonic() + budget_seconds
    outcome = "idle"

    def count(report: TickReport) -> None:
        totals["ticks"] += 1
        totals["advanced"] += report.advanced
        totals["finished_batches"] += report.finished_batches
        totals["reaped"] += report.reaped
        totals["dispatched"] += report.dispatched

    def out_of_budget() -> bool:
        nonlocal outcome
        if time.monotonic() < deadline:
            return False
        outcome = "budget"
        return True

    try:
        conductor.run_until_finished(on_tick=count, interrupted=out_of_budget)
    finally:
        executor.close()  # lets in-flight chunks finish and record their outcomes
        engine.dispose()
    for failure in executor.failures:
        logger.error("a chunk failed outside its handlers: %s", failure)
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
