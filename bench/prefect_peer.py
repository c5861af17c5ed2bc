"""Peer baseline for bench/engine.py: N items x 3 no-op steps as Prefect 3 tasks.

Runs in the Prefect venv (``make prefect-venv``), against Prefect's temporary local server
(``PREFECT_HOME`` in a temp dir unless set, analytics off). A first one-item flow run starts the
server and warms the client; only the second run, over N items, is timed. Steps run on a
4-thread task runner, as the engine benchmark's local executor has 4 workers. Prints one JSON
line: executions, wall time, executions per second.

    .venv-prefect/bin/python bench/prefect_peer.py --n 500

Importable from the main venv (Prefect is imported only in ``main``): :func:`run_peer` runs
this file with the Prefect venv's Python.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

STEPS = 3


PEER_N = 500
PEER_N_QUICK = 30
PREFECT_PYTHON = Path(__file__).resolve().parents[1] / ".venv-prefect" / "bin" / "python"
"""bench/engine.py runs this file with it (Prefect is not installed in the main venv)."""


def run_peer(n: int) -> dict[str, Any] | None:
    """bench/prefect_peer.py in the Prefect venv; None (said aloud) when that venv is missing,
    except under CI=true, where that is a failure."""
    if not PREFECT_PYTHON.exists():
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            raise SystemExit(f"{PREFECT_PYTHON} is missing (make prefect-venv); CI=true needs it")
        print(f"!!! no Prefect peer baseline: {PREFECT_PYTHON} is missing (make prefect-venv)")
        return None
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    with tempfile.TemporaryDirectory(prefix="ef-prefect-") as home:
        proc = subprocess.run(
            [str(PREFECT_PYTHON), str(Path(__file__).resolve()), "--n", str(n)],
            env={**env, "PREFECT_HOME": home},
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"bench/prefect_peer.py failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="ef-prefect-"))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # the default 20 s is too short for the server's start on a busy 2-core machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

    # imported after the environment is set: Prefect reads its settings at import
    import prefect
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.task_runners import ThreadPoolTaskRunner

    @task(cache_policy=NO_CACHE, persist_result=False)
    def noop_1(item: int) -> int:
        return item

    @task(cache_policy=NO_CACHE, persist_result=False)
    def noop_2(item: int) -> int:
        return item

    @task(cache_policy=NO_CACHE, persist_result=False)
    def noop_3(item: int) -> int:
        return item

    @flow(persist_result=False, task_runner=ThreadPoolTaskRunner(max_workers=args.workers))
    def peer(n: int) -> int:
        first = noop_1.map(list(range(n)))
        second = noop_2.map(first)
        third = noop_3.map(second)
        return len(third.result())

    assert peer(1) == 1  # starts the temporary server; not timed
    started = time.perf_counter()
    done = peer(args.n)
    wall = time.perf_counter() - started
    assert done == args.n
    executions = args.n * STEPS
    print(
        json.dumps(
            {
                "engine": f"prefect {prefect.__version__}",
                "n": args.n,
                "executions": executions,
                "wall_s": round(wall, 2),
                "per_s": round(executions / wall, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
