"""Web sessions (sign-in with a token, sign-out ends the session server-side), and
indexes for the web audit timeline's actor and environment filters.

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from llmreg.db.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("session_id", sa.String(32), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(71), nullable=False),
        sa.Column("token_id", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_log_env", "audit_log", ["env"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_env", "audit_log")
    op.drop_index("ix_audit_log_actor", "audit_log")
    op.drop_table("web_sessions")
