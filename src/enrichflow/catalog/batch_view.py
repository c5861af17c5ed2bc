"""What the batch page shows: honest progress from the state table, failure groups, the failed
list and the lead browser (keyset-paged, so a million-item batch pages as fast as a small one),
and one item's steps.

Progress counts *step runs*: each item owes one state per step. A failed state ends its item's
chain, so the steps after it will never run; they are counted with the failures ("not run after
a failure"), which is why an all-failed batch reads as failed, never as a green 100%.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, func, select

from enrichflow.catalog.batch_reports import STUCK_PENDING_MS
from enrichflow.db.models import Batch, BatchItem, BatchStep, EnrichmentResult, WorkflowState
from enrichflow.db.states import status_in
from enrichflow.db.states.errors import error_class
from enrichflow.db.states.triage import (
    AsyncWaits,
    async_waits,
    class_condition,
    failure_groups,
    states_overdue_count,
    step_tallies,
)
from enrichflow.errors import ConfigError
from enrichflow.states import Status

__all__ = [
    "PAGE",
    "BlueprintStep",
    "ItemDetail",
    "Overview",
    "Page",
    "StepLine",
    "batch_blueprint",
    "batch_failed_page",
    "batch_item_detail",
    "batch_items_page",
    "batch_overview",
    "failure_groups",
    "parse_after",
]

PAGE = 50
"""Rows per page of the failed list and of the lead browser."""
MIN_ESTIMATE_MS = 30_000
"""No time-left estimate from less than this much running time."""
LEAD_FIELDS = ("person_name", "title", "company_name", "company_domain", "email", "linkedin_url")


@dataclass(frozen=True, slots=True)
class StepLine:
    name: str
    type: str
    position: int
    max_attempts: int
    counts: dict[str, int]
    not_run: int
    """States this step will never get: its items failed at an earlier step."""
    retried: int


@dataclass(slots=True)
class Overview:
    """A batch's progress in step runs, and in items."""

    items: int
    steps: list[StepLine]
    completed: int
    skipped: int
    failed: int
    not_run: int
    waiting: int
    todo: int
    total: int
    items_done: int
    items_failed: int
    items_waiting: int
    retried: int
    waits: AsyncWaits
    eta_ms: int | None
    eta_reason: str
    overdue: int
    """States past their deadline, which only a running conductor moves on."""
    segments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def processed_percent(self) -> float:
        """Share of step runs that reached an end (finished, failed, or will never run)."""
        ended = self.completed + self.skipped + self.failed + self.not_run
        return 100.0 * ended / self.total if self.total else 0.0


SEGMENTS = ("completed", "skipped", "failed", "not_run", "waiting", "todo")


@dataclass(frozen=True, slots=True)
class BlueprintStep:
    name: str
    type: str
    position: int
    max_attempts: int


def batch_blueprint(conn: Connection, batch_id: int) -> list[BlueprintStep]:
    """The batch's steps in order, with their attempt budgets."""
    return [
        BlueprintStep(*r)
        for r in conn.execute(
            select(BatchStep.step_name, BatchStep.type, BatchStep.position, BatchStep.max_attempts)
            .where(BatchStep.batch_id == batch_id)
            .order_by(BatchStep.position)
        )
    ]


def batch_overview(
    conn: Connection, batch_id: int, items: int, running: bool, started_ms: int | None, now: int
) -> Overview:
    """The batch's progress from one grouped read of its states plus its ASYNC waits."""
    blueprint = batch_blueprint(conn, batch_id)
    tallies = step_tallies(conn, batch_id)
    steps: list[StepLine] = []
    failed_before = 0
    for step in blueprint:
        name, kind, position, max_attempts = step.name, step.type, step.position, step.max_attempts
        tally = tallies.get(position)
        counts = {s.value: 0 for s in Status} | (dict(tally.counts) if tally else {})
        steps.append(
            StepLine(
                name,
                kind,
                position,
                max_attempts,
                counts,
                failed_before,
                tally.retried if tally else 0,
            )
        )
        failed_before += counts[Status.FAILED.value]
    total = items * len(steps)

    def total_of(status: Status) -> int:
        return sum(s.counts[status.value] for s in steps)

    waits = async_waits(conn, batch_id, tallies)
    completed, skipped = total_of(Status.COMPLETED), total_of(Status.SKIPPED)
    failed, not_run = total_of(Status.FAILED), sum(s.not_run for s in steps)
    waiting = waits.count
    todo = max(total - completed - skipped - failed - not_run - waiting, 0)
    last = steps[-1].counts if steps else {}
    view = Overview(
        items=items,
        steps=steps,
        completed=completed,
        skipped=skipped,
        failed=failed,
        not_run=not_run,
        waiting=waiting,
        todo=todo,
        total=total,
        items_done=last.get(Status.COMPLETED.value, 0) + last.get(Status.SKIPPED.value, 0),
        items_failed=failed,
        items_waiting=waiting,
        retried=sum(s.retried for s in steps),
        waits=waits,
        eta_ms=None,
        eta_reason="",
        overdue=states_overdue_count(conn, batch_id, now, STUCK_PENDING_MS),
    )
    view.eta_ms, view.eta_reason = _estimate(view, running, started_ms, now)
    scale = 100.0 / max(total, 1)
    x = 0.0
    for name in SEGMENTS:
        n = int(getattr(view, name))
        if n:
            view.segments.append(
                {"name": name, "count": n, "x": round(x, 3), "w": round(n * scale, 3)}
            )
            x += n * scale
    return view


def _estimate(
    view: Overview, running: bool, started_ms: int | None, now: int
) -> tuple[int | None, str]:
    """Time left at the average rate so far, or why there is no honest estimate."""
    if not running:
        return None, "finished"
    if view.waiting:
        return None, "depends on Clay's callbacks"
    async_ahead = any(
        s.type == "ASYNC"
        and s.counts[Status.COMPLETED.value]
        + s.counts[Status.SKIPPED.value]
        + s.counts[Status.FAILED.value]
        + s.not_run
        < view.items
        for s in view.steps
    )
    if async_ahead:
        return None, "Clay steps are still ahead"
    ended = view.completed + view.skipped + view.failed + view.not_run
    elapsed = now - started_ms if started_ms is not None else 0
    if elapsed < MIN_ESTIMATE_MS or not ended or view.retried:
        return None, "too early to tell"
    rate = ended / elapsed
    return int(view.todo / rate), "at the average rate so far"


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    next_after: int | None
    """The key to ask for the next page with; ``None`` on the last page."""


def _page(rows: list[dict[str, Any]], key: str, size: int) -> Page:
    more = len(rows) > size
    rows = rows[:size]
    return Page(rows, rows[-1][key] if more else None)


def _int_filter(value: str | None, name: str) -> int | None:
    if value in (None, ""):
        return None
    if not value.isdigit():
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def batch_failed_page(
    conn: Connection,
    batch_id: int,
    after: int | None = None,
    step: str | None = None,
    klass: str | None = None,
    status: str = Status.FAILED.value,
    size: int = PAGE,
) -> Page:
    """One page of the batch's states of ``status`` (FAILED unless asked), oldest state first,
    filtered by step and error class."""
    ws = WorkflowState
    if status not in {s.value for s in Status}:
        raise ConfigError(
            f"status must be one of {', '.join(s.value for s in Status)}, got {status!r}"
        )
    where = [ws.batch_id == batch_id, status_in(Status(status))]
    if step:
        where.append(ws.step_name == step)
    if klass:
        where.append(class_condition(klass))
    if after is not None:
        where.append(ws.id > after)
    query = (
        select(
            ws.id,
            ws.item_id,
            ws.step_name,
            ws.attempt,
            ws.retry_floor,
            ws.error,
            ws.error_class,
            ws.updated_at,
            BatchStep.max_attempts,
            BatchItem.row_number,
            BatchItem.person_name,
            BatchItem.company_name,
        )
        .join(BatchItem, BatchItem.id == ws.item_id)
        .join(
            BatchStep, and_(BatchStep.batch_id == ws.batch_id, BatchStep.position == ws.step_index)
        )
        .where(*where)
        .order_by(ws.id)
        .limit(size + 1)
    )
    rows = [
        {
            "state_id": r.id,
            "item_id": r.item_id,
            "row_number": r.row_number,
            "step": r.step_name,
            "attempt": r.attempt - r.retry_floor,
            "max_attempts": r.max_attempts,
            "error": r.error or "",
            "error_class": r.error_class or error_class(r.error),
            "label": r.person_name or r.company_name or "",
            "updated_at": r.updated_at,
        }
        for r in conn.execute(query)
    ]
    return _page(rows, "state_id", size)


def batch_items_page(
    conn: Connection,
    batch_id: int,
    after: int | None = None,
    step: str | None = None,
    status: str | None = None,
    search: str | None = None,
    size: int = PAGE,
) -> Page:
    """One page of the batch's items in id order, each with its status per step; filtered by
    a step's status (``step`` and ``status``) and a text in name, company, domain or e-mail."""
    item = BatchItem
    query = select(item.id, item.row_number, *(getattr(item, f) for f in LEAD_FIELDS)).where(
        item.batch_id == batch_id
    )
    if status:
        if status not in {s.value for s in Status}:
            raise ConfigError(
                f"status must be one of {', '.join(s.value for s in Status)}, got {status!r}"
            )
        ws = WorkflowState
        picked = select(ws.item_id).where(ws.batch_id == batch_id, status_in(Status(status)))
        if step:
            picked = picked.where(ws.step_name == step)
        query = query.where(item.id.in_(picked))
    if search:
        like = f"%{search.strip().lower()}%"
        query = query.where(
            func.lower(item.person_name).like(like)
            | func.lower(item.company_name).like(like)
            | func.lower(item.company_domain).like(like)
            | func.lower(item.email).like(like)
        )
    if after is not None:
        query = query.where(item.id > after)
    found = conn.execute(query.order_by(item.id).limit(size + 1)).all()
    rows = [dict(r._mapping) for r in found]
    if rows:
        ws = WorkflowState
        states: dict[int, dict[str, dict[str, Any]]] = {}
        for s in conn.execute(
            select(ws.item_id, ws.step_name, ws.status, ws.attempt, ws.retry_floor).where(
                ws.batch_id == batch_id, ws.item_id.in_([r["id"] for r in rows])
            )
        ):
            states.setdefault(s.item_id, {})[s.step_name] = {
                "status": s.status,
                "attempt": s.attempt - s.retry_floor,
            }
        for r in rows:
            r["states"] = states.get(r["id"], {})
    return _page(rows, "id", size)


@dataclass(frozen=True, slots=True)
class ItemDetail:
    item: dict[str, Any]
    steps: list[dict[str, Any]]
    original: list[tuple[str, str]]


def _columns(model: Any) -> list[Any]:
    return list(model.__table__.c)


def batch_item_detail(conn: Connection, batch_id: int, item_id: int) -> ItemDetail | None:
    """One item: its fields, every step's state (or that it has not started), and the result
    each step wrote."""
    item = conn.execute(
        select(*_columns(BatchItem)).where(BatchItem.batch_id == batch_id, BatchItem.id == item_id)
    ).first()
    if item is None:
        return None
    ws = WorkflowState
    states = {
        r.step_name: r
        for r in conn.execute(
            select(*_columns(ws)).where(ws.batch_id == batch_id, ws.item_id == item_id)
        )
    }
    headers = conn.execute(select(Batch.headers).where(Batch.id == batch_id)).scalar_one()
    payloads: dict[str, Any] = dict(
        conn.execute(
            select(EnrichmentResult.step_name, EnrichmentResult.payload).where(
                EnrichmentResult.item_id == item_id
            )
        ).all()
    )
    steps: list[dict[str, Any]] = []
    for bstep in conn.execute(
        select(*_columns(BatchStep))
        .where(BatchStep.batch_id == batch_id)
        .order_by(BatchStep.position)
    ):
        state = states.get(bstep.step_name)
        meta = (state.meta or {}) if state is not None else {}
        steps.append(
            {
                "name": bstep.step_name,
                "type": bstep.type,
                "status": state.status if state is not None else None,
                "attempt": (state.attempt - state.retry_floor) if state is not None else 0,
                "max_attempts": bstep.max_attempts,
                "created_at": state.created_at if state is not None else None,
                "updated_at": state.updated_at if state is not None else None,
                "deadline": state.lease_until if state is not None else None,
                "not_before": state.not_before if state is not None else None,
                "error": state.error if state is not None else None,
                "skip_reason": meta.get("skip_reason"),
                "payload": payloads.get(bstep.step_name),
            }
        )
    fields = {f: getattr(item, f) for f in ("row_number", *LEAD_FIELDS, "industry")}
    original = list(zip(headers or [], item.original_data or [], strict=False))
    return ItemDetail({"id": item.id, **fields}, steps, original)


def parse_after(value: str | None) -> int | None:
    """The ``after`` query parameter of a page link."""
    return _int_filter(value, "after")
