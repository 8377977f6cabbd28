"""Per-chunk hashes of a blob, so that a part of it is verified without reading it all.

A blob is verified once, whole, against its digest; the same pass records the SHA-256
of every :data:`SPAN` bytes (a *chunk table*, 32 bytes per MiB: 2 MiB for 64 GiB).
The table is a function of the content alone, so it stays true for as long as the
digest does. Every later read of a part reads the whole chunks that cover it and checks
each one against the table before any of its bytes leave the store: a changed chunk
raises :class:`~llmreg.errors.IntegrityError` and nothing of it is returned.

The table also records the stored object's *token* (its identity as the backend sees
it: inode, size, mtime and ctime of a file; the ETag of an S3 object) from the pass
that verified it. A read that finds another token verifies the whole blob again first
(once, under a lock) — so a blob that was visibly rewritten is refused cleanly, before
a response starts, and one that rots in place is caught chunk by chunk.

Tables are kept in memory (bounded) and, by backends that can, beside the blobs
(``chunks/sha256/<hex>``), ending with their own SHA-256: a damaged or foreign table is
ignored and rebuilt, never trusted.

Example:
    >>> import io
    >>> from llmreg.bundle.digest import digest_bytes
    >>> data = b"x" * (SPAN + 5)
    >>> table = ChunkTable.build(io.BytesIO(data), digest_bytes(data), "t1")
    >>> table.chunks, ChunkTable.decode(table.encode()) == table
    (2, True)
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import BinaryIO

from llmreg.bundle.digest import ALGORITHM
from llmreg.errors import IntegrityError

SPAN = 1024 * 1024  # the unit a part is verified in (a range reads at most 2 extra)
HASH = 32  # bytes of one SHA-256
CACHE_BYTES = 32 * 1024 * 1024  # chunk hashes kept in memory: 1 TiB of blobs' worth
_MAGIC = b"llmreg-chunks 1\n"


@dataclass(frozen=True)
class ChunkTable:
    """The SHA-256 of each :data:`SPAN` of one verified blob, and the token it had."""

    digest: str
    size: int
    token: str
    hashes: bytes

    @property
    def chunks(self) -> int:
        """How many chunks the blob has (the last one may be short)."""
        return len(self.hashes) // HASH

    @classmethod
    def build(cls, raw: BinaryIO, digest: str, token: str) -> ChunkTable:
        """Read ``raw`` to its end, hashing it whole and per chunk; the table, or
        :class:`IntegrityError` naming ``digest`` when the bytes are not the blob's.

        Example:
            >>> import io
            >>> ChunkTable.build(io.BytesIO(b"abc"), "sha256:00", "t")
            Traceback (most recent call last):
            ...
            llmreg.errors.IntegrityError: blob sha256:00 is corrupt: ...
        """
        whole = hashlib.sha256()
        hashes = bytearray()
        seen = 0
        while chunk := _read_full(raw, SPAN):
            whole.update(chunk)
            hashes += hashlib.sha256(chunk).digest()
            seen += len(chunk)
        found = f"{ALGORITHM}:{whole.hexdigest()}"
        if found != digest:  # the digest covers the size: no separate check
            raise corrupt(digest, f"expected digest {digest}, found {found} ({seen} bytes)")
        return cls(digest, seen, token, bytes(hashes))

    def check(self, index: int, chunk: bytes) -> None:
        """Raise :class:`IntegrityError` unless ``chunk`` is chunk ``index`` of the blob.

        Example:
            >>> t = ChunkTable("sha256:00", 1, "", hashlib.sha256(b"a").digest())
            >>> t.check(0, b"a")
            >>> t.check(0, b"b")
            Traceback (most recent call last):
            ...
            llmreg.errors.IntegrityError: blob sha256:00 is corrupt: bytes 0-0 changed ...
        """
        want = min(SPAN, self.size - index * SPAN)
        if len(chunk) != want or hashlib.sha256(chunk).digest() != \
                self.hashes[index * HASH:(index + 1) * HASH]:
            first = index * SPAN
            raise corrupt(self.digest, f"bytes {first}-{first + want - 1} changed since it "
                          "was verified")

    def encode(self) -> bytes:
        """The stored form: a header line, the hashes, then the SHA-256 of both."""
        head = json.dumps({"digest": self.digest, "size": self.size, "token": self.token,
                           "span": SPAN}, sort_keys=True).encode() + b"\n"
        body = _MAGIC + head + self.hashes
        return body + hashlib.sha256(body).digest()

    @classmethod
    def decode(cls, data: bytes) -> ChunkTable | None:
        """A table from :meth:`encode`'s bytes; None when they are damaged or foreign.

        Example:
            >>> ChunkTable.decode(b"not a table") is None
            True
        """
        body, tail = data[:-HASH], data[-HASH:]
        if not body.startswith(_MAGIC) or hashlib.sha256(body).digest() != tail:
            return None
        head, _, hashes = body[len(_MAGIC):].partition(b"\n")
        try:
            meta = json.loads(head)
            table = cls(str(meta["digest"]), int(meta["size"]), str(meta["token"]), hashes)
        except (ValueError, KeyError, TypeError):
            return None
        if meta.get("span") != SPAN or table.chunks != -(-table.size // SPAN):
            return None
        return table


class TableCache:
    """Chunk tables in memory, least recently used first out, bounded in bytes; and a
    lock per digest so that concurrent readers verify a blob once, not each.

    Example:
        >>> cache = TableCache(limit=64)
        >>> cache.put(ChunkTable("sha256:00", 1, "t", b"h" * HASH))
        >>> cache.get("sha256:00").token, cache.get("sha256:01")
        ('t', None)
    """

    def __init__(self, limit: int = CACHE_BYTES) -> None:
        self.limit = limit
        self._tables: OrderedDict[str, ChunkTable] = OrderedDict()
        self._bad: dict[str, str] = {}  # digest -> token of a copy found corrupt
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> ChunkTable | None:
        """The table of ``digest``, if it is kept."""
        with self._lock:
            table = self._tables.get(digest)
            if table is not None:
                self._tables.move_to_end(digest)
            return table

    def put(self, table: ChunkTable) -> None:
        """Keep ``table``, dropping the least recently used past the limit."""
        with self._lock:
            self._tables[table.digest] = table
            self._tables.move_to_end(table.digest)
            self._bad.pop(table.digest, None)
            used = sum(len(t.hashes) for t in self._tables.values())
            while used > self.limit and len(self._tables) > 1:
                _, dropped = self._tables.popitem(last=False)
                used -= len(dropped.hashes)

    def mark_bad(self, digest: str, token: str) -> None:
        """Remember that the copy with ``token`` failed: it is not hashed again."""
        with self._lock:
            self._bad[digest] = token
            if len(self._bad) > 4096:  # bounded: forget the oldest
                self._bad.pop(next(iter(self._bad)))

    def is_bad(self, digest: str, token: str) -> bool:
        """Whether the copy with ``token`` was found corrupt already."""
        with self._lock:
            return token != "" and self._bad.get(digest) == token

    def lock(self, digest: str) -> threading.Lock:
        """The lock held while ``digest`` is verified whole."""
        with self._lock:
            if len(self._locks) > 4096:
                self._locks = {d: lk for d, lk in self._locks.items() if lk.locked()}
            return self._locks.setdefault(digest, threading.Lock())


def corrupt(digest: str, what: str) -> IntegrityError:
    """The error for a stored blob whose bytes are not its digest's."""
    return IntegrityError(f"blob {digest} is corrupt: {what}; restore it from a backup "
                          "or register the content again")


def _read_full(raw: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes: fewer only at the end of the stream (a socket may return less
    per read)."""
    parts = []
    while n > 0 and (chunk := raw.read(n)):
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)
