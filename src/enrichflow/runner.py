"""The step runner: the only code that calls handlers.

It starts a chunk of claims (QUEUED -> IN_PROGRESS, fenced by attempt), loads what the
handlers need in a few set-based reads, calls the handler for each item, and records the
outcomes in groups (group commit), renewing the leases of the claims still running.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine

from enrichflow.breaker import StepBreaker, Trip, breaker_for
from enrichflow.catalog.batch_controls import Halt, batch_halt_load, step_breaker_trip
from enrichflow.catalog.validation import breaker_options
from enrichflow.db.context import ChunkData, RowLayout, StepSetting, step_setting_load
from enrichflow.db.engine import now_ms, reading
from enrichflow.db.states import (
    BatchStepInfo,
    Claim,
    DedupeDecision,
    RecordReport,
    ReusableResult,
    StepOutcome,
    batch_step_load,
    dedupe_join,
    dedupe_leaders,
    outcomes_record,
    results_reusable,
    states_heartbeat,
    states_release,
    states_start,
)
from enrichflow.errors import ConfigError, PermanentStepError, StepError
from enrichflow.states import Status
from enrichflow.steps.base import (
    ChunkHandler,
    Completed,
    Deferred,
    Handler,
    Skip,
    StepContext,
)
from enrichflow.steps.registry import get_handler, get_preparer, is_chunk_handler

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class RunnerOptions:
    flush_every: int = 1000
    """Record outcomes once this many are waiting..."""
    flush_seconds: float = 1.0
    """...or once the oldest has waited this long."""
    halt_check_seconds: float = 0.25
    """How often a chunk re-reads whether its batch was cancelled or paused, or its step
    paused by the circuit breaker: the longest an operator's pause lets sends go on."""


DEFAULT_OPTIONS = RunnerOptions()


class DatabaseDedupeLeaders:
    """The ``dedupe_leaders`` service the runner gives handlers, one per chunk: it decides the
    whole chunk at once. :meth:`look_up`, called by the handler's ``prepare`` in the runner's
    read of the chunk, finds the earlier batches' results the chunk's keys can reuse and the
    leaders its other keys already have (a leader never changes once chosen). Only keys
    without a leader need a write: the first :meth:`join` makes their leaders in one short
    transaction, committed before the handler sends anything, because the other workers must
    see a leader at once or two items of one company would both send."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.chunk: Sequence[StepContext] = ()
        """The contexts of the chunk being run."""
        self._keys: dict[int, str] | None = None
        self._reusable: dict[int, ReusableResult] = {}
        self._leaders: dict[str, DedupeDecision] = {}
        self._joined: dict[int, DedupeDecision] = {}
        self._looked_up = False

    def look_up(
        self,
        conn: Connection,
        key_of: Callable[[StepContext], str | None],
        reuse_since_ms: int | None,
        across_clients: bool,
    ) -> None:
        """Through ``conn``: the earlier results the chunk's keys can reuse (paid for at or
        after ``reuse_since_ms``; no reuse when it is None), then the leaders of the rest."""
        keys = self._chunk_keys(key_of)
        first = self.chunk[0] if self.chunk else None
        if first is not None and keys and reuse_since_ms is not None:
            found = results_reusable(
                conn, first.batch_id, first.step, set(keys.values()), reuse_since_ms, across_clients
            )
            self._reusable = {sid: found[key] for sid, key in keys.items() if key in found}
        rest = {key for sid, key in keys.items() if sid not in self._reusable}
        if first is not None and rest:
            self._leaders = dedupe_leaders(conn, first.batch_id, first.step, rest)
        self._looked_up = True

    def reusable(
        self,
        ctx: StepContext,
        key_of: Callable[[StepContext], str | None],
        since_ms: int,
        across_clients: bool,
    ) -> ReusableResult | None:
        """The earlier result ``ctx``'s key can reuse (the chunk is looked up now, on a
        connection of its own, when the handler's ``prepare`` did not)."""
        if not self._looked_up:
            with reading(self.engine) as conn:
                self.look_up(conn, key_of, since_ms, across_clients)
        return self._reusable.get(ctx.state_id)

    def join(
        self,
        ctx: StepContext,
        key_of: Callable[[StepContext], str | None],
        may_lead: Callable[[StepContext], bool] | None = None,
    ) -> DedupeDecision:
        """The leader of ``ctx``'s key: the one looked up, else made now. The first key without
        a leader joins with those of the chunk's items after it that reuse nothing (the items
        before it never got this far). Of each new key, the first item that ``may_lead``
        (the handler would send it) leads; ``ctx`` itself is on its way to send."""
        chunk_keys = self._chunk_keys(key_of)
        key = chunk_keys.get(ctx.state_id)
        if key is not None and key in self._leaders:
            return self._leaders[key]
        if ctx.state_id not in self._joined:
            later = self.chunk[[c.state_id for c in self.chunk].index(ctx.state_id) :]
            keys: dict[int, str] = {}
            led: set[str] = set()
            for c in later:
                k = chunk_keys.get(c.state_id)
                if k is None or k in self._leaders:
                    continue
                if c.state_id in self._reusable or c.state_id in self._joined:
                    continue
                if k in led or c is ctx or may_lead is None or may_lead(c):
                    keys[c.state_id] = k
                    led.add(k)
            with self.engine.begin() as conn:
                self._joined.update(dedupe_join(conn, ctx.batch_id, ctx.step, keys))
        return self._joined[ctx.state_id]

    def _chunk_keys(self, key_of: Callable[[StepContext], str | None]) -> dict[int, str]:
        """state id -> key of the chunk's items, computed once for the look-up and the join."""
        if self._keys is None:
            self._keys = _keys(self.chunk, key_of)
        return self._keys


def _keys(
    contexts: Sequence[StepContext], key_of: Callable[[StepContext], str | None]
) -> dict[int, str]:
    """state id -> key, for the contexts that have one. A context whose key cannot be
    computed is left out: its own handler call computes the key again and fails that item
    with the error, where a failure here would fail the whole chunk."""
    keys = {}
    for ctx in contexts:
        try:
            key = key_of(ctx)
        except Exception:  # the item's own call raises it again, and it is stored
            continue
        if key is not None:
            keys[ctx.state_id] = key
    return keys


def describe_error(exc: BaseException) -> str:
    """A stored, human-readable error: the type and the message, bounded in size."""
    text = str(exc) if isinstance(exc, StepError) else f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]


def run_claims(
    engine: Engine,
    claims: Sequence[Claim],
    services: Mapping[str, Any],
    options: RunnerOptions = DEFAULT_OPTIONS,
    clock: Callable[[], int] = now_ms,
    started: bool = False,
    chain: Callable[[BatchStepInfo], bool] | None = None,
) -> RecordReport:
    """Run one chunk of claims of a single (batch, step) to recorded outcomes.

    ``started``: the dispatcher already moved the claims to IN_PROGRESS (local executor).
    ``chain``: asked with the next step when the chunk's last group of outcomes is recorded;
    when it says yes (the executor had room for that step), the next step's states of that
    group are created claimed by this runner and returned in ``chained``, for the caller to
    run at once in this thread.
    """
    if not claims:
        return RecordReport()
    first = claims[0]
    running = list(claims)
    if not started:
        with engine.begin() as conn:
            lease_ms = step_setting_load(conn, first.batch_id, first.step_index).lease_ms
            ours = states_start(conn, claims, lease_ms, clock())
        running = [c for c in claims if c.state_id in ours]
        if not running:
            return RecordReport(stale=len(claims))
    leaders = DatabaseDedupeLeaders(engine)
    services = {**services, "engine": engine, "dedupe_leaders": leaders}
    with reading(engine) as conn:
        setting = step_setting_load(conn, first.batch_id, first.step_index)
        layout = RowLayout(setting.headers, setting.column_map)
        chunk = ChunkData(engine, conn, [c.item_id for c in running], layout)
        next_step = batch_step_load(conn, first.batch_id, first.step_index + 1) if chain else None
        step_log = logging.getLogger(f"enrichflow.step.{setting.step_name}")
        contexts = [_context(setting, c, chunk, services, step_log) for c in running]
        leaders.chunk = contexts
        prepare = get_preparer(setting.handler)
        unprepared: Exception | None = None
        if prepare is not None:
            chunk.load_results(conn)
            try:
                prepare(conn, contexts)
            except Exception as exc:  # fails every item of the chunk below, stored
                unprepared = exc
    chained: list[Claim] = []

    handler = get_handler(setting.handler)
    totals: dict[str, int] = {}
    pending: list[StepOutcome] = []
    remaining = list(running)
    last_flush = last_beat = time.monotonic()
    beat_every = max(setting.lease_ms / 3000, 0.05)

    def flush(last: bool = False) -> None:
        nonlocal pending, last_flush
        if pending:
            chain_lease_ms: int | None = None
            # Only the last group is chained: its next states start the moment they are
            # created, so their leases never wait on the rest of this chunk.
            if last and next_step is not None and chain is not None and _finishes_any(pending):
                fits = len(pending) <= int(next_step.config.get("batch_size", len(pending)))
                if fits and chain(next_step):
                    chain_lease_ms = next_step.lease_ms
            with engine.begin() as conn:
                report = outcomes_record(conn, pending, clock(), chain_lease_ms)
            chained.extend(report.chained)
            for name in RecordReport.__slots__:
                if name not in ("stale_ids", "chained"):
                    totals[name] = totals.get(name, 0) + getattr(report, name)
            if report.stale:
                log.warning(
                    "step %s: %d result(s) arrived for attempts that are no longer current "
                    "(taken back by the reaper or completed by a callback); they were not written",
                    setting.step_name,
                    report.stale,
                )
            if report.answered:
                log.debug(
                    "step %s: %d callback(s) arrived before their send was recorded",
                    setting.step_name,
                    report.answered,
                )
            pending = []
        last_flush = time.monotonic()

    breaker = _breaker(engine, setting)
    halted: Halt | None = None
    if unprepared is not None:
        pending.extend(
            _failure(ctx, c, unprepared) for ctx, c in zip(contexts, running, strict=True)
        )
        running = []
    elif is_chunk_handler(setting.handler):
        pending.extend(_call_chunk(handler, contexts, running, clock))  # type: ignore[arg-type]
        running = []
    last_halt_check = -math.inf
    for index, (claim, ctx) in enumerate(zip(running, contexts, strict=False)):
        if time.monotonic() - last_halt_check >= options.halt_check_seconds or (
            breaker is not None and breaker.tripped_at >= last_halt_check
        ):
            with reading(engine) as conn:
                halted = batch_halt_load(conn, first.batch_id, first.step_index)
            last_halt_check = time.monotonic()
            if halted is not None:
                remaining = running[index:]
                break
        outcome = _call(handler, ctx, claim, clock)  # type: ignore[arg-type]
        pending.append(outcome)
        remaining = running[index + 1 :]
        if breaker is not None and (trip := breaker.record(outcome)) is not None:
            _trip(engine, setting, trip, step_log)
            breaker.opened()
        now_mono = time.monotonic()
        if len(pending) >= options.flush_every or now_mono - last_flush >= options.flush_seconds:
            flush()
        if remaining and now_mono - last_beat >= beat_every:
            with engine.begin() as conn:
                states_heartbeat(conn, remaining, setting.lease_ms, clock())
            last_beat = now_mono
    if halted is not None:
        next_step = None  # nothing is chained from a halted chunk
    flush(last=True)
    if halted is not None and halted is not Halt.CANCELLED and remaining:
        with engine.begin() as conn:
            released = states_release(conn, remaining, clock())
        step_log.info(
            "batch %s step %s is %s: %d claimed item(s) given back unsent",
            first.batch_id,
            setting.step_name,
            halted.value,
            released,
        )
    return RecordReport(
        completed=totals.get("completed", 0),
        skipped=totals.get("skipped", 0),
        deferred=totals.get("deferred", 0),
        retried=totals.get("retried", 0),
        failed=totals.get("failed", 0),
        stale=totals.get("stale", 0),
        answered=totals.get("answered", 0),
        chained=tuple(chained),
    )


def _breaker(engine: Engine, setting: StepSetting) -> StepBreaker | None:
    """The step's circuit breaker, ``None`` when its options turn both rules off (a snapshot
    taken before the options existed reads the defaults)."""
    try:
        options = breaker_options(setting.workflow_config)
    except ConfigError:
        return None  # launch checked the snapshot; an unreadable one sends as before
    if not options.failures and not options.window_seconds:
        return None
    return breaker_for(id(engine), setting.batch_id, setting.step_index, options)


def _trip(engine: Engine, setting: StepSetting, trip: Trip, logger: logging.Logger) -> None:
    """Pause the step for its batch and say why, once (another runner may have tripped it)."""
    with engine.begin() as conn:
        first = step_breaker_trip(
            conn,
            setting.batch_id,
            setting.step_index,
            trip.reason,
            {"failures": trip.failures, "error_class": trip.error_class},
        )
    if first:
        logger.error(
            "batch %s step %s paused by the circuit breaker: %s; fix the cause, then run: "
            "enrichflow resume %s",
            setting.batch_id,
            setting.step_name,
            trip.reason,
            setting.batch_id,
        )


def _finishes_any(outcomes: Sequence[StepOutcome]) -> bool:
    return any(o.kind is Status.COMPLETED or o.kind is Status.SKIPPED for o in outcomes)


def _context(
    setting: StepSetting,
    claim: Claim,
    chunk: ChunkData,
    services: Mapping[str, Any],
    logger: logging.Logger,
) -> StepContext:
    return StepContext(
        state_id=claim.state_id,
        batch_id=claim.batch_id,
        item_id=claim.item_id,
        step=setting.step_name,
        workstream=setting.workstream,
        client=setting.client,
        attempt=claim.attempt,
        row_number=chunk.row_number(claim.item_id),
        identity=None,
        original_data=None,
        results=None,
        workflow_config=setting.workflow_config,
        client_config=setting.client_config,
        logger=logger,
        services=services,
        fields=None,
        source=chunk,
    )


def _call(
    handler: Handler, ctx: StepContext, claim: Claim, clock: Callable[[], int]
) -> StepOutcome:
    """Call the handler; every exception becomes a stored error, never a lost one."""
    try:
        result = handler(ctx)
    except Exception as exc:
        return _failure(ctx, claim, exc)
    return _outcome(result, claim, clock)


def _call_chunk(
    handler: ChunkHandler,
    contexts: Sequence[StepContext],
    claims: Sequence[Claim],
    clock: Callable[[], int],
) -> list[StepOutcome]:
    """Call a chunk handler once; an exception it raises fails every item of the chunk."""
    try:
        results = list(handler(contexts))
    except Exception as exc:
        return [_failure(ctx, claim, exc) for ctx, claim in zip(contexts, claims, strict=True)]
    if len(results) != len(claims):
        error = PermanentStepError(
            f"chunk handler returned {len(results)} outcomes for {len(claims)} items"
        )
        return [_failure(ctx, claim, error) for ctx, claim in zip(contexts, claims, strict=True)]
    return [
        _failure(ctx, claim, result)
        if isinstance(result, Exception)
        else _outcome(result, claim, clock)
        for ctx, claim, result in zip(contexts, claims, results, strict=True)
    ]


def _failure(ctx: StepContext, claim: Claim, exc: Exception) -> StepOutcome:
    if isinstance(exc, StepError):
        ctx.logger.warning("item %s attempt %s: %s", claim.item_id, claim.attempt, exc)
        retry_after = getattr(exc, "retry_after", None)
        return StepOutcome(
            claim,
            Status.PENDING if exc.retryable else Status.FAILED,
            error=describe_error(exc),
            retry_after_ms=int((retry_after or 0) * 1000),
        )
    ctx.logger.error(
        "item %s attempt %s: handler raised", claim.item_id, claim.attempt, exc_info=exc
    )
    return StepOutcome(claim, Status.PENDING, error=describe_error(exc))


def _outcome(result: object, claim: Claim, clock: Callable[[], int]) -> StepOutcome:
    if type(result) is dict:  # the common case first
        return StepOutcome(claim, Status.COMPLETED, payload=result)
    if isinstance(result, Skip):
        return StepOutcome(claim, Status.SKIPPED, error=result.reason)
    if isinstance(result, Completed):
        return StepOutcome(
            claim,
            Status.COMPLETED,
            payload=result.payload,
            meta=result.meta,
            waiting_on=result.waiting_on,
        )
    if isinstance(result, Deferred):
        return StepOutcome(
            claim,
            Status.IN_PROGRESS,
            meta=result.meta,
            waiting_on=result.waiting_on,
            deadline_ms=clock() + int(result.deadline_seconds * 1000),
        )
    if not isinstance(result, dict):
        return StepOutcome(
            claim,
            Status.FAILED,
            error=f"handler returned {type(result).__name__}, expected a dict, Skip, Deferred or Completed",
        )
    return StepOutcome(claim, Status.COMPLETED, payload=result)
