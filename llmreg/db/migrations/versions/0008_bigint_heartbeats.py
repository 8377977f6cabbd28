"""Heartbeat counts are 64-bit: a lifetime total (or an hour's) past 2**31 - 1 no longer
overflows PostgreSQL's INTEGER (SQLite's integers were 64-bit already; batch mode
rebuilds its table so the declared type matches the models).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TABLES = ("heartbeats", "heartbeat_hours")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("count", type_=sa.BigInteger(), existing_type=sa.Integer(),
                               existing_nullable=False)


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column("count", type_=sa.Integer(), existing_type=sa.BigInteger(),
                               existing_nullable=False)
