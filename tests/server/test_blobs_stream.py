"""Blob reads stream in bounded, verified pieces: every Range shape, the one error shape
for a Range that cannot be served, no whole-blob hash per request, and an abort before
the last byte when the stored bytes change mid-stream (folder and S3)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llmreg.errors import IntegrityError
from llmreg.server.app import create_app
from llmreg.server.routes.blobs import PIECE, WHOLE_IN_MEMORY
from llmreg.service import RegistryService
from llmreg.settings import Settings
from llmreg.store import LocalStore
from llmreg.store.base import BlobStore
from llmreg.store.chunks import SPAN, ChunkTable
from tests.server.test_bounds import flip, one_error

MIB = 1024 * 1024
BIG = WHOLE_IN_MEMORY + 2 * PIECE + 12_345  # streamed, several pieces, a short last chunk


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def reg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[TestClient,
                                                                          RegistryService,
                                                                          dict[str, str]]]:
    if request.param == "local":
        service = RegistryService.open_home(tmp_path / "srv" / ".llmreg")
    else:
        from llmreg.store.s3 import S3Store
        from tests.s3 import BUCKET, new_prefix

        store = S3Store(BUCKET, new_prefix(), client=request.getfixturevalue("weed").client())
        service = RegistryService.open(f"sqlite:///{tmp_path / 'r.db'}", store)
    token, _ = service.access.create_token("pat", "publisher", created_by="t")
    with TestClient(create_app(Settings(), service=service)) as http:
        yield http, service, {"Authorization": f"Bearer {token}"}
    service.close()


@pytest.fixture(scope="module")
def big() -> bytes:
    return os.urandom(BIG)


def shapes(size: int) -> list[tuple[str, int, int]]:
    """Range headers and the inclusive span each one means, for a blob of ``size``."""
    return [("bytes=0-", 0, size - 1),
            ("bytes=-5", size - 5, size - 1),
            (f"bytes=-{size + 10}", 0, size - 1),  # a suffix longer than the blob: all of it
            ("bytes=0-0", 0, 0),
            (f"bytes={size - 1}-", size - 1, size - 1),
            (f"bytes={SPAN - 3}-{SPAN + 2}", SPAN - 3, SPAN + 2),  # across a chunk edge
            (f"bytes={PIECE - 1}-{2 * PIECE + 7}", PIECE - 1, min(size - 1, 2 * PIECE + 7)),
            (f"bytes=100-{size + 99}", 100, size - 1),  # an end past the blob is cut
            (" BYTES = 7 - 9 ", 7, 9)]


def test_every_range_shape_of_a_streamed_blob(reg, big: bytes) -> None:
    http, service, headers = reg
    digest = service.blobs.put_bytes(big).digest
    whole = http.get(f"/v1/blobs/{digest}", headers=headers)
    assert whole.status_code == 200 and whole.content == big
    assert whole.headers["content-length"] == str(BIG)
    for header, start, end in shapes(BIG):
        answer = http.get(f"/v1/blobs/{digest}", headers={**headers, "Range": header})
        assert answer.status_code == 206, (header, answer.text[:200])
        assert answer.content == big[start:end + 1], header
        assert answer.headers["content-range"] == f"bytes {start}-{end}/{BIG}", header
        assert answer.headers["content-length"] == str(end - start + 1)
        assert answer.headers["etag"] == f'"{digest}"'


def test_every_range_shape_of_a_small_blob(reg) -> None:
    http, service, headers = reg
    data = os.urandom(3 * SPAN + 1)  # read whole (it is small), verified, then cut
    digest = service.blobs.put_bytes(data).digest
    for header, start, end in shapes(len(data)):
        if start >= len(data):
            continue
        answer = http.get(f"/v1/blobs/{digest}", headers={**headers, "Range": header})
        assert answer.status_code == 206 and answer.content == data[start:end + 1], header
        assert answer.headers["content-range"] == f"bytes {start}-{end}/{len(data)}"


BAD_RANGES = ["bytes=0-1,5-6", "bytes=0-1, 3-", "items=0-5", "bytes=5", "bytes=-",
              "bytes=", "bytes=-0", "bytes=a-b", "bytes=1-x", "bytes=+1-2", "bytes=--1",
              "bytes=9-3", "bytes=1_0-20", "bytes=0x1-2", "bytes=١-٢", "bytes=0-1\x00",
              "bytes=" + "9" * 5000 + "-", "bytes=0-" + "9" * 20]


@pytest.mark.parametrize("size", [10, BIG], ids=["small", "streamed"])
def test_a_range_that_cannot_be_served_is_416_in_the_one_error_shape(
        reg, big: bytes, size: int) -> None:
    http, service, headers = reg
    data = big[:size]
    digest = service.blobs.put_bytes(data).digest
    for header in [*BAD_RANGES, f"bytes={size}-", f"bytes={size + 5}-{size + 9}"]:
        answer = http.get(f"/v1/blobs/{digest}",
                          headers={**headers, "Range": header.encode()})
        message = one_error(answer, 416, "RANGE_INVALID")
        assert "Range '" in message and len(message) < 400, header
        assert answer.headers["content-range"] == f"bytes */{size}"
        assert answer.headers["cache-control"] == "no-store"


def test_an_empty_blob_has_no_range(reg) -> None:
    http, service, headers = reg
    digest = service.blobs.put_bytes(b"").digest
    assert http.get(f"/v1/blobs/{digest}", headers=headers).content == b""
    for header in ("bytes=0-", "bytes=-1"):
        answer = http.get(f"/v1/blobs/{digest}", headers={**headers, "Range": header})
        one_error(answer, 416, "RANGE_INVALID")


def test_the_whole_blob_is_hashed_once_not_per_request(
        reg, big: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    http, service, headers = reg
    digest = service.blobs.put_bytes(big).digest
    builds: list[str] = []
    real = ChunkTable.build.__func__  # type: ignore[attr-defined]

    def counted(cls, raw, d, token):
        builds.append(d)
        return real(cls, raw, d, token)

    monkeypatch.setattr(ChunkTable, "build", classmethod(counted))
    for header in ("bytes=0-", "bytes=-100", f"bytes={PIECE}-{PIECE + 10}", None):
        extra = {"Range": header} if header else {}
        assert http.get(f"/v1/blobs/{digest}", headers={**headers, **extra}).status_code \
            in (200, 206)
    assert builds == [digest]
    # A fresh process finds the table kept beside the blob: no whole hash either.
    store: BlobStore = service.blobs.store
    store._table_cache = None  # type: ignore[assignment]
    assert http.get(f"/v1/blobs/{digest}", headers={**headers, "Range": "bytes=-9"}
                    ).content == big[-9:]
    assert builds == [digest]


def test_a_corrupt_streamed_blob_is_a_clean_500_for_every_shape(reg, big: bytes) -> None:
    http, service, headers = reg
    digest = service.blobs.put_bytes(big).digest
    assert http.get(f"/v1/blobs/{digest}", headers={**headers, "Range": "bytes=0-9"}
                    ).status_code == 206  # the table is made and kept
    flip(service.blobs.store, digest)  # one byte, in the middle, size unchanged
    for header in (None, "bytes=0-", "bytes=0-9", "bytes=-9", f"bytes={BIG // 2}-"):
        extra = {"Range": header} if header else {}
        answer = http.get(f"/v1/blobs/{digest}", headers={**headers, **extra})
        assert f"blob {digest} is corrupt" in one_error(answer, 500, "INTEGRITY_FAILED")
        assert "etag" not in answer.headers


def change_in_place(store: BlobStore, digest: str, offset: int) -> None:
    """Flip the byte at ``offset`` of a stored blob behind llmreg's back."""
    if isinstance(store, LocalStore):
        path = store.path(digest)
        path.chmod(0o644)
        with open(path, "r+b") as fh:
            fh.seek(offset)
            byte = fh.read(1)
            fh.seek(offset)
            fh.write(bytes([byte[0] ^ 0xFF]))
    else:
        from llmreg.store.s3 import S3Store

        assert isinstance(store, S3Store)
        body = bytearray(store.client.get_object(Bucket=store.bucket,
                                                 Key=store.key(digest))["Body"].read())
        body[offset] ^= 0xFF
        store.client.put_object(Bucket=store.bucket, Key=store.key(digest), Body=bytes(body))


@pytest.mark.parametrize("header", [None, "bytes=0-", f"bytes={MIB}-"])
def test_a_blob_changed_mid_stream_never_completes(reg, big: bytes, header: str | None
                                                   ) -> None:
    http, service, headers = reg
    digest = service.blobs.put_bytes(big).digest
    extra = {"Range": header} if header else {}
    got = 0
    # In process the app's exception reaches the test (a real server closes the
    # connection instead: tests/server/test_blobs_served.py).
    with pytest.raises(RuntimeError) as caught, \
            http.stream("GET", f"/v1/blobs/{digest}", headers={**headers, **extra}) as answer:
        assert answer.status_code in (200, 206)
        for chunk in answer.iter_raw():
            if got == 0:  # the first piece is out: change the last chunk's bytes
                change_in_place(service.blobs.store, digest, BIG - 10)
            got += len(chunk)
    assert isinstance(caught.value.__cause__, IntegrityError)
    assert f"blob {digest} is corrupt" in str(caught.value.__cause__)
    assert 0 < got < int(answer.headers["content-length"])
