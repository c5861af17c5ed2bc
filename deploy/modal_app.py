"""The Modal app: one generic function that runs a chunk of states, and the HTTP app.

    modal deploy deploy/modal_app.py        # then ENRICHFLOW_EXECUTOR=modal on the conductor

* ``run_chunk(state_ids)`` loads the states by id (those still QUEUED) and runs them through
  :func:`enrichflow.runner.run_claims`, the same step runner the local executor uses; the
  runner starts them (QUEUED -> IN_PROGRESS, fenced by attempt) and records the outcomes.
* ``web`` serves the FastAPI app (callbacks, dashboard, API) as a Modal ASGI app, so Clay's
  callbacks can be received on Modal; point ``ENRICHFLOW_PUBLIC_URL`` at its URL.

The app name is ``ENRICHFLOW_MODAL_APP`` (default ``data-enrichment-workers``) and
``max_containers`` is ``ENRICHFLOW_MODAL_MAX_CONTAINERS``. The database URL and the other
``ENRICHFLOW_*`` settings come from the Modal secret named ``ENRICHFLOW_MODAL_SECRET``
(default ``enrichflow``): ``modal secret create enrichflow ENRICHFLOW_DATABASE_URL=...
ENRICHFLOW_SECRET_KEY=... ENRICHFLOW_PUBLIC_URL=...``.

Step plugins go into the image as the deploying environment has them (entry points of installed
distributions and ``ENRICHFLOW_PLUGINS``): their source, their requirements, and
``ENRICHFLOW_PLUGINS`` naming their modules, so ``run_chunk`` runs the same steps as the
conductor that dispatched them.

Importing this module builds the definitions only; nothing contacts Modal until ``modal
deploy`` / ``modal run``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import modal

from enrichflow.config import get_settings
from enrichflow.executors.modal import FUNCTION_NAME
from enrichflow.steps.plugins import Plugin, discover

ROOT = Path(__file__).resolve().parents[1]
SECRET_NAME = os.environ.get("ENRICHFLOW_MODAL_SECRET", "enrichflow")

settings = get_settings()



@dataclass(frozen=True)
class PluginLayers:
    """What the image needs to load the step plugins this (deploying) environment loads: their
    top-level packages' source, their distributions' requirements, and ``ENRICHFLOW_PLUGINS``
    naming every module, since the container has no installed entry points."""

    packages: list[str]
    requirements: list[str]
    env: dict[str, str]


def plugin_layers(plugins: Sequence[Plugin]) -> PluginLayers:
    packages = sorted({plugin.module.split(".")[0] for plugin in plugins})
    requirements: set[str] = set()
    for dist in sorted({p.distribution for p in plugins if p.distribution is not None}):
        for requirement in metadata.requires(dist) or []:
            name = re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0]
            if "extra ==" not in requirement and name.lower() != "enrichflow":
                requirements.add(requirement)
    env = {"ENRICHFLOW_PLUGINS": ",".join(p.module for p in plugins)} if plugins else {}
    return PluginLayers(packages, sorted(requirements), env)


plugins = plugin_layers(discover(settings.plugins))
image = modal.Image.debian_slim(python_version="3.11").pip_install_from_pyproject(
    str(ROOT / "pyproject.toml")
)
if plugins.requirements:
    image = image.pip_install(*plugins.requirements)
if plugins.env:
    image = image.env(plugins.env)
image = image.add_local_python_source("enrichflow", *plugins.packages)  # last: mounted at start

secrets = [modal.Secret.from_name(SECRET_NAME)]

app = modal.App(settings.modal_app, image=image, secrets=secrets)

_engine: Any = None


def _shared_engine() -> Any:
    """One engine per container, reused by every chunk it runs."""
    global _engine
    if _engine is None:
        from enrichflow.db.engine import make_engine
        from enrichflow.gc_tuning import tune_gc

        tune_gc()  # once per container, like the CLI
        _engine = make_engine(get_settings().database_url, pool_size=2, max_overflow=2)
    return _engine


def run_chunk(state_ids: list[int]) -> dict[str, int]:
    """Run the states ``state_ids`` (one chunk of one step) through the step runner."""
    from enrichflow.db.engine import reading
    from enrichflow.db.states import claims_load
    from enrichflow.error_reporting import init_error_reporting
    from enrichflow.runner import run_claims
    from enrichflow.services import build_services

    init_error_reporting(get_settings())  # SENTRY_DSN from the Modal secret, when set
    engine = _shared_engine()
    with reading(engine) as conn:
        claims = claims_load(conn, state_ids)
    if not claims:
        return {"stale": len(state_ids)}
    report = run_claims(engine, claims, build_services(engine, get_settings()))
    return {
        name: getattr(report, name)
        for name in ("completed", "skipped", "deferred", "retried", "failed", "stale")
    }


run_chunk_function = app.function(
    name=FUNCTION_NAME,
    max_containers=settings.modal_max_containers,
    timeout=60 * 60,
    retries=0,  # a lost chunk is taken back by the reaper, with the attempt budget
)(run_chunk)


def web() -> Any:
    """The FastAPI app; callbacks wake conductors through Postgres NOTIFY, not in-process."""
    from enrichflow.api.app import create_app

    return create_app(_shared_engine(), get_settings())


web_function = app.function(name="web", max_containers=settings.modal_max_containers)(
    modal.asgi_app()(web)
)
