"""The interface under :class:`~llmreg.client.core.Client`: what a registry must do for it.

A client's public methods, their argument handling and their docstrings live once, in
:class:`~llmreg.client.core.Client`. Under it sits a backend: the service in this process
(:class:`~llmreg.client.embedded.EmbeddedBackend`), a server over HTTP
(:class:`~llmreg.client.remote.HTTPBackend`), or a signed static mirror
(:class:`~llmreg.client.mirror_reader.MirrorBackend`). The interface is narrow, like
httpx's ``BaseTransport.handle_request``: one :meth:`Backend.call` runs any operation of
the table (:data:`llmreg.contract.operations.OPERATIONS`), and a few primitives carry
what is not a request and an answer — bytes in and out, and the resolve hot path, which
must not import pydantic or httpx. A fake backend for a test is a few lines.

Example:
    >>> sorted(m for m in vars(Backend) if not m.startswith("_"))  # doctest: +NORMALIZE_WHITESPACE
    ['actor', 'blob_chunks', 'call', 'close', 'get', 'home', 'policy', 'put_bytes',
     'put_file', 'resolve_ref', 'resolve_slot', 'url']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from llmreg.bundle.resolved import ResolvedBundle
    from llmreg.bundle.schema import Bundle
    from llmreg.policy import Policy
    from llmreg.settings import Settings
    from llmreg.types import Actor

Progress = Callable[[str, int, int], None]


class Backend(Protocol):
    """Where a client's calls go. Implementations subclass it explicitly, so mypy refuses
    one that misses a member. What each operation does is documented once, on the
    :class:`~llmreg.client.core.Client` method that calls it and on its handler."""

    settings: Settings
    home: Path | None = None  # the embedded registry's folder
    url: str | None = None  # the server's or the mirror's URL

    def call(self, operation: str, /, **args: Any) -> Any:
        """Run the operation of that name with its inputs (path, query and body fields,
        as keyword arguments) and return its declared response."""
        ...

    @property
    def policy(self) -> Policy: ...
    def actor(self) -> Actor: ...
    def close(self) -> None: ...

    # -- what is not one request and one answer -------------------------------------------
    def get(self, ref: str) -> Bundle: ...
    def resolve_slot(self, name: str, env: str, *, strict: bool,
                     max_stale: float | None) -> ResolvedBundle: ...
    def resolve_ref(self, ref: str) -> ResolvedBundle: ...
    def put_file(self, path: Path, progress: Progress | None) -> tuple[str, int]: ...
    def put_bytes(self, data: bytes) -> str: ...
    def blob_chunks(self, digest: str, offset: int) -> Iterator[bytes]: ...
