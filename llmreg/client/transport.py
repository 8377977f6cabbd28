"""HTTP plumbing of the remote client: error codes, the cache folder, and the standard
library connection used on the resolve path (so an application's start pays neither
for httpx nor for pydantic). That connection reads with a cap and a total deadline
(:mod:`llmreg.client.limits`): the deadline is applied at every read of the socket, the
status line and headers included."""

from __future__ import annotations

import functools
import http.client
import inspect
import io
import os
import socket
import sys
import threading
from pathlib import Path
from urllib.parse import quote, urlsplit

from llmreg import errors
from llmreg.client.limits import CHUNK, Deadline, DeadlineError, TooLongError
from llmreg.errors import LLMRegError


def _codes() -> dict[str, type[LLMRegError]]:
    out: dict[str, type[LLMRegError]] = {}
    for _, cls in inspect.getmembers(errors, inspect.isclass):
        if issubclass(cls, LLMRegError):
            out[cls.code] = cls
    return out


CODES = _codes()


def default_cache() -> Path:
    """The user cache folder: ``$XDG_CACHE_HOME/llmreg`` or the platform's equivalent."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "llmreg"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "llmreg" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llmreg"


def default_key() -> Path:
    """Where the cache's key lives unless ``LLMREG_CACHE_KEY`` says: the user state folder
    (``$XDG_STATE_HOME/llmreg/cache.key``, ``~/.local/state/llmreg/cache.key``, or the
    platform's equivalent) — never inside the cache folder it protects.

    Example:
        >>> default_key().name
        'cache.key'
    """
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "llmreg" / "cache.key"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "llmreg" / "cache.key"
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state) / "llmreg" / "cache.key"


def quote_path(value: str) -> str:
    """Quote a name or ref for a URL path (keeping `@` and `:` readable)."""
    return quote(value, safe="@:")


class _DeadlineReader(io.RawIOBase):
    """A socket's reads, each with the time left before the deadline as its timeout."""

    def __init__(self, sock: socket.socket, deadline: Deadline, per_read: float,
                 opened: io.BufferedIOBase) -> None:
        self._sock, self._deadline, self._per_read = sock, deadline, per_read
        # The file http.client opened on the socket: held (unread) until this one closes,
        # since that reference is what keeps a socket the connection dropped open.
        self._opened = opened

    def close(self) -> None:
        self._opened.close()
        super().close()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        timeout = self._deadline.timeout(self._per_read)
        self._sock.settimeout(timeout)
        try:
            return self._sock.recv_into(buffer)
        except TimeoutError:
            if timeout < self._per_read:  # the deadline's time ran out, not one read's
                raise DeadlineError(self._deadline.seconds) from None
            raise


class _Response(http.client.HTTPResponse):
    """http.client's response, reading through a :class:`_DeadlineReader`."""

    def __init__(self, sock: socket.socket, *args: object, deadline: Deadline,
                 per_read: float, **kwargs: object) -> None:
        super().__init__(sock, *args, **kwargs)  # type: ignore[arg-type]
        self.fp = io.BufferedReader(_DeadlineReader(sock, deadline, per_read, self.fp))


class StdlibHTTP:
    """One keep-alive connection from the standard library, for the resolve path.

    Example:
        >>> http = StdlibHTTP("http://127.0.0.1:8700", {})
        >>> http.get("/v1/resolve/chat/production", {}, limit=1 << 20,
        ...          deadline=Deadline(30))  # doctest: +SKIP
        (200, {...}, b'{...}')
    """

    def __init__(self, url: str, headers: dict[str, str], timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._headers = headers
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def get(self, path: str, headers: dict[str, str], *, limit: int, deadline: Deadline
            ) -> tuple[int, dict[str, str], bytes]:
        """GET ``path``: the status, headers (lower-cased) and body.

        Reading stops once the body is longer than ``limit`` bytes
        (:class:`~llmreg.client.limits.TooLongError`); the connection, the request and
        every read of the answer end by ``deadline``
        (:class:`~llmreg.client.limits.DeadlineError`, an :class:`OSError`). Any other
        transport failure is an :class:`OSError` or :class:`http.client.HTTPException`.
        """
        with self._lock:
            for attempt in (1, 2):  # a kept-alive connection the server closed: retry once
                if self._conn is None:
                    cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                    self._conn = cls(self._host, self._port,
                                     timeout=deadline.timeout(self._timeout))
                conn = self._conn
                response = None
                conn.response_class = functools.partial(  # type: ignore[assignment]
                    _Response, deadline=deadline, per_read=self._timeout)
                try:
                    conn.request("GET", self._prefix + path,
                                 headers={**self._headers, **headers})
                    response = conn.getresponse()
                    body = _read_body(response, limit, path)
                    return (response.status,
                            {k.lower(): v for k, v in response.getheaders()}, body)
                except (OSError, http.client.HTTPException, TooLongError) as exc:
                    if response is not None:  # not held by the connection once it closes
                        response.close()
                    conn.close()  # never reused half-read
                    self._conn = None
                    # Only a kept-alive connection the server had closed is worth one
                    # retry: not a timeout, a deadline or an answer over its cap.
                    if attempt == 2 or isinstance(exc, TooLongError | TimeoutError):
                        raise
            raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _read_body(response: http.client.HTTPResponse, limit: int, path: str) -> bytes:
    parts: list[bytes] = []
    got = 0
    while chunk := response.read(min(CHUNK, limit + 1 - got)):
        got += len(chunk)
        if got > limit:
            raise TooLongError(path, limit)
        parts.append(chunk)
    return b"".join(parts)
