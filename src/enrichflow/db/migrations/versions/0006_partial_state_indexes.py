"""replace the (batch_id, status) index of workflow_states with two partial ones; batch first
in the unadvanced one

Every status change of every state moved an entry of ``(batch_id, status)``: an index delete
and insert on each claim and each finish, one more insert per new state, a sizeable share of
a step execution's database time on SQLite. What read it only ever asks for states that are
out with a runner or a callback (the roll-up) or FAILED (the roll-up, ``retry``, the failed
lists): two partial indexes hold just those, and the PENDING and finished states that make up
most of a batch never enter them (docs/architecture.md).

The partial index of unadvanced states starts with ``batch_id``: the roll-up asks it per
batch, and SQLite, offered ``(id)`` there, preferred walking the whole batch through the
unique key.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LEASED = sa.text("status IN ('QUEUED', 'IN_PROGRESS')")
FAILED = sa.text("status = 'FAILED'")
UNADVANCED = sa.text("status IN ('COMPLETED', 'SKIPPED') AND advanced_at IS NULL")


def _unadvanced(columns: list[str]) -> None:
    op.drop_index("ix_workflow_states_unadvanced", table_name="workflow_states")
    op.create_index(
        "ix_workflow_states_unadvanced",
        "workflow_states",
        columns,
        postgresql_where=UNADVANCED,
        sqlite_where=UNADVANCED,
    )


def upgrade() -> None:
    op.create_index(
        "ix_workflow_states_leased_batch",
        "workflow_states",
        ["batch_id"],
        postgresql_where=LEASED,
        sqlite_where=LEASED,
    )
    op.create_index(
        "ix_workflow_states_failed",
        "workflow_states",
        ["batch_id", "step_index"],
        postgresql_where=FAILED,
        sqlite_where=FAILED,
    )
    op.drop_index("ix_workflow_states_batch_id_status", table_name="workflow_states")
    _unadvanced(["batch_id", "id"])


def downgrade() -> None:
    _unadvanced(["id"])
    op.create_index("ix_workflow_states_batch_id_status", "workflow_states", ["batch_id", "status"])
    op.drop_index("ix_workflow_states_failed", table_name="workflow_states")
    op.drop_index("ix_workflow_states_leased_batch", table_name="workflow_states")
