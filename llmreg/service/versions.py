"""Registering bundles and reading versions back.

Ordering rule for crash safety: blobs first, then the database row that refers to
them, in one transaction. A crash between the two leaves an unreferenced blob (which
``gc`` can collect), never a reference to a missing blob.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from llmreg.bundle.diff import BundleDiff, diff_bundles
from llmreg.bundle.digest import canonical_json, compact_json, digest_bytes
from llmreg.bundle.names import Ref, check_name
from llmreg.bundle.schema import Bundle
from llmreg.db.engine import Database, insert_ignore
from llmreg.db.models import BundleName, Manifest, Version, table, utcnow
from llmreg.errors import BlobNotFoundError, InvalidBundleError, InvalidRefError, shown
from llmreg.policy import REGISTERED, Policy
from llmreg.service import audit
from llmreg.service.audited import version_row
from llmreg.service.authority import owner_team, require
from llmreg.service.blobs import Blobs
from llmreg.service.hygiene.owners import record_owner
from llmreg.service.notifications import outbox
from llmreg.service.refs import name_row, not_registered, resolve_in, slot_in
from llmreg.service.rows import version_info
from llmreg.teams import claim
from llmreg.types import (
    Actor,
    ChangelogEntry,
    NameSummary,
    Page,
    Registration,
    VersionInfo,
)

MAX_MESSAGE = 10_000
MAX_BATCH = 10_000  # bundles registered in one transaction
MAX_PROVENANCE = 1024 * 1024  # bytes of canonical JSON recorded with one version


class Versions:
    """Registration, refs, history and diffs of one registry.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from llmreg.service import RegistryService
        >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
        >>> bundle = Bundle.from_dict({"model": {"provider": "openai",
        ...     "id": "gpt-4o-2024-08-06"}, "template": {"source": "Hi"}})
        >>> svc.versions.register(bundle, name="chat", message="first",
        ...                       author="ana").version.ref
        'chat@1'
        >>> svc.versions.history_page("chat", limit=10).total
        1
        >>> svc.close()
    """

    def __init__(self, db: Database, blobs: Blobs, policy: Policy) -> None:
        self.db = db
        self.blobs = blobs
        self.policy = policy
        self._recent: dict[str, Bundle] = {}  # digest → bundle: the next version's parent
        self._latest: dict[str, str] = {}  # name → its latest digest, as this service left it
        self._lock = threading.Lock()  # the two caches are shared by a server's threads

    # -- writes ------------------------------------------------------------------

    def register(self, bundle: Bundle, *, name: str, message: str, author: str,
                 provenance: dict[str, Any] | None = None, actor: Actor | None = None,
                 team: str | None = None) -> Registration:
        """Register ``bundle`` under ``name``; identical content returns the existing version.

        Version numbers are allocated inside the write transaction from the name's
        counter, so concurrent registrations get consecutive numbers, no gaps. With an
        ``actor``, it must be a publisher for the name's owning team, and a new name is
        claimed by its team (``team``: which one; see
        :func:`llmreg.service.authority.claim`).
        """
        return self.register_many([bundle], name=name, message=message, author=author,
                                  provenance=[provenance], actor=actor, team=team)[0]

    def register_many(self, bundles: Sequence[Bundle], *, name: str, message: str,
                      author: str, provenance: Sequence[dict[str, Any] | None] | None = None,
                      actor: Actor | None = None, team: str | None = None
                      ) -> list[Registration]:
        """Register ``bundles`` as consecutive versions of ``name``, in one transaction.

        Each is what :meth:`register` would do, in order: content the name already has
        (or an earlier item of the batch) returns that version, each new version's diff
        is against the one before it, and each gets its audit entry. The manifests and
        the stored diffs are written (and synced) before the transaction; a bad item
        changes nothing. ``provenance``: one record per bundle, or None.

        Example:
            >>> two = [Bundle.from_dict({"model": {"provider": "openai",
            ...     "id": "gpt-4o-2024-08-06"}, "template": {"source": s}}) for s in "ab"]
            >>> [r.version.version for r in svc.versions.register_many(
            ...     two, name="batch", message="import", author="ana")]  # doctest: +SKIP
            [1, 2]
        """
        check_name(name)
        message = _check_message(message)
        if not bundles:
            return []
        if len(bundles) > MAX_BATCH:
            raise InvalidBundleError(f"{len(bundles)} bundles in one batch; the limit is "
                                     f"{MAX_BATCH}: split them into several calls")
        records: list[dict[str, Any] | None] = (list(provenance) if provenance is not None
                                                 else [None] * len(bundles))
        if len(records) != len(bundles):
            raise InvalidBundleError(f"{len(records)} provenance records for {len(bundles)} "
                                     "bundles; give one per bundle (or none)")
        checked: set[str | None] = set()  # a batch's records are often the same: check each once
        for i, (bundle, record) in enumerate(zip(bundles, records, strict=True)):
            try:
                bundle.check_pins(allow_floating=self.policy.models.allow_floating)
                key = _record_key(record)
                if key not in checked:
                    _check_provenance(record)
                    if key is not None:
                        checked.add(key)
                self._check_weights_reference(bundle)
            except InvalidBundleError as exc:
                if len(bundles) == 1:
                    raise
                raise type(exc)(f"bundles[{i}]: {exc}") from None
        for bundle in bundles:
            self._store_artifacts(bundle)
        canonical = [b.canonical_bytes() for b in bundles]
        digests = [b.digest for b in bundles]
        # Plan the versions and their diffs outside the write lock, against what the name
        # holds now; redone inside only if another writer registered in between.
        guess = self._state(name, digests)
        plan = self._plan(bundles, *guess)
        self.blobs.put_many(canonical + [p.diff for p in plan if p.diff is not None])
        with self.db.write() as session:
            row = _lock_name(session, name)
            if actor is not None:
                _authorize(session, actor, name, row, team)
            state = _name_state(session, row, digests)
            if state != guess:
                plan = self._plan(bundles, *state)
                self.blobs.put_many([p.diff for p in plan if p.diff is not None])
            done = _commit_plan(session, row, name, plan, bundles, canonical, records,
                                message=message, author=author, existing=state[1])
        created = [b for b, r in zip(bundles, done, strict=True) if r.created]
        if created:  # the next registration's parent
            self._remember(created[-1], name=name)
        return done

    def _remember(self, bundle: Bundle, *, name: str | None = None) -> None:
        """Keep ``bundle`` for a while (a parent to diff against); with ``name``, it was
        just committed as that name's latest version."""
        with self._lock:
            if len(self._recent) >= 32:
                self._recent.pop(next(iter(self._recent)))
            self._recent[bundle.digest] = bundle
            if name is not None:
                self._latest.pop(name, None)
                if len(self._latest) >= 1024:
                    self._latest.pop(next(iter(self._latest)))
                self._latest[name] = bundle.digest

    def _state(self, name: str, digests: list[str]) -> tuple[str | None, dict[str, int]]:
        """What :func:`_name_state` would say now, read without the write lock. A name
        this service registered last needs no read: its latest digest is remembered,
        and a bundle with a new digest is the common case (under the lock, the real
        state is read anyway, and a wrong guess only means planning again)."""
        with self._lock:
            latest = self._latest.get(name)
        if latest is not None and len(digests) == 1 and digests[0] != latest:
            return latest, {}
        with self.db.read() as session:
            found = session.execute(sa.select(_NAMES.c.id, _NAMES.c.latest_version)
                                    .where(_NAMES.c.name == name)).first()
            if found is None:
                return None, {}
            return _name_state(session, _NameRow(int(found[0]), int(found[1])), digests)

    def _plan(self, bundles: Sequence[Bundle], parent: str | None,
              existing: dict[str, int]) -> list[_Planned]:
        """For each bundle: the version it already is, or its parent, diff summary and
        stored diff (canonical JSON) as a new version."""
        plan: list[_Planned] = []
        fresh: dict[str, int] = {}
        previous: Bundle | None = None
        for i, bundle in enumerate(bundles):
            digest = bundle.digest
            if digest in existing or digest in fresh:
                plan.append(_Planned(digest, existing.get(digest), fresh.get(digest)))
                continue
            changes: list[str] = []
            diff = None
            if parent is not None:
                old = previous if previous is not None else self.load_cached(parent)
                result = diff_bundles(old, bundle, load=self.load_cached)
                changes, diff = result.stat(), compact_json(result.to_json())
            plan.append(_Planned(digest, None, None, parent, changes, diff))
            fresh[digest] = i
            parent, previous = digest, bundle
        return plan

    def load_cached(self, digest: str) -> Bundle:
        """:meth:`load`, remembering the last few bundles (content never changes): the
        next registration's parent is usually the one just registered."""
        with self._lock:
            bundle = self._recent.get(digest)
        if bundle is None:
            bundle = self.load(digest)
            self._remember(bundle)
        return bundle

    def prepare(self, bundle: Bundle, *, name: str, message: str,
                provenance: dict[str, Any] | None) -> str:
        """Check ``bundle`` for registration under ``name`` and store its blobs (the
        manifest and the artifacts given as files); return the cleaned message.

        The first half of :meth:`register`, for callers (an import) that then register
        many bundles of many names in one transaction with :meth:`register_in`.

        Example:
            >>> b = Bundle.from_dict({"model": {"provider": "openai",
            ...     "id": "gpt-4o-2024-08-06"}, "template": {"source": "hi"}})
            >>> svc.versions.prepare(b, name="chat", message=" first ",
            ...                      provenance=None)  # doctest: +SKIP
            'first'
        """
        check_name(name)
        message = _check_message(message)
        bundle.check_pins(allow_floating=self.policy.models.allow_floating)
        _check_provenance(provenance)
        self._check_weights_reference(bundle)
        self._store_artifacts(bundle)
        self.blobs.put_bytes(bundle.canonical_bytes())
        return message

    def register_in(self, session: Session, bundle: Bundle, *, name: str, message: str,
                    author: str, provenance: dict[str, Any] | None = None) -> Registration:
        """Register a :meth:`prepare`-d bundle inside the caller's write transaction:
        the same version, stored diff, audit entry and event as :meth:`register`."""
        row = _lock_name(session, name)
        state = _name_state(session, row, [bundle.digest])
        plan = self._plan([bundle], *state)
        self.blobs.put_many([p.diff for p in plan if p.diff is not None])
        return _commit_plan(session, row, name, plan, [bundle], [bundle.canonical_bytes()],
                            [provenance], message=message, author=author,
                            existing=state[1])[0]

    def _check_weights_reference(self, bundle: Bundle) -> None:
        """A self-hosted model must name a weights bundle this registry holds."""
        weights = bundle.model.weights if bundle.model is not None else None
        if weights is None:
            return
        with self.db.read() as session:
            manifest = session.get(Manifest, weights)
        if manifest is None or manifest.kind != "weights":
            raise InvalidBundleError(
                f"model.weights {weights} is not a weights bundle in this registry; log the "
                "weights first (`llmreg log-model` or Client.log_model) and use its digest")

    def _store_artifacts(self, bundle: Bundle) -> None:
        for i, art in enumerate(bundle.artifacts):
            source = bundle._sources.get(art.digest)
            if source is not None:
                with source.open("rb") as fh:
                    self.blobs.put_stream(fh, expected_digest=art.digest)
            elif not self.blobs.exists(art.digest):
                raise BlobNotFoundError(
                    f"artifacts[{i}] {art.name!r} refers to {art.digest}, which is not in the "
                    "blob store; give it as {file: PATH} in the bundle directory or upload it first"
                )

    # -- reads -------------------------------------------------------------------

    def resolve(self, ref: str | Ref) -> VersionInfo:
        """The version a ref points to, or raise naming the ref.

        ``name@production`` (or an alias such as ``name@prod``) reads the slot.

        Example:
            >>> svc.versions.resolve("support-bot@3").digest  # doctest: +SKIP
            'sha256:…'
        """
        with self.db.read() as session:
            row, version = resolve_in(session, ref, self.policy)
            return version_info(row.name, version)

    def slot(self, name: str, env: str) -> VersionInfo:
        """The version ``name``'s slot in ``env`` (an alias is fine) holds now."""
        check_name(name)
        canonical = self.policy.canonical_env(env)
        with self.db.read() as session:
            row, version = slot_in(session, name_row(session, name), canonical)
            return version_info(row.name, version)

    def get(self, ref: str | Ref) -> Bundle:
        """The bundle a ref points to, read from the blob store and verified."""
        info = self.resolve(ref)
        return self.load(info.digest).with_info(info)

    def load(self, digest: str) -> Bundle:
        """Load a manifest by digest; the bytes are verified before they are parsed."""
        bundle = Bundle.from_canonical(self.blobs.read(digest))
        if bundle.digest != digest:  # the stored bytes verified, so this means a schema bug
            raise InvalidBundleError(
                f"manifest {digest} re-canonicalises to {bundle.digest}; this llmreg cannot "
                "reproduce that digest")
        return bundle

    def diff(self, old: Bundle, new: Bundle) -> BundleDiff:
        """The semantic diff of two bundles (see :mod:`llmreg.bundle.diff`)."""
        return diff_bundles(old, new, load=self.load)

    def stored_diff(self, info: VersionInfo) -> dict[str, Any] | None:
        """The full diff stored with a version at registration (None for a first version)."""
        if info.diff_digest is None:
            return None
        data: dict[str, Any] = json.loads(self.blobs.read(info.diff_digest))
        return data

    def changelog(self, name: str) -> list[ChangelogEntry]:
        """The release history of ``name``, newest first."""
        return [ChangelogEntry(version=v, first=v.parent_digest is None)
                for v in reversed(self.history(name))]

    def history(self, name: str) -> list[VersionInfo]:
        """Every version of ``name``, oldest first."""
        return self.history_page(name, offset=0, limit=None).items

    def history_page(self, name: str, *, offset: int = 0, limit: int | None = 100
                     ) -> Page[VersionInfo]:
        """One page of ``name``'s versions, oldest first (``limit=None``: all of them)."""
        check_name(name)
        with self.db.read() as session:
            row = session.exec(select(BundleName).where(BundleName.name == name)).first()
            if row is None:
                raise not_registered(session, name)
            rows = session.exec(
                select(Version).where(Version.name_id == row.id).order_by(col(Version.number))
                .offset(offset).limit(limit)).all()
            return Page.of([version_info(name, r) for r in rows], offset=offset, limit=limit,
                           total=row.latest_version)

    def list_names(self) -> list[NameSummary]:
        """Every registered name with its latest version, sorted by name."""
        return self.names_page(offset=0, limit=None).items

    def names_page(self, *, offset: int = 0, limit: int | None = 100) -> Page[NameSummary]:
        """One page of registered names, sorted by name (``limit=None``: all of them)."""
        with self.db.read() as session:
            total = session.exec(select(func.count()).select_from(BundleName)
                                 .where(col(BundleName.latest_version) > 0)).one()
            rows = session.exec(
                select(BundleName, Version)
                .join(Version, sa.and_(col(Version.name_id) == col(BundleName.id),
                                       col(Version.number) == col(BundleName.latest_version)))
                .order_by(col(BundleName.name)).offset(offset).limit(limit)).all()
            # Numbers have no gaps, so the latest number is the count of versions.
            items = [NameSummary(name=n.name, versions=n.latest_version,
                                 latest_version=v.number, latest_digest=v.digest,
                                 updated_at=v.created_at) for n, v in rows]
            return Page.of(items, offset=offset, limit=limit, total=int(total))


def _record_key(record: dict[str, Any] | None) -> str | None:
    """A cheap identity for a provenance record (None: check it whatever)."""
    try:
        return json.dumps(record, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return None


def _check_message(message: str) -> str:
    message = (message or "").strip()
    if not message:
        raise InvalidBundleError(
            "message is empty; say what changed and why, e.g. -m 'tighten refusal wording'")
    if len(message) > MAX_MESSAGE:
        raise InvalidBundleError(
            f"message is {len(message)} characters; the limit is {MAX_MESSAGE}")
    return message


@dataclass(frozen=True)
class _Planned:
    """One bundle of a registration: already version ``number`` (or the same as batch
    item ``same_as``), or a new version with its parent and diff."""

    digest: str
    number: int | None = None
    same_as: int | None = None
    parent: str | None = None
    changes: list[str] = field(default_factory=list)
    diff: bytes | None = None

    @property
    def new(self) -> bool:
        return self.number is None and self.same_as is None


# -- statements the registration path runs on every call, built once: on SQLite,
# building a statement costs about as much as running it -----------------------------

_NAMES, _VERSIONS, _MANIFESTS = table(BundleName), table(Version), table(Manifest)
_LOCK_NAME = (sa.select(_NAMES.c.id, _NAMES.c.latest_version)
              .where(_NAMES.c.name == sa.bindparam("name")).with_for_update())
# Which of some digests a name holds, and (number = latest) its latest digest; no
# version is number 0, so latest=0 asks for none.
_HELD = sa.select(_VERSIONS.c.digest, _VERSIONS.c.number).where(
    _VERSIONS.c.name_id == sa.bindparam("name_id"),
    sa.or_(_VERSIONS.c.digest.in_(sa.bindparam("digests", expanding=True)),
           _VERSIONS.c.number == sa.bindparam("latest")))
_COUNT = (sa.update(_NAMES).where(_NAMES.c.id == sa.bindparam("name_id"))
          .values(latest_version=_NAMES.c.latest_version + sa.bindparam("count"))
          .returning(_NAMES.c.latest_version))
_ADD_VERSIONS = sa.insert(_VERSIONS)


@dataclass(frozen=True)
class _NameRow:
    """A name's id and version counter, as read under its lock."""

    id: int
    latest_version: int


def _name_state(session: Session, row: _NameRow,
                digests: list[str]) -> tuple[str | None, dict[str, int]]:
    """The name's latest digest, and which of ``digests`` it already holds (by number):
    one query per 500 digests (bounded IN lists), the first also reading the latest."""
    wanted = sorted(set(digests))
    latest = None
    existing: dict[str, int] = {}
    for start in range(0, max(len(wanted), 1), 500):
        found = session.execute(_HELD, {"name_id": row.id, "digests": wanted[start:start + 500],
                                        "latest": row.latest_version if start == 0 else 0})
        for digest, number in found:
            if number == row.latest_version:
                latest = digest
            if digest in wanted:
                existing[digest] = number
    return latest, existing


def _commit_plan(session: Session, row: _NameRow, name: str, plan: list[_Planned],
                 bundles: Sequence[Bundle], canonical: list[bytes],
                 records: list[dict[str, Any] | None], *, message: str, author: str,
                 existing: dict[str, int]) -> list[Registration]:
    """Write the plan's new versions, their manifests and audit entries."""
    new = [i for i, p in enumerate(plan) if p.new]
    now = utcnow()
    first = 0
    if new:
        # One atomic increment for the whole batch: PostgreSQL holds the name's row lock
        # until commit; on SQLite the write transaction holds the database lock.
        last = int(session.execute(_COUNT, {"name_id": row.id, "count": len(new)}).scalar_one())
        first = last - len(new) + 1
        session.execute(insert_ignore(session, _MANIFESTS), [
            {"digest": plan[i].digest, "size": len(canonical[i]), "kind": bundles[i].kind,
             "created_at": now} for i in new])
    infos: dict[int, VersionInfo] = {}
    rows = []
    for k, i in enumerate(new):
        p = plan[i]
        diff_digest = digest_bytes(p.diff) if p.diff is not None else None
        values = {"name_id": row.id, "number": first + k, "digest": p.digest,
                  "author": author, "created_at": now, "message": message,
                  "parent_digest": p.parent, "provenance": records[i] or {},
                  "changes": p.changes, "diff_digest": diff_digest, "status": REGISTERED}
        rows.append(values)
        infos[i] = VersionInfo(name=name, version=first + k, digest=p.digest, author=author,
                               created_at=now, message=message, parent_digest=p.parent,
                               provenance=records[i] or {}, changes=p.changes,
                               diff_digest=diff_digest, status=REGISTERED)
    if rows:
        session.execute(_ADD_VERSIONS, rows)
        audit.append_many(session, actor=author, action="register", entries=[
            {"name": name, "target": f"{name}@{r['number']}",
             "detail": {"digest": r["digest"], "message": message, "changes": r["changes"]},
             "rows": [version_row(name, r)]}
            for r in rows])
        newest = plan[new[-1]]
        # One event per call: a batch of a thousand versions is one message, not a thousand.
        data: dict[str, Any] = {"name": name, "version": first + len(new) - 1,
                                "digest": newest.digest, "author": author,
                                "message": message[:500], "changes": newest.changes[:50]}
        if len(new) > 1:  # a batch: the event names its newest version and how many
            data.update(count=len(new), first_version=first)
        outbox.emit(session, event="registration", name=name, at=now, data=data)
    out = []
    for i, p in enumerate(plan):
        if p.new:
            out.append(Registration(version=infos[i], created=True))
        elif p.same_as is not None:
            out.append(Registration(version=infos[p.same_as], created=False))
        else:
            found = session.exec(select(Version).where(Version.name_id == row.id,
                                                       Version.digest == p.digest)).one()
            out.append(Registration(version=version_info(name, found), created=False))
    return out


def _check_provenance(provenance: dict[str, Any] | None) -> None:
    """Provenance is JSON with finite numbers, at most :data:`MAX_PROVENANCE` bytes."""
    try:
        size = len(canonical_json(provenance or {}))
    except InvalidBundleError as exc:
        raise InvalidBundleError(f"provenance: {exc}; use null or a finite number") from None
    if size > MAX_PROVENANCE:
        raise InvalidBundleError(f"provenance is {size} bytes as JSON; the limit is "
                                 f"{MAX_PROVENANCE}: link large records instead")


def _authorize(session: Session, actor: Actor, name: str, row: _NameRow,
               team: str | None) -> None:
    """Refuse ``actor`` unless it publishes for ``name``'s owning team; a new name (no
    version, no owner) is claimed by the actor's team instead."""
    owner = owner_team(session, row.id)
    if row.latest_version == 0 and owner is None:
        claimed = claim(actor, name, team)
        if claimed is not None:
            record_owner(session, name, row.id, claimed, [], actor=actor, at=utcnow())
        return
    require(session, actor, name, row.id, "publisher")
    if team is not None and team != owner:
        raise InvalidRefError(
            f"--team {shown(team, 80)}: {name} is already "
            + (f"owned by team {owner}" if owner else "registered, with no owner")
            + "; --team claims only a new name (an owner changes with `llmreg owner set`)")


def _lock_name(session: Session, name: str) -> _NameRow:
    """Get-or-create the name's row and lock it until commit.

    The lock (``SELECT … FOR UPDATE`` on PostgreSQL; the whole database on SQLite, via
    ``BEGIN IMMEDIATE``) serialises registrations of one name: the duplicate check, the
    parent and the new number are all read under it. The counter is read afresh each
    time (an import registers many versions of one name in one session).
    """
    found = session.execute(_LOCK_NAME, {"name": name}).first()
    if found is None:
        session.execute(insert_ignore(session, _NAMES),
                        {"name": name, "created_at": utcnow(), "latest_version": 0})
        found = session.execute(_LOCK_NAME, {"name": name}).one()
    return _NameRow(int(found[0]), int(found[1]))
