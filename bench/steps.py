"""Rows per second of each built-in Apollo step, single process, on SQLite.

A synthetic N-row Apollo export (default 100,000; ``--quick`` 5,000) is generated from the rows
of ``examples/apollo_people_sample.csv``: row ``i`` copies sample row ``i % 200`` with its person
made unique (names, e-mail, phones, LinkedIn slug and Apollo ids carry ``i``) and its company
one of ~2,000 (``i % 2000`` is folded into the company name and domain), so per-person caches do
not help and company-level caches help as much as on a real export.

The file is ingested and launched through ``apollo_default`` (split, the three normalizations,
consolidation). Then each step is run on its own, in pipeline order, through the real runner:
chunks of 1,000 states are claimed (``db.states.states_claim`` with ``start=True``, as the local
executor does) and handed to ``runner.run_claims`` in this thread until the step has none
left. **What is timed per step**: those claims plus ``run_claims``, i.e. loading the items and
earlier results, calling the handler, recording the outcomes and creating the next step's
states: the work a single runner thread does. Ingest and launch are not timed.

    .venv/bin/python bench/steps.py              # 100,000 rows
    .venv/bin/python bench/steps.py --quick      # 5,000 rows
    .venv/bin/python bench/steps.py --profile normalize_all_core_values   # cProfile one step
    .venv/bin/python bench/steps.py --quick --dump out.json   # the steps' output, to diff
    .venv/bin/python bench/steps.py --default-gc   # CPython's default GC threshold

The last line, ``noop``, runs the same rows through the same path with the no-op handler: the
runner's own cost per row, which no handler can go below. ``--dump`` writes the tables the
steps write (``companies``, ``people``, ``final_leads``, ``person_work_history`` and the
results), timestamps reduced to their format, so two versions of the steps can be compared
with ``diff``. Like the ``enrichflow`` command, the run raises the garbage collector's
threshold (``enrichflow.gc_tuning``) unless ``--default-gc`` is given.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import pstats
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select, text

from enrichflow.db.engine import make_engine, now_ms
from enrichflow.db.models import BatchStep, WorkflowState

try:
    from enrichflow.db.states import states_claim
except ImportError:  # a revision from before the state package, timed by bench/compare.py
    from enrichflow.db.queries import states_claim  # type: ignore[import-not-found,no-redef]
from enrichflow.gc_tuning import tune_gc
from enrichflow.ingest.loader import ingest_csv
from enrichflow.launch import launch
from enrichflow.runner import run_claims
from enrichflow.seed import APOLLO, BUILTIN_PIPELINES, DEFAULT_PIPELINE, init_database
from enrichflow.steps import registry

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "apollo_people_sample.csv"
STEPS = BUILTIN_PIPELINES[APOLLO][DEFAULT_PIPELINE]
TARGETS = {step: 20_000 for step in STEPS} | {"normalize_all_core_values": 5_000}
CHUNK = 1000
COMPANIES = 2000

_DIGITS_RE = re.compile(r"\d{4}(?=\D*$)")


def write_synthetic(path: Path, n: int) -> None:
    """The N-row Apollo file described in the module docstring."""
    with SAMPLE.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        sample = list(reader)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, header)
        writer.writeheader()
        for i in range(n):
            row = dict(sample[i % len(sample)])
            group = i % COMPANIES
            row["First Name"] = f"{row['First Name']}{_letters(i)}"
            if row.get("Email") and "@" in row["Email"]:
                local, domain = row["Email"].split("@", 1)
                head, _, tail = domain.partition(".")
                row["Email"] = f"{local}.{i}@{head}{group}.{tail}"
            if row.get("Website"):
                row["Website"] = re.sub(r"([a-z0-9-]+)(\.[a-z.]+)(/|$)", rf"\g<1>{group}\2\3",
                                        row["Website"], count=1)  # fmt: skip
            for column in ("Company Name", "Company Name for Emails"):
                if row.get(column):
                    first, _, rest = row[column].partition(" ")
                    row[column] = f"{first}{group} {rest}".strip()
            for column in ("Work Direct Phone", "Mobile Phone", "Corporate Phone", "Other Phone"):
                if row.get(column):
                    row[column] = _DIGITS_RE.sub(f"{i % 10000:04d}", row[column])
            if row.get("Person Linkedin Url"):
                row["Person Linkedin Url"] += f"-{i}"
            for column in ("Apollo Contact Id", "Apollo Account Id"):
                row[column] = f"{row.get(column, '')[:16]}{i:08x}"
            writer.writerow(row)


def _letters(i: int) -> str:
    """A name suffix of letters (digits in a name would be unrealistic for the name parser)."""
    out = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        out = chr(97 + r) + out
    return out


class HandlerClock:
    """Wraps the registered handlers to add up the seconds spent inside them, including the
    loads of the row and the earlier results that the handler's first use of them triggers
    (a handler that needs neither, like the SQL consolidation's plain items, loads neither)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        registry.get_handler("noop")  # imports the built-in handlers
        for name, fn in list(registry._HANDLERS.items()):
            registry._HANDLERS[name] = self._timed(fn)

    def _timed(self, fn: Any) -> Any:
        def timed(argument: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(argument)
            finally:
                self.seconds += time.perf_counter() - started

        return timed


def launched(directory: Path, n: int) -> tuple[Engine, int, int, dict[str, tuple[int, int]]]:
    """The N-row synthetic file in ``directory`` (``bench.db`` beside it), ingested and
    launched through ``apollo_default``: the engine, the upload id, the batch id and each
    step's (position, lease ms)."""
    source = directory / "apollo.csv"
    write_synthetic(source, n)
    engine = make_engine(f"sqlite:///{directory / 'bench.db'}")
    init_database(engine)
    upload_id = ingest_csv(engine, source).upload_id
    batch_id = launch(engine, "bench", APOLLO, upload_id, steps=STEPS, create_client=True)
    with engine.connect() as conn:
        rows = conn.execute(
            select(BatchStep.step_name, BatchStep.position, BatchStep.lease_ms).where(
                BatchStep.batch_id == batch_id
            )
        ).all()
    return engine, upload_id, batch_id, {name: (position, ms) for name, position, ms in rows}


def run_step(engine: Engine, batch_id: int, position: int, lease_ms: int) -> int:
    """Claim and run every state of one step in this thread; returns the rows run."""
    done = 0
    while True:
        with engine.begin() as conn:
            claims = states_claim(conn, batch_id, position, CHUNK, lease_ms, now_ms(), start=True)
        if not claims:
            return done
        run_claims(engine, claims, {}, started=True)
        done += len(claims)


_DUMPS = {
    "companies": "SELECT * FROM companies WHERE batch_id = :b ORDER BY id",
    "people": "SELECT * FROM people WHERE batch_id = :b ORDER BY id",
    "final_leads": "SELECT * FROM final_leads WHERE batch_id = :b ORDER BY id",
    "person_work_history": "SELECT * FROM person_work_history WHERE batch_id = :b ORDER BY id",
    "results": "SELECT item_id, step_name, payload FROM enrichment_results WHERE batch_id = :b "
    "ORDER BY item_id, step_name",
}


def dump(engine: Engine, batch_id: int, path: Path) -> None:
    """The steps' output as JSON, one table row a line, without the creation times."""
    with engine.connect() as conn, path.open("w", encoding="utf-8") as out:
        for table, sql in _DUMPS.items():
            for row in conn.execute(text(sql), {"b": batch_id}).mappings():
                values = {k: _decoded(v) for k, v in row.items()}
                if values.get("created_at") is not None:  # its format, not its time
                    values["created_at"] = re.sub(r"\d", "0", str(values["created_at"]))
                out.write(f"{table} {json.dumps(values, sort_keys=True, default=str)}\n")


def _decoded(value: object) -> object:
    """JSON columns read as text are decoded, so key order does not count as a difference."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 rows instead of 100,000")
    parser.add_argument("--rows", type=int, help="any other number of rows")
    parser.add_argument("--profile", metavar="STEP", help="cProfile this step; print top 25")
    parser.add_argument("--sort", default="cumulative", help="profile order (e.g. tottime)")
    parser.add_argument("--keep", action="store_true", help="keep the database and CSV")
    parser.add_argument("--dump", metavar="FILE", type=Path, help="write the steps' output here")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed (default: 0)"
    )
    parser.add_argument("--default-gc", action="store_true", help="CPython's default GC threshold")
    args = parser.parse_args()
    n = args.rows or (5_000 if args.quick else 100_000)
    if not args.default_gc:
        tune_gc()  # as the CLI does for every enrichflow process

    tmp = Path(tempfile.mkdtemp(prefix="ef-bench-steps-"))
    engine, upload_id, batch_id, steps = launched(tmp, n)

    gc_note = "default GC" if args.default_gc else "tuned GC"
    print(
        f"{n:,} rows, SQLite, single process, chunks of {CHUNK:,} "
        f"(claim + run_claims timed), {gc_note}"
    )
    print(
        f"{'step':48} {'rows':>8} {'seconds':>8} {'rows/s':>9} {'target':>8}  verdict  "
        f"{'handler s':>9} {'µs/row':>7}"
    )
    clock = HandlerClock()
    all_met = True
    figures: dict[str, dict[str, object]] = {}  # for bench/results/latest.json
    for step in STEPS:
        profiler = cProfile.Profile() if args.profile == step else None
        clock.seconds = 0.0
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        rows = run_step(engine, batch_id, *steps[step])
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - started
        rate = rows / seconds if seconds else float("inf")
        target = TARGETS[step]
        met = rate >= target
        all_met &= met
        figures[step] = {"rows": rows, "seconds": round(seconds, 2), "per_s": round(rate)}
        figures[step] |= {"target_per_s": target, "met": met}
        figures[step]["handler_seconds"] = round(clock.seconds, 2)
        print(
            f"{step:48} {rows:>8,} {seconds:>8.2f} {rate:>9,.0f} {target:>8,}  "
            f"{'met    ' if met else 'NOT MET'}  {clock.seconds:>9.2f} "
            f"{clock.seconds / max(rows, 1) * 1e6:>7.1f}"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(30)
    noop_batch = launch(engine, "bench", APOLLO, upload_id, steps=["noop"])
    with engine.connect() as conn:
        noop_position, noop_lease = conn.execute(
            select(BatchStep.position, BatchStep.lease_ms).where(BatchStep.batch_id == noop_batch)
        ).one()
    started = time.perf_counter()
    rows = run_step(engine, noop_batch, noop_position, noop_lease)
    seconds = time.perf_counter() - started
    rate = rows / seconds if seconds else float("inf")
    figures["noop"] = {"rows": rows, "seconds": round(seconds, 2), "per_s": round(rate)}
    print(f"{'noop (the runner alone)':48} {rows:>8,} {seconds:>8.2f} {rate:>9,.0f}")
    if args.dump:
        dump(engine, batch_id, args.dump)
    with engine.connect() as conn:
        unfinished = conn.execute(
            select(WorkflowState.status)
            .where(
                WorkflowState.batch_id == batch_id,
                WorkflowState.status.notin_(["COMPLETED", "SKIPPED"]),
            )
            .limit(1)
        ).first()
    engine.dispose()
    if args.keep:
        print(f"kept {tmp}")
    else:  # a full-size run leaves a database too large to keep by default
        shutil.rmtree(tmp, ignore_errors=True)
    if unfinished is not None:
        print("some states did not complete: the figures are not valid", file=sys.stderr)
        return 2
    if not args.quick and args.rows is None and args.profile is None and not args.default_gc:
        from _results import record  # bench/_results.py: the shared bench/results/latest.json

        record("steps", figures)
    return 1 if args.strict and not all_met else 0


if __name__ == "__main__":
    sys.exit(main())
