"""workflow_states.waiting_on: the de-duplication leader a follower waits on, indexed

With the leader's state id in ``meta`` (JSON), every look-up of a leader's followers read and
parsed the ``meta`` of every state of the step, which made a leader's callback, and the
conductor's follower settling (one look-up per de-duplication key), slow on large batches. The
column and its partial index (followers only) make each look-up an index
probe. Waiting states are copied over; finished ones need nothing.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

WAITING = sa.text("waiting_on IS NOT NULL")
STILL_WAITING = ("PENDING", "QUEUED", "IN_PROGRESS", "FAILED")


def upgrade() -> None:
    op.add_column("workflow_states", sa.Column("waiting_on", sa.BigInteger(), nullable=True))
    states = sa.table(
        "workflow_states",
        sa.column("status", sa.String()),
        sa.column("meta", sa.JSON().with_variant(JSONB(), "postgresql")),
        sa.column("waiting_on", sa.BigInteger()),
    )
    leader = states.c.meta["waiting_on"].as_integer()
    op.execute(
        states.update()
        .where(states.c.status.in_(STILL_WAITING), leader.is_not(None))
        .values(waiting_on=leader)
    )
    op.create_index(
        "ix_workflow_states_waiting",
        "workflow_states",
        ["batch_id", "status", "waiting_on"],
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )


def downgrade() -> None:
    op.drop_index("ix_workflow_states_waiting", table_name="workflow_states")
    with op.batch_alter_table("workflow_states") as batch:
        batch.drop_column("waiting_on")
