"""Registry hygiene: owners, archive tags, hourly heartbeat rollups, alerts, job runs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from llmreg.db.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("retired_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("retire_rule", sa.String(64), nullable=True))
        batch.add_column(sa.Column("retire_policy", sa.String(71), nullable=True))
    op.create_table(
        "owners",
        sa.Column("name_id", sa.Integer(), sa.ForeignKey("bundle_names.id"), primary_key=True,
                  autoincrement=False),
        sa.Column("team", sa.String(128), nullable=False),
        sa.Column("contacts", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
    )
    op.create_table(
        "heartbeat_hours",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("env", sa.String(32), nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.UniqueConstraint("name", "env", "digest", "hour", name="uq_heartbeat_hours"),
    )
    op.create_index("ix_heartbeat_hours_hour", "heartbeat_hours", ["hour"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("env", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("team", sa.String(128), nullable=True),
        sa.Column("contacts", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("notified_at", UTCDateTime(), nullable=False),
        sa.Column("reminders", sa.Integer(), nullable=False),
        sa.Column("acked_by", sa.String(255), nullable=True),
        sa.Column("ack_reason", sa.Text(), nullable=True),
        sa.Column("acked_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
    )
    op.create_index("ix_alerts_name", "alerts", ["name"])
    op.create_index("ix_alerts_state", "alerts", ["state"])
    op.create_table(
        "job_runs",
        sa.Column("job", sa.String(32), primary_key=True),
        sa.Column("period", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("runner", sa.String(255), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("job_runs")
    op.drop_index("ix_alerts_state", "alerts")
    op.drop_index("ix_alerts_name", "alerts")
    op.drop_table("alerts")
    op.drop_index("ix_heartbeat_hours_hour", "heartbeat_hours")
    op.drop_table("heartbeat_hours")
    op.drop_table("owners")
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("retire_policy")
        batch.drop_column("retire_rule")
        batch.drop_column("retired_at")
