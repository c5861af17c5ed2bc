"""Every statement that changes or reads a ``workflow_states`` status, in one package.

Only this package changes a state's status. Names follow Noun+Verb (``states_claim``,
``states_reap``); each public function declares the transitions it can make
(:mod:`~enrichflow.db.states.transition`), which a test checks against
:data:`enrichflow.states.TRANSITIONS`. Every status change is a compare-and-set on ``status``
and ``attempt``; every time-dependent statement takes ``now`` (epoch ms) so tests step time
instead of sleeping. Statements are set-based: one statement moves a whole chunk, never a
Python loop of single-row updates. Where the dialects differ, each one's form lives in
:mod:`~enrichflow.db.states.sqlite` or :mod:`~enrichflow.db.states.postgres`.

Modules by role: ``claim`` (dispatcher and runner leases), ``outcomes`` (the runner's results),
``chain`` (creating states: launch, next step, sequencer), ``reap`` (expired leases, failed
dispatches), ``retry`` (backoff, manual retry), ``callbacks`` (ASYNC results landing),
``followers`` (company-level de-duplication), ``rollup`` (finished batches), ``controls``
(an operator's cancel and re-send, a paused step's unrun claims), ``reads``.
"""

from __future__ import annotations

from enrichflow.db.states.base import Claim, status_in
from enrichflow.db.states.callbacks import (
    Callback,
    CallbackOutcome,
    CallbackReport,
    callback_complete,
    callbacks_complete,
)
from enrichflow.db.states.chain import states_advance, states_create_first
from enrichflow.db.states.claim import claims_load, states_claim, states_heartbeat, states_start
from enrichflow.db.states.controls import states_cancel, states_release, states_resend
from enrichflow.db.states.followers import (
    DedupeDecision,
    FinishedLeader,
    dedupe_join,
    dedupe_key_text,
    dedupe_leaders,
    followers_settle,
    leaders_finished,
)
from enrichflow.db.states.outcomes import RecordReport, StepOutcome, outcomes_record
from enrichflow.db.states.reads import (
    BatchStepInfo,
    batch_counts,
    batch_step_load,
    batch_steps_with_work,
    states_leased_count,
)
from enrichflow.db.states.reap import DispatchFailure, states_dispatch_failed, states_reap
from enrichflow.db.states.results import results_insert
from enrichflow.db.states.retry import states_retry_failed
from enrichflow.db.states.reuse import ReusableResult, results_reusable
from enrichflow.db.states.rollup import batches_rollup, conductor_work_pending

__all__ = [
    "BatchStepInfo",
    "Callback",
    "CallbackOutcome",
    "CallbackReport",
    "Claim",
    "DedupeDecision",
    "DispatchFailure",
    "FinishedLeader",
    "RecordReport",
    "ReusableResult",
    "StepOutcome",
    "batch_counts",
    "batch_step_load",
    "batch_steps_with_work",
    "batches_rollup",
    "callback_complete",
    "callbacks_complete",
    "claims_load",
    "conductor_work_pending",
    "dedupe_join",
    "dedupe_key_text",
    "dedupe_leaders",
    "followers_settle",
    "leaders_finished",
    "outcomes_record",
    "results_insert",
    "results_reusable",
    "states_advance",
    "states_cancel",
    "states_claim",
    "states_create_first",
    "states_dispatch_failed",
    "states_heartbeat",
    "states_leased_count",
    "states_reap",
    "states_release",
    "states_resend",
    "states_retry_failed",
    "states_start",
    "status_in",
]
