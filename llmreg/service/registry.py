"""Registering, resolving and listing bundles.

Ordering rule for crash safety: blobs first, then the database row that refers to
them, in one transaction. A crash between the two leaves an unreferenced blob (which
integrity tools can collect), never a reference to a missing blob.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from llmreg.bundle import Bundle
from llmreg.db.engine import Database
from llmreg.db.models import BundleName, Manifest, Slot, Version, utcnow
from llmreg.diff import BundleDiff, diff_bundles
from llmreg.digest import canonical_json, short
from llmreg.errors import (
    AmbiguousRefError,
    BlobNotFoundError,
    EmptySlotError,
    InvalidBundleError,
    InvalidRefError,
    RefNotFoundError,
)
from llmreg.names import Ref, check_name, parse_ref
from llmreg.policy import Policy
from llmreg.service import audit, integrity
from llmreg.service.access import AccessMixin
from llmreg.service.lifecycle import LifecycleMixin
from llmreg.store import open_store
from llmreg.store.base import BlobStore
from llmreg.store.local import LocalStore
from llmreg.types import ChangelogEntry, NameSummary, Problem, Registration, VersionInfo

MAX_MESSAGE = 10_000


class RegistryService(LifecycleMixin, AccessMixin):
    """The state-changing core over one metadata database and one blob store.

    Example:
        >>> from llmreg.store import MemoryStore
        >>> svc = RegistryService.open("sqlite://", MemoryStore())  # doctest: +SKIP
        >>> svc.register(bundle, name="chat", message="first", author="ana")  # doctest: +SKIP
    """

    def __init__(self, db: Database, store: BlobStore, policy: Policy | None = None) -> None:
        self.db = db
        self.store = store
        self.policy = policy or Policy.default()

    @classmethod
    def open(cls, database_url: str, store: BlobStore,
             policy: Policy | None = None) -> RegistryService:
        """Open the database (migrating it to head) and wrap it with ``store``."""
        return cls(Database.open(database_url), store, policy)

    @classmethod
    def open_home(cls, home: Path, *, database_url: str | None = None,
                  store: str | None = None, policy: Policy | None = None) -> RegistryService:
        """Open (creating if needed) the embedded registry in folder ``home``."""
        home.mkdir(parents=True, exist_ok=True)
        url = database_url or f"sqlite:///{home / 'registry.db'}"
        return cls.open(url, open_store(store, home), policy)

    def close(self) -> None:
        self.db.dispose()

    # -- writes ------------------------------------------------------------------

    def register(self, bundle: Bundle, *, name: str, message: str, author: str,
                 provenance: dict[str, Any] | None = None) -> Registration:
        """Register ``bundle`` under ``name``; identical content returns the existing version.

        Version numbers are allocated inside the write transaction from the name's
        counter, so concurrent registrations get consecutive numbers, no gaps.
        """
        check_name(name)
        message = (message or "").strip()
        if not message:
            raise InvalidBundleError(
                "message is empty; say what changed and why, e.g. -m 'tighten refusal wording'"
            )
        if len(message) > MAX_MESSAGE:
            raise InvalidBundleError(f"message is {len(message)} characters; the limit is 10000")
        bundle.check_pins(allow_floating=self.policy.models.allow_floating)
        self._check_weights_reference(bundle)
        self._store_artifacts(bundle)
        canonical = bundle.canonical_bytes()
        digest = bundle.digest
        self.store.put_bytes(canonical)
        # Diff against the current latest outside the write lock; re-done inside only
        # if another writer registered a version in between.
        guess = self._latest_digest(name)
        changelog = self._changelog_for(guess, bundle) if guess and guess != digest else None
        with self.db.write() as session:
            row = self._lock_name(session, name)
            assert row.id is not None
            existing = session.exec(
                select(Version).where(Version.name_id == row.id, Version.digest == digest)
            ).first()
            if existing is not None:
                return Registration(version=_info(name, existing), created=False)
            session.execute(_insert_ignore(session, Manifest, digest=digest,
                                           size=len(canonical), kind=bundle.kind,
                                           created_at=utcnow()))
            parent = None
            if row.latest_version:
                parent = session.exec(
                    select(Version.digest).where(Version.name_id == row.id,
                                                 Version.number == row.latest_version)
                ).one()
            if parent is not None and parent != guess:
                changelog = self._changelog_for(parent, bundle)
            changes, diff_digest = changelog if parent is not None and changelog else ([], None)
            number = self._next_number(session, row)
            version = Version(name_id=row.id, number=number, digest=digest, author=author,
                              created_at=utcnow(), message=message, parent_digest=parent,
                              provenance=provenance or {}, changes=changes,
                              diff_digest=diff_digest)
            session.add(version)
            session.flush()
            audit.append(session, actor=author, action="register", name=name,
                         target=f"{name}@{number}",
                         detail={"digest": digest, "message": message, "changes": changes})
            return Registration(version=_info(name, version), created=True)

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

    def _lock_name(self, session: Session, name: str) -> BundleName:
        """Get-or-create the name's row and lock it until commit.

        The lock (``SELECT … FOR UPDATE`` on PostgreSQL; the whole database on SQLite,
        via ``BEGIN IMMEDIATE``) serialises registrations of one name: the duplicate
        check, the parent and the new number are all read under it.
        """
        session.execute(_insert_ignore(session, BundleName, name=name, created_at=utcnow(),
                                       latest_version=0))
        row = session.exec(select(BundleName).where(BundleName.name == name)
                           .with_for_update()).one()
        return row

    def _latest_digest(self, name: str) -> str | None:
        with self.db.read() as session:
            return session.exec(
                select(Version.digest).join(BundleName)
                .where(BundleName.name == name,
                       col(Version.number) == col(BundleName.latest_version))
            ).first()

    def _changelog_for(self, parent: str, bundle: Bundle) -> tuple[list[str], str]:
        """The diff summary and the stored full diff of ``bundle`` against ``parent``."""
        result = diff_bundles(self.load(parent), bundle, load=self.load)
        blob = self.store.put_bytes(canonical_json(result.to_json()))
        return result.stat(), blob.digest

    def _next_number(self, session: Session, row: BundleName) -> int:
        # An atomic increment: on PostgreSQL the UPDATE locks the name's row until
        # commit; on SQLite the whole write transaction holds the database lock.
        number = session.execute(
            sa.update(BundleName)
            .where(col(BundleName.id) == row.id)
            .values(latest_version=BundleName.latest_version + 1)
            .returning(col(BundleName.latest_version))
        ).scalar_one()
        return int(number)

    def _store_artifacts(self, bundle: Bundle) -> None:
        for i, art in enumerate(bundle.artifacts):
            source = bundle._sources.get(art.digest)
            if source is not None:
                with source.open("rb") as fh:
                    self.store.put_stream(fh, expected_digest=art.digest)
            elif not self.store.exists(art.digest):
                raise BlobNotFoundError(
                    f"artifacts[{i}] {art.name!r} refers to {art.digest}, which is not in the "
                    "blob store; give it as {file: PATH} in the bundle directory or upload it first"
                )

    # -- reads -------------------------------------------------------------------

    def resolve(self, ref: str | Ref) -> VersionInfo:
        """Return the version a ref points to, or raise naming the ref.

        ``name@production`` (or an alias such as ``name@prod``) reads the slot.

        Example:
            >>> svc.resolve("support-bot@3").digest  # doctest: +SKIP
            'sha256:…'
        """
        with self.db.read() as session:
            row, version = self._resolve_in(session, ref)
            return _info(row.name, version)

    def _resolve_in(self, session: Session, ref: str | Ref) -> tuple[BundleName, Version]:
        """Resolve inside an open session (so writers judge and move on one snapshot)."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.name is None:
            return self._by_content(session, parsed)
        row = self._name_row(session, parsed.name)
        query = select(Version).where(Version.name_id == row.id)
        if parsed.version is not None:
            found = session.exec(query.where(Version.number == parsed.version)).first()
            if found is None:
                raise RefNotFoundError(
                    f"{parsed.name!r} has no version {parsed.version} (latest is "
                    f"{row.latest_version}); see `llmreg history {parsed.name}`"
                )
            return row, found
        if parsed.digest_prefix is not None:
            found_all = session.exec(_prefix_filter(query, parsed.digest_prefix)).all()
            return row, _one(found_all, str(parsed))
        if parsed.label in (None, "latest"):
            return row, session.exec(query.where(Version.number == row.latest_version)).one()
        assert parsed.label is not None
        if not self.policy.is_environment(parsed.label):
            raise InvalidRefError(
                f"ref {str(parsed)!r}: {parsed.label!r} is not a version, a digest, 'latest' "
                f"or an environment ({self.policy.environment_names()})"
            )
        env = self.policy.canonical_env(parsed.label)
        slot = session.exec(select(Slot).where(Slot.name_id == row.id, Slot.env == env)).first()
        if slot is None:
            raise EmptySlotError(
                f"{parsed.name!r} has nothing in {env!r}; see `llmreg status {parsed.name}`")
        return row, session.exec(query.where(Version.number == slot.version)).one()

    def _name_row(self, session: Session, name: str) -> BundleName:
        row = session.exec(select(BundleName).where(BundleName.name == name)).first()
        if row is None or row.latest_version == 0:
            raise RefNotFoundError(
                f"{name!r} is not registered; see `llmreg list` for the names there are"
            )
        return row

    def _by_content(self, session: Session, parsed: Ref) -> tuple[BundleName, Version]:
        assert parsed.digest_prefix is not None
        query = select(Version).order_by(col(Version.id))
        rows = session.exec(_prefix_filter(query, parsed.digest_prefix)).all()
        digests = {r.digest for r in rows}
        if not rows:
            raise RefNotFoundError(f"no bundle has digest {str(parsed)!r}")
        if len(digests) > 1:
            raise AmbiguousRefError(_ambiguous(str(parsed), sorted(digests)))
        name = session.get(BundleName, rows[0].name_id)
        assert name is not None
        return name, rows[0]

    def get(self, ref: str | Ref) -> Bundle:
        """Return the bundle a ref points to, read from the blob store and verified."""
        info = self.resolve(ref)
        return self.load(info.digest).with_info(info)

    def load(self, digest: str) -> Bundle:
        """Load a manifest by digest; the bytes are verified before they are parsed."""
        bundle = Bundle.from_canonical(self.store.get_bytes(digest))
        if bundle.digest != digest:  # the stored bytes verified, so this means a schema bug
            raise InvalidBundleError(
                f"manifest {digest} re-canonicalises to {bundle.digest}; this llmreg cannot "
                "reproduce that digest"
            )
        return bundle

    def verify(self, ref: str) -> list[Problem]:
        """Re-hash a version's manifest and every artifact; return the problems found."""
        info = self.resolve(ref)
        problems = []
        manifest_problem = integrity.check_blob(self.store, info.digest, f"{info.ref}")
        if manifest_problem is not None:
            return [manifest_problem]
        for art in self.load(info.digest).artifacts:
            problem = integrity.check_blob(self.store, art.digest,
                                           f"artifact {art.name!r} of {info.ref}")
            if problem is not None:
                problems.append(problem)
        return problems

    def fsck(self) -> tuple[int, list[Problem]]:
        """Check every blob and every reference (see :mod:`llmreg.service.integrity`)."""
        return integrity.fsck(self.db, self.store)

    def gc(self, *, dry_run: bool = True, grace: float = integrity.GRACE_SECONDS
           ) -> list[str]:
        """Unreferenced blobs older than ``grace`` seconds; deleted unless ``dry_run``."""
        found = integrity.unreferenced(self.db, self.store, grace)
        stale = (self.store.stale_uploads(grace) if isinstance(self.store, LocalStore)
                 else [])
        if not dry_run:
            for digest in found:
                self.store.discard(digest)
            for path in stale:  # leftovers of killed uploads
                path.unlink(missing_ok=True)
        return found + [f"(incomplete upload) {p.name}" for p in stale]

    def diff(self, old: Bundle, new: Bundle) -> BundleDiff:
        """The semantic diff of two bundles (see :mod:`llmreg.diff`)."""
        return diff_bundles(old, new, load=self.load)

    def stored_diff(self, info: VersionInfo) -> dict[str, Any] | None:
        """The full diff stored with a version at registration (None for a first version)."""
        if info.diff_digest is None:
            return None
        data: dict[str, Any] = json.loads(self.store.get_bytes(info.diff_digest))
        return data

    def changelog(self, name: str) -> list[ChangelogEntry]:
        """The release history of ``name``, newest first."""
        versions = self.history(name)
        return [ChangelogEntry(version=v, first=v.parent_digest is None)
                for v in reversed(versions)]

    def history(self, name: str) -> list[VersionInfo]:
        """Every version of ``name``, oldest first."""
        check_name(name)
        with self.db.read() as session:
            row = session.exec(select(BundleName).where(BundleName.name == name)).first()
            if row is None:
                raise RefNotFoundError(
                    f"{name!r} is not registered; see `llmreg list` for the names there are"
                )
            rows = session.exec(
                select(Version).where(Version.name_id == row.id).order_by(col(Version.number))
            ).all()
            return [_info(name, r) for r in rows]

    def list_names(self) -> list[NameSummary]:
        """Every registered name with its latest version, sorted by name."""
        with self.db.read() as session:
            counts = (
                select(Version.name_id, func.count().label("n"))
                .group_by(col(Version.name_id)).subquery()
            )
            rows = session.exec(
                select(BundleName, Version, counts.c.n)
                .join(Version, sa.and_(col(Version.name_id) == col(BundleName.id),
                                       col(Version.number) == col(BundleName.latest_version)))
                .join(counts, counts.c.name_id == col(BundleName.id))
                .order_by(col(BundleName.name))
            ).all()
            return [
                NameSummary(name=n.name, versions=int(count), latest_version=v.number,
                            latest_digest=v.digest, updated_at=v.created_at)
                for n, v, count in rows
            ]


def _prefix_filter(query: Any, prefix: str) -> Any:
    # A range instead of LIKE, so the digest index is used on every backend.
    low = f"sha256:{prefix}"
    return query.where(col(Version.digest) >= low, col(Version.digest) < low + "g")


def _one(rows: Sequence[Version], ref: str) -> Version:
    if not rows:
        raise RefNotFoundError(f"no version matches {ref!r}; see `llmreg history`")
    if len({r.digest for r in rows}) > 1:
        raise AmbiguousRefError(_ambiguous(ref, sorted({r.digest for r in rows})))
    return rows[0]


def _ambiguous(ref: str, digests: list[str]) -> str:
    shown = ", ".join(short(d) for d in digests[:5])
    return f"{ref!r} matches {len(digests)} bundles ({shown}); give more hex digits"


def _info(name: str, v: Version) -> VersionInfo:
    return VersionInfo(name=name, version=v.number, digest=v.digest, author=v.author,
                       created_at=v.created_at, message=v.message,
                       parent_digest=v.parent_digest, provenance=v.provenance,
                       changes=v.changes, diff_digest=v.diff_digest, status=v.status)


def _insert_ignore(session: Session, model: Any, **values: Any) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL alike."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(model).values(**values).on_conflict_do_nothing()
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(model).values(**values).on_conflict_do_nothing()
