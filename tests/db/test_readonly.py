"""The stdlib read-only reader of the embedded registry (llmreg/db/readonly.py)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

import llmreg
from llmreg.db.readonly import HEAD_REVISION, ReadOnlyRegistry
from llmreg.errors import ConfigError, IntegrityError
from tests.conftest import minimal


def _registry(home: Path) -> list[llmreg.Bundle]:
    with llmreg.connect(home, create=True) as reg:
        done = [reg.log_bundle(llmreg.Bundle.from_dict(minimal(system_prompt=f"v{i}")),
                               name="chat", message=f"v{i}") for i in range(3)]
        reg.promote("chat@2", to="staging", reason="try")
    return done


def test_reads_slots_versions_and_verified_manifests(tmp_path: Path) -> None:
    home = tmp_path / ".llmreg"
    done = _registry(home)
    ro = ReadOnlyRegistry.open(home)
    assert ro is not None
    slot = ro.slot("chat", "staging")
    assert slot is not None and (slot.name, slot.number, slot.digest) == \
        ("chat", 2, done[1].digest)
    latest = ro.version("chat")
    assert latest is not None and latest.number == 3 and latest.parent_digest == done[1].digest
    assert latest.changes == ["system_prompt: +1 -1 lines"] and latest.diff_digest
    assert latest.provenance["user"] == "tester" and latest.created_at.tzinfo is not None
    first = ro.version("chat", number=1)
    assert first is not None and first.digest == done[0].digest
    hexes = done[0].digest.split(":")[1]
    by_prefix = ro.version("chat", digest_prefix=hexes[:12])
    assert by_prefix is not None and by_prefix.number == 1
    assert ro.manifest(done[0].digest) == done[0].canonical_bytes()
    # Misses are None: the service raises the error with its message.
    assert ro.slot("chat", "production") is None
    assert ro.slot("nope", "staging") is None
    assert ro.version("chat", number=9) is None
    assert ro.version("nope") is None
    assert ro.version("chat", digest_prefix="0" * 7 if not hexes.startswith("0") else "1" * 7
                      ) is None
    ro.close()


def test_a_damaged_manifest_is_refused(tmp_path: Path) -> None:
    home = tmp_path / ".llmreg"
    done = _registry(home)
    blob = home / "blobs" / "sha256" / done[0].digest.split(":")[1]
    blob.chmod(0o644)
    blob.write_bytes(blob.read_bytes().replace(b"v0", b"v9"))
    ro = ReadOnlyRegistry.open(home)
    assert ro is not None
    with pytest.raises(IntegrityError):
        ro.manifest(done[0].digest)
    ro.close()


def test_it_never_writes(tmp_path: Path) -> None:
    home = tmp_path / ".llmreg"
    _registry(home)
    ro = ReadOnlyRegistry.open(home)
    assert ro is not None
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro._conn.execute("DELETE FROM versions")
    ro.close()


def test_one_reader_serves_several_threads(tmp_path: Path) -> None:
    home = tmp_path / ".llmreg"
    done = _registry(home)
    ro = ReadOnlyRegistry.open(home)
    assert ro is not None
    seen: list[str] = []

    def work() -> None:
        for _ in range(50):
            row = ro.slot("chat", "staging")
            assert row is not None
            seen.append(row.digest)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [done[1].digest] * 200
    ro.close()


def test_no_database_or_an_empty_one_is_none(tmp_path: Path) -> None:
    assert ReadOnlyRegistry.open(tmp_path) is None
    sqlite3.connect(tmp_path / "registry.db").close()  # a file with no tables
    assert ReadOnlyRegistry.open(tmp_path) is None


def _set_revision(home: Path, revision: str) -> None:
    conn = sqlite3.connect(home / "registry.db")
    conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
    conn.commit()
    conn.close()


def test_a_newer_schema_is_refused_clearly(tmp_path: Path) -> None:
    home = tmp_path / ".llmreg"
    _registry(home)
    newer = f"{int(HEAD_REVISION) + 5:04d}"
    _set_revision(home, newer)
    with pytest.raises(ConfigError, match=f"schema revision {newer}, newer than this "
                                          f"llmreg's {HEAD_REVISION}; upgrade llmreg"):
        ReadOnlyRegistry.open(home)
    _set_revision(home, "not-ours")
    with pytest.raises(ConfigError, match="not-ours"):
        llmreg.connect(home)


def test_an_older_schema_goes_to_the_service_which_migrates_it(tmp_path: Path) -> None:
    """A registry one migration behind: the reader declines it, connect() migrates it
    through the ORM as before, and the next connect reads it read-only again."""
    import sqlalchemy as sa

    from llmreg.db.migrate import upgrade

    home = tmp_path / ".llmreg"
    home.mkdir()
    engine = sa.create_engine(f"sqlite:///{home / 'registry.db'}")
    with engine.begin() as conn:
        upgrade(conn, f"{int(HEAD_REVISION) - 1:04d}")
    engine.dispose()
    assert ReadOnlyRegistry.open(home) is None
    with llmreg.connect(home) as reg:
        assert reg._backend._service is not None  # type: ignore[attr-defined]
        reg.log_bundle(llmreg.Bundle.from_dict(minimal()), name="chat", message="first")
    reader = ReadOnlyRegistry.open(home)
    assert reader is not None
    reader.close()
