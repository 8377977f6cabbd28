"""How much a client reads, and for how long: a cap per file and a total deadline.

Every answer a client reads over a network — a signed mirror's metadata and files, a
server's resolve answer, manifest or API answer — is read in chunks and refused as soon
as it is longer than its cap, never read whole first. The cap is the length the mirror's
signed metadata lists for that file where TUF lists one, else the maximum for its kind:

==========================  ===========  =================================================
file                        cap          why
==========================  ===========  =================================================
``root.json`` (each)        512 KiB      a few keys and signatures
``timestamp.json``          16 KiB       one hash and version of the snapshot
``snapshot.json``           4 MiB        one line per targets role
``targets.json`` and the    32 MiB       one entry per slot pointer, name index and
``manifests`` role                       manifest
a bundle manifest           16 MiB       the server's request-body limit (LLMREG_MAX_BODY)
a server's API answer       64 MiB       histories and lists of a large registry
an artifact (``pull``)      its size     the size its reference in the manifest gives
==========================  ===========  =================================================

A :class:`Deadline` bounds the whole of one resolve (or one request): connecting,
sending, the status line, headers and body, every file of a mirror refresh included.
It is ``LLMREG_READ_DEADLINE`` seconds (30 by default), enforced at every read of the
socket on the standard-library transport, so an answer that drips a byte every few
seconds ends at the deadline, not at the next quiet period.

Example:
    >>> deadline = Deadline(30.0)
    >>> 29.0 < deadline.remaining() <= 30.0
    True
    >>> read_capped([b"abc", b"def"], 6, deadline, "an answer")
    b'abcdef'
"""

from __future__ import annotations

import time
from collections.abc import Iterable

KiB, MiB = 1024, 1024 * 1024
MAX_ROOT = 512 * KiB
MAX_TIMESTAMP = 16 * KiB
MAX_SNAPSHOT = 4 * MiB
MAX_TARGETS = 32 * MiB
MAX_MANIFEST = 16 * MiB
MAX_ANSWER = 64 * MiB
CHUNK = 64 * KiB  # one read of the socket or file, at most


class TooLongError(Exception):
    """An answer longer than its cap; reading stopped at ``limit + 1`` bytes."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"{what} is longer than {limit} bytes")
        self.limit = limit


class DeadlineError(TimeoutError):
    """The total deadline passed. A :class:`TimeoutError`, hence an :class:`OSError`:
    callers that treat a broken connection as an outage treat this one alike."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no whole answer within the {seconds:g}s deadline "
                         "(LLMREG_READ_DEADLINE)")


class Deadline:
    """A total time budget, started when made.

    Example:
        >>> Deadline(0.0).remaining()
        0.0
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left, never below 0."""
        return max(0.0, self._end - time.monotonic())

    def timeout(self, per_read: float) -> float:
        """The timeout for the next blocking step: ``per_read``, cut to what is left.

        Raises :class:`DeadlineError` when nothing is left.

        Example:
            >>> Deadline(30.0).timeout(5.0)
            5.0
        """
        left = self.remaining()
        if left <= 0:
            raise DeadlineError(self.seconds)
        return min(per_read, left)


def read_capped(chunks: Iterable[bytes], limit: int, deadline: Deadline, what: str) -> bytes:
    """Join ``chunks`` into at most ``limit`` bytes, checking ``deadline`` as each
    arrives: :class:`TooLongError` as soon as there are more, :class:`DeadlineError` when
    time is up (the iterator is not read further either way).

    Example:
        >>> read_capped(iter([b"ab", b"c"]), 2, Deadline(5), "'x.json'")
        Traceback (most recent call last):
        ...
        llmreg.client.limits.TooLongError: 'x.json' is longer than 2 bytes
    """
    parts: list[bytes] = []
    got = 0
    for chunk in chunks:
        deadline.timeout(1.0)
        got += len(chunk)
        if got > limit:
            raise TooLongError(what, limit)
        parts.append(chunk)
    return b"".join(parts)
