"""PostgreSQL for tests: a fresh database per test on the server at 127.0.0.1:5432.

CI runs this layer and fails — never skips — when the server cannot be reached. On a
laptop without PostgreSQL, deselect it: ``pytest -m "not postgres"``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

ADMIN_DSN = os.environ.get("LLMREG_TEST_PG", "host=127.0.0.1 port=5432 dbname=test")


def fresh_database() -> Iterator[str]:
    """Create a database, yield its SQLAlchemy URL, drop it afterwards."""
    import psycopg

    name = f"llmreg_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_DSN!r} ({exc}); start it, or "
                    "deselect this layer with -m 'not postgres'")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        params = dict(p.split("=", 1) for p in ADMIN_DSN.split())
        host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
        user = params.get("user") or admin.info.user
        try:
            yield f"postgresql+psycopg://{user}@{host}:{port}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
