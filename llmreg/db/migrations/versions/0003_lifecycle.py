"""Lifecycle: version status, evidence, approvals, slots and their history, audit log,
enforced policies.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from llmreg.db.models import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("status", sa.String(32), nullable=False,
                                   server_default="registered"))
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("suite", sa.String(128), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("report_digest", sa.String(71), nullable=True),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_evidence_digest", "evidence", ["digest"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name_id", sa.Integer(), sa.ForeignKey("bundle_names.id"), nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("env", sa.String(32), nullable=False),
        sa.Column("approver", sa.String(255), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("name_id", "digest", "env", "approver", name="uq_approvals_once"),
    )
    op.create_table(
        "slots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name_id", sa.Integer(), sa.ForeignKey("bundle_names.id"), nullable=False),
        sa.Column("env", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.UniqueConstraint("name_id", "env", name="uq_slots_name_env"),
    )
    op.create_table(
        "slot_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name_id", sa.Integer(), sa.ForeignKey("bundle_names.id"), nullable=False),
        sa.Column("env", sa.String(32), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("to_digest", sa.String(71), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("policy_digest", sa.String(71), nullable=True),
        sa.Column("gates", sa.JSON(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), primary_key=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=True),
        sa.Column("target", sa.String(160), nullable=True),
        sa.Column("env", sa.String(32), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(71), nullable=False),
        sa.Column("hash", sa.String(71), nullable=False, unique=True),
    )
    op.create_index("ix_audit_log_name", "audit_log", ["name"])
    op.create_table(
        "policies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("seen_at", UTCDateTime(), nullable=False),
        sa.Column("seen_by", sa.String(255), nullable=False),
    )


def downgrade() -> None:
    for table in ("policies", "audit_log", "slot_events", "slots", "approvals", "evidence"):
        op.drop_table(table)
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("status")
