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
from dataclasses import dataclass
from typing import BinaryIO

from llmreg.bundle.digest import format_digest, new_hasher
from llmreg.errors import BlobNotFoundError, IntegrityError

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
        """Bytes ``start..end`` (inclusive) of a blob. A part cannot be verified on its
        own: callers that serve parts verify the whole blob once first."""
        with self.open(digest) as fh:
            skip = start
            while skip > 0 and (chunk := fh.read(min(skip, CHUNK))):
                skip -= len(chunk)
            return fh.read(end - start + 1)

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
