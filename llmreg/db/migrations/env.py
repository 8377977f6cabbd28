"""Alembic environment: runs on the connection llmreg hands over, in its transaction."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import llmreg.db.models  # noqa: F401 - registers the tables on SQLModel.metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("llmreg migrations run through llmreg.db.migrate, with a connection")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
