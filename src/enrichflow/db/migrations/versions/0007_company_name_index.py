"""index companies by (batch_id, name)

The split looks up, for each chunk, the companies of the batch that have a domain and one of the
chunk's company names (rows without a domain join them). Without an index that read every
company of the batch once per chunk, which is quadratic over a large upload.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_companies_batch_id_name", "companies", ["batch_id", "name"])


def downgrade() -> None:
    op.drop_index("ix_companies_batch_id_name", table_name="companies")
