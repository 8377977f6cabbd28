"""The blob part of the service: the only way to the blob store.

Every other layer (the client's embedded backend, the server's routes) reads and writes
blobs through :class:`Blobs`, so the store behind it (a folder, S3, memory) is a detail
of :mod:`llmreg.store`. Every read is verified against the digest.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import BinaryIO

from llmreg.bundle.digest import check_digest
from llmreg.store.base import BlobStore, Descriptor


class Blobs:
    """Put, read and stream blobs by digest.

    Example:
        >>> from llmreg.store import MemoryStore
        >>> blobs = Blobs(MemoryStore())
        >>> d = blobs.put_bytes(b"hello")
        >>> blobs.read(d.digest), blobs.size(d.digest)
        (b'hello', 5)
    """

    def __init__(self, store: BlobStore) -> None:
        self.store = store

    def put_stream(self, stream: BinaryIO, *, expected_digest: str | None = None) -> Descriptor:
        """Store what ``stream`` yields; with ``expected_digest``, other bytes are refused."""
        if expected_digest is not None:
            check_digest(expected_digest)
        return self.store.put_stream(stream, expected_digest=expected_digest)

    def put_bytes(self, data: bytes) -> Descriptor:
        """Store ``data`` (idempotent)."""
        return self.store.put_bytes(data)

    def put_many(self, blobs: Sequence[bytes]) -> list[Descriptor]:
        """Store several small blobs at once (idempotent); all durable on return."""
        return self.store.put_many(blobs)

    def read(self, digest: str) -> bytes:
        """A whole blob, verified against ``digest``."""
        return self.store.get_bytes(digest)

    def open(self, digest: str) -> BinaryIO:
        """A verifying stream: it raises at the end if the bytes do not match."""
        return self.store.open(check_digest(digest))

    def read_range(self, digest: str, start: int, end: int) -> bytes:
        """Bytes ``start..end`` (inclusive); verify the whole blob once before serving parts."""
        return self.store.read_range(check_digest(digest), start, end)

    def size(self, digest: str) -> int:
        """The stored size; ``BlobNotFoundError`` when it is not there."""
        return self.store.size(check_digest(digest))

    def exists(self, digest: str) -> bool:
        """Whether the blob is stored (not verified)."""
        return self.store.exists(check_digest(digest))

    def intact(self, digest: str) -> bool:
        """Whether the blob is stored and hashes to ``digest`` (reads it all): what an
        upload checks before it says "already there"."""
        return self.store.intact(check_digest(digest))

    # -- for the integrity tools ---------------------------------------------------

    def iter_digests(self) -> Iterator[str]:
        """Every stored blob's digest."""
        return self.store.iter_digests()

    def age(self, digest: str) -> float | None:
        """Seconds since the blob was written (None: the backend cannot tell)."""
        return self.store.age(digest)

    def discard(self, digest: str) -> None:
        """Delete an unreferenced blob (``gc`` only)."""
        self.store.discard(digest)

    def sweep_uploads(self, older_than: float, *, dry_run: bool = True) -> list[str]:
        """Leftovers of killed uploads older than ``older_than`` seconds."""
        return self.store.sweep_uploads(older_than, dry_run=dry_run)
