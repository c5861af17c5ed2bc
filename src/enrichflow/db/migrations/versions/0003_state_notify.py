"""NOTIFY enrichflow when states become runnable or finish, and when a batch is launched, re-opened or finished

Postgres only (SQLite has no LISTEN/NOTIFY; the conductor is woken in-process there).

Statement-level triggers with transition tables: a set-based update of thousands of states
fires the function once, which sends one notification per batch touched. Postgres also folds
identical notifications inside one transaction into one. The payload is the batch id.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CHANNEL = "enrichflow"

STATE_FUNCTION = f"""
CREATE OR REPLACE FUNCTION enrichflow_notify_states() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    b BIGINT;
BEGIN
    FOR b IN
        SELECT DISTINCT batch_id FROM new_rows
        WHERE status IN ('PENDING', 'COMPLETED', 'SKIPPED', 'FAILED')
    LOOP
        PERFORM pg_notify('{CHANNEL}', b::text);
    END LOOP;
    RETURN NULL;
END
$$
"""

BATCH_FUNCTION = f"""
CREATE OR REPLACE FUNCTION enrichflow_notify_batches() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    b BIGINT;
BEGIN
    FOR b IN
        SELECT id FROM new_rows
        WHERE status IN ('RUNNING', 'COMPLETED', 'COMPLETED_WITH_ERRORS')
    LOOP
        PERFORM pg_notify('{CHANNEL}', b::text);
    END LOOP;
    RETURN NULL;
END
$$
"""

# Transition tables allow one event per trigger, hence an INSERT and an UPDATE trigger each.
TRIGGERS = [
    ("workflow_states_notify_insert", "workflow_states", "INSERT", "enrichflow_notify_states"),
    ("workflow_states_notify_update", "workflow_states", "UPDATE", "enrichflow_notify_states"),
    ("batches_notify_insert", "batches", "INSERT", "enrichflow_notify_batches"),
    ("batches_notify_update", "batches", "UPDATE", "enrichflow_notify_batches"),
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(STATE_FUNCTION)
    op.execute(BATCH_FUNCTION)
    for name, table, event, function in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} ON {table} "
            f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, _event, _function in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
    op.execute("DROP FUNCTION IF EXISTS enrichflow_notify_states()")
    op.execute("DROP FUNCTION IF EXISTS enrichflow_notify_batches()")
