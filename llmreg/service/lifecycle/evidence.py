"""Evidence: eval and shadow-metrics records, attached to the digest a ref resolves to.

Evidence belongs to content, not to a version number: a gate counts only what is attached
to the exact digest it judges (:func:`evidence_rows`, read in the judging transaction).
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session, col, select

from llmreg.bundle.lineage import check_metrics
from llmreg.db.engine import Database
from llmreg.db.models import Evidence as EvidenceRow
from llmreg.db.models import utcnow
from llmreg.errors import InvalidEvidenceError, TransitionError, shown
from llmreg.policy import ARCHIVED, Policy
from llmreg.service import audit
from llmreg.service.audited import evidence_row
from llmreg.service.authority import require
from llmreg.service.blobs import Blobs
from llmreg.service.refs import resolve_in
from llmreg.service.rows import evidence_info
from llmreg.types import Actor, EvidenceInfo

EVIDENCE_TYPES = ("eval", "shadow-metrics")
_SUITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class Evidence:
    """Attach evidence to a version's digest, and read what a digest holds.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from llmreg.bundle.schema import Bundle
        >>> from llmreg.service import RegistryService
        >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
        >>> b = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
        ...                       "template": {"source": "Hi"}})
        >>> v = svc.versions.register(b, name="chat", message="first", author="ana").version
        >>> ev = svc.evidence.attach("chat@1", type="eval", suite="regression",
        ...                          metrics={"accuracy": 0.93}, actor=Actor("ana"))
        >>> [(e.suite, e.metrics) for e in svc.evidence.of_digest(v.digest)]
        [('regression', {'accuracy': 0.93})]
        >>> svc.close()
    """

    def __init__(self, db: Database, blobs: Blobs, policy: Policy) -> None:
        self.db = db
        self.blobs = blobs
        self.policy = policy

    def attach(self, ref: str, *, type: str, suite: str, metrics: dict[str, Any],
               actor: Actor, links: list[str] | None = None, passed: bool | None = None,
               report_digest: str | None = None) -> EvidenceInfo:
        """Attach an eval or shadow-metrics record to the digest ``ref`` resolves to.

        The report, if any, is a blob uploaded first and named by its digest.
        """
        if type not in EVIDENCE_TYPES:
            raise InvalidEvidenceError(f"evidence type {shown(type)} is not one of "
                                       f"{EVIDENCE_TYPES}")
        if not _SUITE_RE.fullmatch(suite or ""):
            raise InvalidEvidenceError(
                f"suite {shown(suite)} is not a valid suite name; use letters, digits, '.', "
                "'_', '-'")
        clean = check_metrics(metrics)
        for link in links or []:
            if not re.fullmatch(r"^https?://\S{1,2000}$", link):
                raise InvalidEvidenceError(f"link {shown(link, limit=80)} is not an http(s) "
                                           "URL of at most 2,000 characters")
        if report_digest is not None and not self.blobs.exists(report_digest):
            raise InvalidEvidenceError(f"report {report_digest} is not in the blob store; "
                                       "upload it first")
        with self.db.write() as s:
            row, version = resolve_in(s, ref, self.policy)
            require(s, actor, row.name, row.id, "publisher")
            if version.status == ARCHIVED:
                raise TransitionError(f"{row.name}@{version.number} is archived (frozen); "
                                      "evidence cannot be attached to it")
            record = EvidenceRow(digest=version.digest, type=type, suite=suite, metrics=clean,
                                 passed=passed, report_digest=report_digest, links=links or [],
                                 created_by=actor.name, created_at=utcnow())
            s.add(record)
            s.flush()
            audit.append(s, actor=actor.name, action="evidence", name=row.name,
                         target=f"{row.name}@{version.number}",
                         detail={"type": type, "suite": suite, "metrics": clean,
                                 "digest": version.digest, "passed": passed,
                                 "report": report_digest, "evidence_id": record.id},
                         rows=[evidence_row(record)])
            return evidence_info(record)

    def of_digest(self, digest: str) -> list[EvidenceInfo]:
        """All evidence attached to ``digest``, oldest first."""
        with self.db.read() as s:
            return evidence_rows(s, digest)


def evidence_rows(s: Session, digest: str) -> list[EvidenceInfo]:
    """The evidence attached to ``digest``, oldest first, read in the open session ``s``
    (the gates judge it in their write transaction)."""
    rows = s.exec(select(EvidenceRow).where(EvidenceRow.digest == digest)
                  .order_by(col(EvidenceRow.id))).all()
    return [evidence_info(e) for e in rows]
