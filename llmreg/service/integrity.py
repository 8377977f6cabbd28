"""Integrity tools: verify one version, check everything (fsck), collect garbage (gc).

``fsck`` re-hashes every blob and follows every reference the database holds (versions
to manifests, manifests to artifacts, evidence to reports, versions to stored diffs,
enforced policies) and reports each problem by digest. ``gc`` lists blobs nothing
refers to; a blob younger than the grace period is never listed, because an upload in
progress writes its blobs before the row that refers to them.
"""

from __future__ import annotations

import json

from sqlmodel import select

from llmreg.db.engine import Database
from llmreg.db.models import Evidence, Manifest, PolicyRecord, Version
from llmreg.errors import BlobNotFoundError, IntegrityError
from llmreg.service.blobs import Blobs
from llmreg.service.versions import Versions
from llmreg.types import Problem

GRACE_SECONDS = 24 * 3600


class Integrity:
    """Verify, fsck and gc over one registry's database and blobs.

    Example:
        >>> svc.integrity.verify("chat@3")  # doctest: +SKIP
        []
    """

    def __init__(self, db: Database, blobs: Blobs, versions: Versions) -> None:
        self.db = db
        self.blobs = blobs
        self.versions = versions

    def verify(self, ref: str) -> list[Problem]:
        """Re-hash a version's manifest and every artifact; return the problems found."""
        info = self.versions.resolve(ref)
        manifest_problem = self.check_blob(info.digest, info.ref)
        if manifest_problem is not None:
            return [manifest_problem]
        found = (self.check_blob(art.digest, f"artifact {art.name!r} of {info.ref}")
                 for art in self.versions.load(info.digest).artifacts)
        return [p for p in found if p is not None]

    def check_blob(self, digest: str, referenced_by: str) -> Problem | None:
        """Re-hash one blob; a problem if it is missing or its bytes do not match."""
        try:
            with self.blobs.open(digest) as fh:
                while fh.read(1024 * 1024):
                    pass
        except BlobNotFoundError:
            return Problem(digest=digest, problem="missing", referenced_by=referenced_by)
        except IntegrityError:
            return Problem(digest=digest, problem="corrupt", referenced_by=referenced_by)
        return None

    def references(self) -> dict[str, str]:
        """Every blob digest the registry refers to, with a label of who refers to it."""
        refs: dict[str, str] = {}
        with self.db.read() as s:
            for v in s.exec(select(Version)).all():
                refs.setdefault(v.digest, f"version {v.number} of name #{v.name_id}")
                if v.diff_digest:
                    refs.setdefault(v.diff_digest, f"the changelog of {v.digest[:19]}")
            for m in s.exec(select(Manifest)).all():
                refs.setdefault(m.digest, "a manifest")
            for e in s.exec(select(Evidence)).all():
                if e.report_digest:
                    refs.setdefault(e.report_digest, f"evidence #{e.id}")
            for p in s.exec(select(PolicyRecord)).all():
                refs.setdefault(p.digest, "an enforced policy")
        for digest in [d for d, who in refs.items() if who.startswith(("version", "a manifest"))]:
            try:
                manifest = json.loads(self.blobs.read(digest))
            except (BlobNotFoundError, IntegrityError, ValueError):
                continue  # reported by fsck as the manifest's own problem
            for art in manifest.get("artifacts", []):
                refs.setdefault(art["digest"], f"artifact {art['name']!r} of {digest[:19]}")
        return refs

    def fsck(self) -> tuple[int, list[Problem]]:
        """Check every blob and every reference: how many blobs were read, and the
        problems found."""
        refs = self.references()
        problems = []
        seen = 0
        for digest, who in sorted(refs.items()):
            if digest.startswith("sha256:") and len(digest) == 71:
                seen += 1
                problems.append(self.check_blob(digest, who))
        for digest in self.blobs.iter_digests():
            if digest not in refs:
                seen += 1
                problems.append(self.check_blob(digest, "nothing (unreferenced)"))
        return seen, [p for p in problems if p is not None]

    def unreferenced(self, grace: float = GRACE_SECONDS) -> list[str]:
        """Blobs nothing refers to, older than ``grace`` seconds (archived versions keep
        theirs: they are versions). A blob whose age the store cannot tell is listed."""
        refs = self.references()
        out = []
        for digest in self.blobs.iter_digests():
            if digest in refs:
                continue
            age = self.blobs.age(digest)
            if age is None or age >= grace:
                out.append(digest)
        return out

    def gc(self, *, dry_run: bool = True, grace: float = GRACE_SECONDS) -> list[str]:
        """Unreferenced blobs and killed uploads older than ``grace`` seconds; deleted
        unless ``dry_run``."""
        found = self.unreferenced(grace)
        if not dry_run:
            for digest in found:
                self.blobs.discard(digest)
        stale = self.blobs.sweep_uploads(grace, dry_run=dry_run)
        return found + [f"(incomplete upload) {name}" for name in stale]
