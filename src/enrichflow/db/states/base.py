"""What every statement of the state package shares: the tables, the status literals the
partial indexes match, and the :class:`Claim` a claim hands out."""

from __future__ import annotations

import typing
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Connection, Table, exists, literal_column

from enrichflow.db.engine import is_postgres
from enrichflow.db.models import Batch, BatchStep, EnrichmentResult, StepDedupe, WorkflowState
from enrichflow.db.states.transition import status_unchanged
from enrichflow.states import BatchStatus, Status, sources_of

ws = typing.cast(Table, WorkflowState.__table__)
bs = typing.cast(Table, BatchStep.__table__)
batches = typing.cast(Table, Batch.__table__)
results = typing.cast(Table, EnrichmentResult.__table__)
dedupe = typing.cast(Table, StepDedupe.__table__)

# In the order of the partial indexes' predicates in models.py: SQLite matches them literally.
FINISHED = (Status.COMPLETED, Status.SKIPPED)
LEASED = (Status.QUEUED, Status.IN_PROGRESS)

COMPLETABLE = sorted(s.value for s in sources_of(Status.COMPLETED))
"""Every status a callback may complete: waiting (IN_PROGRESS), given up (FAILED), or
waiting for a retry (PENDING, QUEUED) whose earlier attempt's data has now arrived."""


@status_unchanged
def status_in(*statuses: Status) -> ColumnElement[bool]:
    """``status = 'A'`` / ``status IN ('A', ...)`` with the values written into the SQL.

    The partial indexes the conductor relies on (``WHERE status = 'PENDING'`` ...) are usable
    only when the planner can see the constants: with bound parameters SQLite never picks
    them, and Postgres loses them once psycopg switches to prepared generic plans.
    """
    values: list[ColumnElement[str]] = [literal_column(f"'{s.value}'") for s in statuses]
    return ws.c.status == values[0] if len(values) == 1 else ws.c.status.in_(values)


@status_unchanged
def batch_cancelled() -> ColumnElement[bool]:
    """The state's batch was cancelled: nothing of it may run, land or be retried again."""
    return exists().where(
        batches.c.id == ws.c.batch_id, batches.c.status == BatchStatus.CANCELLED.value
    )


@status_unchanged
def for_claim(conn: Connection, stmt: Any) -> Any:
    """Postgres lets several conductors claim side by side; SQLite serialises writers anyway."""
    return stmt.with_for_update(skip_locked=True) if is_postgres(conn) else stmt


class Claim(NamedTuple):
    """A state handed to an executor: the attempt number fences every later write.

    A named tuple: a chunk makes a thousand of these, and a frozen dataclass costs several
    times more to build."""

    state_id: int
    batch_id: int
    item_id: int
    step_index: int
    step_name: str
    attempt: int


CLAIM_COLUMNS = (
    ws.c.id,
    ws.c.batch_id,
    ws.c.item_id,
    ws.c.step_index,
    ws.c.step_name,
    ws.c.attempt,
)
"""The columns of a :class:`Claim`, in its order."""

NEW_STATE_COLUMNS = [
    "batch_id",
    "item_id",
    "step_name",
    "step_index",
    "status",
    "attempt",
    "retry_floor",
    "not_before",
    "created_at",
    "updated_at",
]
"""The columns a new state is inserted with, in the order its SELECT gives them."""
