"""state tallies count Clay credits too: followers, reused states and the rest

The batch page shows each Clay step's credits (sent, de-duplicated, reused), which counted
the step's states one by one: over a second for a million-item batch. The tallies now also
add up, per (step, status, error class), the states that follow a same-batch leader
(``waiting_on`` set), those that reused an earlier batch's result (their meta names
``reused_from``) and those that are neither, so the credits are sums too
(``catalog.credits``). Existing tallies are counted again from the states.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

COLUMNS = ("followers", "reused", "own")
# Per state: its tally key, then 1 for each measure it counts in (``sign`` is -1 for the rows
# a statement took away).
MEASURES = """
       batch_id, step_index, status, CASE WHEN status = 'FAILED' THEN error_class END AS klass,
       {sign} AS n,
       CASE WHEN retry_floor > 0 THEN {sign} ELSE 0 END AS r,
       CASE WHEN waiting_on IS NOT NULL THEN {sign} ELSE 0 END AS f,
       CASE WHEN meta ->> 'reused_from' IS NOT NULL THEN {sign} ELSE 0 END AS u,
       CASE WHEN waiting_on IS NULL AND meta ->> 'reused_from' IS NULL THEN {sign} ELSE 0 END
           AS o"""
SUMS = "sum(n), sum(r), sum(f), sum(u), sum(o)"
INSERT = (
    "INSERT INTO state_tallies (batch_id, step_index, status, error_class, states, retried, "
    "followers, reused, own)"
)
TALLY_FUNCTION = f"""
CREATE OR REPLACE FUNCTION state_tallies_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {INSERT}
        SELECT batch_id, step_index, status, klass, {SUMS}
        FROM (SELECT {MEASURES.format(sign=1)} FROM new_states) AS added
        GROUP BY 1, 2, 3, 4;
    ELSIF TG_OP = 'DELETE' THEN
        {INSERT}
        SELECT batch_id, step_index, status, klass, {SUMS}
        FROM (SELECT {MEASURES.format(sign=-1)} FROM old_states) AS removed
        GROUP BY 1, 2, 3, 4;
    ELSE
        {INSERT}
        SELECT batch_id, step_index, status, klass, {SUMS}
        FROM (
            SELECT {MEASURES.format(sign=1)} FROM new_states
            UNION ALL
            SELECT {MEASURES.format(sign=-1)} FROM old_states
        ) AS moved
        GROUP BY 1, 2, 3, 4
        HAVING sum(n) <> 0 OR sum(r) <> 0 OR sum(f) <> 0 OR sum(u) <> 0 OR sum(o) <> 0;
    END IF;
    RETURN NULL;
END
$$
"""
OLD_FUNCTION = """
CREATE OR REPLACE FUNCTION state_tallies_add() RETURNS trigger LANGUAGE plpgsql AS $$
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
TALLY_EXISTING = f"""
{INSERT}
SELECT batch_id, step_index, status, klass, {SUMS}
FROM (SELECT {MEASURES.format(sign=1)} FROM workflow_states) AS every_state
GROUP BY 1, 2, 3, 4
"""


def upgrade() -> None:
    with op.batch_alter_table("state_tallies") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=False, server_default="0"))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("LOCK TABLE workflow_states IN SHARE MODE")
    op.execute("DELETE FROM state_tallies")
    op.execute(TALLY_EXISTING)
    op.execute(TALLY_FUNCTION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(OLD_FUNCTION)
    with op.batch_alter_table("state_tallies") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
