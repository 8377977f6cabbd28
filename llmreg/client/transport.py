"""HTTP plumbing of the remote client: error codes, the cache folder, and the standard
library connection used on the resolve path (so an application's start pays neither
for httpx nor for pydantic)."""

from __future__ import annotations

import http.client
import inspect
import os
import sys
import threading
from pathlib import Path
from urllib.parse import quote, urlsplit

from llmreg import errors
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


def quote_path(value: str) -> str:
    """Quote a name or ref for a URL path (keeping `@` and `:` readable)."""
    return quote(value, safe="@:")


class StdlibHTTP:
    """One keep-alive connection from the standard library, for the resolve path."""

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

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            for attempt in (1, 2):  # a kept-alive connection the server closed: retry once
                if self._conn is None:
                    cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                    self._conn = cls(self._host, self._port, timeout=self._timeout)
                try:
                    self._conn.request("GET", self._prefix + path,
                                       headers={**self._headers, **headers})
                    response = self._conn.getresponse()
                    body = response.read()
                    return (response.status,
                            {k.lower(): v for k, v in response.getheaders()}, body)
                except (OSError, http.client.HTTPException):
                    self._conn.close()
                    self._conn = None
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
