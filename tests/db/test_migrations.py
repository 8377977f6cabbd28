"""The Alembic migrations: they build exactly the models' schema, from empty, once."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from llmreg.db import models
from llmreg.db.engine import HEAD_REVISION, Database
from llmreg.db.migrate import head_revision


def test_head_constant_matches_scripts() -> None:
    assert head_revision() == HEAD_REVISION


def test_migrations_match_models(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'r.db'}")
    with db.write_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), models.SQLModel.metadata)
    assert diff == []
    db.dispose()


def test_sqlite_is_configured_for_concurrency(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'r.db'}")
    with db.write_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 30_000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    assert db.current_revision() == HEAD_REVISION
    # Opening again is a no-op (and does not fail on an existing schema).
    Database.open(db.url).dispose()
    db.dispose()


def test_schema_is_not_made_by_create_all(tmp_path: Path) -> None:
    db = Database.open(f"sqlite:///{tmp_path / 'r.db'}")
    with db.read_engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
    assert "alembic_version" in tables
    assert {"bundle_names", "manifests", "versions"} <= tables
    db.dispose()
