"""The local blob store beyond the shared contract: layout, housekeeping, the copy thread."""

from __future__ import annotations

import io
import itertools
import os
import signal
import threading
import time
import types
from pathlib import Path

import pytest

from llmreg.bundle.digest import digest_bytes
from llmreg.errors import BlobNotFoundError
from llmreg.store import local
from llmreg.store.local import COPY_CHUNK, LocalStore, _hash_and_write


class Unreadable(io.RawIOBase):
    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        raise AssertionError("the stream was read")


def test_a_known_blob_is_not_uploaded_again(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    d = store.put_bytes(b"twelve bytes")
    again = store.put_stream(Unreadable(), expected_digest=d.digest)  # type: ignore[arg-type]
    assert (again.digest, again.size) == (d.digest, 12)


def test_missing_blobs_are_named_with_the_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    missing = digest_bytes(b"never stored")
    expected = f"blob {missing} is not in the store at {tmp_path / 'blobs' / 'sha256'}"
    with pytest.raises(BlobNotFoundError) as info:
        store.size(missing)
    assert str(info.value) == expected
    with pytest.raises(BlobNotFoundError) as info:
        store.open(missing)
    assert str(info.value) == expected


def test_discard_removes_a_blob_and_ignores_a_missing_one(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    keep, drop = store.put_bytes(b"keep"), store.put_bytes(b"drop")
    store.discard(drop.digest)
    store.discard(drop.digest)
    assert not store.exists(drop.digest)
    assert list(store.iter_digests()) == [keep.digest]


def test_iter_digests_is_sorted_and_lists_blobs_only(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    assert list(store.iter_digests()) == []  # no folder yet
    digests = [store.put_bytes(bytes([i]) * 3).digest for i in range(6)]
    (store.dir / ".0123.incomplete").write_bytes(b"partial")
    (store.dir / "README").write_text("not a blob")
    (store.dir / ("f" * 64)).mkdir()  # a folder with a blob's name is not a blob
    assert list(store.iter_digests()) == sorted(digests)


def test_sweep_uploads_finds_old_hidden_incomplete_files(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)
    assert store.sweep_uploads(0) == []  # no folder yet
    blob = store.put_bytes(b"a blob is never an upload")
    monkeypatch.setattr(local, "time", types.SimpleNamespace(time=lambda: 10_000.0))
    files = {name: store.dir / name for name in (
        ".b.incomplete", ".a.incomplete", ".fresh.incomplete", "visible.incomplete")}
    for name, path in files.items():
        path.write_bytes(b"x")
        os.utime(path, (0, 10_000.0 - (10 if name == ".fresh.incomplete" else 3600)))
    os.utime(store.path(blob.digest), (0, 1_000.0))
    assert store.sweep_uploads(3600) == [".a.incomplete", ".b.incomplete"]
    assert store.sweep_uploads(3601) == []
    assert store.sweep_uploads(10) == [".a.incomplete", ".b.incomplete", ".fresh.incomplete"]
    assert all(p.exists() for p in files.values())  # a dry run by default
    assert store.sweep_uploads(3600, dry_run=False) == [".a.incomplete", ".b.incomplete"]
    assert sorted(p.name for p in store.dir.iterdir()) == sorted(
        [".fresh.incomplete", "visible.incomplete", blob.digest.removeprefix("sha256:")])
    assert store.age(blob.digest) == 9_000.0
    assert store.age(digest_bytes(b"missing")) is None


def test_read_range_is_inclusive_and_names_a_missing_blob(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    d = store.put_bytes(b"0123456789")
    assert store.read_range(d.digest, 2, 5) == b"2345"
    assert store.read_range(d.digest, 0, 0) == b"0"
    assert store.read_range(d.digest, 8, 100) == b"89"
    missing = digest_bytes(b"never stored")
    with pytest.raises(BlobNotFoundError) as info:
        store.read_range(missing, 0, 1)
    assert str(info.value) == f"blob {missing} is not in the store at {store.dir}"


# --- the copy thread -----------------------------------------------------------------


class Chunks(io.RawIOBase):
    """A stream of ``count`` one-byte reads that records what it was asked for."""

    def __init__(self, count: int, pause_after: int | None = None,
                 until: threading.Event | None = None) -> None:
        self.count, self.asked = count, []  # type: list[int]
        self.pause_after, self.until = pause_after, until

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        self.asked.append(n)
        if self.pause_after is not None and len(self.asked) == self.pause_after + 1:
            assert self.until is not None and self.until.wait(10)
            time.sleep(0.1)  # let the writer record its failure
        return b"x" if len(self.asked) <= self.count else b""


class Sink(io.BytesIO):
    def __init__(self, fail: bool = False, hold: threading.Event | None = None) -> None:
        super().__init__()
        self.fail, self.hold = fail, hold
        self.wrote = threading.Event()
        self.threads: list[tuple[str, bool]] = []

    def write(self, data: bytes) -> int:  # type: ignore[override]
        me = threading.current_thread()
        self.threads.append((me.name, me.daemon))
        self.wrote.set()
        if self.hold is not None:
            assert self.hold.wait(10)
        if self.fail:
            raise OSError("disk full")
        return super().write(data)


def test_the_copy_reads_bounded_chunks_and_writes_on_a_named_daemon_thread() -> None:
    stream, out = Chunks(5), Sink()
    hasher, size = _hash_and_write(stream, out)  # type: ignore[arg-type]
    assert (size, out.getvalue(), hasher.hexdigest()) == (
        5, b"xxxxx", digest_bytes(b"xxxxx").removeprefix("sha256:"))
    assert set(stream.asked) == {COPY_CHUNK} and COPY_CHUNK == 4 * 1024 * 1024
    assert set(out.threads) == {("llmreg-blob-writer", True)}


def test_a_write_failure_stops_the_read_and_is_raised() -> None:
    out = Sink(fail=True)
    stream = Chunks(1000, pause_after=1, until=out.wrote)
    with pytest.raises(OSError, match="^disk full$"):
        _hash_and_write(stream, out)  # type: ignore[arg-type]


def test_a_write_failure_through_put_stream_stores_nothing(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)

    def failing(stream: object, out: object) -> object:
        return _hash_and_write(stream, Sink(fail=True))  # type: ignore[arg-type]

    monkeypatch.setattr(local, "_hash_and_write", failing)
    with pytest.raises(OSError, match="disk full"):
        store.put_stream(io.BytesIO(b"payload"))
    assert list(store.dir.iterdir()) == []


def test_put_many_syncs_each_blob_and_the_folder_once(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append("dir" if os.path.isdir(f"/proc/self/fd/{fd}") else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    blobs = [f"blob {i}".encode() for i in range(40)] + [b"blob 0"]
    out = store.put_many(blobs)
    assert [d.digest for d in out] == [digest_bytes(b) for b in blobs]
    assert [store.get_bytes(d.digest) for d in out] == blobs
    assert sorted(synced) == ["dir"] + ["file"] * 40  # the duplicate is written once
    synced.clear()
    assert store.put_many(blobs[:3]) == out[:3] and synced == []  # already there: no I/O
    damaged = store.path(out[0].digest)
    damaged.chmod(0o644)
    damaged.write_bytes(b"blob X")
    store.put_many(blobs[:3])
    assert store.get_bytes(out[0].digest) == b"blob 0" and synced == ["file", "dir"]
    assert store.put_many([]) == []
    assert not list(store.dir.glob(".*.incomplete"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_forked_process_makes_its_own_sync_pool(tmp_path: Path) -> None:
    """A child forked after the parent used put_many inherits the pool without its
    threads; the store must not hand it that pool (its put_many would wait forever)."""
    store = LocalStore(tmp_path)
    store.put_many([b"parent 1", b"parent 2"])  # the parent's pool now exists
    parent_pool = local._pool
    assert parent_pool is not None
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its put_many finished with a new pool
        code = 1
        try:
            signal.alarm(20)  # a hang kills the child instead of the test run
            fresh = local._pool is None
            store.put_many([b"child 1", b"child 2", b"child 3"])
            code = 0 if fresh and local._pool is not parent_pool else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.get_bytes(digest_bytes(b"child 3")) == b"child 3"


def test_a_failed_put_many_leaves_no_temp_file(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path)

    def fsync(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="disk full"):
        store.put_many([b"a", b"b"])
    assert list(store.dir.iterdir()) == []


def test_at_most_eight_chunks_wait_for_a_slow_writer() -> None:
    release = threading.Event()
    stream, out = Chunks(40), Sink(hold=release)
    worker = threading.Thread(target=_hash_and_write, args=(stream, out), daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while len(stream.asked) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # room for more reads, if the queue allowed them
    # one chunk in the writer's hands, eight queued, one read and waiting for room
    assert len(stream.asked) == 10
    release.set()
    worker.join(10)
    assert out.getvalue() == b"x" * 40


def test_put_many_renames_only_synced_bytes_chunk_by_chunk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llmreg.store.local as local

    store = LocalStore(tmp_path)
    monkeypatch.setattr(local, "SYNC_CHUNK", 4)
    synced: set[int] = set()
    renamed: list[bool] = []
    real_fsync, real_replace = os.fsync, os.replace
    calls = itertools.count(1)  # next() on it is atomic: the pool's threads share it

    def fsync(fd: int) -> None:
        if next(calls) == 7:  # a file of the second chunk
            raise OSError("disk full")
        synced.add(os.stat(f"/proc/self/fd/{fd}").st_ino)
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        renamed.append(os.stat(src).st_ino in synced)
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    blobs = [f"blob {i}".encode() for i in range(10)]
    with pytest.raises(OSError, match="disk full"):
        store.put_many(blobs)
    assert renamed == [True] * 4  # the first chunk, each synced before its rename
    assert sorted(p.name for p in store.dir.iterdir()) == sorted(
        digest_bytes(b).removeprefix("sha256:") for b in blobs[:4])  # no temp file left
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert [d.digest for d in store.put_many(blobs)] == [digest_bytes(b) for b in blobs]
    assert all(store.get_bytes(digest_bytes(b)) == b for b in blobs)


def test_a_large_chunk_is_made_durable_by_one_syncfs_before_any_rename(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import llmreg.store.local as local

    if not local._syncfs_reports_errors():
        pytest.skip("syncfs with error reporting needs Linux 5.8 or later")
    store = LocalStore(tmp_path)
    events: list[str] = []
    real_syncfs, real_replace = local._syncfs, os.replace

    def syncfs(fd: int) -> None:
        events.append("syncfs")
        real_syncfs(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(local, "_syncfs", syncfs)
    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync"))
    blobs = [f"blob {i}".encode() for i in range(local.SYNCFS_MIN)]
    store.put_many(blobs)
    assert events == ["syncfs"] + ["rename"] * len(blobs) + ["fsync"]  # then the folder
    assert all(store.get_bytes(digest_bytes(b)) == b for b in blobs)
    # A failed syncfs (a write-back error) stores nothing and leaves nothing behind.
    monkeypatch.setattr(local, "_syncfs", lambda fd: (_ for _ in ()).throw(OSError(5, "EIO")))
    with pytest.raises(OSError, match="EIO"):
        store.put_many([f"other {i}".encode() for i in range(local.SYNCFS_MIN)])
    assert len(list(store.dir.iterdir())) == len(blobs)
    # Fewer files, or a kernel whose syncfs hides write-back errors: one fsync each.
    events.clear()
    monkeypatch.setattr(local, "_syncfs_reports_errors", lambda: False)
    store.put_many([f"third {i}".encode() for i in range(local.SYNCFS_MIN)])
    assert events.count("fsync") == local.SYNCFS_MIN + 1 and "syncfs" not in events
