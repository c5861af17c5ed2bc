"""Clay credits: de-duplication on by default for the company workflow; the de-duplication key
of a state in an indexed column, so reuse across batches is one index range per chunk

Registry rows of the seeded company-level Clay workflow that set no ``dedupe_by`` get
``dedupe_by: company`` (the normalized company domain, LinkedIn page or name), as new
databases are seeded.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COMPANY_WORKFLOW = "enrich_company_via_waterfall_in_clay"
KEYED = sa.text("dedupe_key IS NOT NULL")


def upgrade() -> None:
    op.add_column("workflow_states", sa.Column("dedupe_key", sa.String(500), nullable=True))
    op.create_index(
        "ix_workflow_states_reuse",
        "workflow_states",
        ["step_name", "dedupe_key", "updated_at"],
        postgresql_where=KEYED,
        sqlite_where=KEYED,
    )
    registry = sa.table(
        "enrichment_registry",
        sa.column("id", sa.Integer()),
        sa.column("slug", sa.String()),
        sa.column("config", sa.JSON().with_variant(JSONB(), "postgresql")),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(registry.c.id, registry.c.config).where(registry.c.slug == COMPANY_WORKFLOW)
    ).all()
    for row_id, config in rows:
        if isinstance(config, dict) and "dedupe_by" not in config:
            conn.execute(
                registry.update()
                .where(registry.c.id == row_id)
                .values(config={**config, "dedupe_by": "company"})
            )


def downgrade() -> None:
    op.drop_index("ix_workflow_states_reuse", table_name="workflow_states")
    with op.batch_alter_table("workflow_states") as batch:
        batch.drop_column("dedupe_key")
