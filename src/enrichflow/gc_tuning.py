"""The cyclic garbage collector's threshold for the processes that run steps.

A chunk of claims allocates tens of thousands of short-lived containers (claims,
outcomes, contexts, rows). With CPython's default youngest-generation threshold of 700, the
collector runs dozens of times per chunk, and each pass walks every container still alive;
on SQLite that work happens inside the writer lock every runner waits for. A chunk of the
Apollo steps keeps tens of thousands of containers alive at once (contexts, decoded rows and
results, the rows it writes), so the threshold is set above that: a chunk's objects are freed
before the count is reached, and the collector runs about once per step at little cost in
peak memory (``bench/engine.py --default-gc`` compares the two).

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
