"""The Python client: what training jobs, CI and applications call.

``llmreg.connect()`` opens the embedded registry (``.llmreg/`` found from the current
folder upward, or ``LLMREG_HOME``). The registry's code (SQLModel, Alembic) is
imported here, on first connect, never by ``import llmreg``.

Example:
    >>> import llmreg                                              # doctest: +SKIP
    >>> reg = llmreg.connect()                                     # doctest: +SKIP
    >>> b = reg.log_bundle("bundles/support-rag", message="first")  # doctest: +SKIP
    >>> reg.get("support-rag@1").digest == b.digest                # doctest: +SKIP
    True
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmreg._clientbase import ClientBase
from llmreg.bundle import Bundle
from llmreg.errors import InvalidEvidenceError, MissingDependencyError
from llmreg.names import Ref
from llmreg.policy import Policy, find_policy
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
    SlotEventInfo,
    SlotStatus,
    TokenInfo,
    VersionInfo,
)

if TYPE_CHECKING:
    from llmreg.service.registry import RegistryService


def open_embedded(home: Path | None, settings: Settings, create: bool) -> Client:
    """Open the embedded registry at ``home`` (or the one the settings point to)."""
    if home is not None:
        path = Path(home)
    elif settings.home is not None:
        path = settings.home
        create = True  # an explicit LLMREG_HOME is an instruction to use that folder
    else:
        path = settings.resolve_home()
    if not create and not path.is_dir():
        from llmreg.errors import RegistryNotFoundError

        raise RegistryNotFoundError(f"{str(path)!r} is not a registry; run `llmreg init`")
    try:
        from llmreg.service.registry import RegistryService
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependencyError(
            f"the embedded registry needs {exc.name}; pip install 'llmreg'"
        ) from exc
    policy = find_policy(settings.policy, path)
    service = RegistryService.open_home(path, database_url=settings.database_url,
                                        store=settings.store, policy=policy)
    return Client(service, settings=settings, home=path)


class Client(ClientBase):
    """A connection to the embedded registry. Use :func:`connect` to make one.

    All writes go through the core service layer, which enforces every rule. The
    remote client (:class:`llmreg.remote.RemoteClient`) has the same methods.
    """

    def __init__(self, service: RegistryService, *, settings: Settings, home: Path) -> None:
        self._service = service
        self.settings = settings
        self.home = home

    def close(self) -> None:
        """Send pending heartbeats and release database connections."""
        self.flush_heartbeats()
        self._service.close()

    def get(self, ref: str) -> Bundle:
        """Return the bundle for ``ref`` (``name``, ``name@7``, ``name@sha256:…``, short digest).

        Example:
            >>> reg.get("support-rag@1").render(question="…", context="…")  # doctest: +SKIP
        """
        return self._service.versions.get(ref)

    def info(self, ref: str | Ref) -> VersionInfo:
        """Return which version ``ref`` points to (with its status), without loading it."""
        return self._service.versions.resolve(ref)

    def resolve(self, name: str, env: str | None = None, *, strict: bool = False,
                max_stale: float | None = None) -> ResolvedBundle:
        """The bundle to run: ``resolve("support-rag", env="production")``.

        With ``env``, reads that environment's slot (aliases accepted); an empty slot
        raises :class:`~llmreg.errors.EmptySlotError` naming it. Without, ``name`` is
        any ref. (``strict`` and ``max_stale`` matter for the remote client's cache
        fallback; the embedded registry is never unreachable.)

        Example:
            >>> bundle = reg.resolve("support-rag", env="production")  # doctest: +SKIP
        """
        if env is None:
            return ResolvedBundle.from_bundle(self.get(name))
        info = self._service.versions.slot(name, env)
        return ResolvedBundle(self._service.blobs.read(info.digest), name=info.name,
                              version=info.version, env=self.policy.canonical_env(env),
                              digest=info.digest)

    def _send_heartbeats(self, beats: list[dict[str, Any]]) -> None:
        self._service.access.record_heartbeats(beats)

    def _blob_chunks(self, digest: str, offset: int) -> Iterator[bytes]:
        with self._service.blobs.open(digest) as fh:
            skip = offset
            while skip > 0:  # resuming: the caller re-hashes the whole file at the end
                data = fh.read(min(skip, 1024 * 1024))
                if not data:
                    return
                skip -= len(data)
            while chunk := fh.read(1024 * 1024):
                yield chunk

    def _put_file(self, path: Path, progress: Callable[[str, int, int], None] | None
                  ) -> tuple[str, int]:
        total = path.stat().st_size
        with path.open("rb") as fh:
            reader = _Progress(fh, path.name, total, progress)
            desc = self._service.blobs.put_stream(reader)  # type: ignore[arg-type]
        return desc.digest, desc.size

    def _put_bytes(self, data: bytes) -> str:
        return self._service.blobs.put_bytes(data).digest

    def _get_blob(self, digest: str) -> bytes:
        return self._service.blobs.read(digest)

    def _register_bundle(self, bundle: Bundle, name: str, message: str,
                         provenance: dict[str, Any], *, author: str) -> Bundle:
        result = self._service.versions.register(bundle, name=name, message=message, author=author,
                                        provenance=provenance)
        return bundle.with_info(result.version, created=result.created)

    def verify(self, ref: str) -> list[Problem]:
        """Re-hash ``ref``'s manifest and artifacts in the store; the problems found."""
        return self._service.integrity.verify(ref)

    def fsck(self) -> tuple[int, list[Problem]]:
        """Check every blob and reference: (blobs read, problems by digest)."""
        return self._service.integrity.fsck()

    def gc(self, *, dry_run: bool = True, grace: float = 24 * 3600) -> list[str]:
        """Unreferenced blobs older than ``grace`` seconds; deleted unless ``dry_run``."""
        return self._service.integrity.gc(dry_run=dry_run, grace=grace)

    def create_token(self, subject: str, role: str) -> tuple[str, TokenInfo]:
        """Create an API token for the server (the secret is returned once)."""
        return self._service.access.create_token(subject, role, created_by=self.actor.name)

    def list_tokens(self) -> list[TokenInfo]:
        return self._service.access.list_tokens()

    def revoke_token(self, token_id: str) -> TokenInfo:
        return self._service.access.revoke_token(token_id, actor=self.actor.name)

    # -- evidence, approvals, promotion ------------------------------------------------

    @property
    def actor(self) -> Actor:
        """Who this client acts as: ``LLMREG_USER``, else the OS user."""
        return Actor(self.settings.identity())

    @property
    def policy(self) -> Policy:
        """The policy this client's registry enforces."""
        return self._service.policy

    def log_eval(self, ref: str, *, suite: str, metrics: Mapping[str, float],
                 report: str | Path | bytes | None = None, links: list[str] | None = None,
                 passed: bool | None = None) -> EvidenceInfo:
        """Attach an eval result to the digest ``ref`` resolves to.

        Example:
            >>> reg.log_eval("support-rag@3", suite="regression",
            ...              metrics={"accuracy": 0.93})  # doctest: +SKIP
        """
        return self._service.lifecycle.attach_evidence(
            ref, type="eval", suite=suite, metrics=dict(metrics), actor=self.actor,
            report=_read_report(report), links=links, passed=passed)

    def log_shadow_metrics(self, ref: str, *, metrics: Mapping[str, float],
                           report: str | Path | bytes | None = None,
                           links: list[str] | None = None, source: str = "shadow"
                           ) -> EvidenceInfo:
        """Attach traffic-derived shadow metrics (their own evidence type, never an eval)."""
        return self._service.lifecycle.attach_evidence(
            ref, type="shadow-metrics", suite=source, metrics=dict(metrics), actor=self.actor,
            report=_read_report(report), links=links)

    def evidence(self, ref: str) -> list[EvidenceInfo]:
        """All evidence attached to the digest ``ref`` resolves to."""
        return self._service.lifecycle.evidence_for(self.info(ref).digest)

    def approve(self, ref: str, *, to: str, comment: str = "") -> ApprovalInfo:
        """Approve ``ref`` for environment ``to`` as :attr:`actor`."""
        return self._service.lifecycle.approve(ref, to, actor=self.actor, comment=comment)[0]

    def check_gates(self, ref: str, *, to: str) -> GateReport:
        """Judge every gate of promoting ``ref`` to ``to`` without moving anything."""
        return self._service.lifecycle.check_gates(ref, to)

    def promote(self, ref: str, *, to: str, reason: str,
                expect_current: str | None = None) -> SlotEventInfo:
        """Promote ``ref`` to ``to`` if every gate is met (else :class:`GateFailedError`).

        Example:
            >>> reg.promote("support-rag@3", to="production", reason="beats v2",
            ...             expect_current="support-rag@2")  # doctest: +SKIP
        """
        return self._service.lifecycle.promote(ref, to, actor=self.actor, reason=reason,
                                     expect_current=expect_current)[0]

    def rollback(self, name: str, *, env: str, reason: str) -> SlotEventInfo:
        """Return ``env``'s slot of ``name`` to the version it held before."""
        return self._service.lifecycle.rollback(name, env, actor=self.actor, reason=reason)

    def deprecate(self, ref: str, *, reason: str = "") -> VersionInfo:
        """Mark a version that runs nowhere as deprecated."""
        return self._service.lifecycle.deprecate(ref, actor=self.actor, reason=reason)

    def archive(self, ref: str, *, reason: str = "") -> VersionInfo:
        """Archive a version that runs nowhere: frozen, tagged, never deleted."""
        return self._service.lifecycle.archive(ref, actor=self.actor, reason=reason)

    def status(self, name: str | None = None, env: str | None = None) -> list[SlotStatus]:
        """What runs where: one row per environment slot."""
        return self._service.lifecycle.status(name, env)

    def slot_history(self, name: str, env: str) -> list[SlotEventInfo]:
        """Every move of one slot: who, when, from which version, why."""
        return self._service.lifecycle.slot_history(name, env)

    def audit(self, name: str | None = None, limit: int | None = None) -> list[AuditInfo]:
        """Audit-log entries, oldest first."""
        return self._service.lifecycle.audit_log(name, limit)

    def verify_audit(self) -> int:
        """Recompute the audit hash chain; return the entry count or raise naming the break."""
        return self._service.lifecycle.verify_audit()

    def changelog(self, name: str) -> list[ChangelogEntry]:
        """The release history of ``name``, newest first: message, diff summary, evidence."""
        return self._service.versions.changelog(name)

    def stored_diff(self, info: VersionInfo) -> dict[str, Any] | None:
        """The full semantic diff recorded when ``info`` was registered (JSON form)."""
        return self._service.versions.stored_diff(info)

    def history(self, name: str) -> list[VersionInfo]:
        """Every version of ``name``, oldest first."""
        return self._service.versions.history(name)

    def list(self) -> list[NameSummary]:
        """Every registered name with its latest version."""
        return self._service.versions.list_names()


def _read_report(report: str | Path | bytes | None) -> bytes | None:
    if report is None or isinstance(report, bytes):
        return report
    try:
        return Path(report).read_bytes()
    except OSError as exc:
        raise InvalidEvidenceError(f"report {str(report)!r} cannot be read: {exc.strerror}"
                                   ) from None


class _Progress:
    """A file wrapper that reports bytes read (for upload progress bars)."""

    def __init__(self, fh: Any, name: str, total: int,
                 progress: Callable[[str, int, int], None] | None) -> None:
        self._fh, self._name, self._total, self._progress = fh, name, total, progress
        self._done = 0

    def read(self, n: int = -1) -> bytes:
        data: bytes = self._fh.read(n)
        self._done += len(data)
        if self._progress is not None:
            self._progress(self._name, self._done, self._total)
        return data
