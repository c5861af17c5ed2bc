"""What the dashboard pages and the JSON API do, as plain functions over an engine.

Both front ends call these, so a page and its API twin cannot drift apart. Errors are
:class:`~enrichflow.errors.ConfigError` (the request is wrong: 422) and
:class:`~enrichflow.errors.NotFoundError` (404). Configs leave this module redacted only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from enrichflow.api.client_config import (
    client_config_set,
    parse_assignments,
    redact_config,
)
from enrichflow.config import Settings
from enrichflow.db.engine import now_ms, reading
from enrichflow.db.models import (
    Batch,
    BatchItem,
    BatchStep,
    Client,
    ClientWorkflowConfig,
    EnrichmentPipeline,
    EnrichmentRegistry,
    RawUpload,
    RawUploadError,
    RawUploadRow,
    WorkflowState,
    Workstream,
)
from enrichflow.db.states import batch_counts, states_retry_failed, status_in
from enrichflow.errors import ConfigError, NotFoundError
from enrichflow.ingest.loader import IngestReport, ingest_csv
from enrichflow.launch import launch, resolve_steps
from enrichflow.seed import BUILTIN_PIPELINES
from enrichflow.states import BatchStatus, Status, StepType
from enrichflow.webhooks.ledger import sources_near_limit
from enrichflow.webhooks.sender import DEFAULT_MAX_SUBMISSIONS

STATUSES = [s.value for s in Status]
STATUS_COLORS = {
    "COMPLETED": "#2f9e6e",
    "SKIPPED": "#8fbfa8",
    "FAILED": "#d9534f",
    "IN_PROGRESS": "#3b7dd8",
    "QUEUED": "#8ab4ec",
    "PENDING": "#c9ced6",
}
STUCK_PENDING_MS = 5 * 60 * 1000
SLUG_RE = re.compile(r"^[a-z][a-z0-9_]{1,99}$")
NAME_MAX = 200


def _clean_name(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ConfigError(f"the {what} must not be empty")
    if len(value) > NAME_MAX:
        raise ConfigError(f"the {what} must be at most {NAME_MAX} characters")
    if any(ord(c) < 32 for c in value):
        raise ConfigError(f"the {what} must not contain control characters")
    return value


# --------------------------------------------------------------------------- clients


def clients_list(engine: Engine) -> list[dict[str, Any]]:
    batches = select(Batch.client_id, func.count().label("n")).group_by(Batch.client_id).subquery()
    with reading(engine) as conn:
        rows = conn.execute(
            select(Client.id, Client.name, Client.created_at, batches.c.n)
            .outerjoin(batches, batches.c.client_id == Client.id)
            .order_by(Client.name)
        )
        return [
            {"id": r.id, "name": r.name, "created_at": r.created_at, "batch_count": r.n or 0}
            for r in rows
        ]


def client_create(engine: Engine, name: str) -> dict[str, Any]:
    name = _clean_name(name, "client name")
    try:
        with engine.begin() as conn:
            if conn.execute(select(Client.id).where(Client.name == name)).first() is not None:
                raise ConfigError(f"a client named {name!r} already exists")
            row = conn.execute(
                insert(Client).values(name=name).returning(Client.id, Client.created_at)
            ).one()
    except IntegrityError:
        raise ConfigError(f"a client named {name!r} already exists") from None
    return {"id": row.id, "name": name, "created_at": row.created_at, "batch_count": 0}


def client_name(engine: Engine, client_id: int) -> str:
    with reading(engine) as conn:
        name = conn.execute(select(Client.name).where(Client.id == client_id)).scalar()
    if name is None:
        raise NotFoundError(f"client {client_id} does not exist")
    return str(name)


def client_detail(engine: Engine, client_id: int) -> dict[str, Any]:
    name = client_name(engine, client_id)
    return {
        "id": client_id,
        "name": name,
        "pipelines": pipelines_list(engine, client_id),
        "configs": configs_list(engine, client_id),
        "uploads": uploads_list(engine, client_id),
        "batches": batches_list(engine, client_id),
    }


# --------------------------------------------------------------------------- registry


def workstreams_list(engine: Engine) -> list[dict[str, Any]]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(Workstream.slug, Workstream.name, Workstream.description).order_by(
                Workstream.slug
            )
        )
        return [{"slug": r.slug, "name": r.name, "description": r.description} for r in rows]


def webhook_sources_near_limit(engine: Engine) -> list[dict[str, Any]]:
    """Clay webhook sources past the warning mark of their lifetime submission limit."""
    with reading(engine) as conn:
        return [
            {
                "url_redacted": s.url_redacted,
                "submissions": s.submissions,
                "limit": DEFAULT_MAX_SUBMISSIONS,
            }
            for s in sources_near_limit(conn)
        ]


def workflows_list(engine: Engine, workstream: str | None = None) -> list[dict[str, Any]]:
    query = select(EnrichmentRegistry).order_by(
        EnrichmentRegistry.workstream_slug, EnrichmentRegistry.id
    )
    if workstream is not None:
        query = query.where(EnrichmentRegistry.workstream_slug == workstream)
    with reading(engine) as conn:
        return [
            {
                "id": r.id,
                "slug": r.slug,
                "workstream": r.workstream_slug,
                "name": r.name,
                "type": r.type,
                "handler": r.handler,
                "description": r.description,
                "config": redact_config(dict(r.config or {})),
            }
            for r in conn.execute(query)
        ]


def workflow_create(
    engine: Engine,
    slug: str,
    workstream: str,
    name: str,
    description: str | None,
    config: dict[str, Any],
) -> dict[str, Any]:
    """A new ASYNC ``webhook`` workflow (a Clay table): data only, usable at once."""
    slug = slug.strip()
    if not SLUG_RE.match(slug):
        raise ConfigError(
            "the slug must start with a letter and hold only lowercase letters, digits and _ "
            "(2 to 100 characters)"
        )
    name = _clean_name(name, "workflow name")
    description = (description or "").strip() or None
    if description is not None and "\x00" in description:
        raise ConfigError("the description must not contain NUL characters")
    for key, value in config.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"config {key!r} must be a positive number")
    with engine.begin() as conn:
        if conn.execute(select(Workstream.id).where(Workstream.slug == workstream)).first() is None:
            raise ConfigError(f"unknown workstream {workstream!r}")
        exists = conn.execute(
            select(EnrichmentRegistry.id).where(
                EnrichmentRegistry.slug == slug, EnrichmentRegistry.workstream_slug == workstream
            )
        ).first()
        if exists is not None:
            raise ConfigError(f"workflow {slug!r} already exists in {workstream!r}")
        new_id = conn.execute(
            insert(EnrichmentRegistry)
            .values(
                slug=slug,
                workstream_slug=workstream,
                name=name,
                type=StepType.ASYNC.value,
                handler="webhook",
                description=description,
                config=config,
            )
            .returning(EnrichmentRegistry.id)
        ).scalar_one()
    return {
        "id": new_id,
        "slug": slug,
        "workstream": workstream,
        "name": name,
        "type": StepType.ASYNC.value,
        "handler": "webhook",
        "description": description,
        "config": redact_config(config),
    }


# --------------------------------------------------------------------------- pipelines


def pipelines_list(engine: Engine, client_id: int | None = None) -> list[dict[str, Any]]:
    query = (
        select(EnrichmentPipeline, Client.name.label("client_name"))
        .join(Client, Client.id == EnrichmentPipeline.client_id)
        .order_by(EnrichmentPipeline.workstream_slug, EnrichmentPipeline.name)
    )
    if client_id is not None:
        query = query.where(EnrichmentPipeline.client_id == client_id)
    with reading(engine) as conn:
        return [
            {
                "id": r.id,
                "client_id": r.client_id,
                "workstream": r.workstream_slug,
                "name": r.name,
                "steps": list(r.steps or []),
            }
            for r in conn.execute(query)
        ]


def pipeline_get(engine: Engine, pipeline_id: int) -> dict[str, Any]:
    with reading(engine) as conn:
        r = conn.execute(
            select(EnrichmentPipeline).where(EnrichmentPipeline.id == pipeline_id)
        ).first()
    if r is None:
        raise NotFoundError(f"pipeline {pipeline_id} does not exist")
    return {
        "id": r.id,
        "client_id": r.client_id,
        "workstream": r.workstream_slug,
        "name": r.name,
        "steps": list(r.steps or []),
    }


def pipeline_validate(engine: Engine, client_id: int, workstream: str, steps: list[str]) -> None:
    """:class:`ConfigError` naming what is wrong with ``steps`` (launch's own checks)."""
    name = client_name(engine, client_id)
    with reading(engine) as conn:
        resolve_steps(conn, name, workstream, None, steps)


def pipeline_save(
    engine: Engine, client_id: int, workstream: str, name: str, steps: list[str]
) -> dict[str, Any]:
    """Create or replace the client's pipeline ``name`` in ``workstream``."""
    name = _clean_name(name, "pipeline name")
    pipeline_validate(engine, client_id, workstream, steps)
    with engine.begin() as conn:
        found = conn.execute(
            select(EnrichmentPipeline.id).where(
                EnrichmentPipeline.client_id == client_id,
                EnrichmentPipeline.workstream_slug == workstream,
                EnrichmentPipeline.name == name,
            )
        ).scalar()
        if found is not None:
            conn.execute(
                update(EnrichmentPipeline)
                .where(EnrichmentPipeline.id == found)
                .values(steps=list(steps))
            )
            pipeline_id = int(found)
        else:
            pipeline_id = int(
                conn.execute(
                    insert(EnrichmentPipeline)
                    .values(
                        client_id=client_id,
                        workstream_slug=workstream,
                        name=name,
                        steps=list(steps),
                    )
                    .returning(EnrichmentPipeline.id)
                ).scalar_one()
            )
    return pipeline_get(engine, pipeline_id)


def pipeline_delete(engine: Engine, pipeline_id: int) -> None:
    with engine.begin() as conn:
        gone = conn.execute(
            delete(EnrichmentPipeline).where(EnrichmentPipeline.id == pipeline_id)
        ).rowcount
    if not gone:
        raise NotFoundError(f"pipeline {pipeline_id} does not exist")


def pipeline_choices(engine: Engine, client_id: int, workstream: str) -> list[dict[str, Any]]:
    """Saved pipelines of the client, then the built-in ones, for a launch."""
    saved = [
        {"name": p["name"], "steps": p["steps"], "builtin": False}
        for p in pipelines_list(engine, client_id)
        if p["workstream"] == workstream
    ]
    builtin = [
        {"name": name, "steps": steps, "builtin": True}
        for name, steps in BUILTIN_PIPELINES.get(workstream, {}).items()
        if name not in {p["name"] for p in saved}
    ]
    return saved + builtin


# --------------------------------------------------------------------------- configs


def configs_list(engine: Engine, client_id: int) -> list[dict[str, Any]]:
    """Every config of the client, redacted."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(ClientWorkflowConfig)
            .where(ClientWorkflowConfig.client_id == client_id)
            .order_by(ClientWorkflowConfig.workstream_slug, ClientWorkflowConfig.workflow_slug)
        )
        return [
            {
                "client_id": r.client_id,
                "workflow": r.workflow_slug,
                "workstream": r.workstream_slug,
                "config": redact_config(dict(r.config or {})),
                "updated_at": r.updated_at,
            }
            for r in rows
        ]


def config_set(
    engine: Engine, client_id: int, workflow: str, workstream: str, assignments: list[str]
) -> dict[str, Any]:
    """Apply ``KEY=VALUE`` / ``KEY+=VALUE`` / ``KEY=`` lines; the redacted result."""
    name = client_name(engine, client_id)
    changes = parse_assignments([a.strip() for a in assignments if a.strip()])
    with engine.begin() as conn:
        stored = client_config_set(conn, name, workflow, workstream, changes)
    return {
        "client_id": client_id,
        "workflow": workflow,
        "workstream": workstream,
        "config": redact_config(stored),
    }


# --------------------------------------------------------------------------- uploads


def upload_ingest(engine: Engine, client_id: int, path: Path) -> IngestReport:
    client_name(engine, client_id)
    return ingest_csv(engine, path, client_id=client_id)


def uploads_list(engine: Engine, client_id: int | None = None) -> list[dict[str, Any]]:
    query = select(RawUpload).order_by(RawUpload.id.desc()).limit(200)
    if client_id is not None:
        query = query.where(RawUpload.client_id == client_id)
    with reading(engine) as conn:
        return [_upload_summary(r) for r in conn.execute(query)]


def _upload_summary(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "client_id": r.client_id,
        "filename": r.filename,
        "encoding": r.encoding,
        "delimiter": r.delimiter,
        "row_count": r.row_count,
        "bad_row_count": r.bad_row_count,
        "created_at": r.created_at,
    }


def upload_detail(engine: Engine, upload_id: int, preview: int = 10) -> dict[str, Any]:
    with reading(engine) as conn:
        r = conn.execute(select(RawUpload).where(RawUpload.id == upload_id)).first()
        if r is None:
            raise NotFoundError(f"upload {upload_id} does not exist")
        rows = conn.execute(
            select(RawUploadRow.line_number, RawUploadRow.data)
            .where(RawUploadRow.upload_id == upload_id)
            .order_by(RawUploadRow.line_number)
            .limit(preview)
        )
        errors = conn.execute(
            select(RawUploadError.line_number, RawUploadError.reason, RawUploadError.excerpt)
            .where(RawUploadError.upload_id == upload_id)
            .order_by(RawUploadError.line_number)
            .limit(500)
        )
        headers = list(r.headers or [])
        return {
            **_upload_summary(r),
            "headers": headers,
            "column_map": dict(r.column_map or {}),
            "unmapped_columns": list(r.unmapped_columns or []),
            "first_rows": [{"line": line, "values": list(cells)} for line, cells in rows],
            "bad_rows": [
                {"line": line, "reason": reason, "excerpt": excerpt}
                for line, reason, excerpt in errors
            ],
        }


# --------------------------------------------------------------------------- batches


def batch_launch(
    engine: Engine,
    upload_id: int,
    workstream: str,
    pipeline: str,
    client_id: int | None = None,
    settings: Settings | None = None,
) -> int:
    """Launch after the preflight, checked against the serving app's ``settings``."""
    detail = upload_detail(engine, upload_id, preview=0)
    owner = detail["client_id"] if client_id is None else client_id
    if owner is None:
        raise ConfigError("the upload belongs to no client; pick one")
    if detail["row_count"] == 0:
        raise ConfigError("the upload has no readable rows")
    return launch(
        engine,
        client_name(engine, owner),
        workstream,
        upload_id,
        pipeline=pipeline,
        settings=settings,
    )


def batches_list(engine: Engine, client_id: int | None = None) -> list[dict[str, Any]]:
    query = (
        select(Batch, Client.name.label("client_name"))
        .join(Client, Client.id == Batch.client_id)
        .order_by(Batch.id.desc())
        .limit(200)
    )
    if client_id is not None:
        query = query.where(Batch.client_id == client_id)
    with reading(engine) as conn:
        return [_batch_summary(r) for r in conn.execute(query)]


def _batch_summary(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "client_id": r.client_id,
        "client_name": r.client_name,
        "workstream": r.workstream_slug,
        "upload_id": r.upload_id,
        "pipeline_name": r.pipeline_name,
        "status": r.status,
        "item_count": r.item_count,
        "created_at": r.created_at,
        "finished_at": r.finished_at,
    }


@dataclass
class StepRow:
    name: str
    type: str
    counts: dict[str, int]
    total: int
    segments: list[dict[str, Any]] = field(default_factory=list)


def _segments(counts: dict[str, int], expected: int, width: float = 100.0) -> list[dict[str, Any]]:
    """Stacked-bar rectangles (x, width in percent of the bar) for one step."""
    scale = width / max(expected, sum(counts.values()), 1)
    out: list[dict[str, Any]] = []
    x = 0.0
    for status in ("COMPLETED", "SKIPPED", "FAILED", "IN_PROGRESS", "QUEUED", "PENDING"):
        n = counts.get(status, 0)
        if n:
            w = n * scale
            out.append(
                {"status": status, "count": n, "x": round(x, 3), "w": round(w, 3)}
                | {"color": STATUS_COLORS[status]}
            )
            x += w
    return out


def batch_detail(engine: Engine, batch_id: int, now: int | None = None) -> dict[str, Any]:
    now = now_ms() if now is None else now
    ws = WorkflowState
    with reading(engine) as conn:
        r = conn.execute(
            select(Batch, Client.name.label("client_name"))
            .join(Client, Client.id == Batch.client_id)
            .where(Batch.id == batch_id)
        ).first()
        if r is None:
            raise NotFoundError(f"batch {batch_id} does not exist")
        steps = conn.execute(
            select(BatchStep.step_name, BatchStep.type)
            .where(BatchStep.batch_id == batch_id)
            .order_by(BatchStep.position)
        ).all()
        counts = batch_counts(conn, batch_id)
        last_step = steps[-1].step_name if steps else ""
        done_items = conn.execute(
            select(func.count(func.distinct(ws.item_id))).where(
                ws.batch_id == batch_id,
                or_(
                    ws.status == Status.FAILED.value,
                    and_(
                        ws.step_name == last_step,
                        ws.status.in_([Status.COMPLETED.value, Status.SKIPPED.value]),
                    ),
                ),
            )
        ).scalar_one()
        first_ms, last_ms = conn.execute(
            select(func.min(ws.created_at), func.max(ws.updated_at)).where(
                ws.batch_id == batch_id,
                ws.status.in_([Status.COMPLETED.value, Status.SKIPPED.value]),
            )
        ).one()
        failed = conn.execute(
            select(
                ws.id,
                ws.item_id,
                ws.step_name,
                ws.attempt,
                ws.error,
                BatchItem.row_number,
                BatchItem.person_name,
                BatchItem.company_name,
            )
            .join(BatchItem, BatchItem.id == ws.item_id)
            .where(ws.batch_id == batch_id, status_in(Status.FAILED))
            .order_by(ws.item_id, ws.step_index)
            .limit(200)
        ).all()
        stuck = conn.execute(
            select(
                ws.id,
                ws.item_id,
                ws.step_name,
                ws.status,
                ws.attempt,
                ws.lease_until,
                ws.not_before,
            )
            .where(
                ws.batch_id == batch_id,
                or_(
                    and_(
                        ws.status.in_([Status.QUEUED.value, Status.IN_PROGRESS.value]),
                        ws.lease_until < now,
                    ),
                    and_(ws.status == Status.PENDING.value, ws.not_before < now - STUCK_PENDING_MS),
                ),
            )
            .order_by(ws.id)
            .limit(100)
        ).all()
    items = int(r.item_count or 0)
    rows: list[StepRow] = []
    for s in steps:
        c = counts.get(s.step_name, {})
        row = StepRow(s.step_name, s.type, {k: c.get(k, 0) for k in STATUSES}, sum(c.values()))
        row.segments = _segments(c, items)
        rows.append(row)
    finished_states = sum(
        c.get(Status.COMPLETED.value, 0) + c.get(Status.SKIPPED.value, 0) for c in counts.values()
    )
    running = r.status == BatchStatus.RUNNING.value
    progress = 100.0 if not running else (100.0 * done_items / items if items else 0.0)
    rate = None
    if finished_states and first_ms is not None and last_ms is not None:
        span = max((now if running else last_ms) - first_ms, 1) / 1000.0
        rate = finished_states / span
    eta = None
    if running and rate:
        remaining = max(items * len(steps) - finished_states, 0)
        eta = remaining / rate
    return {
        **_batch_summary(r),
        "progress": round(progress, 1),
        "done_items": int(done_items),
        "steps": [
            {
                "name": s.name,
                "type": s.type,
                "counts": s.counts,
                "total": s.total,
                "segments": s.segments,
            }
            for s in rows
        ],
        "throughput_per_second": None if rate is None else round(rate, 2),
        "eta_seconds": None if eta is None else round(eta, 1),
        "failed": [
            {
                "state_id": f.id,
                "item_id": f.item_id,
                "row_number": f.row_number,
                "step": f.step_name,
                "attempt": f.attempt,
                "error": f.error or "",
                "label": f.person_name or f.company_name or "",
            }
            for f in failed
        ],
        "stuck": [
            {
                "state_id": s.id,
                "item_id": s.item_id,
                "step": s.step_name,
                "status": s.status,
                "attempt": s.attempt,
                "overdue_seconds": round(
                    (
                        now
                        - (
                            s.lease_until
                            if s.status != Status.PENDING.value
                            else s.not_before + STUCK_PENDING_MS
                        )
                    )
                    / 1000.0,
                    1,
                ),
            }
            for s in stuck
        ],
    }


def batch_retry(
    engine: Engine, batch_id: int, step: str | None = None, item_id: int | None = None
) -> int:
    """FAILED -> PENDING (all, one step, or one item); the number of states moved."""
    with engine.begin() as conn:
        if conn.execute(select(Batch.id).where(Batch.id == batch_id)).first() is None:
            raise NotFoundError(f"batch {batch_id} does not exist")
        return states_retry_failed(conn, batch_id, now_ms(), step or None, item_id)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, sec = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


# --------------------------------------------------------------------------- files


SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str | None) -> str:
    """A plain file name for the stored upload (no directories, no odd characters)."""
    base = Path(name or "upload.csv").name
    cleaned = SAFE_FILENAME.sub("_", base).strip("._") or "upload"
    return cleaned[:120]


async def save_upload(upload: Any, directory: Path, limit: int) -> Path:
    """Stream ``upload`` (a Starlette ``UploadFile``) into ``directory``, at most ``limit``
    bytes; :class:`ConfigError` when it is larger. The file is only ever read as CSV."""
    target = directory / safe_filename(upload.filename)
    size = 0
    with target.open("wb") as out:
        while chunk := await upload.read(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise ConfigError(f"the file is larger than the limit of {limit} bytes")
            out.write(chunk)
    if size == 0:
        raise ConfigError("the file is empty")
    return target
