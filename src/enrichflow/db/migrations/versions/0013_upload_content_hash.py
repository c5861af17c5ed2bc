"""Uploads carry the SHA-256 of their file, indexed, so that launching a file whose content
already ran names the earlier batches

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("raw_uploads", sa.Column("content_sha256", sa.String(64), nullable=True))
    op.create_index("ix_raw_uploads_content_sha256", "raw_uploads", ["content_sha256"])


def downgrade() -> None:
    op.drop_index("ix_raw_uploads_content_sha256", table_name="raw_uploads")
    # A plain DROP COLUMN (SQLite 3.35+), never a batch (copy-and-rename) operation: on SQLite,
    # dropping the old ``raw_uploads`` table would cascade to every row of every upload.
    op.execute("ALTER TABLE raw_uploads DROP COLUMN content_sha256")
