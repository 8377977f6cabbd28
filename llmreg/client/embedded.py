"""The embedded backend: a client's calls go to the service layer in this process.

The registry is a folder (``.llmreg/``: SQLite and a blob folder, or the database and
store the settings name). In the embedded registry every identity holds every role:
access to the registry's files is the trust root.

Reads an application makes at startup — ``resolve(name, env=…)``, ``resolve(ref)``,
``get(ref)`` — go first to :class:`~llmreg.db.readonly.ReadOnlyRegistry` (the standard
library's ``sqlite3``, read-only), so that they import neither SQLAlchemy, SQLModel nor
(``get`` aside, whose :class:`~llmreg.bundle.schema.Bundle` is a pydantic model) pydantic.
Everything else, and any read the fast path misses, builds the ORM-backed
:class:`~llmreg.service.registry.RegistryService` on first use; opening it migrates
the database, as ever. A registry elsewhere than the folder (``LLMREG_DATABASE_URL``,
``LLMREG_STORE=s3://…``) or at an older schema revision uses the service from the start.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from llmreg.bundle.names import check_name, parse_ref
from llmreg.bundle.resolved import ResolvedBundle
from llmreg.client.backend import Backend, Progress
from llmreg.client.core import Client
from llmreg.db.readonly import ReadOnlyRegistry, VersionRow
from llmreg.errors import MissingDependencyError, RegistryNotFoundError
from llmreg.settings import Settings

if TYPE_CHECKING:
    from llmreg.bundle.diff import BundleDiff
    from llmreg.bundle.schema import Bundle
    from llmreg.policy import Policy
    from llmreg.service.registry import RegistryService
    from llmreg.types import (
        Actor,
        AlertInfo,
        ApprovalInfo,
        AuditInfo,
        ChangelogEntry,
        DeliveryInfo,
        DeprecationReport,
        DriftItem,
        EnvironmentInfo,
        EvidenceInfo,
        GateReport,
        ImportReport,
        JobRunInfo,
        NameSummary,
        OwnerInfo,
        Problem,
        Registration,
        ServedInfo,
        SlotEventInfo,
        SlotStatus,
        TokenInfo,
        VersionInfo,
        WebhookInfo,
    )

POLICY_FILENAME = "llmreg-policy.yaml"  # llmreg.policy.POLICY_FILENAME, without pydantic


def open_embedded(home: Path | None, settings: Settings, create: bool) -> Client:
    """A client over the embedded registry at ``home`` (or where the settings point).

    Example:
        >>> import tempfile
        >>> reg = open_embedded(Path(tempfile.mkdtemp()), Settings(), create=True)
        >>> reg.list()
        []
        >>> reg.close()
    """
    path = Path(home) if home is not None else settings.resolve_home()
    if not create and not is_registry(path, settings):
        # Only `llmreg init` (or create=True) makes a registry: a mistyped --registry,
        # connect(path) or LLMREG_HOME must not silently answer "nothing here".
        raise RegistryNotFoundError(
            f"{str(path)!r} is not a registry; run `llmreg init` to create one there")
    reader = None
    store = settings.store
    if settings.database_url is None and not (store or "").startswith("s3://"):
        reader = ReadOnlyRegistry.open(path, Path(store) if store else None)
    backend = EmbeddedBackend(None, settings=settings, home=path, reader=reader)
    if reader is None:
        backend.service  # noqa: B018 - create or migrate the registry now, as connect did
    return Client(backend)


def is_registry(path: Path, settings: Settings) -> bool:
    """Whether ``path`` holds a registry ``llmreg init`` made.

    With the default SQLite database that is its ``registry.db``; with an external
    database (``LLMREG_DATABASE_URL``) the database itself is the registry.

    Example:
        >>> import tempfile
        >>> is_registry(Path(tempfile.mkdtemp()), Settings())
        False
    """
    if settings.database_url is not None:
        return True
    return (path / "registry.db").is_file()


class EmbeddedBackend(Backend):
    """Each primitive is one call on the service's parts (reads first try the
    read-only path; the service is opened on first use)."""

    def __init__(self, service: RegistryService | None, *, settings: Settings, home: Path,
                 reader: ReadOnlyRegistry | None = None) -> None:
        self._service = service
        self._reader = reader
        self._policy: Policy | None = service.policy if service is not None else None
        self.settings = settings
        self.home: Path = home

    @property
    def service(self) -> RegistryService:
        """The ORM-backed service, opened (and the database migrated) on first use."""
        if self._service is None:
            try:
                from llmreg.service.registry import RegistryService
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise MissingDependencyError(
                    f"the embedded registry needs {exc.name}; pip install 'llmreg'") from exc
            self._service = RegistryService.open_home(
                self.home, database_url=self.settings.database_url,
                store=self.settings.store, policy=self.policy)
        return self._service

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._service is not None:
            self._service.close()

    @property
    def policy(self) -> Policy:
        if self._policy is None:
            from llmreg.policy import find_policy

            self._policy = find_policy(self.settings.policy, self.home)
        return self._policy

    def actor(self) -> Actor:
        from llmreg.types import Actor

        return Actor(self.settings.identity())

    # -- the read-only path ------------------------------------------------------------

    def _is_canonical_env(self, env: str) -> bool:
        """Whether ``env`` is one of the policy's environments by its canonical name,
        judged without building the pydantic policy where that can be avoided (an
        alias, or an environment the policy no longer has, goes to the service)."""
        if self._policy is not None:
            return self._policy.is_environment(env) and self._policy.canonical_env(env) == env
        path = self.settings.policy or self.home.parent / POLICY_FILENAME
        if self.settings.policy is None and not path.is_file():
            return True  # the built-in default; a slot's env was checked when it moved
        import yaml

        try:
            data = yaml.safe_load(path.read_text())
            return env in (data.get("environments") or {})
        except (OSError, yaml.YAMLError, AttributeError, TypeError):
            return False  # let the service load it and say what is wrong

    def _fast_row(self, ref: str) -> VersionRow | None:
        """The version ``ref`` names, from the read-only path; None: ask the service."""
        if self._reader is None:
            return None
        try:
            parsed = parse_ref(ref)
        except ValueError:
            return None  # the service raises the error, with its message
        if parsed.name is None:
            return None
        if parsed.version is not None:
            return self._reader.version(parsed.name, number=parsed.version)
        if parsed.digest_prefix is not None:
            return self._reader.version(parsed.name, digest_prefix=parsed.digest_prefix)
        if parsed.label in (None, "latest"):
            return self._reader.version(parsed.name)
        assert parsed.label is not None
        if not self._is_canonical_env(parsed.label):
            return None
        return self._reader.slot(parsed.name, parsed.label)

    # -- reads ------------------------------------------------------------------------

    def get(self, ref: str) -> Bundle:
        row = self._fast_row(ref)
        if row is None:
            return self.service.versions.get(ref)
        from llmreg.bundle.schema import Bundle
        from llmreg.errors import InvalidBundleError
        from llmreg.types import VersionInfo

        assert self._reader is not None
        bundle = Bundle.from_canonical(self._reader.manifest(row.digest))
        if bundle.digest != row.digest:  # as Versions.load: the bytes verified, so a bug
            raise InvalidBundleError(
                f"manifest {row.digest} re-canonicalises to {bundle.digest}; this llmreg "
                "cannot reproduce that digest")
        return bundle.with_info(VersionInfo(**row.fields()))

    def resolve_ref(self, ref: str) -> ResolvedBundle:
        row = self._fast_row(ref)
        if row is None:
            return ResolvedBundle.from_bundle(self.get(ref))
        assert self._reader is not None
        return ResolvedBundle(self._reader.manifest(row.digest), name=row.name,
                              version=row.number, env=None, digest=row.digest)

    def info(self, ref: str) -> VersionInfo:
        return self.service.versions.resolve(ref)

    def resolve_slot(self, name: str, env: str, *, strict: bool,
                     max_stale: float | None) -> ResolvedBundle:
        if self._reader is not None and _valid_name(name) and self._is_canonical_env(env):
            row = self._reader.slot(name, env)
            if row is not None:
                return ResolvedBundle(self._reader.manifest(row.digest), name=row.name,
                                      version=row.number, env=env, digest=row.digest)
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

    def audit(self, name: str | None, limit: int | None,
              env: str | None = None) -> list[AuditInfo]:
        return self.service.lifecycle.audit_log(name, limit, env)

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

    def register_many(self, bundles: list[Bundle], name: str, message: str,
                      provenance: list[dict[str, Any]], *,
                      author: str) -> list[Registration]:
        return self.service.versions.register_many(bundles, name=name, message=message,
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

    # -- owners, hygiene, jobs ---------------------------------------------------------

    def set_owner(self, name: str, team: str, contacts: list[str]) -> OwnerInfo:
        return self.service.owners.set(name, team=team, contacts=contacts, actor=self.actor())

    def owner(self, name: str) -> OwnerInfo | None:
        return self.service.owners.get(name)

    def owners(self) -> list[OwnerInfo]:
        return self.service.owners.list()

    def deprecation(self, apply: bool) -> DeprecationReport:
        deprecation = self.service.deprecation
        return deprecation.run() if apply else deprecation.plan()

    def served(self, name: str | None, env: str | None) -> list[ServedInfo]:
        return self.service.traffic.served(name, env)

    def alerts(self, include_closed: bool) -> list[AlertInfo]:
        return self.service.alerts.list(include_closed=include_closed)

    def ack_alert(self, alert_id: int, reason: str) -> AlertInfo:
        return self.service.alerts.ack(alert_id, reason=reason, actor=self.actor())

    def run_jobs(self, only: list[str] | None) -> list[JobRunInfo]:
        return self.service.jobs.run_due(only=only)

    def environments(self) -> list[EnvironmentInfo]:
        return self.service.environments.list()

    def drift(self, a: str, b: str) -> list[DriftItem]:
        return self.service.environments.drift(a, b)
    # -- webhooks --------------------------------------------------------------------

    def add_webhook(self, url: str, events: list[str], format: str) -> WebhookInfo:
        return self.service.notify.add(url, events, actor=self.actor(), format=format)

    def list_webhooks(self) -> list[WebhookInfo]:
        return self.service.notify.list_webhooks()

    def remove_webhook(self, webhook_id: int) -> WebhookInfo:
        return self.service.notify.remove(webhook_id, actor=self.actor())

    def test_webhook(self, webhook_id: int) -> DeliveryInfo:
        return self.service.notify.test(webhook_id, actor=self.actor())

    def webhook_deliveries(self, failed: bool, limit: int) -> list[DeliveryInfo]:
        return self.service.notify.deliveries(failed=failed, limit=limit)

    def redeliver(self, delivery_id: int) -> DeliveryInfo:
        return self.service.notify.redeliver(delivery_id, actor=self.actor())
    def publish(self, dest: str, keys: Path, timestamp_expiry: float | None
                ) -> dict[str, Any]:
        from datetime import timedelta

        from llmreg.service.mirror.publisher import publish

        expiry = timedelta(seconds=timestamp_expiry) if timestamp_expiry else None
        return dict(publish(self.service, dest, keys, timestamp_expiry=expiry).__dict__)

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


def _valid_name(name: str) -> bool:
    try:
        check_name(name)
    except ValueError:
        return False
    return True
