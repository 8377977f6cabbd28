"""Integrity tools: verify one version, check everything (fsck), find unreferenced blobs.

``fsck`` re-hashes every blob and follows every reference the database holds (versions
to manifests, manifests to artifacts, evidence to reports, versions to stored diffs,
enforced policies) and reports each problem by digest. ``unreferenced`` lists blobs
nothing refers to; a blob younger than the grace period is never listed, because an
upload in progress writes its blobs before the row that refers to them.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

from sqlmodel import select

from llmreg.db.models import Evidence, Manifest, PolicyRecord, Version
from llmreg.errors import BlobNotFoundError, IntegrityError
from llmreg.store.local import LocalStore
from llmreg.types import Problem

if TYPE_CHECKING:
    from llmreg.db.engine import Database
    from llmreg.store.base import BlobStore

GRACE_SECONDS = 24 * 3600


def check_blob(store: BlobStore, digest: str, referenced_by: str) -> Problem | None:
    """Re-hash one blob; a problem if it is missing or its bytes do not match."""
    try:
        with store.open(digest) as fh:
            while fh.read(1024 * 1024):
                pass
    except BlobNotFoundError:
        return Problem(digest=digest, problem="missing", referenced_by=referenced_by)
    except IntegrityError:
        return Problem(digest=digest, problem="corrupt", referenced_by=referenced_by)
    return None


def references(db: Database, store: BlobStore) -> dict[str, str]:
    """Every blob digest the registry refers to, with a label of who refers to it."""
    refs: dict[str, str] = {}
    with db.read() as s:
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
            manifest = json.loads(store.get_bytes(digest))
        except (BlobNotFoundError, IntegrityError, ValueError):
            continue  # reported by fsck as the manifest's own problem
        for art in manifest.get("artifacts", []):
            refs.setdefault(art["digest"], f"artifact {art['name']!r} of {digest[:19]}")
    return refs


def fsck(db: Database, store: BlobStore) -> tuple[int, list[Problem]]:
    """Check every blob and every reference; return how many blobs were read and the
    problems found."""
    refs = references(db, store)
    problems = []
    seen = 0
    for digest, who in sorted(refs.items()):
        if digest.startswith("sha256:") and len(digest) == 71:
            seen += 1
            problem = check_blob(store, digest, who)
            if problem is not None:
                problems.append(problem)
    for digest in store.iter_digests():
        if digest not in refs:
            seen += 1
            problem = check_blob(store, digest, "nothing (unreferenced)")
            if problem is not None:
                problems.append(problem)
    return seen, problems


def unreferenced(db: Database, store: BlobStore, grace: float = GRACE_SECONDS) -> list[str]:
    """Blobs nothing refers to, older than ``grace`` seconds (archived versions keep
    theirs: they are versions)."""
    refs = references(db, store)
    now = time.time()
    out = []
    for digest in store.iter_digests():
        if digest in refs:
            continue
        if isinstance(store, LocalStore):
            age = now - os.stat(store.path(digest)).st_mtime
            if age < grace:
                continue
        out.append(digest)
    return out
