"""The embedded backend: a client's calls go to the service layer in this process.

The registry is a folder (``.llmreg/``: SQLite and a blob folder, or the database and
store the settings name). SQLModel and Alembic are imported here, on first connect,
never by ``import llmreg``. In the embedded registry every identity holds every role:
access to the registry's files is the trust root.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from llmreg._backend import Backend, Progress
from llmreg.bundle import Bundle
from llmreg.client import Client
from llmreg.diff import BundleDiff
from llmreg.errors import MissingDependencyError, RegistryNotFoundError
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
    ImportReport,
    NameSummary,
    Problem,
    Registration,
    SlotEventInfo,
    SlotStatus,
    TokenInfo,
    VersionInfo,
)

try:
    from llmreg.service.registry import RegistryService
except ImportError as exc:  # pragma: no cover - depends on the install
    raise MissingDependencyError(
        f"the embedded registry needs {exc.name}; pip install 'llmreg'") from exc


def open_embedded(home: Path | None, settings: Settings, create: bool) -> Client:
    """A client over the embedded registry at ``home`` (or where the settings point).

    Example:
        >>> import tempfile
        >>> reg = open_embedded(Path(tempfile.mkdtemp()), Settings(), create=True)
        >>> reg.list()
        []
        >>> reg.close()
    """
    if home is not None:
        path = Path(home)
    elif settings.home is not None:
        path = settings.home
        create = True  # an explicit LLMREG_HOME is an instruction to use that folder
    else:
        path = settings.resolve_home()
    if not create and not path.is_dir():
        raise RegistryNotFoundError(f"{str(path)!r} is not a registry; run `llmreg init`")
    service = RegistryService.open_home(path, database_url=settings.database_url,
                                        store=settings.store,
                                        policy=find_policy(settings.policy, path))
    return Client(EmbeddedBackend(service, settings=settings, home=path))


class EmbeddedBackend(Backend):
    """Each primitive is one call on the service's parts."""

    def __init__(self, service: RegistryService, *, settings: Settings, home: Path) -> None:
        self.service = service
        self.settings = settings
        self.home = home

    def close(self) -> None:
        self.service.close()

    @property
    def policy(self) -> Policy:
        return self.service.policy

    def actor(self) -> Actor:
        return Actor(self.settings.identity())

    # -- reads ------------------------------------------------------------------------

    def get(self, ref: str) -> Bundle:
        return self.service.versions.get(ref)

    def info(self, ref: str) -> VersionInfo:
        return self.service.versions.resolve(ref)

    def resolve_slot(self, name: str, env: str, *, strict: bool,
                     max_stale: float | None) -> ResolvedBundle:
        info = self.service.versions.slot(name, env)
        return ResolvedBundle(self.service.blobs.read(info.digest), name=info.name,
                              version=info.version, env=self.policy.canonical_env(env),
                              digest=info.digest)

    def history(self, name: str) -> list[VersionInfo]:
        return self.service.versions.history(name)

    def list_names(self) -> list[NameSummary]:
        return self.service.versions.list_names()

    def changelog(self, name: str) -> list[ChangelogEntry]:
        return self.service.versions.changelog(name)

    def stored_diff(self, info: VersionInfo) -> dict[str, Any] | None:
        return self.service.versions.stored_diff(info)

    def diff_refs(self, old: str, new: str) -> BundleDiff:
        versions = self.service.versions
        return versions.diff(versions.get(old), versions.get(new))

    def status(self, name: str | None, env: str | None) -> list[SlotStatus]:
        return self.service.lifecycle.status(name, env)

    def slot_history(self, name: str, env: str) -> list[SlotEventInfo]:
        return self.service.lifecycle.slot_history(name, env)

    def evidence(self, ref: str) -> list[EvidenceInfo]:
        return self.service.lifecycle.evidence_for(self.info(ref).digest)

    def check_gates(self, ref: str, env: str) -> GateReport:
        return self.service.lifecycle.check_gates(ref, env)

    def audit(self, name: str | None, limit: int | None) -> list[AuditInfo]:
        return self.service.lifecycle.audit_log(name, limit)

    def verify_audit(self, head: str | None) -> int:
        return self.service.lifecycle.verify_audit(head)

    # -- blobs -----------------------------------------------------------------------

    def put_file(self, path: Path, progress: Progress | None) -> tuple[str, int]:
        with path.open("rb") as fh:
            reader = _Progress(fh, path.name, path.stat().st_size, progress)
            desc = self.service.blobs.put_stream(reader)  # type: ignore[arg-type]
        return desc.digest, desc.size

    def put_bytes(self, data: bytes) -> str:
        return self.service.blobs.put_bytes(data).digest

    def blob_chunks(self, digest: str, offset: int) -> Iterator[bytes]:
        with self.service.blobs.open(digest) as fh:
            skip = offset
            while skip > 0:  # resuming: the caller re-hashes the whole file at the end
                data = fh.read(min(skip, 1024 * 1024))
                if not data:
                    return
                skip -= len(data)
            while chunk := fh.read(1024 * 1024):
                yield chunk

    # -- writes ----------------------------------------------------------------------

    def register(self, bundle: Bundle, name: str, message: str,
                 provenance: dict[str, Any], *, author: str) -> Registration:
        return self.service.versions.register(bundle, name=name, message=message,
                                              author=author, provenance=provenance)

    def attach_evidence(self, ref: str, *, type: str, suite: str, metrics: dict[str, Any],
                        report_digest: str | None, links: list[str],
                        passed: bool | None) -> EvidenceInfo:
        return self.service.lifecycle.attach_evidence(
            ref, type=type, suite=suite, metrics=metrics, actor=self.actor(),
            report_digest=report_digest, links=links, passed=passed)

    def approve(self, ref: str, env: str, comment: str) -> ApprovalInfo:
        return self.service.lifecycle.approve(ref, env, actor=self.actor(), comment=comment)[0]

    def promote(self, ref: str, env: str, reason: str,
                expect_current: str | None) -> SlotEventInfo:
        return self.service.lifecycle.promote(ref, env, actor=self.actor(), reason=reason,
                                              expect_current=expect_current)[0]

    def rollback(self, name: str, env: str, reason: str) -> SlotEventInfo:
        return self.service.lifecycle.rollback(name, env, actor=self.actor(), reason=reason)

    def retire(self, ref: str, status: str, reason: str) -> VersionInfo:
        return self.service.lifecycle.retire(ref, status, actor=self.actor(), reason=reason)

    def send_heartbeats(self, beats: list[dict[str, Any]]) -> None:
        self.service.access.record_heartbeats(beats)

    # -- integrity and tokens --------------------------------------------------------

    def verify(self, ref: str) -> list[Problem]:
        return self.service.integrity.verify(ref)

    def fsck(self) -> tuple[int, list[Problem]]:
        return self.service.integrity.fsck()

    def gc(self, dry_run: bool, grace: float) -> list[str]:
        return self.service.integrity.gc(dry_run=dry_run, grace=grace)

    def create_token(self, subject: str, role: str) -> tuple[str, TokenInfo]:
        return self.service.access.create_token(subject, role, created_by=self.actor().name)

    def list_tokens(self) -> list[TokenInfo]:
        return self.service.access.list_tokens()

    def revoke_token(self, token_id: str) -> TokenInfo:
        return self.service.access.revoke_token(token_id, actor=self.actor().name)

    # -- imports -----------------------------------------------------------------------

    def import_mlflow(self, tracking_uri: str, *, map_aliases: dict[str, str],
                      model_map: dict[str, str], default_model: str | None,
                      dry_run: bool) -> ImportReport:
        from llmreg.service.importers.mlflow import (
            MlflowSource,
            blob_sink,
            hash_only,
            plan_mlflow,
        )

        source = MlflowSource(tracking_uri)
        try:
            plan = plan_mlflow(source, self.service.policy, map_aliases=map_aliases,
                               model_map=model_map, default_model=default_model,
                               sink=hash_only if dry_run else blob_sink(self.service.blobs))
        finally:
            source.close()
        return self.service.imports.apply(plan, actor=self.actor(), dry_run=dry_run)


class _Progress:
    """A file wrapper that reports bytes read (for upload progress bars)."""

    def __init__(self, fh: BinaryIO, name: str, total: int, progress: Progress | None) -> None:
        self._fh, self._name, self._total, self._progress = fh, name, total, progress
        self._done = 0

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self._done += len(data)
        if self._progress is not None:
            self._progress(self._name, self._done, self._total)
        return data
