"""Teams: ``tokens.teams`` (the role in each team), ``approvals.teams`` (the
approver's teams when they approved) and a webhook's scope (``webhooks.team``,
``webhooks.names``; none: every name, as before). All nullable: existing tokens stay
unscoped (their role applies to every name, as before) until an admin replaces them;
`llmreg token list` shows them as unscoped.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("teams", sa.JSON(), nullable=True))
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(sa.Column("teams", sa.JSON(), nullable=True))
    with op.batch_alter_table("webhooks") as batch:
        batch.add_column(sa.Column("team", sa.String(128), nullable=True))
        batch.add_column(sa.Column("names", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhooks") as batch:
        batch.drop_column("names")
        batch.drop_column("team")
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("teams")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("teams")
