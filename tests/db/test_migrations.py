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


def test_upgrade_keeps_existing_versions(tmp_path: Path) -> None:
    """A registry made by revision 0001 opens under the current code with its data."""
    from llmreg.db.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    with db.write_engine.begin() as conn:
        upgrade(conn, "0001")
        conn.execute(sa.text("INSERT INTO bundle_names (id, name, created_at, latest_version) "
                             "VALUES (1, 'chat', '2026-01-01 00:00:00', 1)"))
        conn.execute(sa.text("INSERT INTO manifests VALUES ('sha256:" + "a" * 64 +
                             "', 10, 'llm', '2026-01-01 00:00:00')"))
        conn.execute(sa.text("INSERT INTO versions (name_id, number, digest, author, created_at,"
                             " message, provenance) VALUES (1, 1, 'sha256:" + "a" * 64 +
                             "', 'ana', '2026-01-01 00:00:00', 'first', '{}')"))
    db.dispose()
    assert Database(url).current_revision() == "0001"
    upgraded = Database.open(url)
    assert upgraded.current_revision() == HEAD_REVISION
    with upgraded.read_engine.connect() as conn:
        row = conn.execute(sa.text("SELECT number, changes, diff_digest FROM versions")).one()
    assert tuple(row) == (1, "[]", None)
    upgraded.dispose()


def test_tokens_made_before_0009_keep_working_and_never_expire(tmp_path: Path) -> None:
    """0009 adds tokens.expires_at: an existing token gets NULL (no expiry) and still
    authenticates."""
    from llmreg.db.migrate import upgrade
    from llmreg.service import RegistryService
    from llmreg.service.access import _hash

    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    with db.write_engine.begin() as conn:
        upgrade(conn, "0008")
        conn.execute(sa.text(
            "INSERT INTO tokens (token_id, secret_hash, subject, role, created_at, created_by)"
            " VALUES ('0123456789ab', :h, 'ci', 'publisher', '2026-01-01 00:00:00', 'ana')"),
            {"h": _hash("s" * 43)})
    db.dispose()
    upgraded = Database.open(url)
    assert upgraded.current_revision() == HEAD_REVISION == "0010"
    with upgraded.read_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT expires_at FROM tokens")).scalar_one() is None
    upgraded.dispose()
    svc = RegistryService.open_home(tmp_path / "reg", database_url=url)
    actor = svc.access.authenticate("llmreg_0123456789ab_" + "s" * 43)
    assert actor is not None and actor.name == "ci" and actor.expires_at is None
    [info] = svc.access.list_tokens()
    assert info.expires_at is None and info.revoked_at is None
    svc.close()


def test_a_registry_from_before_teams_keeps_working(tmp_path: Path) -> None:
    """0010 adds teams: a token made before it is unscoped (its role on every name), a name
    owned before it keeps its owner, and the audit log still verifies."""
    from llmreg.db.migrate import upgrade
    from llmreg.service import RegistryService
    from llmreg.service.access import _hash
    from llmreg.teams import refusal

    url = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    with db.write_engine.begin() as conn:
        upgrade(conn, "0009")
        conn.execute(sa.text(
            "INSERT INTO tokens (token_id, secret_hash, subject, role, created_at, created_by)"
            " VALUES ('0123456789ab', :h, 'ci', 'publisher', '2026-01-01 00:00:00', 'ana')"),
            {"h": _hash("s" * 43)})
        conn.execute(sa.text("INSERT INTO bundle_names (name, created_at, latest_version) "
                             "VALUES ('chat', '2026-01-01 00:00:00', 0)"))
        conn.execute(sa.text("INSERT INTO owners (name_id, team, contacts, updated_at, "
                             "updated_by) VALUES (1, 'search', '[]', '2026-01-01 00:00:00', "
                             "'ana')"))
    db.dispose()
    svc = RegistryService.open_home(tmp_path / "reg", database_url=url)
    actor = svc.access.authenticate("llmreg_0123456789ab_" + "s" * 43)
    assert actor is not None and actor.teams == {"*": "publisher"}
    assert refusal(actor, "chat", "search", "publisher") is None  # unscoped: every name
    [info] = svc.access.list_tokens()
    assert info.teams == {}
    with svc.db.read_engine.connect() as conn:
        assert conn.execute(sa.text("SELECT team FROM owners")).scalar_one() == "search"
        assert conn.execute(sa.text("SELECT teams FROM approvals")).all() == []
        assert conn.execute(sa.text("SELECT team, names FROM webhooks")).all() == []
    svc.close()
