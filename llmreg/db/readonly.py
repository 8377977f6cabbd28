"""The embedded registry's read path, on the standard library alone.

An application that reads its bundle from the embedded registry at startup should not
pay for SQLAlchemy, SQLModel and pydantic (a few hundred milliseconds of imports) to run
two indexed ``SELECT``\\ s and read one file. :class:`ReadOnlyRegistry` opens
``registry.db`` with :mod:`sqlite3` in read-only mode (``file:…?mode=ro``: it can never
write, migrate or take the write lock) and reads manifests from the local blob folder,
verified against their digest as every read path is.

It answers only what it can answer exactly like the ORM-backed service: a miss (no such
name, version or slot, an ambiguous prefix) returns ``None``, and the caller asks the
service, which raises the error with its usual message. The schema must be the one this
llmreg was built for (:data:`HEAD_REVISION`): an older registry is migrated by the
service on open, a newer one is refused with a clear error.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> ReadOnlyRegistry.open(Path(tempfile.mkdtemp())) is None  # no registry.db yet
    True
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from llmreg.errors import ConfigError
from llmreg.store.local import read_blob


def _head_revision() -> str:
    """The newest migration's number, read from the file names (``0004_….py``) without
    importing Alembic; tests/db/test_migrations.py checks it is Alembic's head."""
    folder = Path(__file__).parent / "migrations" / "versions"
    return max(f.name[:4] for f in folder.glob("[0-9][0-9][0-9][0-9]_*.py"))


HEAD_REVISION = _head_revision()
DB_FILENAME = "registry.db"

_VERSION_COLUMNS = ("v.number, v.digest, v.author, v.created_at, v.message, v.parent_digest, "
                    "v.provenance, v.changes, v.diff_digest, v.status")


@dataclass(frozen=True)
class VersionRow:
    """One version as stored: what :class:`~llmreg.types.VersionInfo` is built from."""

    name: str
    number: int
    digest: str
    author: str
    created_at: datetime
    message: str
    parent_digest: str | None
    provenance: dict[str, Any]
    changes: list[str]
    diff_digest: str | None
    status: str

    def fields(self) -> dict[str, Any]:
        """The keyword arguments of :class:`~llmreg.types.VersionInfo` (``number`` is
        its ``version``)."""
        out = dict(self.__dict__)
        out["version"] = out.pop("number")
        return out


class ReadOnlyRegistry:
    """Slots, versions and manifests of an embedded registry, read with :mod:`sqlite3`.

    Example:
        >>> import llmreg, tempfile
        >>> home = Path(tempfile.mkdtemp()) / ".llmreg"
        >>> with llmreg.connect(home, create=True) as reg:
        ...     _ = reg.log_bundle(llmreg.Bundle.from_dict({"model": {"provider": "openai",
        ...         "id": "gpt-4o-2024-08-06"}, "template": {"source": "Hi"}}),
        ...         name="chat", message="first")
        >>> ro = ReadOnlyRegistry.open(home)
        >>> row = ro.version("chat", number=1)
        >>> ro.manifest(row.digest)
        b'{"kind":"llm","model":{"id":"gpt-4o-2024-08-06","provider":"openai"},...}'
        >>> ro.slot("chat", "production") is None  # a miss: the service says why
        True
        >>> ro.close()
    """

    def __init__(self, conn: sqlite3.Connection, blobs: Path) -> None:
        self._conn = conn
        self._lock = threading.Lock()  # one connection, shared by a client's threads
        self._blobs = blobs

    @classmethod
    def open(cls, home: Path, blobs: Path | None = None) -> ReadOnlyRegistry | None:
        """Open ``home/registry.db`` read-only; ``None`` when there is none yet, or its
        schema is older than this llmreg's (the service migrates it on open).

        Raises:
            ConfigError: the schema is newer than this llmreg knows.
        """
        path = Path(home) / DB_FILENAME
        if not path.is_file():
            return None
        uri = f"file:{quote(str(path.resolve()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=60.0, check_same_thread=False)
        try:
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            revision = None  # an empty or half-created file: the service creates it
        if revision is None or revision[0] != HEAD_REVISION:
            conn.close()
            if revision is not None and _newer(revision[0]):
                raise ConfigError(
                    f"the registry at {str(home)!r} has schema revision {revision[0]}, newer "
                    f"than this llmreg's {HEAD_REVISION}; upgrade llmreg "
                    "(pip install -U llmreg) to read it")
            return None
        return cls(conn, Path(blobs) if blobs is not None else Path(home))

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def slot(self, name: str, env: str) -> VersionRow | None:
        """The version ``name``'s slot in the canonical environment ``env`` holds."""
        rows = self._rows(
            f"SELECT n.name, {_VERSION_COLUMNS} FROM bundle_names n "
            "JOIN slots s ON s.name_id = n.id "
            "JOIN versions v ON v.name_id = n.id AND v.number = s.version "
            "WHERE n.name = ? AND s.env = ?", (name, env))
        return _row(rows[0]) if rows else None

    def version(self, name: str, *, number: int | None = None,
                digest_prefix: str | None = None) -> VersionRow | None:
        """Version ``number`` of ``name``, the one whose digest starts with
        ``sha256:<digest_prefix>`` (if exactly one does), or else the latest."""
        base = (f"SELECT n.name, {_VERSION_COLUMNS} FROM bundle_names n "
                "JOIN versions v ON v.name_id = n.id WHERE n.name = ? AND ")
        if number is not None:
            rows = self._rows(base + "v.number = ?", (name, number))
        elif digest_prefix is not None:
            low = f"sha256:{digest_prefix}"  # a range, not LIKE: the digest index is used
            rows = self._rows(base + "v.digest >= ? AND v.digest < ? LIMIT 2",
                              (name, low, low + "g"))
            rows = rows if len(rows) == 1 else []
        else:
            rows = self._rows(base + "v.number = n.latest_version", (name,))
        return _row(rows[0]) if rows else None

    def manifest(self, digest: str) -> bytes:
        """The manifest blob's bytes, verified against ``digest``."""
        return read_blob(self._blobs, digest)


def _row(r: tuple[Any, ...]) -> VersionRow:
    # SQLAlchemy stores these columns as JSON text and UTC times without a zone.
    created = datetime.fromisoformat(r[4]).replace(tzinfo=UTC)
    return VersionRow(name=r[0], number=r[1], digest=r[2], author=r[3], created_at=created,
                      message=r[5], parent_digest=r[6], provenance=json.loads(r[7]),
                      changes=json.loads(r[8]), diff_digest=r[9], status=r[10])


def _newer(revision: str) -> bool:
    """Whether ``revision`` comes after :data:`HEAD_REVISION` (they are numbered)."""
    try:
        return int(revision[:4]) > int(HEAD_REVISION[:4])
    except ValueError:
        return True  # not one of ours at all
