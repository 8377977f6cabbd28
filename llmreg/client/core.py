"""The Python client: what training jobs, CI and applications call.

``llmreg.connect()`` gives a :class:`Client`. Every public method, its argument
handling and its docstring live here, once; under the client sits a backend
(:mod:`llmreg.client.backend`): the embedded registry's service in this process
(``.llmreg/`` found from the current folder upward, or ``LLMREG_HOME``), or a server
over HTTP (``LLMREG_URL``). Nothing heavy is imported until a method needs it: an
application that resolves its bundle from a server loads neither pydantic nor httpx.

Example:
    >>> import llmreg                                              # doctest: +SKIP
    >>> reg = llmreg.connect()                                     # doctest: +SKIP
    >>> b = reg.log_bundle("bundles/support-rag", message="first")  # doctest: +SKIP
    >>> reg.get("support-rag@1").digest == b.digest                # doctest: +SKIP
    True
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from llmreg.bundle.resolved import ResolvedBundle
from llmreg.client.background import HeartbeatBatcher, Watcher

if TYPE_CHECKING:
    from llmreg.bundle.diff import BundleDiff
    from llmreg.bundle.schema import Bundle
    from llmreg.client.backend import Backend, Progress
    from llmreg.policy import Policy
    from llmreg.settings import Settings
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
        ServedInfo,
        SlotEventInfo,
        SlotStatus,
        TokenInfo,
        VersionInfo,
        WebhookInfo,
    )

MAX_REPORT = 64 * 1024 * 1024  # an eval report is evidence, not a data set


class Client:
    """A registry connection. Make one with :func:`llmreg.connect`.

    All writes end in the core service layer, which enforces every rule, whichever
    backend carries them there.

    Example:
        >>> import tempfile
        >>> reg = llmreg.connect(tempfile.mkdtemp(), create=True)
        >>> reg.list(), reg.policy.environment_names()
        ([], 'staging (pre-prod, preprod), shadow, production (prod)')
        >>> reg.close()
    """

    heartbeat_interval = 30.0

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._batcher: HeartbeatBatcher | None = None

    @property
    def settings(self) -> Settings:
        """The settings this client was made with."""
        return self._backend.settings

    @property
    def home(self) -> Path | None:
        """The embedded registry's folder (None for a server)."""
        return self._backend.home

    @property
    def url(self) -> str | None:
        """The server's URL (None for the embedded registry)."""
        return self._backend.url

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Send pending heartbeats and release connections."""
        self.flush_heartbeats()
        self._backend.close()

    @property
    def policy(self) -> Policy:
        """The policy the registry enforces."""
        return self._backend.policy

    @property
    def actor(self) -> Actor:
        """Who this client acts as: ``LLMREG_USER`` or the OS user on the embedded
        registry, the token's subject on a server."""
        return self._backend.actor()

    # -- registering -------------------------------------------------------------------

    def log_bundle(self, bundle: str | Path | Bundle, *, name: str | None = None,
                   message: str, provenance: Mapping[str, Any] | None = None,
                   author: str | None = None, team: str | None = None) -> Bundle:
        """Register a bundle (a directory or a :class:`Bundle`), capturing provenance.

        Provenance is captured automatically, on the caller's machine: git commit and
        dirty flag of the working tree the bundle came from, user, host, llmreg and
        Python versions. Keys in ``provenance`` (dataset digests, config, metrics, run
        links) are added to it. Artifacts given as files are stored first. Registering
        content the name already has returns the existing version.

        Args:
            bundle: a bundle directory or a Bundle object.
            name: registration name; default the manifest's ``name`` or the folder name.
            message: the changelog message (required).
            provenance: extra provenance to record.
            author: defaults to ``LLMREG_USER`` or the OS user (a server records the
                token's subject instead).
            team: the team that claims a new name (default: the token's only team where
                it is a publisher; a token in several names one). See docs/teams.md.

        Returns:
            The registered bundle, with ``.name``, ``.version``, ``.digest`` and
            ``.newly_registered``.

        Example:
            >>> b = reg.log_bundle("bundles/ticket-classifier", message="v1")  # doctest: +SKIP
            >>> b.name, b.version                                # doctest: +SKIP
            ('ticket-classifier', 1)
        """
        from llmreg.bundle.directory import load_bundle_dir
        from llmreg.bundle.names import check_name
        from llmreg.bundle.provenance import capture
        from llmreg.bundle.schema import Bundle
        from llmreg.errors import InvalidBundleError

        source: Path | None = None
        field = "name"
        if isinstance(bundle, Bundle):
            obj = bundle
            if name is None:
                raise InvalidBundleError("name is required when logging a Bundle object")
        else:
            source = Path(bundle)
            obj, manifest_name = load_bundle_dir(
                source, allow_floating_model_ids=self.policy.models.allow_floating)
            if name is None:  # an explicit name, even '', is never replaced
                name, field = ((manifest_name, "the manifest's name")
                               if manifest_name is not None
                               else (source.resolve().name, "the folder's name"))
        check_name(name, field=field)
        for path in obj._sources.values():  # blobs first: never a dangling reference
            self._backend.put_file(path, None)
        who = author or self.settings.identity()
        record = capture(source, user=who)
        record.update(provenance or {})
        return self._register(obj, name, message, record, author=who, team=team)

    def log_bundles(self, bundles: Sequence[str | Path | Bundle], *, name: str, message: str,
                    provenance: Mapping[str, Any] | None = None,
                    author: str | None = None, team: str | None = None) -> list[Bundle]:
        """Register many bundles as consecutive versions of ``name`` in one transaction.

        What :meth:`log_bundle` does for each, in order — provenance (git asked once
        per repository), artifacts stored first, identical content keeping its existing
        version, each version diffed against the one before — but committed together:
        a bad bundle registers none of them. For imports and migrations from other
        registries. A server takes 500 bundles a request, each request one transaction.

        Args:
            bundles: bundle directories or Bundle objects, oldest first.
            name: the name they are versions of.
            message: the changelog message of every version.
            provenance: extra provenance recorded with each.
            author: as in :meth:`log_bundle`.
            team: as in :meth:`log_bundle`.

        Returns:
            The registered bundles, in order, with ``.version`` and ``.newly_registered``.

        Example:
            >>> done = reg.log_bundles(["v1/", "v2/", "v3/"], name="support-rag",
            ...                        message="import from the old registry")  # doctest: +SKIP
            >>> [b.version for b in done]                                       # doctest: +SKIP
            [1, 2, 3]
        """
        from llmreg.bundle.directory import load_bundle_dir
        from llmreg.bundle.names import check_name
        from llmreg.bundle.provenance import capture_many
        from llmreg.bundle.schema import Bundle

        check_name(name)
        objs: list[Bundle] = []
        sources: list[Path | None] = []
        for item in bundles:
            if isinstance(item, Bundle):
                objs.append(item)
                sources.append(None)
            else:
                obj, _ = load_bundle_dir(
                    Path(item), allow_floating_model_ids=self.policy.models.allow_floating)
                objs.append(obj)
                sources.append(Path(item))
        for obj in objs:  # blobs first: never a dangling reference
            for path in obj._sources.values():
                self._backend.put_file(path, None)
        who = author or self.settings.identity()
        records = capture_many(sources, user=who)
        for record in records:
            record.update(provenance or {})
        results = self._backend.call(
            "register_many", name=name, message=message, author=who, team=team,
            items=[{"manifest": b, "provenance": r} for b, r in zip(objs, records, strict=True)]
        ).items
        return [b.with_info(r.version, created=r.created)
                for b, r in zip(objs, results, strict=True)]

    def _register(self, bundle: Bundle, name: str, message: str,
                  provenance: dict[str, Any], *, author: str,
                  team: str | None = None) -> Bundle:
        result = self._backend.call("register", name=name, manifest=bundle,
                                    message=message, provenance=provenance, author=author,
                                    team=team)
        return bundle.with_info(result.version, created=result.created)

    # -- reading -----------------------------------------------------------------------

    def get(self, ref: str) -> Bundle:
        """The bundle for ``ref`` (``name``, ``name@7``, ``name@sha256:…``, short digest,
        ``name@production``), its manifest verified against the digest.

        Example:
            >>> reg.get("support-rag@1").render(question="…", context="…")  # doctest: +SKIP
        """
        return self._backend.get(ref)

    def info(self, ref: str) -> VersionInfo:
        """Which version ``ref`` points to (with its status), without loading it."""
        return self._backend.call("version", ref=ref)

    def resolve(self, name: str, env: str | None = None, *, strict: bool = False,
                max_stale: float | None = None) -> ResolvedBundle:
        """The bundle to run: ``resolve("support-rag", env="production")``.

        With ``env``, reads that environment's slot (aliases accepted); an empty slot
        raises :class:`~llmreg.errors.EmptySlotError` naming it. Without, ``name`` is
        any ref. From a server this costs one conditional request; when the server
        cannot be reached or answers 5xx, the last answer cached on disk is served with
        a warning saying how stale it is — unless ``strict=True``, or it is older than
        ``max_stale`` seconds, when :class:`~llmreg.errors.RegistryUnavailableError` is
        raised. (The embedded registry is never unreachable.) When the application
        traces with OpenTelemetry, the bundle's name, version, digest and environment,
        and whether it came from the cache, go on the current span
        (:mod:`llmreg.bundle.tracing`).

        Example:
            >>> bundle = reg.resolve("support-rag", env="production")  # doctest: +SKIP
        """
        from llmreg.bundle.tracing import record_resolve

        if env is None:
            resolved = self._backend.resolve_ref(name)
        else:
            resolved = self._backend.resolve_slot(name, env, strict=strict,
                                                  max_stale=max_stale)
        record_resolve(resolved)  # OpenTelemetry: only if the application traces
        return resolved

    def bundle(self, source: str | Path | Bundle | ResolvedBundle) -> Bundle:
        """A Bundle from a ref, a bundle directory, or a (resolved) Bundle.

        A path (anything with a ``/``, or that exists on disk) is read as a directory;
        anything else is a ref.
        """
        from llmreg.bundle.directory import load_bundle_dir, looks_like_path
        from llmreg.bundle.schema import Bundle

        if isinstance(source, ResolvedBundle):
            return source.bundle
        if isinstance(source, Bundle):
            return source
        if looks_like_path(source):
            return load_bundle_dir(source)[0]
        return self.get(str(source))

    def diff(self, old: str | Path | Bundle | ResolvedBundle,
             new: str | Path | Bundle | ResolvedBundle) -> BundleDiff:
        """The semantic diff between two bundles: refs, bundle directories or Bundles.

        Two refs are diffed where the bundles are (on a server, by the server).

        Example:
            >>> d = reg.diff("support-rag@production", "bundles/support-rag")  # doctest: +SKIP
            >>> d.identical, d.stat()                                           # doctest: +SKIP
            (False, ['system_prompt: +2 -2 lines'])
        """
        from llmreg.bundle.diff import diff_bundles
        from llmreg.bundle.directory import looks_like_path

        if isinstance(old, str) and isinstance(new, str) and not any(
                looks_like_path(x) for x in (old, new)):
            return self._backend.call("diff", old=old, new=new)
        return diff_bundles(self.bundle(old), self.bundle(new), load=self.get)

    def history(self, name: str) -> list[VersionInfo]:
        """Every version of ``name``, oldest first."""
        return self._pages("versions", name=name)

    def changelog(self, name: str) -> list[ChangelogEntry]:
        """The release history of ``name``, newest first: message, diff summary, evidence."""
        return self._backend.call("changelog", name=name)

    def stored_diff(self, info: VersionInfo) -> dict[str, Any] | None:
        """The full semantic diff recorded when ``info`` was registered (JSON form)."""
        return self._backend.call("stored_diff", ref=info.ref)

    def status(self, name: str | None = None, env: str | None = None) -> list[SlotStatus]:
        """What runs where: one row per environment slot."""
        return self._backend.call("status", name=name, env=env)

    def slot_history(self, name: str, env: str) -> list[SlotEventInfo]:
        """Every move of one slot: who, when, from which version, why."""
        return self._backend.call("slot_history", name=name, env=env)

    def audit(self, name: str | None = None, limit: int | None = None, *,
              env: str | None = None) -> list[AuditInfo]:
        """Audit-log entries, oldest first (of one name; ``env``: of one environment,
        across names, e.g. who moved production; ``limit``: only the last N)."""
        return self._backend.call("audit", name=name, limit=limit, env=env)

    def verify_audit(self, head: str | None = None) -> int:
        """Recompute the audit hash chain; the entry count, or raise naming the break.

        Besides the chain itself, the entries are counted against the state changes
        they record, and with ``head`` (a hash an earlier write printed) the chain must
        still contain it: deleting the newest entries is detected.

        Example:
            >>> reg.verify_audit(head="sha256:…")  # doctest: +SKIP
            42
        """
        return self._backend.call("audit_verify", head=head).verified

    # -- serving -----------------------------------------------------------------------

    def watch(self, name: str, *, env: str, interval: float = 30.0,
              on_change: Callable[[ResolvedBundle], None] | None = None) -> Watcher:
        """Follow an environment slot: ``on_change`` gets the new bundle when it moves.

        Example:
            >>> w = reg.watch("support-rag", env="production",
            ...               on_change=lambda b: print("now", b.version))  # doctest: +SKIP
        """
        return Watcher(lambda: self.resolve(name, env=env), interval, on_change)

    def report_served(self, bundle: Bundle | ResolvedBundle, count: int = 1) -> None:
        """Record that ``bundle`` served ``count`` requests. Batched and sent in the
        background; never blocks or raises. These heartbeats feed the stale-production
        alert."""
        if bundle.name is None or bundle.env is None:
            return  # only bundles resolved from a slot say where they run
        if self._batcher is None:
            self._batcher = HeartbeatBatcher(self._send_heartbeats,
                                             self.heartbeat_interval)
        self._batcher.add(bundle.name, bundle.env, bundle.digest, count)

    def flush_heartbeats(self) -> None:
        """Send pending heartbeats now (tests, graceful shutdown)."""
        if self._batcher is not None:
            self._batcher.flush()

    # -- evidence, approvals, promotion ------------------------------------------------

    def log_eval(self, ref: str, *, suite: str, metrics: Mapping[str, float],
                 report: str | Path | bytes | None = None, links: list[str] | None = None,
                 passed: bool | None = None) -> EvidenceInfo:
        """Attach an eval result to the digest ``ref`` resolves to.

        ``report`` (a file or bytes, at most 64 MiB) is stored as a blob and linked.

        Example:
            >>> reg.log_eval("support-rag@3", suite="regression",
            ...              metrics={"accuracy": 0.93})  # doctest: +SKIP
        """
        return self._backend.call(
            "attach_evidence", ref=ref, type="eval", suite=suite, metrics=dict(metrics),
            report_digest=self._put_report(report), links=links or [], passed=passed)

    def log_shadow_metrics(self, ref: str, *, metrics: Mapping[str, float],
                           report: str | Path | bytes | None = None,
                           links: list[str] | None = None, source: str = "shadow"
                           ) -> EvidenceInfo:
        """Attach traffic-derived shadow metrics (their own evidence type, never an eval).

        Example:
            >>> reg.log_shadow_metrics("support-rag@3",
            ...                        metrics={"error_rate": 0.01})  # doctest: +SKIP
        """
        return self._backend.call(
            "attach_evidence", ref=ref, type="shadow-metrics", suite=source, metrics=dict(metrics),
            report_digest=self._put_report(report), links=links or [], passed=None)

    def _put_report(self, report: str | Path | bytes | None) -> str | None:
        from llmreg.errors import InvalidEvidenceError

        if report is None:
            return None
        if isinstance(report, bytes):
            size = len(report)
        else:
            try:
                size = os.stat(report).st_size
            except OSError as exc:
                raise InvalidEvidenceError(
                    f"report {str(report)!r} cannot be read: {exc.strerror}") from None
        if size > MAX_REPORT:
            raise InvalidEvidenceError(f"report is {size} bytes; the limit is 64 MiB")
        if isinstance(report, bytes):
            return self._backend.put_bytes(report)
        return self._backend.put_file(Path(report), None)[0]

    def evidence(self, ref: str) -> list[EvidenceInfo]:
        """All evidence attached to the digest ``ref`` resolves to."""
        return self._backend.call("evidence", ref=ref)

    def approve(self, ref: str, *, to: str, comment: str = "") -> ApprovalInfo:
        """Approve ``ref`` for environment ``to`` as :attr:`actor`.

        Example:
            >>> reg.approve("support-rag@3", to="production",
            ...             comment="read the evals")  # doctest: +SKIP
        """
        return self._backend.call("approve", ref=ref, env=to, comment=comment)

    def check_gates(self, ref: str, *, to: str) -> GateReport:
        """Judge every gate of promoting ``ref`` to ``to`` without moving anything."""
        return self._backend.call("gates", ref=ref, to=to)

    def promote(self, ref: str, *, to: str, reason: str,
                expect_current: str | None = None) -> SlotEventInfo:
        """Promote ``ref`` to ``to`` if every gate is met (else :class:`GateFailedError`).

        With ``expect_current`` the move happens only while the slot still holds that
        version (compare-and-set), else :class:`SlotConflictError`.

        Example:
            >>> reg.promote("support-rag@3", to="production", reason="beats v2",
            ...             expect_current="support-rag@2")  # doctest: +SKIP
        """
        return self._backend.call("promote", ref=ref, env=to, reason=reason,
                                  expect_current=expect_current).event

    def rollback(self, name: str, *, env: str, reason: str,
                 to: int | None = None) -> SlotEventInfo:
        """Return ``env``'s slot of ``name`` to the version it held before the current one,
        or to version ``to``: any version the slot held before.

        Example:
            >>> reg.rollback("support-rag", env="production", reason="incident 42",
            ...              to=3).to_version  # doctest: +SKIP
            3
        """
        return self._backend.call("rollback", name=name, env=env, reason=reason, to=to)

    def deprecate(self, ref: str, *, reason: str = "") -> VersionInfo:
        """Mark a version that runs nowhere as deprecated."""
        return self._backend.call("deprecate", ref=ref, reason=reason)

    def archive(self, ref: str, *, reason: str = "") -> VersionInfo:
        """Archive a version that runs nowhere: frozen, tagged, never deleted."""
        return self._backend.call("archive", ref=ref, reason=reason)

    def restore(self, ref: str, *, reason: str) -> VersionInfo:
        """Take an archived version out of the archive (admin): it is registered again,
        and its moves still meet the policy's gates.

        Example:
            >>> reg.restore("support-rag@1", reason="incident 42")  # doctest: +SKIP
            VersionInfo(name='support-rag', version=1, ..., status='registered', ...)
        """
        return self._backend.call("restore", ref=ref, reason=reason)

    # -- integrity ---------------------------------------------------------------------

    def put_blob(self, path: Path, progress: Progress | None = None) -> str:
        """Store a file as a blob (streamed, constant memory); return its digest.

        Example:
            >>> reg.put_blob(Path("reports/eval.html"))  # doctest: +SKIP
            'sha256:…'
        """
        return self._backend.put_file(Path(path), progress)[0]

    def _read_blob(self, digest: str) -> bytes:
        from llmreg.bundle.digest import digest_bytes
        from llmreg.client.limits import MAX_ANSWER, Deadline, TooLongError, read_capped
        from llmreg.errors import IntegrityError

        try:
            data = read_capped(self._backend.blob_chunks(digest, 0), MAX_ANSWER,
                               Deadline(self._backend.settings.read_deadline), digest)
        except TooLongError as exc:
            raise IntegrityError(f"blob {exc}, more than llmreg reads into memory; "
                                 "refusing it") from None
        if digest_bytes(data) != digest:
            raise IntegrityError(f"blob {digest} does not hash to its digest; refusing it")
        return data

    # -- artifacts and trained models --------------------------------------------------

    def pull(self, ref: str, dest: str | Path,
             progress: Progress | None = None) -> list[Path]:
        """Download every artifact of ``ref`` into ``dest`` under its artifact name.

        Each file is written as ``.<name>.partial`` and renamed only after its digest
        and size check out, so a partial file never appears under its final name. An
        interrupted pull resumes where it stopped; a file already there and intact is
        not downloaded again. ``progress(name, done, total)`` is called as bytes arrive.

        Example:
            >>> reg.pull("ticket-classifier@1", "artifacts/")  # doctest: +SKIP
            [PosixPath('artifacts/eval-set')]
        """
        from llmreg.bundle.directory import hash_file
        from llmreg.errors import IntegrityError

        folder = Path(dest)
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for art in self.get(ref).artifacts:
            final = folder / art.name  # names are validated: no separators, no '..'
            if final.is_file() and hash_file(final) == (art.digest, art.size):
                out.append(final)
                continue
            partial = folder / f".{art.name}.partial"
            done = partial.stat().st_size if partial.exists() else 0
            if done > art.size:
                partial.unlink()
                done = 0
            with open(partial, "ab") as fh:
                for chunk in self._backend.blob_chunks(art.digest, done):
                    if done + len(chunk) > art.size:  # stop at the listed size, not after
                        fh.close()
                        partial.unlink()
                        raise IntegrityError(
                            f"artifact {art.name!r} of {ref}: the download is longer than "
                            f"its {art.size} bytes; stopped there, nothing was kept")
                    fh.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(art.name, done, art.size)
                fh.flush()
                os.fsync(fh.fileno())
            digest, size = hash_file(partial)
            if (digest, size) != (art.digest, art.size):
                partial.unlink()
                raise IntegrityError(
                    f"artifact {art.name!r} of {ref}: the download hashes to {digest} "
                    f"({size} bytes), not {art.digest} ({art.size} bytes); nothing was kept")
            os.replace(partial, final)
            out.append(final)
        return out

    def log_model(self, name: str, *, weights: str | Path | list[str | Path], message: str,
                  dataset: str | Path | None = None,
                  config: dict[str, Any] | str | Path | None = None,
                  metrics: Mapping[str, float] | None = None, framework: str | None = None,
                  base_model: str | None = None,
                  provenance: Mapping[str, Any] | None = None,
                  progress: Progress | None = None) -> Bundle:
        """Log trained weights as a weights bundle, with everything needed to trust them.

        Weights are streamed into the blob store (constant memory, digest computed while
        streaming). The dataset is hashed deterministically (a file, a folder, or a
        ``sha256:`` digest); git commit and dirty flag, user, host and versions are
        captured; ``config`` (a dict or a JSON/YAML file) and ``metrics`` are recorded.

        Example:
            >>> reg.log_model("ticket-lora", weights="out/adapter.safetensors",
            ...               dataset="data/train", config="train.yaml",
            ...               metrics={"eval_loss": 0.41}, message="lr 2e-4")  # doctest: +SKIP
        """
        from llmreg.bundle.digest import canonical_json
        from llmreg.bundle.lineage import (
            check_metrics,
            hash_dataset,
            load_config,
            media_type,
            weights_files,
            weights_name,
        )
        from llmreg.bundle.names import check_name
        from llmreg.bundle.provenance import capture
        from llmreg.bundle.schema import Bundle

        check_name(name)
        files = weights_files(weights)
        names = [weights_name(f) for f in files]
        data = hash_dataset(dataset) if dataset is not None else None  # bad input: fail early
        cfg = load_config(config)
        clean_metrics = check_metrics(dict(metrics)) if metrics else None
        artifacts = []
        for path, artifact_name in zip(files, names, strict=True):
            digest, size = self._backend.put_file(path, progress)
            artifacts.append({"name": artifact_name, "media_type": media_type(path),
                              "digest": digest, "size": size})
        bundle = Bundle.from_dict({"kind": "weights", "artifacts": artifacts,
                                   "framework": framework, "base_model": base_model})
        who = self.settings.identity()
        record = capture(None, user=who)
        if data is not None:
            manifest_digest = (self._backend.put_bytes(canonical_json(data.manifest))
                               if data.manifest else None)
            record["dataset"] = data.provenance(manifest_digest)
        if cfg is not None:
            record["config"] = cfg
        if clean_metrics:
            record["metrics"] = clean_metrics
        record.update(provenance or {})
        return self._register(bundle, name, message, record, author=who)

    def reproduce_check(self, ref: str, *, weights: str | Path | list[str | Path],
                        dataset: str | Path | None = None) -> dict[str, Any]:
        """Compare rebuilt weights (and dataset) with what ``ref`` registered.

        Returns ``{"match": bool, "weights": [...], "dataset": {...}}``; each entry says
        registered digest, rebuilt digest and whether they match; for a folder dataset,
        ``differing_files`` names the files that differ.
        """
        import json as _json

        from llmreg.bundle.directory import hash_file
        from llmreg.bundle.lineage import (
            compare_datasets,
            hash_dataset,
            weights_files,
            weights_name,
        )

        bundle = self.get(ref)
        rebuilt = {weights_name(f): hash_file(f) for f in weights_files(weights)}
        rows = []
        for art in bundle.artifacts:
            got = rebuilt.pop(art.name, None)
            rows.append({"name": art.name, "registered": art.digest,
                         "rebuilt": got[0] if got else None,
                         "match": got is not None and got[0] == art.digest})
        for extra, (digest, _) in sorted(rebuilt.items()):
            rows.append({"name": extra, "registered": None, "rebuilt": digest, "match": False})
        report: dict[str, Any] = {"ref": ref, "weights": rows, "dataset": None}
        if dataset is not None:
            registered = (bundle.info.provenance.get("dataset") if bundle.info else None) or {}
            new = hash_dataset(dataset)
            entry: dict[str, Any] = {"registered": registered.get("digest"),
                                     "rebuilt": new.digest,
                                     "match": registered.get("digest") == new.digest}
            if not entry["match"] and registered.get("manifest"):
                old_manifest = _json.loads(self._read_blob(registered["manifest"]))
                entry["differing_files"] = compare_datasets(old_manifest, new)
            report["dataset"] = entry
        report["match"] = all(r["match"] for r in rows) and (
            report["dataset"] is None or report["dataset"]["match"])
        return report

    def verify(self, ref: str) -> list[Problem]:
        """Re-hash ``ref``'s manifest and artifacts in the store; the problems found."""
        return self._backend.call("verify", ref=ref)

    def fsck(self) -> tuple[int, list[Problem]]:
        """Check every blob and reference: (blobs read, problems by digest). On a
        server this needs an admin token."""
        return (result := self._backend.call("fsck")).blobs, result.problems

    def gc(self, *, dry_run: bool = True, grace: float = 24 * 3600) -> list[str]:
        """Unreferenced blobs older than ``grace`` seconds; deleted unless ``dry_run``."""
        return self._backend.call("gc", dry_run=dry_run, grace=grace).blobs

    # -- imports -----------------------------------------------------------------------

    def import_mlflow(self, tracking_uri: str, *, map_aliases: Mapping[str, str] | None = None,
                      model_map: Mapping[str, str] | None = None,
                      default_model: str | None = None,
                      dry_run: bool = False) -> ImportReport:
        """Import every prompt, registered model and mapped alias from an MLflow server.

        Reads MLflow's REST API (no ``mlflow`` package needed), checks everything, then
        writes it in one transaction: nothing is half-imported. Versions already here
        are recognised by digest, so running it again adds nothing. Each alias move is
        audited as an ``import`` with the policy's gates recorded as bypassed-by-import.
        Runs on a registry folder or database (embedded), not through a server.

        Args:
            tracking_uri: the MLflow tracking server, e.g. ``http://127.0.0.1:5000``.
            map_aliases: MLflow alias -> llmreg environment; unmapped aliases are skipped.
            model_map: floating model id -> date-pinned id (``gpt-4o`` ->
                ``gpt-4o-2024-08-06``).
            default_model: ``provider:id`` for prompts with no model_config.
            dry_run: read and check everything, write nothing.

        Example:
            >>> report = reg.import_mlflow("http://127.0.0.1:5000",  # doctest: +SKIP
            ...                            map_aliases={"production": "production"})
            >>> report.created  # doctest: +SKIP
            17
        """
        return self._backend.call("import_mlflow", tracking_uri=tracking_uri,
                                  map_aliases=dict(map_aliases or {}),
                                  model_map=dict(model_map or {}),
                                  default_model=default_model, dry_run=dry_run)

    # -- tokens ------------------------------------------------------------------------

    def create_token(self, subject: str, role: str = "reader", *,
                     expires: str | None = None,
                     teams: dict[str, str] | None = None) -> tuple[str, TokenInfo]:
        """Create an API token for the server (the secret is returned once).

        Args:
            subject: who or what the token is for.
            role: the registry-wide role: reader, publisher, approver or admin. A token
                with ``teams`` is a reader (or an admin) registry-wide.
            expires: a duration (``"90d"``, ``"12h"``, ``"30m"``) or an ISO date or time,
                at most 5 years ahead; None (the default): the token never expires.
            teams: the role in each team, e.g. ``{"search": "publisher"}``: it acts on the
                names its teams own (see docs/teams.md). None: unscoped, ``role`` on every
                name.

        Example:
            >>> secret, info = reg.create_token("ci", teams={"search": "publisher"},
            ...                                 expires="90d")  # doctest: +SKIP
        """
        return self._split_token(self._backend.call("create_token", subject=subject, role=role,
                                                    expires=expires, teams=teams or {}))

    def rotate_token(self, token_id: str, *, expires: str | None = None) -> tuple[str, TokenInfo]:
        """Issue a new token for the subject and role of ``token_id`` and revoke that one
        (an expired token may be rotated; a revoked one may not). The new secret is
        returned once; ``expires`` is the new token's, as in :meth:`create_token`.

        Example:
            >>> secret, info = reg.rotate_token("0123456789ab", expires="90d")  # doctest: +SKIP
        """
        return self._split_token(self._backend.call("rotate_token", token_id=token_id,
                                                    expires=expires))

    def list_tokens(self) -> list[TokenInfo]:
        """Every token, revoked and expired ones included (never their secrets)."""
        return self._backend.call("list_tokens")

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token: the server that revokes it refuses it at once, other servers
        within 5 seconds, and its web sessions end. The answer's ``revoked_now`` is False
        when it was revoked already (nothing changed).

        Example:
            >>> reg.revoke_token("0123456789ab").revoked_now  # doctest: +SKIP
            True
        """
        return self._backend.call("revoke_token", token_id=token_id)

    # -- webhooks ----------------------------------------------------------------------

    def add_webhook(self, url: str, events: list[str], *, format: str = "cloudevents",
                    team: str | None = None, names: list[str] | None = None) -> WebhookInfo:
        """Send ``events`` (of :data:`llmreg.service.notifications.outbox.EVENTS`) to ``url``, as
        CloudEvents JSON or a Slack message, signed per Standard Webhooks. The answer's
        ``secret`` (``whsec_…``) is returned this once. A URL whose host resolves to a
        private, loopback, link-local or metadata address is refused unless the policy's
        ``webhooks.allow_hosts`` names it. On a server this needs an admin token.
        ``team`` and ``names`` (shell patterns such as ``"search-*"``) scope it to the
        events about the names that team owns or that match; without either it gets
        every event.

        Example:
            >>> hook = reg.add_webhook("https://hooks.example.com/llmreg",
            ...                        ["promotion", "rollback"])  # doctest: +SKIP
            >>> hook.secret[:6]  # doctest: +SKIP
            'whsec_'
        """
        return self._webhook(
            self._backend.call("add_webhook", url=url, events=list(events), format=format,
                               team=team, names=list(names or [])))

    def list_webhooks(self) -> list[WebhookInfo]:
        """The webhooks in use (never their secrets)."""
        return self._backend.call("list_webhooks")

    def remove_webhook(self, webhook_id: int) -> WebhookInfo:
        """Remove a webhook; its pending deliveries are dropped."""
        return self._backend.call("remove_webhook", webhook_id=webhook_id)

    def test_webhook(self, webhook_id: int) -> DeliveryInfo:
        """Send a ``test`` event to one webhook now (one attempt); the outcome."""
        return self._backend.call("test_webhook", webhook_id=webhook_id)

    def webhook_deliveries(self, *, failed: bool = False,
                           limit: int = 100) -> list[DeliveryInfo]:
        """Deliveries, newest first (``failed``: dead, or pending after a failure)."""
        return self._backend.call("deliveries", failed=failed, limit=limit)

    def redeliver(self, delivery_id: int) -> DeliveryInfo:
        """Queue a delivery again, due now, with the same ``webhook-id``."""
        return self._backend.call("redeliver", delivery_id=delivery_id)

    # Last, so that ``list`` in the annotations above is the builtin, not this method.
    # -- owners and hygiene ------------------------------------------------------------

    def set_owner(self, name: str, *, team: str, contacts: list[str]) -> OwnerInfo:
        """Set the team that owns ``name`` and how to reach it (audited).

        Contacts are email addresses, http(s) URLs or ``webhook:ID`` endpoints.

        Example:
            >>> reg.set_owner("support-rag", team="search",
            ...               contacts=["search@example.com"])  # doctest: +SKIP
        """
        return self._backend.call("set_owner", name=name, team=team, contacts=list(contacts))

    def owner(self, name: str) -> OwnerInfo | None:
        """The owner of ``name`` (None when it has none)."""
        return self._backend.call("owner", name=name).owner

    def owners(self) -> list[OwnerInfo]:
        """Every name's owner, by name."""
        return self._backend.call("owners")

    def deprecation_plan(self) -> DeprecationReport:
        """What the policy's deprecation rules would do now, and why (changes nothing)."""
        return self._backend.call("deprecation_plan")

    def deprecation_run(self) -> DeprecationReport:
        """Apply the deprecation rules now; a second run finds nothing to do."""
        return self._backend.call("deprecation_run")

    def served(self, name: str | None = None, env: str | None = None) -> list[ServedInfo]:
        """Per slot and version: when it last served and requests in the last day/week."""
        return self._backend.call("served", name=name, env=env)

    def alerts(self, *, include_closed: bool = False) -> list[AlertInfo]:
        """Open and acknowledged alerts, newest first (closed ones too with the flag)."""
        return self._backend.call("alerts", all=include_closed)

    def ack_alert(self, alert_id: int, *, reason: str) -> AlertInfo:
        """Acknowledge an open alert: recorded with the reason, not reminded again."""
        return self._backend.call("ack_alert", alert_id=alert_id, reason=reason)

    def run_jobs(self, only: list[str] | None = None) -> list[JobRunInfo]:
        """Run every scheduled job that is due (deprecation, alerts, deliveries)."""
        return self._backend.call("run_jobs", jobs=only)

    def environments(self) -> list[EnvironmentInfo]:
        """Each environment of the policy, its aliases and how many names it holds."""
        return self._backend.call("environments")

    def drift(self, a: str, b: str) -> list[DriftItem]:
        """For every name: what ``a`` and ``b`` hold and a one-line summary of the
        difference (read from ``b`` to ``a``)."""
        return self._backend.call("drift", a=a, b=b)
    def publish(self, dest: str | Path, *, keys: str | Path | None = None,
                timestamp_expiry: float | None = None) -> dict[str, Any]:
        """Publish the signed static mirror to a folder or ``s3://bucket/prefix``
        (docs/mirror.md): only what changed since the last publish is written.

        Args:
            dest: a folder, ``file://PATH`` or ``s3://BUCKET/PREFIX``.
            keys: the keys folder (default ``LLMREG_MIRROR_KEYS``, else ``mirror-keys``).
            timestamp_expiry: seconds the signed timestamp stays valid (default a day).

        Returns:
            ``{"dest", "written": [paths], "targets_version", "snapshot_version",
            "timestamp_version"}``.

        Example:
            >>> reg.publish("s3://mirror/llmreg", keys="mirror-keys")["written"]  # doctest: +SKIP
            ['targets/pointers/chat/3f…production.json', 'metadata/4.targets.json', …]
        """
        folder = Path(keys) if keys is not None else (self.settings.mirror_keys
                                                      or Path("mirror-keys"))
        return self._backend.call("publish", dest=str(dest), keys=str(folder),
                                  timestamp_expiry=timestamp_expiry)

    def list(self) -> list[NameSummary]:
        """Every registered name with its latest version."""
        return self._pages("names")

    def approvals(self, ref: str, env: str) -> builtins.list[ApprovalInfo]:
        """The approvals ``ref``'s version holds for ``env``, oldest first: who approved,
        when, with what comment.

        Example:
            >>> [a.approver for a in reg.approvals("support-rag@3", "production")]  # doctest: +SKIP
            ['bo', 'cy']
        """
        return self._backend.call("approvals", ref=ref, env=env)

    # -- the backend's answers, unwrapped ------------------------------------------------

    def _pages(self, operation: str, **args: Any) -> Any:
        """Every item of a paginated listing, a page of 1,000 at a time."""
        out: builtins.list[Any] = []
        offset: int | None = 0
        while offset is not None:
            page = self._backend.call(operation, offset=offset, limit=1000, **args)
            out += page.items
            offset = page.next
        return out

    def _send_heartbeats(self, beats: builtins.list[dict[str, Any]]) -> None:
        self._backend.call("heartbeats", beats=beats)

    @staticmethod
    def _split_token(new: Any) -> tuple[str, TokenInfo]:
        from llmreg.types import TokenInfo

        return new.token, TokenInfo.model_validate(new.model_dump(exclude={"token"}))

    @staticmethod
    def _webhook(new: Any) -> WebhookInfo:
        """A new webhook as :class:`WebhookInfo`, its secret included (shown once)."""
        from llmreg.types import WebhookInfo

        return WebhookInfo.model_validate(new.model_dump())
