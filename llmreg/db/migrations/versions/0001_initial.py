"""Names, manifests and versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from llmreg.db.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bundle_names",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
    )
    op.create_table(
        "manifests",
        sa.Column("digest", sa.String(71), primary_key=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name_id", sa.Integer(), sa.ForeignKey("bundle_names.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(71), sa.ForeignKey("manifests.digest"), nullable=False),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("parent_digest", sa.String(71), nullable=True),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.UniqueConstraint("name_id", "number", name="uq_versions_name_number"),
        sa.UniqueConstraint("name_id", "digest", name="uq_versions_name_digest"),
    )
    op.create_index("ix_versions_digest", "versions", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_versions_digest", "versions")
    op.drop_table("versions")
    op.drop_table("manifests")
    op.drop_table("bundle_names")
