"""The enforced policy, on record: every write that judges against the policy (an
approval, a promotion, a rollback, an import's move) first notes the policy's digest, in
its own transaction. A digest different from the last one noted is kept as a blob and
audited, so each gate verdict can be traced to the exact policy that gave it; the entry
lists how the new policy widens authority (:func:`llmreg.policy.widens`), if it does.

Example:
    >>> import tempfile
    >>> from llmreg.db.engine import Database
    >>> from llmreg.service import audit
    >>> from llmreg.service.blobs import Blobs
    >>> from llmreg.store import MemoryStore
    >>> db, blobs = Database.open(f"sqlite:///{tempfile.mkdtemp()}/r.db"), Blobs(MemoryStore())
    >>> with db.write() as s:
    ...     note_policy(s, Policy.default(), blobs, Actor("ana"))
    ...     note_policy(s, Policy.default(), blobs, Actor("bo"))  # the same digest again
    >>> [(e.action, e.actor) for e in audit.entries(db)]
    [('policy', 'ana')]
    >>> blobs.exists(Policy.default().digest)
    True
    >>> db.dispose()
"""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, col, select

from llmreg.bundle.digest import canonical_json
from llmreg.db.models import PolicyRecord, utcnow
from llmreg.errors import LLMRegError
from llmreg.policy import Policy, widens
from llmreg.service import audit
from llmreg.service.audited import policy_row
from llmreg.service.blobs import Blobs
from llmreg.types import Actor


def note_policy(s: Session, policy: Policy, blobs: Blobs, actor: Actor) -> None:
    """Record the policy in force; a digest different from the last one is audited."""
    last = s.exec(select(PolicyRecord).order_by(col(PolicyRecord.id).desc())).first()
    digest = policy.digest
    if last is not None and last.digest == digest:
        return
    blobs.put_bytes(canonical_json(policy.canonical_dict()))
    record = PolicyRecord(digest=digest, seen_at=utcnow(), seen_by=actor.name)
    s.add(record)
    s.flush()  # its id keys the audited row
    detail: dict[str, Any] = {"from": last.digest if last else None, "to": digest}
    wider = _widens(blobs, last.digest, policy) if last is not None else []
    if wider:
        detail["widens"] = wider
    audit.append(s, actor=actor.name, action="policy", target=digest, detail=detail,
                 rows=[policy_row(record)])


def _widens(blobs: Blobs, old_digest: str, policy: Policy) -> list[str]:
    """How ``policy`` widens authority over the one noted before (kept as a blob)."""
    try:
        old = Policy.model_validate(json.loads(blobs.read(old_digest)))
    except (LLMRegError, ValueError):  # an older policy llmreg can no longer read
        return [f"the policy noted before ({old_digest[:19]}…) could not be compared"]
    return widens(old, policy)
