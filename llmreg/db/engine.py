"""Opening the metadata database and keeping its schema at the migrations' head.

SQLite is set up for several processes at once: WAL (readers never block the
writer), a busy timeout, and write transactions that start with ``BEGIN IMMEDIATE``
so writers queue on the lock instead of failing halfway with "database is locked".
Reads use a second engine whose transactions are plain ``BEGIN``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from llmreg.db.readonly import HEAD_REVISION as HEAD_REVISION  # the read path checks it too
from llmreg.errors import ConfigError

BUSY_TIMEOUT_S = 60.0


class Database:
    """Engines and sessions for one metadata database.

    Example:
        >>> from sqlalchemy import text
        >>> db = Database.open("sqlite:///registry.db")
        >>> with db.write() as session:
        ...     _ = session.execute(text("INSERT INTO bundle_names (name, "
        ...                              "latest_version, created_at) VALUES "
        ...                              "('chat', 0, '2025-01-01')"))
        >>> with db.read() as session:
        ...     session.execute(text("SELECT name FROM bundle_names")).scalars().all()
        ['chat']
        >>> Database("registry.db")
        Traceback (most recent call last):
        ...
        llmreg.errors.ConfigError: LLMREG_DATABASE_URL 'registry.db' is not a database URL; ...
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError:
            raise ConfigError(
                f"LLMREG_DATABASE_URL {url!r} is not a database URL; use "
                "'sqlite:///path/registry.db' or 'postgresql+psycopg://host/db'"
            ) from None
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            self.write_engine = _sqlite_engine(url, begin="BEGIN IMMEDIATE")
            self.read_engine = _sqlite_engine(url, begin="BEGIN")
        else:
            self.write_engine = sa.create_engine(url, pool_pre_ping=True)
            self.read_engine = self.write_engine

    @classmethod
    def open(cls, url: str) -> Database:
        """Open ``url`` and bring its schema to the head revision."""
        db = cls(url)
        db.migrate()
        return db

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session in a write transaction, committed on success, rolled back on error."""
        with Session(self.write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads (never takes the write lock)."""
        with Session(self.read_engine, expire_on_commit=False) as session, session.begin():
            yield session

    def current_revision(self) -> str | None:
        """The schema revision recorded in the database, or None if it is empty."""
        with self.read_engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()

    def migrate(self) -> None:
        """Upgrade the schema to head. Cheap when already there (one query).

        The upgrade runs in one write transaction, so processes that open a new
        registry at the same moment queue and only the first one creates the tables.
        """
        if self.current_revision() == HEAD_REVISION:
            return
        from llmreg.db.migrate import upgrade

        with self.write_engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7226311)"))
            upgrade(conn)

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()


def _sqlite_engine(url: str, *, begin: str) -> Engine:
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S,
                                                 "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if ":memory:" not in url and url not in ("sqlite://", "sqlite:///"):
            cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def insert_ignore(session: Session, model: Any, **values: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL alike. Without
    ``values`` (rows given to ``execute``), the statement is built once per dialect and
    table.

    Example:
        >>> from llmreg.db.models import Manifest, table
        >>> str(_ignoring("sqlite", table(Manifest))).startswith("INSERT INTO manifests")
        True
    """
    dialect = session.get_bind().dialect.name
    if values:
        return _ignoring.__wrapped__(dialect, model).values(**values)
    return _ignoring(dialect, model)


@functools.cache
def _ignoring(dialect: str, model: Any) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model).on_conflict_do_nothing()
