"""initial schema

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from enrichflow.db.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "clients",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clients")),
        sa.UniqueConstraint("name", name=op.f("uq_clients_name")),
    )
    op.create_table(
        "workstreams",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workstreams")),
        sa.UniqueConstraint("slug", name=op.f("uq_workstreams_slug")),
    )
    op.create_table(
        "client_workflow_configs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("workflow_slug", sa.String(length=200), nullable=False),
        sa.Column("workstream_slug", sa.String(length=100), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_workflow_configs_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_workflow_configs")),
        sa.UniqueConstraint(
            "client_id",
            "workflow_slug",
            "workstream_slug",
            name=op.f("uq_client_workflow_configs_client_id_workflow_slug_workstream_slug"),
        ),
    )
    op.create_table(
        "enrichment_pipelines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("workstream_slug", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "steps",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_enrichment_pipelines_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrichment_pipelines")),
        sa.UniqueConstraint(
            "client_id",
            "workstream_slug",
            "name",
            name=op.f("uq_enrichment_pipelines_client_id_workstream_slug_name"),
        ),
    )
    op.create_table(
        "enrichment_registry",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("workstream_slug", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("handler", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("type IN ('SYNC', 'ASYNC')", name=op.f("ck_enrichment_registry_type")),
        sa.ForeignKeyConstraint(
            ["workstream_slug"],
            ["workstreams.slug"],
            name=op.f("fk_enrichment_registry_workstream_slug_workstreams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrichment_registry")),
        sa.UniqueConstraint(
            "slug", "workstream_slug", name=op.f("uq_enrichment_registry_slug_workstream_slug")
        ),
    )
    op.create_table(
        "raw_uploads",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("filename", sa.String(length=500), nullable=False),
        sa.Column("encoding", sa.String(length=40), nullable=False),
        sa.Column("delimiter", sa.String(length=4), nullable=False),
        sa.Column(
            "headers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "column_map",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "unmapped_columns",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("bad_row_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_raw_uploads_client_id_clients"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_uploads")),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "client_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("workstream_slug", sa.String(length=100), nullable=False),
        sa.Column("upload_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("pipeline_name", sa.String(length=200), nullable=True),
        sa.Column(
            "blueprint",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "column_map",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=30), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_batches_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["raw_uploads.id"],
            name=op.f("fk_batches_upload_id_raw_uploads"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batches_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_batches_status"), ["status"], unique=False)

    op.create_table(
        "raw_upload_errors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "upload_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["raw_uploads.id"],
            name=op.f("fk_raw_upload_errors_upload_id_raw_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_upload_errors")),
    )
    with op.batch_alter_table("raw_upload_errors", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_raw_upload_errors_upload_id_line_number"),
            ["upload_id", "line_number"],
            unique=False,
        )

    op.create_table(
        "raw_upload_rows",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "upload_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["raw_uploads.id"],
            name=op.f("fk_raw_upload_rows_upload_id_raw_uploads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_upload_rows")),
        sa.UniqueConstraint(
            "upload_id", "line_number", name=op.f("uq_raw_upload_rows_upload_id_line_number")
        ),
    )
    op.create_table(
        "batch_items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=True),
        sa.Column("company_name", sa.Text(), nullable=True),
        sa.Column("company_domain", sa.Text(), nullable=True),
        sa.Column("linkedin_url", sa.Text(), nullable=True),
        sa.Column("industry", sa.Text(), nullable=True),
        sa.Column("person_name", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column(
            "original_data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_batch_items_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_items")),
    )
    with op.batch_alter_table("batch_items", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_batch_items_batch_id_row_number"),
            ["batch_id", "row_number"],
            unique=False,
        )

    op.create_table(
        "batch_steps",
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step_name", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("handler", sa.String(length=100), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_ms", sa.BigInteger(), nullable=False),
        sa.Column("backoff_base_ms", sa.BigInteger(), nullable=False),
        sa.Column("backoff_max_ms", sa.BigInteger(), nullable=False),
        sa.Column("callback_timeout_ms", sa.BigInteger(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.CheckConstraint("type IN ('SYNC', 'ASYNC')", name=op.f("ck_batch_steps_type")),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_batch_steps_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "position", name=op.f("pk_batch_steps")),
        sa.UniqueConstraint(
            "batch_id", "step_name", name=op.f("uq_batch_steps_batch_id_step_name")
        ),
    )
    op.create_table(
        "enrichment_results",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("step_name", sa.String(length=200), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_enrichment_results_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["batch_items.id"],
            name=op.f("fk_enrichment_results_item_id_batch_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrichment_results")),
        sa.UniqueConstraint(
            "item_id", "step_name", name=op.f("uq_enrichment_results_item_id_step_name")
        ),
    )
    with op.batch_alter_table("enrichment_results", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enrichment_results_batch_id"), ["batch_id"], unique=False
        )

    op.create_table(
        "workflow_states",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("batch_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("step_name", sa.String(length=200), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("retry_floor", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.BigInteger(), nullable=False),
        sa.Column("lease_until", sa.BigInteger(), nullable=True),
        sa.Column("advanced_at", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "meta",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('PENDING', 'QUEUED', 'IN_PROGRESS', 'COMPLETED', 'SKIPPED', 'FAILED')",
            name=op.f("ck_workflow_states_status"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name=op.f("fk_workflow_states_batch_id_batches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["batch_items.id"],
            name=op.f("fk_workflow_states_item_id_batch_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_states")),
        sa.UniqueConstraint(
            "batch_id",
            "item_id",
            "step_name",
            name=op.f("uq_workflow_states_batch_id_item_id_step_name"),
        ),
    )
    with op.batch_alter_table("workflow_states", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_workflow_states_batch_id_status"), ["batch_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_workflow_states_claimable",
            ["batch_id", "step_index", "not_before", "id"],
            unique=False,
            postgresql_where=sa.text("status = 'PENDING'"),
            sqlite_where=sa.text("status = 'PENDING'"),
        )
        batch_op.create_index(
            "ix_workflow_states_leased",
            ["lease_until"],
            unique=False,
            postgresql_where=sa.text("status IN ('QUEUED', 'IN_PROGRESS')"),
            sqlite_where=sa.text("status IN ('QUEUED', 'IN_PROGRESS')"),
        )
        batch_op.create_index(
            "ix_workflow_states_unadvanced",
            ["id"],
            unique=False,
            postgresql_where=sa.text("status IN ('COMPLETED', 'SKIPPED') AND advanced_at IS NULL"),
            sqlite_where=sa.text("status IN ('COMPLETED', 'SKIPPED') AND advanced_at IS NULL"),
        )


def downgrade() -> None:

    with op.batch_alter_table("workflow_states", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_workflow_states_unadvanced",
            postgresql_where=sa.text("status IN ('COMPLETED', 'SKIPPED') AND advanced_at IS NULL"),
            sqlite_where=sa.text("status IN ('COMPLETED', 'SKIPPED') AND advanced_at IS NULL"),
        )
        batch_op.drop_index(
            "ix_workflow_states_leased",
            postgresql_where=sa.text("status IN ('QUEUED', 'IN_PROGRESS')"),
            sqlite_where=sa.text("status IN ('QUEUED', 'IN_PROGRESS')"),
        )
        batch_op.drop_index(
            "ix_workflow_states_claimable",
            postgresql_where=sa.text("status = 'PENDING'"),
            sqlite_where=sa.text("status = 'PENDING'"),
        )
        batch_op.drop_index(batch_op.f("ix_workflow_states_batch_id_status"))

    op.drop_table("workflow_states")
    with op.batch_alter_table("enrichment_results", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrichment_results_batch_id"))

    op.drop_table("enrichment_results")
    op.drop_table("batch_steps")
    with op.batch_alter_table("batch_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batch_items_batch_id_row_number"))

    op.drop_table("batch_items")
    op.drop_table("raw_upload_rows")
    with op.batch_alter_table("raw_upload_errors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_raw_upload_errors_upload_id_line_number"))

    op.drop_table("raw_upload_errors")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batches_status"))
        batch_op.drop_index(batch_op.f("ix_batches_client_id"))

    op.drop_table("batches")
    op.drop_table("raw_uploads")
    op.drop_table("enrichment_registry")
    op.drop_table("enrichment_pipelines")
    op.drop_table("client_workflow_configs")
    op.drop_table("workstreams")
    op.drop_table("clients")
