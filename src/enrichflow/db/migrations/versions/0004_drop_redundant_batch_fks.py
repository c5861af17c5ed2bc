"""drop the batch foreign keys of workflow_states and enrichment_results

Both tables also reference ``batch_items`` (ON DELETE CASCADE), and an item belongs to one
batch, so the ``batch_id`` references added no integrity: a batch's deletion already reaches
its states and results through its items. They cost a referential-integrity check per
inserted row, a noticeable share of a runner chunk's database time on Postgres, where every
check also takes a ``FOR KEY SHARE`` lock on the same ``batches`` row, which concurrent
runners turn into multixacts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("workflow_states", "enrichment_results")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_batch_id_batches", type_="foreignkey")


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.create_foreign_key(
                f"fk_{table}_batch_id_batches", "batches", ["batch_id"], ["id"], ondelete="CASCADE"
            )
