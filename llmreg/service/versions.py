"""Registering bundles and reading versions back.

Ordering rule for crash safety: blobs first, then the database row that refers to
them, in one transaction. A crash between the two leaves an unreferenced blob (which
``gc`` can collect), never a reference to a missing blob.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from llmreg.bundle import Bundle
from llmreg.db.engine import Database, insert_ignore
from llmreg.db.models import BundleName, Manifest, Version, utcnow
from llmreg.diff import BundleDiff, diff_bundles
from llmreg.digest import canonical_json
from llmreg.errors import BlobNotFoundError, InvalidBundleError, RefNotFoundError
from llmreg.names import Ref, check_name
from llmreg.policy import Policy
from llmreg.service import audit
from llmreg.service.blobs import Blobs
from llmreg.service.refs import name_row, resolve_in, slot_in
from llmreg.service.rows import version_info
from llmreg.types import ChangelogEntry, NameSummary, Page, Registration, VersionInfo

MAX_MESSAGE = 10_000
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

    # -- writes ------------------------------------------------------------------

    def register(self, bundle: Bundle, *, name: str, message: str, author: str,
                 provenance: dict[str, Any] | None = None) -> Registration:
        """Register ``bundle`` under ``name``; identical content returns the existing version.

        Version numbers are allocated inside the write transaction from the name's
        counter, so concurrent registrations get consecutive numbers, no gaps.
        """
        message = self.prepare(bundle, name=name, message=message, provenance=provenance)
        canonical = bundle.canonical_bytes()
        digest = bundle.digest
        guess = self._latest_digest(name)
        changelog = self._changelog_for(guess, bundle) if guess and guess != digest else None
        with self.db.write() as session:
            return self.register_in(session, bundle, name=name, message=message,
                                    author=author, provenance=provenance,
                                    size=len(canonical), guess=(guess, changelog))

    def prepare(self, bundle: Bundle, *, name: str, message: str,
                provenance: dict[str, Any] | None) -> str:
        """Check ``bundle`` for registration under ``name`` and store its blobs (the
        manifest and the artifacts given as files); return the cleaned message.

        The first half of :meth:`register`, for callers (an import) that then register
        many bundles in one transaction with :meth:`register_in`.
        """
        check_name(name)
        message = (message or "").strip()
        if not message:
            raise InvalidBundleError(
                "message is empty; say what changed and why, e.g. -m 'tighten refusal wording'")
        if len(message) > MAX_MESSAGE:
            raise InvalidBundleError(
                f"message is {len(message)} characters; the limit is {MAX_MESSAGE}")
        bundle.check_pins(allow_floating=self.policy.models.allow_floating)
        _check_provenance(provenance)
        self._check_weights_reference(bundle)
        self._store_artifacts(bundle)
        self.blobs.put_bytes(bundle.canonical_bytes())
        return message

    def register_in(self, session: Session, bundle: Bundle, *, name: str, message: str,
                    author: str, provenance: dict[str, Any] | None = None,
                    size: int | None = None,
                    guess: tuple[str | None, tuple[list[str], str] | None] = (None, None),
                    ) -> Registration:
        """Register a :meth:`prepare`-d bundle inside the caller's write transaction.

        ``guess`` is a parent digest and its changelog computed before the lock; it is
        used only if the parent found under the lock is that one.
        """
        digest = bundle.digest
        row = _lock_name(session, name)
        assert row.id is not None
        existing = session.exec(
            select(Version).where(Version.name_id == row.id, Version.digest == digest)
        ).first()
        if existing is not None:
            return Registration(version=version_info(name, existing), created=False)
        session.execute(insert_ignore(session, Manifest, digest=digest,
                                      size=size if size is not None
                                      else len(bundle.canonical_bytes()),
                                      kind=bundle.kind, created_at=utcnow()))
        parent = None
        if row.latest_version:
            parent = session.exec(
                select(Version.digest).where(Version.name_id == row.id,
                                             Version.number == row.latest_version)
            ).one()
        changelog = guess[1]
        if parent is not None and (parent != guess[0] or changelog is None):
            changelog = self._changelog_for(parent, bundle)
        changes, diff_digest = changelog if parent is not None and changelog else ([], None)
        number = _next_number(session, row)
        version = Version(name_id=row.id, number=number, digest=digest, author=author,
                          created_at=utcnow(), message=message, parent_digest=parent,
                          provenance=provenance or {}, changes=changes,
                          diff_digest=diff_digest)
        session.add(version)
        session.flush()
        audit.append(session, actor=author, action="register", name=name,
                     target=f"{name}@{number}",
                     detail={"digest": digest, "message": message, "changes": changes})
        return Registration(version=version_info(name, version), created=True)

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
        blob = self.blobs.put_bytes(canonical_json(result.to_json()))
        return result.stat(), blob.digest

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
        """The semantic diff of two bundles (see :mod:`llmreg.diff`)."""
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
                raise RefNotFoundError(
                    f"{name!r} is not registered; see `llmreg list` for the names there are")
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


def _check_provenance(provenance: dict[str, Any] | None) -> None:
    """Provenance is JSON with finite numbers, at most :data:`MAX_PROVENANCE` bytes."""
    try:
        size = len(canonical_json(provenance or {}))
    except InvalidBundleError as exc:
        raise InvalidBundleError(f"provenance: {exc}; use null or a finite number") from None
    if size > MAX_PROVENANCE:
        raise InvalidBundleError(f"provenance is {size} bytes as JSON; the limit is "
                                 f"{MAX_PROVENANCE}: link large records instead")


def _lock_name(session: Session, name: str) -> BundleName:
    """Get-or-create the name's row and lock it until commit.

    The lock (``SELECT … FOR UPDATE`` on PostgreSQL; the whole database on SQLite, via
    ``BEGIN IMMEDIATE``) serialises registrations of one name: the duplicate check, the
    parent and the new number are all read under it.
    """
    session.execute(insert_ignore(session, BundleName, name=name, created_at=utcnow(),
                                  latest_version=0))
    # populate_existing: an import registers many versions of one name in one session,
    # and the row's counter must be read afresh each time.
    row: BundleName = session.exec(select(BundleName).where(BundleName.name == name)
                                   .with_for_update()
                                   .execution_options(populate_existing=True)).one()
    return row


def _next_number(session: Session, row: BundleName) -> int:
    # An atomic increment: on PostgreSQL the UPDATE locks the name's row until commit;
    # on SQLite the whole write transaction holds the database lock.
    number = session.execute(
        sa.update(BundleName)
        .where(col(BundleName.id) == row.id)
        .values(latest_version=BundleName.latest_version + 1)
        .returning(col(BundleName.latest_version))
    ).scalar_one()
    return int(number)
