"""Part reads verified chunk by chunk: the chunk table, where it is kept, and what a read
does when the stored bytes or the table are not what they were."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmreg.bundle.digest import digest_bytes
from llmreg.errors import BlobNotFoundError, IntegrityError
from llmreg.store import LocalStore, MemoryStore
from llmreg.store.base import BlobStore
from llmreg.store.chunks import HASH, SPAN, ChunkTable, TableCache
from tests.store.test_contract import corrupt, store  # noqa: F401 - the fixture

DATA = os.urandom(3 * SPAN + 7)


def test_read_range_returns_exact_parts(store: BlobStore) -> None:  # noqa: F811
    d = store.put_bytes(DATA).digest
    for start, end in [(0, 0), (0, len(DATA) - 1), (SPAN - 1, SPAN), (2 * SPAN + 3, 10**12),
                       (len(DATA) - 1, len(DATA) - 1), (5, 4)]:
        assert store.read_range(d, start, end) == DATA[start:end + 1], (start, end)


def test_a_rewritten_blob_is_verified_whole_again(store: BlobStore) -> None:  # noqa: F811
    d = store.put_bytes(DATA).digest
    assert store.read_range(d, 0, 9) == DATA[:10]
    bad = bytearray(DATA)
    bad[-1] ^= 1  # far from the range read next
    corrupt(store, d, bytes(bad))
    with pytest.raises(IntegrityError, match=f"blob {d} is corrupt: expected digest"):
        store.read_range(d, 0, 9)
    corrupt(store, d, DATA)  # the right bytes again (a repair)
    assert store.read_range(d, 0, 9) == DATA[:10]


def test_bytes_that_rot_in_place_are_caught_in_the_chunk_read() -> None:
    blobs = MemoryStore()
    d = blobs.put_bytes(DATA).digest
    assert blobs.read_range(d, 0, 0) == DATA[:1]
    bad = bytearray(DATA)
    bad[SPAN + 5] ^= 1
    blobs._blobs[d] = bytes(bad)  # same token: no write the blobs saw
    assert blobs.read_range(d, 0, SPAN - 1) == DATA[:SPAN]  # other chunks are still right
    with pytest.raises(IntegrityError, match=f"bytes {SPAN}-{2 * SPAN - 1} changed"):
        blobs.read_range(d, SPAN, SPAN)
    # From then on the blob is verified whole before any part is served, and fails.
    with pytest.raises(IntegrityError, match="expected digest"):
        blobs.read_range(d, 0, 0)


def test_a_corrupt_copy_is_hashed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    blobs = MemoryStore()
    d = blobs.put_bytes(DATA).digest
    blobs.corrupt(d, DATA[:-1] + b"?")
    builds = []
    real = ChunkTable.build.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(ChunkTable, "build",
                        classmethod(lambda cls, *a: builds.append(1) or real(cls, *a)))
    for _ in range(3):
        with pytest.raises(IntegrityError, match="corrupt"):
            blobs.read_range(d, 0, 0)
    assert builds == [1]


def test_local_tables_are_kept_beside_the_blobs_and_checked(tmp_path: Path) -> None:
    blobs = LocalStore(tmp_path)
    d = blobs.put_bytes(DATA).digest
    assert blobs.load_table(d) is None
    assert blobs.read_range(d, 1, 2) == DATA[1:3]
    kept = blobs.table_path(d)
    assert kept == tmp_path / "chunks" / "sha256" / d.split(":")[1]
    assert [p.name for p in kept.parent.iterdir()] == [kept.name]  # no temp file left
    table = ChunkTable.decode(kept.read_bytes())
    assert table is not None and (table.digest, table.size, table.chunks) == (d, len(DATA), 4)
    st = os.stat(blobs.path(d))
    assert table.token == f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
    assert list(blobs.iter_digests()) == [d]  # tables are not blobs
    # A damaged table is ignored and made again from the blob.
    kept.write_bytes(kept.read_bytes()[:-1] + b"\x00")
    fresh = LocalStore(tmp_path)
    assert fresh.read_range(d, SPAN, SPAN + 1) == DATA[SPAN:SPAN + 2]
    assert ChunkTable.decode(kept.read_bytes()) == table
    blobs.discard(d)
    assert not kept.exists() and not blobs.path(d).exists()


def test_local_open_part_seeks_and_names_a_missing_blob(tmp_path: Path) -> None:
    blobs = LocalStore(tmp_path)
    d = blobs.put_bytes(b"0123456789").digest
    raw, token = blobs.open_part(d, 4)
    with raw:
        assert raw.read(3) == b"456" and token.count(":") == 3
    missing = digest_bytes(b"absent")
    with pytest.raises(BlobNotFoundError, match=f"blob {missing} is not in the store at"):
        blobs.open_part(missing, 0)
    with pytest.raises(BlobNotFoundError):
        blobs.read_range(missing, 0, 1)


@pytest.mark.parametrize("mangle", [
    lambda b: b"",
    lambda b: b"x" + b[1:],
    lambda b: b[:-HASH - 1] + b[-HASH:],
    lambda b: b.replace(b'"span": 1048576', b'"span": 1048577'),
])
def test_a_damaged_or_foreign_table_is_refused(mangle) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    table = ChunkTable(digest_bytes(b"a"), 1, "t", hashlib.sha256(b"a").digest())
    data = mangle(table.encode())
    body = data[:-HASH]
    resealed = body + hashlib.sha256(body).digest()  # even with a matching seal
    assert ChunkTable.decode(data) is None
    if data:
        assert ChunkTable.decode(resealed) is None or resealed == table.encode()


def test_the_table_cache_is_bounded_and_forgets_the_oldest() -> None:
    cache = TableCache(limit=2 * HASH)
    for n in range(3):
        cache.put(ChunkTable(f"sha256:{n:02}", 1, "t", b"h" * HASH))
    assert cache.get("sha256:00") is None and cache.get("sha256:02") is not None
    cache.mark_bad("sha256:09", "t9")
    assert cache.is_bad("sha256:09", "t9") and not cache.is_bad("sha256:09", "t8")
    assert not cache.is_bad("sha256:09", "")
    assert cache.lock("sha256:01") is cache.lock("sha256:01")
