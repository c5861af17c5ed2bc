"""The cyclic garbage collector's threshold for the processes that run steps.

A chunk of 1,000 claims allocates tens of thousands of short-lived containers (claims,
outcomes, contexts, rows). With CPython's default youngest-generation threshold of 700, the
collector runs dozens of times per chunk, and each pass walks every container still alive;
on SQLite that work happens inside the writer lock every runner waits for. The engine
benchmark measured 21,000-22,000 step executions/s with the default and 29,000-30,000 with
10,000, at the same peak RSS (docs/benchmarks.md). A chunk of the Apollo steps keeps up to
about 20,000 containers alive at once (contexts, decoded rows and results, the rows it
writes), so at 10,000 the collector still ran once or twice per chunk: 0.3-0.45 s of a
50,000-row step of 4-5 s (bench/steps.py). At 30,000 a chunk's objects are freed before the
count is reached and it runs about once per step; the engine benchmark's peak RSS went from
122 to 126 MB.

The threshold only decides how often the collector looks; reference counting still frees
almost everything at once, and cycles are still collected.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 30_000


def tune_gc() -> None:
    """Raise the youngest generation's threshold to :data:`GEN0_THRESHOLD`.

    Called once by each entry point that runs the conductor or the runner (the CLI, the Modal
    container, the Prefect flow). A higher threshold already set by an embedding program is
    left alone; the two older generations keep theirs.
    """
    first, second, third = gc.get_threshold()
    if first < GEN0_THRESHOLD:
        gc.set_threshold(GEN0_THRESHOLD, second, third)
