"""Publish the registry as a signed static mirror: a repository of The Update Framework.

``llmreg publish DEST`` (and ``llmreg serve --publish DEST`` after every move) writes,
to a folder or ``s3://bucket/prefix``, everything a client needs to resolve without a
server, as TUF targets:

- ``blobs/sha256/<hex>``: every version's canonical manifest, immutable, listed in the
  delegated role ``manifests`` (the big, rarely-read list);
- ``pointers/<name>/<env>.json``: one per slot (and per alias of its environment), a
  small JSON ``{"digest", "env", "name", "version"}``, listed in the top-level
  ``targets`` role (small: what every resolve reads);
- ``names/<name>.json``: each name's version → digest index (for ``get("name@7")``);
- ``audit/head.json``: ``{"head", "seq"}``, the audit chain's newest entry when the
  mirror was published. Signed with the targets key, it is an anchor that someone with
  only database access cannot rewrite: ``llmreg audit verify --mirror URL`` checks the
  database's log still holds it (docs/integrity.md).

The layout is TUF's with consistent snapshots: target files are stored as
``targets/<dir>/<sha256>.<file>`` and metadata as ``metadata/<version>.<role>.json``;
only ``metadata/timestamp.json`` (and ``metadata/root.json``) are overwritten. Writes go
in this order — roots, target files, ``manifests``, ``targets``, ``snapshot``,
``timestamp`` — so a reader never meets a pointer whose manifest is not there yet.

Publishing is incremental: the current state is read back from DEST, and only new
target files and the metadata whose content changed (or that nears its expiry, or was
signed by a key since rotated) are written. One publisher at a time per keys folder
(a lock file in it).

Example:
    >>> import tempfile
    >>> from llmreg.service.mirror.keys import keygen
    >>> from llmreg.service.registry import RegistryService
    >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
    >>> keys = keygen(Path(tempfile.mkdtemp()) / "keys")
    >>> report = publish(svc, Path(tempfile.mkdtemp()) / "mirror", keys)
    >>> report.timestamp_version, "metadata/timestamp.json" in report.written
    (1, True)
    >>> publish(svc, report.dest, keys).written
    []
    >>> svc.close()
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmreg.bundle.digest import hex_of
from llmreg.service.mirror.destinations import Destination, open_destination
from llmreg.service.mirror.keys import ONLINE_ROLES, load_root, load_signer, root_history

if TYPE_CHECKING:
    from securesystemslib.signer import Signer
    from tuf.api.metadata import Metadata, Root, Snapshot, TargetFile, Targets, Timestamp

    from llmreg.service.registry import RegistryService

log = logging.getLogger("llmreg")
MANIFESTS = "manifests"  # the delegated role listing every manifest
EXPIRY = {"targets": timedelta(days=90), MANIFESTS: timedelta(days=90),
          "snapshot": timedelta(days=90), "timestamp": timedelta(days=1)}


@dataclass
class PublishReport:
    """What one publish wrote (paths in the mirror) and the versions it left behind."""

    dest: str
    written: list[str] = field(default_factory=list)
    targets_version: int = 0
    snapshot_version: int = 0
    timestamp_version: int = 0
    audit_seq: int = 0  # the audit head signed in ``audit/head.json`` (0: an empty log)
    audit_head: str | None = None


def pointer_bytes(name: str, env: str, version: int, digest: str) -> bytes:
    """The pointer file of one slot: canonical JSON naming version and digest.

    Example:
        >>> pointer_bytes("chat", "production", 3, "sha256:ab")
        b'{"digest":"sha256:ab","env":"production","name":"chat","version":3}'
    """
    body = {"digest": digest, "env": env, "name": name, "version": version}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


AUDIT_HEAD = "audit/head.json"


def audit_head_bytes(seq: int, head: str | None) -> bytes:
    """The mirror's ``audit/head.json``: the audit chain's newest entry, canonical JSON.

    Example:
        >>> audit_head_bytes(3, "sha256:ab")
        b'{"head":"sha256:ab","seq":3}'
    """
    return json.dumps({"head": head, "seq": seq}, sort_keys=True, separators=(",", ":")).encode()


def target_file_path(path: str, sha256: str) -> str:
    """Where a target is stored with consistent snapshots: ``<dir>/<hash>.<file>``.

    Example:
        >>> target_file_path("pointers/chat/production.json", "ab12")
        'targets/pointers/chat/ab12.production.json'
    """
    dirname, sep, base = path.rpartition("/")
    return f"targets/{dirname}{sep}{sha256}.{base}"


def publish(svc: RegistryService, dest: str | Path | Destination, keys: Path, *,
            timestamp_expiry: timedelta | None = None) -> PublishReport:
    """Publish the registry's slots and manifests to ``dest``, signed with the online
    keys in ``keys`` (see :mod:`llmreg.service.mirror.keys`). Writes only what changed.

    Args:
        svc: the registry to read.
        dest: a folder, ``file://PATH``, ``s3://BUCKET/PREFIX``, or a destination.
        keys: the keys folder (online keys and the signed roots).
        timestamp_expiry: how long the timestamp stays valid (default 1 day): run
            ``llmreg publish`` more often than this (cron), or clients stop trusting
            the mirror and fall back to their cache.
    """
    target = dest if not isinstance(dest, (str, Path)) else open_destination(dest)
    with _lock(Path(keys)):
        return _Publisher(svc, target, Path(keys), timestamp_expiry).run()


@contextlib.contextmanager
def _lock(keys: Path) -> Iterator[None]:
    keys.mkdir(parents=True, exist_ok=True)
    with (keys / ".publish.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Publisher:
    def __init__(self, svc: RegistryService, dest: Destination, keys: Path,
                 timestamp_expiry: timedelta | None) -> None:
        self.svc = svc
        self.dest = dest
        self.keys = keys
        self.root = load_root(keys)
        self.signers = {role: load_signer(keys, role) for role in ONLINE_ROLES}
        self._check_keys(self.root.signed, self.signers)
        self.expiry = dict(EXPIRY)
        if timestamp_expiry is not None:
            self.expiry["timestamp"] = timestamp_expiry
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.report = PublishReport(dest.url)
        self._names: dict[str, dict[int, str]] | None = None

    @staticmethod
    def _check_keys(root: Root, signers: Mapping[str, Signer]) -> None:
        from llmreg.errors import ConfigError

        for role, signer in signers.items():
            if signer.public_key.keyid not in root.roles[role].keyids:
                raise ConfigError(f"the {role} key in the keys folder is not the one the "
                                  f"newest root (version {root.version}) trusts; restore it "
                                  "or rotate it with `llmreg mirror rotate DIR --role "
                                  f"{role}`")

    def _write(self, path: str, data: bytes) -> None:
        self.dest.write(path, data)
        self.report.written.append(path)

    def _load(self, role: str, version: int | None) -> Metadata[Any] | None:
        from tuf.api.metadata import Metadata

        name = f"metadata/{role}.json" if version is None else f"metadata/{version}.{role}.json"
        data = self.dest.read(name)
        return None if data is None else Metadata.from_bytes(data)

    def _stale(self, md: Metadata[Any] | None, role: str, keyid: str) -> bool:
        """Whether ``md`` must be re-signed: absent, near expiry, or by an old key."""
        if md is None:
            return True
        left = md.signed.expires - self.now
        return left < self.expiry[role] / 2 or keyid not in md.signatures

    def _sign(self, md: Metadata[Any], role: str) -> bytes:
        from tuf.api.serialization.json import JSONSerializer

        md.signed.expires = self.now + self.expiry[role]
        md.sign(self.signers["targets" if role == MANIFESTS else role])
        data: bytes = md.to_bytes(JSONSerializer(compact=True))
        return data

    def run(self) -> PublishReport:
        from tuf.api.metadata import (
            DelegatedRole,
            Delegations,
            Metadata,
            MetaFile,
            Snapshot,
            Targets,
            Timestamp,
        )

        # 1. Every signed root, so clients pinned to an old one can walk forward.
        newest = b""
        for path in root_history(self.keys):
            newest = path.read_bytes()
            if not self.dest.exists(f"metadata/{path.name}"):
                self._write(f"metadata/{path.name}", newest)
        if self.dest.read("metadata/root.json") != newest:
            self._write("metadata/root.json", newest)

        # 2. What is published now.
        timestamp: Metadata[Timestamp] | None = self._load("timestamp", None)
        snapshot: Metadata[Snapshot] | None = None
        top: Metadata[Targets] | None = None
        manifests: Metadata[Targets] | None = None
        if timestamp is not None:
            snapshot = self._load("snapshot", timestamp.signed.snapshot_meta.version)
        if snapshot is not None:
            top = self._load("targets", snapshot.signed.meta["targets.json"].version)
            if f"{MANIFESTS}.json" in snapshot.signed.meta:
                manifests = self._load(MANIFESTS,
                                       snapshot.signed.meta[f"{MANIFESTS}.json"].version)

        # 3. What should be published; new target files are written now, before any
        #    metadata names them.
        old_top = top.signed.targets if top is not None else {}
        old_manifests = manifests.signed.targets if manifests is not None else {}
        want_top = {path: self._target(path, data, old_top)
                    for path, data in self._small_files().items()}
        want_manifests = {path: self._manifest_target(path, digest, old_manifests)
                          for path, digest in self._manifest_paths().items()}

        # 4. Metadata, each role only when it changed: manifests, targets, snapshot,
        #    timestamp — the order in which readers follow them, reversed.
        key = self.signers["targets"].public_key
        snap_changed = False
        # The snapshot names each targets role's version and length (a client then reads
        # no more than that many bytes, whatever its default limits).
        meta: dict[str, MetaFile] = {}
        for role, wanted, current in ((MANIFESTS, want_manifests, manifests),
                                      ("targets", want_top, top)):
            if role == "targets":
                delegations = Delegations(keys={key.keyid: key}, roles={MANIFESTS: DelegatedRole(
                    MANIFESTS, [key.keyid], 1, True, paths=["blobs/sha256/*"])})
            else:
                delegations = None
            same = current is not None and current.signed.targets == wanted \
                and current.signed.delegations == delegations
            if same and current is not None and not self._stale(current, role, key.keyid):
                known = snapshot.signed.meta.get(f"{role}.json") if snapshot else None
                meta[f"{role}.json"] = known or MetaFile(version=current.signed.version)
                continue
            version = current.signed.version + 1 if current is not None else 1
            data = self._sign(Metadata(Targets(version=version, targets=wanted,
                                               delegations=delegations)), role)
            self._write(f"metadata/{version}.{role}.json", data)
            meta[f"{role}.json"] = MetaFile(version=version, length=len(data))
            snap_changed = True
        snap_key = self.signers["snapshot"].public_key.keyid
        snapshot_meta = timestamp.signed.snapshot_meta if timestamp is not None else None
        if snap_changed or self._stale(snapshot, "snapshot", snap_key):
            version = snapshot.signed.version + 1 if snapshot is not None else 1
            snapshot = Metadata(Snapshot(version=version, meta=meta))
            data = self._sign(snapshot, "snapshot")
            self._write(f"metadata/{version}.snapshot.json", data)
            snapshot_meta = MetaFile(version=version, length=len(data))
        assert snapshot is not None and snapshot_meta is not None
        ts_key = self.signers["timestamp"].public_key.keyid
        if timestamp is None or timestamp.signed.snapshot_meta.version != snapshot.signed.version \
                or self._stale(timestamp, "timestamp", ts_key):
            version = timestamp.signed.version + 1 if timestamp is not None else 1
            timestamp = Metadata(Timestamp(version=version, snapshot_meta=snapshot_meta))
            self._write("metadata/timestamp.json", self._sign(timestamp, "timestamp"))
        versions = {role.removesuffix(".json"): m.version for role, m in meta.items()}
        self.report.targets_version = versions["targets"]
        self.report.snapshot_version = snapshot.signed.version
        self.report.timestamp_version = timestamp.signed.version
        return self.report

    # -- the targets ---------------------------------------------------------------

    def _small_files(self) -> dict[str, bytes]:
        """Pointers (per slot, and per alias of its environment), name indexes and the
        audit head (read first: every pointer published was moved by an entry it holds)."""
        out: dict[str, bytes] = {}
        tail = self.svc.audit.tail()
        self.report.audit_seq, self.report.audit_head = tail if tail else (0, None)
        out[AUDIT_HEAD] = audit_head_bytes(self.report.audit_seq, self.report.audit_head)
        envs = self.svc.policy.environments
        for slot in self.svc.slots.status():
            data = pointer_bytes(slot.name, slot.env, slot.version, slot.digest)
            spec = envs.get(slot.env)
            for env in (slot.env, *(spec.aliases if spec is not None else [])):
                out[f"pointers/{slot.name}/{env}.json"] = data
        for name, versions in self._histories().items():
            out[f"names/{name}.json"] = json.dumps(
                {"name": name, "versions": {str(v): d for v, d in versions.items()}},
                sort_keys=True, separators=(",", ":")).encode()
        return out

    def _histories(self) -> dict[str, dict[int, str]]:
        """name -> version -> digest, read once per publish."""
        if self._names is None:
            self._names = {s.name: {v.version: v.digest for v in self.svc.versions.history(s.name)}
                           for s in self.svc.versions.list_names()}
        return self._names

    def _manifest_paths(self) -> dict[str, str]:
        return {f"blobs/sha256/{hex_of(d)}": d
                for versions in self._histories().values() for d in versions.values()}

    def _target(self, path: str, data: bytes, old: dict[str, TargetFile]) -> TargetFile:
        from tuf.api.metadata import TargetFile

        info = TargetFile.from_data(path, data, ["sha256"])
        if old.get(path) != info:  # the same file was published with its metadata
            self._put_target(path, info, data)
        return info

    def _manifest_target(self, path: str, digest: str,
                         old: dict[str, TargetFile]) -> TargetFile:
        from tuf.api.metadata import TargetFile

        known = old.get(path)
        if known is not None and known.hashes.get("sha256") == hex_of(digest):
            return known  # immutable: published once, never read again
        data = self.svc.blobs.read(digest)  # verified against the digest
        info = TargetFile.from_data(path, data, ["sha256"])
        self._put_target(path, info, data)
        return info

    def _put_target(self, path: str, info: TargetFile, data: bytes) -> None:
        stored = target_file_path(path, info.hashes["sha256"])
        if not self.dest.exists(stored):
            self._write(stored, data)


class AutoPublisher:
    """Publishes after every move, for ``llmreg serve --publish DEST``.

    A failed publish never fails the move that triggered it (the slot has moved in the
    registry): it is logged as an error, and the next move or ``llmreg publish``
    catches the mirror up.

    Example:
        >>> AutoPublisher(svc, "mirror/", Path("mirror-keys")).after_move()  # doctest: +SKIP
    """

    def __init__(self, svc: RegistryService, dest: str, keys: Path) -> None:
        self.svc = svc
        self.dest = open_destination(dest)
        self.keys = keys
        self.last: PublishReport | None = None
        self.failures = 0

    def after_move(self) -> PublishReport | None:
        try:
            self.last = publish(self.svc, self.dest, self.keys)
        except Exception:  # logged loudly; the move itself stands
            self.failures += 1
            log.exception("llmreg: publishing the mirror to %s failed; it still shows the "
                          "previous state (run `llmreg publish` to retry)", self.dest.url)
            return None
        return self.last
