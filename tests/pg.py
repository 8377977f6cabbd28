"""PostgreSQL for tests: a fresh database per test on the server at 127.0.0.1:5432.

CI runs this layer and fails — never skips — when the server cannot be reached. On a
laptop without PostgreSQL, deselect it: ``pytest -m "not postgres"``.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator

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


# The audit log's advisory lock (llmreg/service/audit.py): every write that audits takes it.
AUDIT_LOCK = 7226312


def overlapping(url: str | None, calls: list[Callable[[], object]], *,
                timeout: float = 60) -> None:
    """Run ``calls`` in threads so that their write transactions overlap, then wait for
    them; an exception in one is raised here.

    On PostgreSQL (``url``) the audit log's lock is held while the calls start, and
    released only once every call's session waits on a lock: each call has opened its
    transaction (and those not serialised by a lock of their own have read what they
    will act on) before any of them commits. On SQLite (``url`` None) writers queue on
    the database lock anyway; the calls start together.
    """
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    if url is None:
        for t in threads:
            t.start()
    else:
        import psycopg

        dsn = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(dsn, autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (AUDIT_LOCK,))
            for t in threads:
                t.start()
            deadline = time.monotonic() + timeout
            waiting = 0
            while waiting < len(calls) and not errors and time.monotonic() < deadline:
                time.sleep(0.02)
                row = holder.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()").fetchone()
                waiting = row[0] if row else 0
            holder.execute("SELECT pg_advisory_unlock(%s)", (AUDIT_LOCK,))
        if waiting < len(calls) and not errors:
            for t in threads:
                t.join(timeout)
            raise AssertionError(f"only {waiting} of {len(calls)} calls waited on a lock "
                                 f"within {timeout:g} s: they did not overlap")
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a call did not finish"
    if errors:
        raise errors[0]
