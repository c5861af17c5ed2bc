"""Rejected rows keep their cells and the field at fault, so they can be downloaded and fixed

Rows rejected before this revision keep only their excerpt (``cells`` and ``field`` NULL).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("raw_upload_errors") as batch:
        batch.add_column(sa.Column("field", sa.Text(), nullable=True))
        batch.add_column(
            sa.Column("cells", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("raw_upload_errors") as batch:
        batch.drop_column("cells")
        batch.drop_column("field")
