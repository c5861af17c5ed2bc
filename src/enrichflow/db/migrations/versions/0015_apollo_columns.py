"""Every mapped Apollo column reaches the consolidated tables: e-mail status, each kind of
phone, ISO state codes, and the company's address, industry codes, social pages and latest
funding, as columns of ``final_leads``, ``people`` and ``companies``

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(JSONB(), "postgresql")


COMPANY = (
    ("state_code", sa.String(10)),
    ("phone", sa.Text()),
    ("address", sa.Text()),
    ("sic_codes", _json()),
    ("naics_codes", _json()),
    ("facebook_url", sa.Text()),
    ("twitter_url", sa.Text()),
    ("latest_funding", sa.Text()),
    ("latest_funding_amount", sa.BigInteger()),
    ("last_raised_at", sa.Text()),
)
PERSON = (
    ("state_code", sa.String(10)),
    ("sub_departments", _json()),
    ("email_status", sa.String(20)),
    ("phone_type", sa.String(20)),
    ("phone_extension", sa.String(20)),
    ("direct_phone", sa.Text()),
    ("mobile_phone", sa.Text()),
    ("do_not_call", sa.Boolean()),
)
LEAD = (
    ("email_status", sa.String(20)),
    ("phone_type", sa.String(20)),
    ("phone_extension", sa.String(20)),
    ("direct_phone", sa.Text()),
    ("mobile_phone", sa.Text()),
    ("corporate_phone", sa.Text()),
    ("state_code", sa.String(10)),
    ("company_state_code", sa.String(10)),
    ("sub_departments", _json()),
    ("do_not_call", sa.Boolean()),
    ("company_address", sa.Text()),
    ("sic_codes", _json()),
    ("naics_codes", _json()),
    ("facebook_url", sa.Text()),
    ("twitter_url", sa.Text()),
    ("latest_funding", sa.Text()),
    ("latest_funding_amount", sa.BigInteger()),
    ("last_raised_at", sa.Text()),
)
TABLES = (("companies", COMPANY), ("people", PERSON), ("final_leads", LEAD))


def upgrade() -> None:
    for table, columns in TABLES:
        with op.batch_alter_table(table) as batch:
            for name, kind in columns:
                batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    for table, columns in TABLES:
        with op.batch_alter_table(table) as batch:
            for name, _ in reversed(columns):
                batch.drop_column(name)
