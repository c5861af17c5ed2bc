"""Batch controls: cancel, pause and the step circuit breaker, with the batch's history

``batches.paused_at`` (an operator paused the batch), ``batch_steps.paused_reason`` (the
circuit breaker paused that step), the ``batch_events`` history, and ``CANCELLED`` among the
statuses a workflow state may have. SQLite rebuilds ``workflow_states`` to change its CHECK
constraint (Alembic's batch mode copies the rows and recreates its partial indexes).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BEFORE = ("PENDING", "QUEUED", "IN_PROGRESS", "COMPLETED", "SKIPPED", "FAILED")
AFTER = (*BEFORE, "CANCELLED")


def _status_check(statuses: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(s) for s in statuses)})"


def _replace_status_check(statuses: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("workflow_states", recreate="always") as batch:
            batch.drop_constraint(op.f("ck_workflow_states_status"), type_="check")
            batch.create_check_constraint("status", _status_check(statuses))
        return
    op.drop_constraint(op.f("ck_workflow_states_status"), "workflow_states", type_="check")
    op.create_check_constraint("status", "workflow_states", _status_check(statuses))


def upgrade() -> None:
    op.add_column("batches", sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("batch_steps", sa.Column("paused_reason", sa.Text(), nullable=True))
    op.create_table(
        "batch_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("actor", sa.String(20), nullable=False),
        sa.Column("detail", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_batch_events_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_events")),
    )
    op.create_index(
        op.f("ix_batch_events_batch_id_id"), "batch_events", ["batch_id", "id"], unique=False
    )
    _replace_status_check(AFTER)


def downgrade() -> None:
    op.execute("UPDATE workflow_states SET status = 'FAILED' WHERE status = 'CANCELLED'")
    _replace_status_check(BEFORE)
    op.drop_index(op.f("ix_batch_events_batch_id_id"), table_name="batch_events")
    op.drop_table("batch_events")
    # A plain DROP COLUMN on both dialects: a batch rebuild of ``batches`` on SQLite would
    # drop the table and with it, by ON DELETE CASCADE, every item of every batch.
    op.execute("ALTER TABLE batch_steps DROP COLUMN paused_reason")
    op.execute("ALTER TABLE batches DROP COLUMN paused_at")
