"""A blob store in a local folder, laid out as OCI image layouts are.

``<root>/blobs/sha256/<hex>`` holds each blob, read-only once written. A put streams
into ``<root>/blobs/sha256/.<random>.incomplete`` (same folder, so the rename is
atomic), hashing as it goes; then fsync, rename onto the final name, fsync the folder.
A crash leaves at most an ``.incomplete`` file, which is never visible as a blob.
Two processes putting the same bytes both rename identical content: the result is one
intact blob either way.
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from llmreg.bundle.digest import DIGEST_RE, format_digest, hex_of, new_hasher
from llmreg.errors import BlobNotFoundError, DigestInvalidError
from llmreg.store.base import BlobStore, Descriptor, VerifyingReader

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

# queue, uuid and concurrent.futures are imported where a write needs them: an
# application reading a manifest at startup (read_blob) pays for none of them.


class LocalStore(BlobStore):
    """Blobs in ``<root>/blobs/sha256/``.

    Example:
        >>> import tempfile
        >>> store = LocalStore(tempfile.mkdtemp())
        >>> d = store.put_bytes(b"abc")
        >>> store.path(d.digest).name == d.digest.split(":")[1]
        True
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.dir = self.root / "blobs" / "sha256"

    def path(self, digest: str) -> Path:
        """Return where the blob with ``digest`` lives (it may not exist)."""
        return self.dir / hex_of(digest)

    def put_stream(self, stream: BinaryIO, *, expected_digest: str | None = None) -> Descriptor:
        if expected_digest is not None and self.intact(expected_digest):
            return Descriptor(expected_digest, self.size(expected_digest))
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{_tmp_name()}.incomplete"
        try:
            with open(tmp, "wb") as out:
                hasher, size = _hash_and_write(stream, out)
                out.flush()
                os.fsync(out.fileno())
            digest = format_digest(hasher)
            if expected_digest is not None and digest != expected_digest:
                raise DigestInvalidError(
                    f"upload for {expected_digest} hashes to {digest}; nothing was stored"
                )
            # Replace whatever is there: the same bytes again (puts are idempotent), or a
            # damaged copy, which the right bytes repair. Readers keep their open file.
            os.chmod(tmp, 0o444)
            os.replace(tmp, self.path(digest))
            _fsync_dir(self.dir)
            return Descriptor(digest, size)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def put_bytes(self, data: bytes) -> Descriptor:
        return self.put_many([data])[0]

    def put_many(self, blobs: Sequence[bytes]) -> list[Descriptor]:
        """Write each blob as :meth:`put_stream` does (temp file, sync, rename), many at
        once, :data:`SYNC_CHUNK` at a time: this thread writes every temp file, they are
        synced together (parallel fsyncs, or one ``syncfs`` for a large chunk: see
        :meth:`_write_synced`), and only then renamed, so no blob name ever points at
        unsynced bytes. The folder is synced once, after the last rename and before
        this returns. A blob already there and intact is not written again."""
        if not blobs:
            return []
        self.dir.mkdir(parents=True, exist_ok=True)
        out = [Descriptor(format_digest(_hashed(data)), len(data)) for data in blobs]
        todo: dict[str, bytes] = {}
        for desc, data in zip(out, blobs, strict=True):
            if desc.digest not in todo and not self._same_bytes(desc, data):
                todo[desc.digest] = data
        items = list(todo.items())
        for start in range(0, len(items), SYNC_CHUNK):
            self._write_synced(items[start:start + SYNC_CHUNK])
        if todo:
            _fsync_dir(self.dir)
        return out

    def _write_synced(self, items: list[tuple[str, bytes]]) -> None:
        """Write each blob to a temp file and make it durable, then rename each onto its
        name. Durable: each file fsynced, its fsync started in the pool as soon as it is
        written; or, for :data:`SYNCFS_MIN` files or more where the kernel reports
        writeback errors from it, one ``syncfs`` of the file system for all of them
        (one journal commit instead of hundreds). On any failure, remove every temp file
        not yet renamed and raise."""
        temps: list[tuple[Path, int | None]] = []  # the fd is None once closed
        syncs: list[Future[None]] = []
        whole = len(items) >= SYNCFS_MIN and _syncfs_reports_errors()
        pool = _sync_pool() if len(items) > 1 and not whole else None
        try:
            for _, data in items:
                tmp = self.dir / f".{_tmp_name()}.incomplete"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
                temps.append((tmp, fd))
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                if pool is not None:
                    syncs.append(pool.submit(os.fsync, fd))
                elif not whole:
                    os.fsync(fd)
            if whole:
                _syncfs(fd)  # the last file's descriptor: any one on the file system
            _wait(syncs)
            for k, (digest, _) in enumerate(items):
                tmp, open_fd = temps[k]
                assert open_fd is not None
                temps[k] = (tmp, None)
                os.close(open_fd)
                os.replace(tmp, self.path(digest))
            temps = []
        finally:
            _wait(syncs, raise_=False)  # no fsync may still run on a descriptor closed here
            for tmp, left in temps:
                if left is not None:
                    with contextlib.suppress(OSError):
                        os.close(left)
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()

    def _same_bytes(self, desc: Descriptor, data: bytes) -> bool:
        """Whether the blob is there with exactly these bytes (small blobs only: a
        damaged copy is rewritten, never kept because it exists)."""
        try:
            with open(self.path(desc.digest), "rb") as fh:
                return fh.read(desc.size + 1) == data
        except FileNotFoundError:
            return False

    def open(self, digest: str) -> BinaryIO:
        path = self.path(digest)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} is not in the store at {self.dir}") from None
        size = os.fstat(fh.fileno()).st_size
        return VerifyingReader(fh, digest, size)  # type: ignore[return-value]

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} is not in the store at {self.dir}") from None

    def discard(self, digest: str) -> None:
        """Remove a blob (garbage collection of unreferenced blobs, cache repair)."""
        for path in (self.path(digest), self.table_path(digest)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def age(self, digest: str) -> float | None:
        try:
            return time.time() - self.path(digest).stat().st_mtime
        except FileNotFoundError:
            return None

    def sweep_uploads(self, older_than: float, *, dry_run: bool = True) -> list[str]:
        """Temporary ``.incomplete`` files older than ``older_than`` seconds: what an
        upload killed mid-way leaves behind (never visible as blobs)."""
        if not self.dir.is_dir():
            return []
        now = time.time()
        stale = sorted(p for p in self.dir.glob(".*.incomplete")
                       if now - p.stat().st_mtime >= older_than)
        if not dry_run:
            for path in stale:
                path.unlink(missing_ok=True)
        return [p.name for p in stale]

    def open_part(self, digest: str, start: int, stop: int | None = None
                  ) -> tuple[BinaryIO, str]:
        """The file, positioned at ``start``, and its token: inode, size, mtime and
        ctime (a rename or a write changes it; ctime cannot be set back)."""
        try:
            fh = open(self.path(digest), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} is not in the store at {self.dir}") from None
        st = os.fstat(fh.fileno())
        fh.seek(start)
        return fh, f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"

    def table_path(self, digest: str) -> Path:
        """Where the chunk table of ``digest`` is kept: ``<root>/chunks/sha256/<hex>``,
        outside the blob folder, so nothing that lists blobs sees it."""
        return self.root / "chunks" / "sha256" / hex_of(digest)

    def load_table(self, digest: str) -> bytes | None:
        try:
            return self.table_path(digest).read_bytes()
        except FileNotFoundError:
            return None

    def save_table(self, digest: str, data: bytes) -> None:
        """Write the table to a temp file and rename it (no fsync: a torn or lost table
        fails its own check and costs one verification)."""
        path = self.table_path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{_tmp_name()}.incomplete"
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def iter_digests(self) -> Iterator[str]:
        if not self.dir.is_dir():
            return
        for entry in sorted(os.scandir(self.dir), key=lambda e: e.name):
            digest = f"sha256:{entry.name}"
            if entry.is_file() and DIGEST_RE.fullmatch(digest):
                yield digest


def read_blob(root: str | Path, digest: str) -> bytes:
    """A blob's bytes from the folder store at ``root``, verified against ``digest``:
    the embedded registry's read-only path (:mod:`llmreg.db.readonly`), which reads a
    manifest without opening the service.

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> read_blob(root, LocalStore(root).put_bytes(b"abc").digest)
        b'abc'
    """
    return LocalStore(root).get_bytes(digest)


COPY_CHUNK = 4 * 1024 * 1024
PARALLEL_SYNCS = 32  # fsyncs in flight at once: the journal commits them together
SYNC_CHUNK = 256  # temp files open at once in put_many (file descriptors stay bounded)


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_pool_after_fork() -> None:
    """Drop the parent's pool (and lock) in a forked child: the child inherits the
    executor but none of its threads, so a task submitted there would wait forever.
    The child makes its own pool on first use."""
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _sync_pool() -> ThreadPoolExecutor:
    """The threads that fsync blobs for :meth:`LocalStore.put_many`, made once
    per process (starting threads per call costs more than the writes)."""
    from concurrent.futures import ThreadPoolExecutor

    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(PARALLEL_SYNCS, thread_name_prefix="llmreg-blob-sync")
        return _pool


SYNCFS_MIN = 64  # files in one put_many chunk from which one syncfs beats their fsyncs


@functools.cache
def _syncfs_reports_errors() -> bool:
    """Whether ``syncfs`` is there and reports writeback errors: Linux 5.8 and later
    (before, it returned success even when a write-back failed, where fsync would not)."""
    if sys.platform != "linux":
        return False
    try:
        major, minor = (int(p) for p in platform.release().split(".")[:2])
        import ctypes

        ctypes.CDLL(None, use_errno=True).syncfs  # noqa: B018 - present or AttributeError
    except (ValueError, OSError, AttributeError):
        return False
    return (major, minor) >= (5, 8)


def _syncfs(fd: int) -> None:
    """Write back everything of the file system ``fd`` is on, and wait; raise OSError
    on failure, as fsync does."""
    import ctypes

    if ctypes.CDLL(None, use_errno=True).syncfs(ctypes.c_int(fd)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"syncfs: {os.strerror(err)}")


def _wait(futures: list[Future[None]], *, raise_: bool = True) -> None:
    """Wait for every future; then (``raise_``) raise the first failure."""
    for future in futures:
        future.exception()
    if raise_:
        for future in futures:
            future.result()


def _tmp_name() -> str:
    import uuid

    return uuid.uuid4().hex


def _hashed(data: bytes) -> Any:
    hasher = new_hasher()
    hasher.update(data)
    return hasher


def _hash_and_write(stream: BinaryIO, out: BinaryIO) -> tuple[Any, int]:
    """Hash the stream while a second thread writes it: both release the GIL, so on a
    machine with two cores the copy costs little more than the hash alone. At most
    eight chunks (32 MiB) are in flight: memory stays flat whatever the size."""
    hasher = new_hasher()
    import queue

    chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=8)
    failure: list[BaseException] = []

    def writer() -> None:
        try:
            while (chunk := chunks.get()) is not None:
                out.write(chunk)
        except BaseException as exc:  # surfaced in the reading thread below
            failure.append(exc)
            while chunks.get() is not None:  # drain so the reader never blocks forever
                pass

    thread = threading.Thread(target=writer, name="llmreg-blob-writer", daemon=True)
    thread.start()
    size = 0
    try:
        while chunk := stream.read(COPY_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
            chunks.put(chunk)
            if failure:
                break
    finally:
        chunks.put(None)
        thread.join()
    if failure:
        raise failure[0]
    return hasher, size


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
