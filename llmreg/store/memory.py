"""An in-memory blob store, for tests and throwaway registries."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from typing import BinaryIO

from llmreg.bundle.digest import check_digest, format_digest, new_hasher
from llmreg.errors import BlobNotFoundError, DigestInvalidError
from llmreg.store.base import CHUNK, BlobStore, Descriptor, VerifyingReader


class MemoryStore(BlobStore):
    """Blobs in a dict. ``corrupt()`` lets tests damage one.

    Example:
        >>> s = MemoryStore(); d = s.put_bytes(b"x"); s.exists(d.digest)
        True
    """

    def __init__(self) -> None:
        self._blobs: dict[str, bytes] = {}
        self._written: dict[str, float] = {}
        self._versions: dict[str, int] = {}  # bumped on every write: the token
        self._lock = threading.Lock()

    def put_stream(self, stream: BinaryIO, *, expected_digest: str | None = None) -> Descriptor:
        hasher = new_hasher()
        parts = []
        while chunk := stream.read(CHUNK):
            hasher.update(chunk)
            parts.append(chunk)
        digest = format_digest(hasher)
        if expected_digest is not None and digest != expected_digest:
            raise DigestInvalidError(f"upload for {expected_digest} hashes to {digest}; refused")
        data = b"".join(parts)
        with self._lock:
            self._blobs[digest] = data  # the right bytes replace a damaged copy
            self._versions[digest] = self._versions.get(digest, 0) + 1
            self._written.setdefault(digest, time.time())
        return Descriptor(digest, len(data))

    def open(self, digest: str) -> BinaryIO:
        data = self._get(digest)
        return VerifyingReader(io.BytesIO(data), digest, len(data))  # type: ignore[return-value]

    def exists(self, digest: str) -> bool:
        return check_digest(digest) in self._blobs

    def size(self, digest: str) -> int:
        return len(self._get(digest))

    def iter_digests(self) -> Iterator[str]:
        yield from sorted(self._blobs)

    def discard(self, digest: str) -> None:
        """Remove a blob (garbage collection and cache repair only)."""
        self._blobs.pop(digest, None)

    def age(self, digest: str) -> float | None:
        written = self._written.get(digest)
        return None if written is None else time.time() - written

    def corrupt(self, digest: str, data: bytes) -> None:
        """Replace a blob's bytes without changing its key (tests only)."""
        self._blobs[digest] = data
        self._versions[digest] = self._versions.get(digest, 0) + 1

    def open_part(self, digest: str, start: int, stop: int | None = None
                  ) -> tuple[BinaryIO, str]:
        data = self._get(digest)
        token = f"v{self._versions.get(digest, 0)}"
        return io.BytesIO(data[start:stop]), token

    def _get(self, digest: str) -> bytes:
        try:
            return self._blobs[check_digest(digest)]
        except KeyError:
            raise BlobNotFoundError(f"blob {digest} is not in the store") from None
