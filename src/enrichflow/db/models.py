"""Typed SQLAlchemy models: one definition serves SQLite and PostgreSQL.

State-machine timestamps (``workflow_states``, ``enrichment_results``) are epoch milliseconds in
BIGINT columns, as DBOS does for its system tables: deadline and backoff arithmetic is then plain
integer SQL on both dialects, inside the set-based statements that move thousands of states.
Admin tables use ordinary timezone-aware timestamps.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from enrichflow.states import Status, StepType

JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only aliases the rowid for exactly "INTEGER PRIMARY KEY".
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both dialects (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _status_check(column: str, values: type[Status] | type[StepType]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Workstream(Base):
    __tablename__ = "workstreams"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)


class EnrichmentRegistry(Base):
    """A workflow: what a step slug means in a workstream (type, handler, defaults)."""

    __tablename__ = "enrichment_registry"
    __table_args__ = (
        UniqueConstraint("slug", "workstream_slug"),
        CheckConstraint(_status_check("type", StepType), name="type"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    slug: Mapped[str] = mapped_column(String(200))
    workstream_slug: Mapped[str] = mapped_column(
        String(100), ForeignKey("workstreams.slug", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(10))
    handler: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClientWorkflowConfig(Base):
    """A client's settings (webhook URLs, tokens) for one workflow in one workstream."""

    __tablename__ = "client_workflow_configs"
    __table_args__ = (UniqueConstraint("client_id", "workflow_slug", "workstream_slug"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    workflow_slug: Mapped[str] = mapped_column(String(200))
    workstream_slug: Mapped[str] = mapped_column(String(100))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EnrichmentPipeline(Base):
    """A client's saved, named, ordered list of step slugs."""

    __tablename__ = "enrichment_pipelines"
    __table_args__ = (UniqueConstraint("client_id", "workstream_slug", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    workstream_slug: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    steps: Mapped[list[str]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RawUpload(Base):
    """One uploaded file: how it was read and what its columns mapped to."""

    __tablename__ = "raw_uploads"
    __table_args__ = (Index(None, "content_sha256"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(500))
    encoding: Mapped[str] = mapped_column(String(40))
    delimiter: Mapped[str] = mapped_column(String(4))
    headers: Mapped[list[str]] = mapped_column(JSONType)
    column_map: Mapped[dict[str, str]] = mapped_column(JSONType)
    """canonical field -> header it was read from."""
    unmapped_columns: Mapped[list[str]] = mapped_column(JSONType)
    row_count: Mapped[int] = mapped_column(Integer, default=0)
    bad_row_count: Mapped[int] = mapped_column(Integer, default=0)
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the file's bytes: a launch of the same file again is told of the batches
    that already ran over it (uploads stored before the column have none)."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RawUploadRow(Base):
    """One readable row of an upload: every cell, as a JSON array in the order of
    ``raw_uploads.headers`` (the header names are stored once per upload, not once per row)."""

    __tablename__ = "raw_upload_rows"
    __table_args__ = (UniqueConstraint("upload_id", "line_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("raw_uploads.id", ondelete="CASCADE"))
    line_number: Mapped[int] = mapped_column(Integer)
    data: Mapped[list[str]] = mapped_column(JSONType)


class RawUploadError(Base):
    """A row that could not be read, kept so it is reported and can be downloaded to fix,
    never silently dropped."""

    __tablename__ = "raw_upload_errors"
    __table_args__ = (Index(None, "upload_id", "line_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("raw_uploads.id", ondelete="CASCADE"))
    line_number: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text)
    field: Mapped[str | None] = mapped_column(Text)
    """The header of the field at fault, when one field is (oversize, undecodable)."""
    cells: Mapped[list[str] | None] = mapped_column(JSONType)
    """The row's cells as parsed; None when the line could not be split into cells."""


class Batch(Base):
    __tablename__ = "batches"
    __table_args__ = (Index(None, "client_id"), Index(None, "status"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    workstream_slug: Mapped[str] = mapped_column(String(100))
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("raw_uploads.id", ondelete="SET NULL"))
    pipeline_name: Mapped[str | None] = mapped_column(String(200))
    blueprint: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    """Snapshot of every step's registry row at launch, so later registry edits do not
    change a running batch."""
    column_map: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    headers: Mapped[list[str]] = mapped_column(JSONType, server_default=text("'[]'"))
    """The upload's header row, snapshotted like ``column_map``: it names the cells of every
    item's ``original_data``, also after the upload itself is deleted."""
    status: Mapped[str] = mapped_column(String(30))
    item_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    """Set while an operator has paused the batch: nothing of it is dispatched or sent."""


class BatchStep(Base):
    """The blueprint as rows: what the set-based conductor statements join against."""

    __tablename__ = "batch_steps"
    __table_args__ = (
        UniqueConstraint("batch_id", "step_name"),
        CheckConstraint(_status_check("type", StepType), name="type"),
    )

    batch_id: Mapped[int] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    step_name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(10))
    handler: Mapped[str] = mapped_column(String(100))
    max_attempts: Mapped[int] = mapped_column(Integer)
    lease_ms: Mapped[int] = mapped_column(BigInteger)
    backoff_base_ms: Mapped[int] = mapped_column(BigInteger)
    backoff_max_ms: Mapped[int] = mapped_column(BigInteger)
    callback_timeout_ms: Mapped[int] = mapped_column(BigInteger)
    concurrency: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    paused_reason: Mapped[str | None] = mapped_column(Text)
    """Why the circuit breaker paused this step of the batch (its sends kept failing); the
    step is not dispatched until the operator resumes the batch."""


class BatchEvent(Base):
    """The history of a batch's controls: who cancelled, paused, resumed or re-sent it, and
    when the circuit breaker tripped."""

    __tablename__ = "batch_events"
    __table_args__ = (Index(None, "batch_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    actor: Mapped[str] = mapped_column(String(20))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class BatchItem(Base):
    __tablename__ = "batch_items"
    __table_args__ = (Index(None, "batch_id", "row_number"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    row_number: Mapped[int | None] = mapped_column(Integer)
    company_name: Mapped[str | None] = mapped_column(Text)
    company_domain: Mapped[str | None] = mapped_column(Text)
    linkedin_url: Mapped[str | None] = mapped_column(Text)
    industry: Mapped[str | None] = mapped_column(Text)
    person_name: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    original_data: Mapped[list[str]] = mapped_column(JSONType)
    """Every cell of the item's row, in the order of ``batches.headers``."""


ERROR_CLASS_CHARS = 160
"""An error class keeps this many characters of the masked error text."""

_PENDING = text("status = 'PENDING'")
_LEASED = text("status IN ('QUEUED', 'IN_PROGRESS')")
_UNADVANCED = text("status IN ('COMPLETED', 'SKIPPED') AND advanced_at IS NULL")
_FAILED = text("status = 'FAILED'")
_WAITING = text("waiting_on IS NOT NULL")
_KEYED = text("dedupe_key IS NOT NULL")


class WorkflowState(Base):
    """One (item, step) pair of the state machine; only ``db.states`` changes its status."""

    __tablename__ = "workflow_states"
    __table_args__ = (
        UniqueConstraint("batch_id", "item_id", "step_name"),
        CheckConstraint(_status_check("status", Status), name="status"),
        # dispatcher: claim the runnable states of one step of one batch
        Index(
            "ix_workflow_states_claimable",
            "batch_id",
            "step_index",
            "not_before",
            "id",
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        ),
        # reaper: leases and callback deadlines that ran out
        Index(
            "ix_workflow_states_leased",
            "lease_until",
            postgresql_where=_LEASED,
            sqlite_where=_LEASED,
        ),
        # sequencer, roll-up: finished states whose next step does not exist yet (batch first,
        # or SQLite answers the roll-up's per-batch test by walking the whole batch)
        Index(
            "ix_workflow_states_unadvanced",
            "batch_id",
            "id",
            postgresql_where=_UNADVANCED,
            sqlite_where=_UNADVANCED,
        ),
        # roll-up: a batch that still has a state out with a runner or a callback; the batch
        # page: a step's oldest Clay wait and its overdue leases, as index ranges
        Index(
            "ix_workflow_states_leased_batch",
            "batch_id",
            "step_index",
            "status",
            "lease_until",
            postgresql_where=_LEASED,
            sqlite_where=_LEASED,
        ),
        # roll-up, retry, failure groups, a failure group's page: a batch's failed states by
        # step and error class
        Index(
            "ix_workflow_states_failed",
            "batch_id",
            "step_index",
            "error_class",
            "id",
            postgresql_where=_FAILED,
            sqlite_where=_FAILED,
        ),
        # the failed list's pages in state order, across steps
        Index(
            "ix_workflow_states_failed_id",
            "batch_id",
            "id",
            postgresql_where=_FAILED,
            sqlite_where=_FAILED,
        ),
        # de-duplication: a leader's followers, and the leaders a running batch waits on
        Index(
            "ix_workflow_states_waiting",
            "batch_id",
            "status",
            "waiting_on",
            postgresql_where=_WAITING,
            sqlite_where=_WAITING,
        ),
        # reuse across batches: a key's completed states of a workflow, newest last
        Index(
            "ix_workflow_states_reuse",
            "step_name",
            "dedupe_key",
            "updated_at",
            postgresql_where=_KEYED,
            sqlite_where=_KEYED,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(BigId)
    """The item's batch, denormalised for the conductor's indexes; no foreign key of its own
    (the item's cascades it, and a check per inserted state would slow every chunk)."""
    item_id: Mapped[int] = mapped_column(ForeignKey("batch_items.id", ondelete="CASCADE"))
    step_name: Mapped[str] = mapped_column(String(200))
    step_index: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    retry_floor: Mapped[int] = mapped_column(Integer, default=0)
    """``attempt`` at the last manual retry: the attempt budget counts from here, while
    ``attempt`` itself only grows (but for a claim given back unrun, under which nothing was
sent), so a stale runner's fenced write can never match again."""
    not_before: Mapped[int] = mapped_column(BigInteger)
    lease_until: Mapped[int | None] = mapped_column(BigInteger)
    advanced_at: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    error_class: Mapped[str | None] = mapped_column(String(ERROR_CLASS_CHARS))
    """A FAILED state's error with its ids and numbers masked (``db.states.errors``), stored
    when it fails, so the batch page groups failures without reading every error text."""
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    waiting_on: Mapped[int | None] = mapped_column(BigInteger)
    """De-duplication follower: the leader's state, whose result this one takes (set when the
    wait is recorded; see ``db.states.followers``)."""
    dedupe_key: Mapped[str | None] = mapped_column(String(500))
    """The de-duplication key of a ``dedupe_by`` step's state, so later batches find a result
    to reuse by an index range (``db.states.reuse``)."""
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class StateTally(Base):
    """How many of a batch's states a statement added to (or took from) one step, status and
    error class: on Postgres a trigger appends one row per group a statement of
    ``workflow_states`` changed, in the same transaction, and the conductor folds a batch's rows
    into one per group, so the batch page sums a few rows instead of counting a million states
    (``db.states.tallies``). SQLite counts the states themselves and leaves this table empty."""

    __tablename__ = "state_tallies"
    __table_args__ = (Index(None, "batch_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(BigInteger)
    """No foreign key: a batch's deletion cascades to its states, whose trigger still appends."""
    step_index: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    error_class: Mapped[str | None] = mapped_column(String(ERROR_CLASS_CHARS))
    states: Mapped[int] = mapped_column(BigInteger)
    retried: Mapped[int] = mapped_column(BigInteger)
    """Of ``states``, those with a manual retry behind them (``retry_floor > 0``)."""
    followers: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    """Of ``states``, those that follow a same-batch leader (``waiting_on`` set)."""
    reused: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    """Of ``states``, those that took an earlier batch's result (their meta's ``reused_from``)."""
    own: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    """Of ``states``, those that are neither: what a Clay step sends."""


class EnrichmentResult(Base):
    """A step's result, written exactly once per (item, step)."""

    __tablename__ = "enrichment_results"
    __table_args__ = (UniqueConstraint("item_id", "step_name"), Index(None, "batch_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(BigId)
    """Denormalised like ``WorkflowState.batch_id``: the item's foreign key cascades it."""
    item_id: Mapped[int] = mapped_column(ForeignKey("batch_items.id", ondelete="CASCADE"))
    step_name: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[int] = mapped_column(BigInteger)


# --------------------------------------------------------------------------- consolidated data


class Company(Base):
    """One company per registrable domain (else normalized name) within a batch."""

    __tablename__ = "companies"
    # (batch, name): the split's look-up of a domain company by name, per chunk
    __table_args__ = (UniqueConstraint("batch_id", "company_key"), Index(None, "batch_id", "name"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    company_key: Mapped[str] = mapped_column(String(300))
    """``domain:<registrable domain>`` or ``name:<match key>``."""
    name: Mapped[str | None] = mapped_column(Text)
    domain: Mapped[str | None] = mapped_column(Text)
    linkedin_url: Mapped[str | None] = mapped_column(Text)
    industry: Mapped[str | None] = mapped_column(Text)
    employees: Mapped[int | None] = mapped_column(BigInteger)
    annual_revenue: Mapped[int | None] = mapped_column(BigInteger)
    total_funding: Mapped[int | None] = mapped_column(BigInteger)
    city: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(Text)
    country_code: Mapped[str | None] = mapped_column(String(2))
    state_code: Mapped[str | None] = mapped_column(String(10))
    """ISO 3166-2 (``US-CA``)."""
    phone: Mapped[str | None] = mapped_column(Text)
    """The corporate line, E.164."""
    address: Mapped[str | None] = mapped_column(Text)
    sic_codes: Mapped[list[str] | None] = mapped_column(JSONType)
    naics_codes: Mapped[list[str] | None] = mapped_column(JSONType)
    facebook_url: Mapped[str | None] = mapped_column(Text)
    twitter_url: Mapped[str | None] = mapped_column(Text)
    latest_funding: Mapped[str | None] = mapped_column(Text)
    latest_funding_amount: Mapped[int | None] = mapped_column(BigInteger)
    last_raised_at: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Person(Base):
    """One person per batch item, linked to its company."""

    __tablename__ = "people"
    __table_args__ = (Index(None, "company_id"), Index(None, "batch_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(
        ForeignKey("batch_items.id", ondelete="CASCADE"), unique=True
    )
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    full_name: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    linkedin_url: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(Text)
    country_code: Mapped[str | None] = mapped_column(String(2))
    state_code: Mapped[str | None] = mapped_column(String(10))
    sub_departments: Mapped[list[str] | None] = mapped_column(JSONType)
    email_status: Mapped[str | None] = mapped_column(String(20))
    phone_type: Mapped[str | None] = mapped_column(String(20))
    phone_extension: Mapped[str | None] = mapped_column(String(20))
    direct_phone: Mapped[str | None] = mapped_column(Text)
    mobile_phone: Mapped[str | None] = mapped_column(Text)
    do_not_call: Mapped[bool | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FinalLead(Base):
    """The consolidated, exportable row of one item: normalized values and every result."""

    __tablename__ = "final_leads"
    __table_args__ = (Index(None, "batch_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(
        ForeignKey("batch_items.id", ondelete="CASCADE"), unique=True
    )
    first_name: Mapped[str | None] = mapped_column(Text)
    last_name: Mapped[str | None] = mapped_column(Text)
    full_name: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    seniority: Mapped[str | None] = mapped_column(String(20))
    department: Mapped[str | None] = mapped_column(String(40))
    email: Mapped[str | None] = mapped_column(Text)
    email_valid: Mapped[bool | None] = mapped_column()
    phone: Mapped[str | None] = mapped_column(Text)
    person_linkedin_url: Mapped[str | None] = mapped_column(Text)
    city: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str | None] = mapped_column(Text)
    country_code: Mapped[str | None] = mapped_column(String(2))
    company_name: Mapped[str | None] = mapped_column(Text)
    company_domain: Mapped[str | None] = mapped_column(Text)
    company_linkedin_url: Mapped[str | None] = mapped_column(Text)
    industry: Mapped[str | None] = mapped_column(Text)
    employees: Mapped[int | None] = mapped_column(BigInteger)
    annual_revenue: Mapped[int | None] = mapped_column(BigInteger)
    total_funding: Mapped[int | None] = mapped_column(BigInteger)
    company_city: Mapped[str | None] = mapped_column(Text)
    company_state: Mapped[str | None] = mapped_column(Text)
    company_country_code: Mapped[str | None] = mapped_column(String(2))
    keywords: Mapped[list[str] | None] = mapped_column(JSONType)
    technologies: Mapped[list[str] | None] = mapped_column(JSONType)
    apollo_contact_id: Mapped[str | None] = mapped_column(String(100))
    apollo_account_id: Mapped[str | None] = mapped_column(String(100))
    email_status: Mapped[str | None] = mapped_column(String(20))
    """verified, unverified, guessed, catch_all, invalid or unknown."""
    phone_type: Mapped[str | None] = mapped_column(String(20))
    """Which line ``phone`` is: direct, mobile, other, home or corporate."""
    phone_extension: Mapped[str | None] = mapped_column(String(20))
    direct_phone: Mapped[str | None] = mapped_column(Text)
    mobile_phone: Mapped[str | None] = mapped_column(Text)
    corporate_phone: Mapped[str | None] = mapped_column(Text)
    state_code: Mapped[str | None] = mapped_column(String(10))
    company_state_code: Mapped[str | None] = mapped_column(String(10))
    sub_departments: Mapped[list[str] | None] = mapped_column(JSONType)
    do_not_call: Mapped[bool | None] = mapped_column()
    company_address: Mapped[str | None] = mapped_column(Text)
    sic_codes: Mapped[list[str] | None] = mapped_column(JSONType)
    naics_codes: Mapped[list[str] | None] = mapped_column(JSONType)
    facebook_url: Mapped[str | None] = mapped_column(Text)
    twitter_url: Mapped[str | None] = mapped_column(Text)
    latest_funding: Mapped[str | None] = mapped_column(Text)
    latest_funding_amount: Mapped[int | None] = mapped_column(BigInteger)
    last_raised_at: Mapped[str | None] = mapped_column(Text)
    enrichment: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    """Every enrichment step's result, keyed by step slug."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PersonWorkHistory(Base):
    """A position from a person-enrichment result (company, title, start, end)."""

    __tablename__ = "person_work_history"
    __table_args__ = (Index(None, "item_id"), Index(None, "batch_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("batches.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("batch_items.id", ondelete="CASCADE"))
    source_step: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    company: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[str | None] = mapped_column(String(40))
    end_date: Mapped[str | None] = mapped_column(String(40))


# --------------------------------------------------------------------------- ASYNC bookkeeping


class WebhookSubmission(Base):
    """Submissions sent to one webhook URL (a Clay source accepts 50,000 in its lifetime)."""

    __tablename__ = "webhook_submissions"

    url_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 hex of the URL; the URL itself is a secret and is never stored here."""
    url_redacted: Mapped[str] = mapped_column(String(300), default="")
    submissions: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class StepDedupe(Base):
    """Company-level de-duplication: the first state with a key sends, the others wait on it."""

    __tablename__ = "step_dedupe"

    batch_id: Mapped[int] = mapped_column(
        ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    step_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(500), primary_key=True)
    leader_state_id: Mapped[int] = mapped_column(BigInteger)


# --------------------------------------------------------------------------- security


class InstanceSecret(Base):
    """A secret made once for every process that shares this database: the signing key when
    ``ENRICHFLOW_SECRET_KEY`` is unset (see :mod:`enrichflow.secret_key`)."""

    __tablename__ = "instance_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DashboardSession(Base):
    """A logged-in dashboard session: the signed cookie names it, and only this row makes it
    valid (see :mod:`enrichflow.db.dashboard_sessions`). Times are epoch milliseconds."""

    __tablename__ = "dashboard_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    """SHA-256 hex of the session id; the id itself lives only in the cookie."""
    password_tag: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
