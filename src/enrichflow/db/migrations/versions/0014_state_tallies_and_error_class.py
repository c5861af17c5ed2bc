"""state tallies and stored error classes: the batch page of a big batch without counting it

Counting a million-item batch's states by step and status took seconds per page view, and
grouping its failures masked every error text with regular expressions each time. A FAILED
state now stores its error class (``workflow_states.error_class``, written by the statement
that fails it), the failed-states index holds it, and on Postgres a statement trigger appends
to ``state_tallies`` how many states each statement added to or took from each (step, status,
error class) of a batch, so the page sums a few rows (``db.states.tallies``). The trigger
only adds up the rows a statement changed; it decides nothing. SQLite, whose batches are
smaller and whose single writer would serialise the runners on any extra write, keeps
counting the states themselves and has no trigger.

The leased-states index gains (step, status, lease_until), so a step's oldest Clay wait and
its overdue leases are index ranges; a second failed-states index pages the failed list in
state order.

Existing failed states get their class (the masks of ``db.states.errors`` as they are now);
existing states are tallied once.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

FAILED = sa.text("status = 'FAILED'")
LEASED = sa.text("status IN ('QUEUED', 'IN_PROGRESS')")
CLASS_CHARS = 160
NO_ERROR = "(no error text)"
# A copy, so this migration classifies as it did when written whatever the code says later.
MASKS = (
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<id>"),
    (r"[0-9a-fA-F]{16,}", "<id>"),
    (r"(?<!HTTP )(?<!status )(?<![0-9])[0-9]+", "<n>"),
)

TALLY_FUNCTION = """
CREATE FUNCTION state_tallies_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO state_tallies (batch_id, step_index, status, error_class, states, retried)
        SELECT batch_id, step_index, status,
               CASE WHEN status = 'FAILED' THEN error_class END,
               count(*), count(*) FILTER (WHERE retry_floor > 0)
        FROM new_states
        GROUP BY 1, 2, 3, 4;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO state_tallies (batch_id, step_index, status, error_class, states, retried)
        SELECT batch_id, step_index, status,
               CASE WHEN status = 'FAILED' THEN error_class END,
               -count(*), -count(*) FILTER (WHERE retry_floor > 0)
        FROM old_states
        GROUP BY 1, 2, 3, 4;
    ELSE
        INSERT INTO state_tallies (batch_id, step_index, status, error_class, states, retried)
        SELECT batch_id, step_index, status, klass, sum(n), sum(r)
        FROM (
            SELECT batch_id, step_index, status,
                   CASE WHEN status = 'FAILED' THEN error_class END AS klass,
                   1 AS n, CASE WHEN retry_floor > 0 THEN 1 ELSE 0 END AS r
            FROM new_states
            UNION ALL
            SELECT batch_id, step_index, status,
                   CASE WHEN status = 'FAILED' THEN error_class END,
                   -1, CASE WHEN retry_floor > 0 THEN -1 ELSE 0 END
            FROM old_states
        ) AS moved
        GROUP BY 1, 2, 3, 4
        HAVING sum(n) <> 0 OR sum(r) <> 0;
    END IF;
    RETURN NULL;
END
$$
"""
TRIGGERS = {
    "state_tallies_on_insert": "AFTER INSERT ON workflow_states "
    "REFERENCING NEW TABLE AS new_states",
    "state_tallies_on_update": "AFTER UPDATE ON workflow_states "
    "REFERENCING OLD TABLE AS old_states NEW TABLE AS new_states",
    "state_tallies_on_delete": "AFTER DELETE ON workflow_states "
    "REFERENCING OLD TABLE AS old_states",
}
TALLY_EXISTING = """
INSERT INTO state_tallies (batch_id, step_index, status, error_class, states, retried)
SELECT batch_id, step_index, status, CASE WHEN status = 'FAILED' THEN error_class END,
       count(*), count(*) FILTER (WHERE retry_floor > 0)
FROM workflow_states
GROUP BY 1, 2, 3, 4
"""


def _classify_failed(bind: sa.Connection) -> None:
    states = sa.table(
        "workflow_states",
        sa.column("id", sa.BigInteger()),
        sa.column("status", sa.String()),
        sa.column("error", sa.Text()),
        sa.column("error_class", sa.String()),
    )
    failed = states.c.status == "FAILED"
    if bind.dialect.name == "postgresql":
        masked: sa.ColumnElement[str] = states.c.error
        for pattern, mask in MASKS:
            masked = sa.func.regexp_replace(masked, pattern, mask, "g")
        klass = sa.func.coalesce(sa.func.nullif(sa.func.left(masked, CLASS_CHARS), ""), NO_ERROR)
        bind.execute(states.update().where(failed).values(error_class=klass))
        return
    compiled = [(re.compile(pattern), mask) for pattern, mask in MASKS]
    rows = []
    for state_id, error in bind.execute(sa.select(states.c.id, states.c.error).where(failed)):
        text = error or ""
        for regex, mask in compiled:
            text = regex.sub(mask, text)
        rows.append({"sid": state_id, "klass": text[:CLASS_CHARS] or NO_ERROR})
    if rows:
        bind.execute(
            states.update()
            .where(states.c.id == sa.bindparam("sid"))
            .values(error_class=sa.bindparam("klass")),
            rows,
        )


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column(
        "workflow_states", sa.Column("error_class", sa.String(CLASS_CHARS), nullable=True)
    )
    _classify_failed(bind)
    op.drop_index("ix_workflow_states_failed", table_name="workflow_states")
    op.create_index(
        "ix_workflow_states_failed",
        "workflow_states",
        ["batch_id", "step_index", "error_class", "id"],
        postgresql_where=FAILED,
        sqlite_where=FAILED,
    )
    op.create_index(
        "ix_workflow_states_failed_id",
        "workflow_states",
        ["batch_id", "id"],
        postgresql_where=FAILED,
        sqlite_where=FAILED,
    )
    op.drop_index("ix_workflow_states_leased_batch", table_name="workflow_states")
    op.create_index(
        "ix_workflow_states_leased_batch",
        "workflow_states",
        ["batch_id", "step_index", "status", "lease_until"],
        postgresql_where=LEASED,
        sqlite_where=LEASED,
    )
    op.create_table(
        "state_tallies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error_class", sa.String(CLASS_CHARS), nullable=True),
        sa.Column("states", sa.BigInteger(), nullable=False),
        sa.Column("retried", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_state_tallies")),
    )
    op.create_index("ix_state_tallies_batch_id", "state_tallies", ["batch_id"])
    if bind.dialect.name != "postgresql":
        return
    op.execute(TALLY_EXISTING)
    op.execute(TALLY_FUNCTION)
    for name, when in TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when} FOR EACH STATEMENT EXECUTE FUNCTION state_tallies_add()"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for name in TRIGGERS:
            op.execute(f"DROP TRIGGER {name} ON workflow_states")
        op.execute("DROP FUNCTION state_tallies_add()")
    op.drop_index("ix_state_tallies_batch_id", table_name="state_tallies")
    op.drop_table("state_tallies")
    op.drop_index("ix_workflow_states_leased_batch", table_name="workflow_states")
    op.create_index(
        "ix_workflow_states_leased_batch",
        "workflow_states",
        ["batch_id"],
        postgresql_where=LEASED,
        sqlite_where=LEASED,
    )
    op.drop_index("ix_workflow_states_failed_id", table_name="workflow_states")
    op.drop_index("ix_workflow_states_failed", table_name="workflow_states")
    op.create_index(
        "ix_workflow_states_failed",
        "workflow_states",
        ["batch_id", "step_index"],
        postgresql_where=FAILED,
        sqlite_where=FAILED,
    )
    with op.batch_alter_table("workflow_states") as batch:
        batch.drop_column("error_class")
