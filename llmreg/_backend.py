"""The interface under :class:`~llmreg.client.Client`: what a registry must do for it.

A client's public methods, their argument handling and their docstrings live once, in
:class:`~llmreg.client.Client`. Under it sits one of two backends, each a subclass of
:class:`Backend`: :class:`~llmreg._embedded.EmbeddedBackend` calls the service layer in
this process, :class:`~llmreg.remote.HTTPBackend` speaks to ``llmreg serve``. Each
method here is a primitive — one service call or one HTTP request — and the type keeps
the two in step: a backend that misses one cannot be instantiated, and mypy says so.

Example:
    >>> import llmreg
    >>> sorted(Backend.__abstractmethods__)[:3]
    ['actor', 'approve', 'attach_evidence']
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmreg.bundle import Bundle
    from llmreg.diff import BundleDiff
    from llmreg.policy import Policy
    from llmreg.resolved import ResolvedBundle
    from llmreg.settings import Settings
    from llmreg.types import (
        Actor,
        ApprovalInfo,
        AuditInfo,
        ChangelogEntry,
        EvidenceInfo,
        GateReport,
        NameSummary,
        Problem,
        Registration,
        SlotEventInfo,
        SlotStatus,
        TokenInfo,
        VersionInfo,
    )

Progress = Callable[[str, int, int], None]


class Backend(abc.ABC):
    """Where a client's calls go: the service in-process, or a server over HTTP."""

    settings: Settings
    home: Path | None = None  # the embedded registry's folder
    url: str | None = None  # the server's URL

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    @property
    @abc.abstractmethod
    def policy(self) -> Policy:
        """The policy the registry enforces."""

    @abc.abstractmethod
    def actor(self) -> Actor:
        """Who this connection acts as."""

    # -- reads ------------------------------------------------------------------------

    @abc.abstractmethod
    def get(self, ref: str) -> Bundle:
        """The verified bundle ``ref`` points to, with its version info."""

    @abc.abstractmethod
    def info(self, ref: str) -> VersionInfo:
        """The version ``ref`` points to."""

    @abc.abstractmethod
    def resolve_slot(self, name: str, env: str, *, strict: bool,
                     max_stale: float | None) -> ResolvedBundle:
        """What an environment slot holds: the application's start-up path."""

    @abc.abstractmethod
    def history(self, name: str) -> list[VersionInfo]:
        """Every version of ``name``, oldest first."""

    @abc.abstractmethod
    def list_names(self) -> list[NameSummary]:
        """Every registered name."""

    @abc.abstractmethod
    def changelog(self, name: str) -> list[ChangelogEntry]:
        """The release history of ``name``, newest first."""

    @abc.abstractmethod
    def stored_diff(self, info: VersionInfo) -> dict[str, Any] | None:
        """The diff stored with ``info`` at registration."""

    @abc.abstractmethod
    def diff_refs(self, old: str, new: str) -> BundleDiff:
        """The semantic diff of two refs, computed where the bundles are."""

    @abc.abstractmethod
    def status(self, name: str | None, env: str | None) -> list[SlotStatus]:
        """One row per environment slot."""

    @abc.abstractmethod
    def slot_history(self, name: str, env: str) -> list[SlotEventInfo]:
        """Every move of one slot."""

    @abc.abstractmethod
    def evidence(self, ref: str) -> list[EvidenceInfo]:
        """Evidence attached to ``ref``'s digest."""

    @abc.abstractmethod
    def check_gates(self, ref: str, env: str) -> GateReport:
        """Every gate of moving ``ref`` to ``env``, judged, nothing moved."""

    @abc.abstractmethod
    def audit(self, name: str | None, limit: int | None) -> list[AuditInfo]:
        """Audit entries, oldest first."""

    @abc.abstractmethod
    def verify_audit(self) -> int:
        """The audit chain's length once verified."""

    # -- blobs -----------------------------------------------------------------------

    @abc.abstractmethod
    def put_file(self, path: Path, progress: Progress | None) -> tuple[str, int]:
        """Store a file as a blob, streamed; its digest and size."""

    @abc.abstractmethod
    def put_bytes(self, data: bytes) -> str:
        """Store bytes as a blob; their digest."""

    @abc.abstractmethod
    def blob_chunks(self, digest: str, offset: int) -> Iterator[bytes]:
        """A blob's bytes from ``offset`` on (the caller verifies the whole)."""

    # -- writes ----------------------------------------------------------------------

    @abc.abstractmethod
    def register(self, bundle: Bundle, name: str, message: str,
                 provenance: dict[str, Any], *, author: str) -> Registration:
        """Register a bundle whose artifacts are stored already."""

    @abc.abstractmethod
    def attach_evidence(self, ref: str, *, type: str, suite: str, metrics: dict[str, Any],
                        report_digest: str | None, links: list[str],
                        passed: bool | None) -> EvidenceInfo:
        """Attach evidence (its report uploaded first, as a blob)."""

    @abc.abstractmethod
    def approve(self, ref: str, env: str, comment: str) -> ApprovalInfo:
        """Approve ``ref`` for ``env`` as :meth:`actor`."""

    @abc.abstractmethod
    def promote(self, ref: str, env: str, reason: str,
                expect_current: str | None) -> SlotEventInfo:
        """Move the slot if every gate is met."""

    @abc.abstractmethod
    def rollback(self, name: str, env: str, reason: str) -> SlotEventInfo:
        """Return a slot to the version it held before."""

    @abc.abstractmethod
    def retire(self, ref: str, status: str, reason: str) -> VersionInfo:
        """Deprecate or archive a version that runs nowhere."""

    @abc.abstractmethod
    def send_heartbeats(self, beats: list[dict[str, Any]]) -> None:
        """Record served-request counts."""

    # -- integrity and tokens --------------------------------------------------------

    @abc.abstractmethod
    def verify(self, ref: str) -> list[Problem]:
        """Re-hash one version's blobs."""

    @abc.abstractmethod
    def fsck(self) -> tuple[int, list[Problem]]:
        """Check every blob and reference."""

    @abc.abstractmethod
    def gc(self, dry_run: bool, grace: float) -> list[str]:
        """Collect unreferenced blobs older than ``grace`` seconds."""

    @abc.abstractmethod
    def create_token(self, subject: str, role: str) -> tuple[str, TokenInfo]:
        """A new token and its record."""

    @abc.abstractmethod
    def list_tokens(self) -> list[TokenInfo]:
        """Every token."""

    @abc.abstractmethod
    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token."""
