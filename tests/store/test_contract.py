"""The blob store contract, run on every backend."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmreg.bundle.digest import digest_bytes
from llmreg.errors import BlobNotFoundError, DigestInvalidError, IntegrityError
from llmreg.store import BlobStore, LocalStore, MemoryStore


@pytest.fixture(params=["local", "memory", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "blobs-root")
    elif request.param == "memory":
        yield MemoryStore()
    else:
        from llmreg.store.s3 import S3Store
        from tests.s3 import BUCKET, new_prefix

        weed = request.getfixturevalue("weed")
        # S3's smallest part (5 MiB), so the multipart path runs on test-sized blobs.
        yield S3Store(BUCKET, new_prefix(), client=weed.client(), part_size=5 * 1024 * 1024)


def corrupt(store: BlobStore, digest: str, data: bytes) -> None:
    from llmreg.store.s3 import S3Store

    if isinstance(store, S3Store):  # overwrite the object behind llmreg's back
        store.client.put_object(Bucket=store.bucket, Key=store.key(digest), Body=data)
    elif isinstance(store, LocalStore):
        path = store.path(digest)
        os.chmod(path, 0o644)
        path.write_bytes(data)
    else:
        assert isinstance(store, MemoryStore)
        store.corrupt(digest, data)


def test_put_get_roundtrip_and_idempotence(store: BlobStore) -> None:
    data = os.urandom(11 * 1024 * 1024 + 17)  # crosses the chunk size and, on S3, the part
    first = store.put_stream(io.BytesIO(data))
    assert first.digest == digest_bytes(data)
    assert first.size == len(data)
    assert store.put_bytes(data) == first
    assert store.get_bytes(first.digest) == data
    assert store.exists(first.digest)
    assert store.size(first.digest) == len(data)
    assert list(store.iter_digests()) == [first.digest]


def test_streamed_read_verifies(store: BlobStore) -> None:
    d = store.put_bytes(b"hello world")
    with store.open(d.digest) as fh:
        assert fh.read(5) + fh.read() == b"hello world"


@pytest.mark.parametrize("bad", [b"hellO world", b"hello", b"hello world!"])
def test_corruption_is_detected_naming_the_digest(store: BlobStore, bad: bytes) -> None:
    d = store.put_bytes(b"hello world")
    corrupt(store, d.digest, bad)
    with pytest.raises(IntegrityError, match=d.digest) as caught:
        store.get_bytes(d.digest)
    assert type(caught.value) is IntegrityError  # the store is at fault, not the caller
    with pytest.raises(IntegrityError, match=d.digest), store.open(d.digest) as fh:
        while fh.read(3):
            pass


def test_expected_digest_mismatch_stores_nothing(store: BlobStore) -> None:
    wrong = digest_bytes(b"something else")
    with pytest.raises(DigestInvalidError, match=f"upload for {wrong} hashes to "
                       f"{digest_bytes(b'payload')}"):
        store.put_stream(io.BytesIO(b"payload"), expected_digest=wrong)
    assert list(store.iter_digests()) == []


def test_missing_blob(store: BlobStore) -> None:
    missing = digest_bytes(b"never stored")
    assert not store.exists(missing)
    with pytest.raises(BlobNotFoundError, match=missing):
        store.get_bytes(missing)


def test_empty_blob(store: BlobStore) -> None:
    d = store.put_bytes(b"")
    assert store.get_bytes(d.digest) == b""


# --- local backend specifics ---------------------------------------------------------


def test_local_layout_and_no_partial_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    d = store.put_bytes(b"abc")
    path = tmp_path / "blobs" / "sha256" / d.digest.removeprefix("sha256:")
    assert path.read_bytes() == b"abc"
    assert not os.access(path, os.W_OK) or os.geteuid() == 0  # read-only once written
    assert oct(path.stat().st_mode & 0o777) == "0o444"
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_local_failed_stream_leaves_nothing(tmp_path: Path) -> None:
    class Boom(io.RawIOBase):
        calls = 0

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise OSError("network went away")
            return b"x" * 1024

    store = LocalStore(tmp_path)
    with pytest.raises(OSError, match="network went away"):
        store.put_stream(Boom())  # type: ignore[arg-type]
    assert list((tmp_path / "blobs" / "sha256").iterdir()) == []


def test_local_put_repairs_a_truncated_blob(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    d = store.put_bytes(b"complete content")
    corrupt(store, d.digest, b"compl")
    store.put_bytes(b"complete content")
    assert store.get_bytes(d.digest) == b"complete content"


@pytest.mark.s3
def test_s3_refuses_a_wrong_checksum_and_writes_create_only(weed: object) -> None:
    import base64
    import hashlib

    from llmreg.store.s3 import S3Store
    from tests.s3 import BUCKET, new_prefix

    store = S3Store(BUCKET, new_prefix(), client=weed.client())  # type: ignore[attr-defined]
    wrong = base64.b64encode(hashlib.sha256(b"something else").digest()).decode()
    d = digest_bytes(b"payload")
    with pytest.raises(IntegrityError, match="do not match the SHA-256"):
        store.put_object(store.key(d), b"payload", wrong)
    assert not store.exists(d)
    right = base64.b64encode(hashlib.sha256(b"payload").digest()).decode()
    store.put_object(store.key(d), b"payload", right)
    store.put_object(store.key(d), b"payload", right)  # create-only: 412, a no-op
    assert store.get_bytes(d) == b"payload"
    keys = store.client.list_objects_v2(Bucket=BUCKET, Prefix=store.prefix)["Contents"]
    assert [k["Key"] for k in keys] == [store.key(d)]


@pytest.mark.parametrize("how", ["put_bytes", "put_stream", "put_stream expected"])
def test_a_put_of_the_right_bytes_repairs_a_corrupt_blob(store: BlobStore, how: str) -> None:
    data = b"the right bytes"
    d = store.put_bytes(data)
    corrupt(store, d.digest, b"the wrong bytes")  # same size: only a hash can tell
    assert store.exists(d.digest) and not store.intact(d.digest)
    if how == "put_bytes":
        again = store.put_bytes(data)
    else:
        again = store.put_stream(io.BytesIO(data),
                                 expected_digest=d.digest if "expected" in how else None)
    assert again == d
    assert store.intact(d.digest) and store.get_bytes(d.digest) == data


def test_intact_is_false_for_missing_and_true_for_stored(store: BlobStore) -> None:
    assert not store.intact(digest_bytes(b"absent"))
    assert store.intact(store.put_bytes(b"present").digest)
