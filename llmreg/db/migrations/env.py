"""Alembic environment: runs on the connection llmreg hands over, in its transaction."""

from __future__ import annotations

from alembic import context

from llmreg.db import models

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("llmreg migrations run through llmreg.db.migrate, with a connection")

context.configure(
    connection=connection,
    target_metadata=models.SQLModel.metadata,
    render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
