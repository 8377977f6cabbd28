"""The blob store interface.

A blob is immutable bytes named by their digest. ``put`` is idempotent (putting the
same bytes again does nothing) and never exposes a partial blob; every ``get`` and
``open`` verifies size and digest and raises :class:`~llmreg.errors.IntegrityError`
naming the digest when the stored bytes are wrong.

Example:
    >>> from llmreg.store import MemoryStore
    >>> store = MemoryStore()
    >>> d = store.put_bytes(b"hello")
    >>> store.get_bytes(d.digest)
    b'hello'
"""

from __future__ import annotations

import abc
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import BinaryIO

from llmreg.bundle.digest import format_digest, new_hasher
from llmreg.errors import BlobNotFoundError, IntegrityError
from llmreg.store.chunks import SPAN, ChunkTable, TableCache, _read_full, corrupt

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Descriptor:
    """Where a blob is: its digest and size in bytes."""

    digest: str
    size: int


class BlobStore(abc.ABC):
    """Content-addressed blob storage. Subclasses implement the five primitives."""

    @abc.abstractmethod
    def put_stream(self, stream: BinaryIO, *, expected_digest: str | None = None) -> Descriptor:
        """Store the bytes read from ``stream``; the digest is computed while streaming.

        With ``expected_digest``, bytes that hash to anything else are refused with
        :class:`~llmreg.errors.DigestInvalidError` and nothing is stored.
        """

    @abc.abstractmethod
    def open(self, digest: str) -> BinaryIO:
        """Open a blob for streaming; it raises :class:`IntegrityError` at the end of
        the stream if the bytes read do not match the digest."""

    @abc.abstractmethod
    def exists(self, digest: str) -> bool:
        """Tell whether a blob is stored (its integrity is not checked)."""

    @abc.abstractmethod
    def size(self, digest: str) -> int:
        """Return the stored size in bytes; raise ``BlobNotFoundError`` if missing."""

    @abc.abstractmethod
    def iter_digests(self) -> Iterator[str]:
        """Yield the digest of every stored blob (for integrity tools)."""

    @abc.abstractmethod
    def discard(self, digest: str) -> None:
        """Remove a blob. Only garbage collection (of unreferenced blobs) and cache
        repair call this; the registry never deletes a referenced blob."""

    @abc.abstractmethod
    def age(self, digest: str) -> float | None:
        """Seconds since the blob was written, or None when the backend cannot tell.

        Garbage collection spares blobs younger than its grace period: an upload in
        progress writes its blobs before the row that refers to them.
        """

    def sweep_uploads(self, older_than: float, *, dry_run: bool = True) -> list[str]:
        """Leftovers of killed uploads older than ``older_than`` seconds, removed unless
        ``dry_run``. Backends whose writes are atomic leave none (the default)."""
        return []

    def read_range(self, digest: str, start: int, end: int) -> bytes:
        """Bytes ``start..end`` (inclusive) of a blob, verified without reading it all.

        The chunks that cover the range are read and each is checked against the blob's
        chunk table (:mod:`llmreg.store.chunks`) before any byte is returned. The first
        read of a blob, and the first after the stored object changed (another token),
        verifies the whole blob once and records the table. Memory: the range plus one
        chunk; callers that serve large parts ask for them a few MiB at a time.

        Example:
            >>> from llmreg.store import MemoryStore
            >>> store = MemoryStore()
            >>> store.read_range(store.put_bytes(b"hello world").digest, 6, 10)
            b'world'
        """
        table = self._chunk_table(digest)
        end = min(end, table.size - 1)
        if start > end:
            return b""
        first, last = start // SPAN, end // SPAN
        raw, token = self.open_part(digest, first * SPAN, min(table.size, (last + 1) * SPAN))
        if token != table.token:  # rewritten since it was verified: verify it whole again
            raw.close()
            table = self._chunk_table(digest, token=token)
            raw, token = self.open_part(digest, first * SPAN,
                                        min(table.size, (last + 1) * SPAN))
        parts = []
        with raw:
            for index in range(first, last + 1):
                chunk = _read_full(raw, SPAN)
                try:
                    table.check(index, chunk)
                except IntegrityError:
                    self._distrust(table)  # the next read verifies it whole
                    raise
                lo = max(start - index * SPAN, 0)
                parts.append(chunk[lo:end - index * SPAN + 1])
        return b"".join(parts)

    def open_part(self, digest: str, start: int, stop: int | None = None
                  ) -> tuple[BinaryIO, str]:
        """The stored bytes ``start`` up to ``stop`` (exclusive; None: the end), *not*
        verified, and the stored object's token (what changes when it is rewritten).

        Backends override this with a seek or a ranged GET; this fallback skips through
        :meth:`open` and gives the empty token, so every part read verifies the blob
        whole (correct, not fast).
        """
        fh = self.open(digest)
        skip = start
        while skip > 0 and (chunk := fh.read(min(skip, CHUNK))):
            skip -= len(chunk)
        return fh, ""

    def load_table(self, digest: str) -> bytes | None:
        """The stored chunk table of ``digest`` (see :mod:`llmreg.store.chunks`), if the
        backend keeps tables beside its blobs; None otherwise."""
        return None

    def save_table(self, digest: str, data: bytes) -> None:  # noqa: B027 - optional hook
        """Keep ``digest``'s chunk table beside the blob, if the backend can (a cache:
        losing it costs one verification)."""

    def _tables(self) -> TableCache:
        cache: TableCache | None = getattr(self, "_table_cache", None)
        if cache is None:
            cache = self._table_cache = TableCache()
        return cache

    def _chunk_table(self, digest: str, token: str | None = None) -> ChunkTable:
        """The verified chunk table of ``digest``; with ``token``, one made from the copy
        with that token (verifying the blob whole, once, when none is known)."""
        cache = self._tables()
        table = cache.get(digest)
        if table is not None and (token is None or table.token == token):
            return table
        with cache.lock(digest):
            table = cache.get(digest)
            if table is None or (token is not None and table.token != token):
                stored = self.load_table(digest)
                table = None if stored is None else ChunkTable.decode(stored)
                if table is None or table.digest != digest or (
                        token is not None and table.token != token):
                    table = self._verify_whole(digest)
                cache.put(table)
        return table

    def _distrust(self, table: ChunkTable) -> None:
        """Forget which copy ``table`` was verified on, here and beside the blob."""
        table = replace(table, token="")
        self._tables().put(table)
        self.save_table(table.digest, table.encode())

    def _verify_whole(self, digest: str) -> ChunkTable:
        cache = self._tables()
        raw, found = self.open_part(digest, 0)
        with raw:
            if cache.is_bad(digest, found):  # not hashed again until the copy changes
                raise corrupt(digest, "it failed verification and has not changed since")
            try:
                table = ChunkTable.build(raw, digest, found)
            except IntegrityError:
                cache.mark_bad(digest, found)
                raise
        self.save_table(digest, table.encode())
        return table

    def intact(self, digest: str) -> bool:
        """Whether the blob is stored *and* its bytes hash to ``digest`` (reads it all).

        A put uses this, not :meth:`exists`, to skip work: a corrupt copy must be
        replaced by the right bytes, never kept because it is there.
        """
        try:
            with self.open(digest) as fh:
                while fh.read(CHUNK):
                    pass
        except (BlobNotFoundError, IntegrityError):
            return False
        return True

    def put_bytes(self, data: bytes) -> Descriptor:
        """Store ``data``; return its descriptor. Idempotent.

        Example:
            >>> from llmreg.store import MemoryStore
            >>> MemoryStore().put_bytes(b"").size
            0
        """
        return self.put_stream(io.BytesIO(data))

    def put_many(self, blobs: Sequence[bytes]) -> list[Descriptor]:
        """Store several small blobs (manifests, diffs); their descriptors, in order.

        Each is as durable as one :meth:`put_bytes` when this returns; a backend may
        overlap their writes (the folder store syncs them in parallel).

        Example:
            >>> from llmreg.store import MemoryStore
            >>> [d.size for d in MemoryStore().put_many([b"a", b"bc"])]
            [1, 2]
        """
        return [self.put_bytes(data) for data in blobs]

    def get_bytes(self, digest: str) -> bytes:
        """Return a blob's bytes, verified against ``digest``."""
        with self.open(digest) as fh:
            return fh.read()


class VerifyingReader(io.RawIOBase):
    """Wraps a binary stream; hashes what is read and checks it at end of stream."""

    def __init__(self, raw: BinaryIO, digest: str, size: int) -> None:
        self._raw = raw
        self._digest = digest
        self._size = size
        self._hasher = new_hasher()
        self._seen = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if n:
            self._hasher.update(buffer[:n])
            self._seen += n
        else:
            self._check()
        return int(n or 0)

    def readall(self) -> bytes:
        data = self._raw.read()
        self._hasher.update(data)
        self._seen += len(data)
        self._check()
        return data

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return self.readall()
        return super().read(size) or b""

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        actual = format_digest(self._hasher)
        if self._seen != self._size or actual != self._digest:
            size = ("" if self._seen == self._size
                    else f"; {self._seen} bytes where {self._size} were expected")
            raise IntegrityError(
                f"blob {self._digest} is corrupt: expected digest {self._digest}, found "
                f"{actual}{size}; restore it from a backup or register the content again"
            )

    def close(self) -> None:
        self._raw.close()
        super().close()
