"""Approvals: a person's sign-off of one digest, under one name, for one environment.

An approval is checked against every transition into its environment when it is given
(the author cannot approve where a gate needs a non-author; an approver needs a role such
a gate asks for), audited and notified in the same transaction.
"""

from __future__ import annotations

import builtins

from sqlmodel import col, select

from llmreg.db.engine import Database
from llmreg.db.models import Approval, utcnow
from llmreg.errors import ApprovalError, TransitionError
from llmreg.policy import ARCHIVED, Policy
from llmreg.service import audit
from llmreg.service.audited import approval_row
from llmreg.service.blobs import Blobs
from llmreg.service.lifecycle.enforced import note_policy
from llmreg.service.notifications import outbox
from llmreg.service.refs import name_id, resolve_in
from llmreg.service.rows import approval_info
from llmreg.types import Actor, ApprovalInfo


class Approvals:
    """Approve a version for an environment, and list the approvals it holds.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from llmreg.bundle.schema import Bundle
        >>> from llmreg.service import RegistryService
        >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
        >>> b = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
        ...                       "template": {"source": "Hi"}})
        >>> _ = svc.versions.register(b, name="chat", message="first", author="ana")
        >>> info, created = svc.approvals.approve("chat@1", "prod", actor=Actor("bo"))
        >>> info.env, info.approver, created
        ('production', 'bo', True)
        >>> svc.approvals.approve("chat@1", "production", actor=Actor("bo"))[1]  # again
        False
        >>> [a.approver for a in svc.approvals.list("chat@1", "production")]
        ['bo']
        >>> svc.approvals.approve("chat@1", "production", actor=Actor("ana"))
        Traceback (most recent call last):
        ...
        llmreg.errors.ApprovalError: ana is the author of chat@1 and cannot approve it ...
        >>> svc.close()
    """

    def __init__(self, db: Database, blobs: Blobs, policy: Policy) -> None:
        self.db = db
        self.blobs = blobs
        self.policy = policy

    def approve(self, ref: str, env: str, *, actor: Actor,
                comment: str = "") -> tuple[ApprovalInfo, bool]:
        """Record ``actor``'s approval of ``ref`` for ``env``; return it and whether it is new.

        Refused for the author when a transition into ``env`` requires a non-author, and
        for someone without the role such a transition requires. The approver's teams are
        recorded with it: the gate counts it only for the groups the policy names
        (:func:`llmreg.service.authority.counts_for`), and says why when it does not.
        """
        env = self.policy.canonical_env(env)
        with self.db.write() as s:
            note_policy(s, self.policy, self.blobs, actor)
            row, version = resolve_in(s, ref, self.policy)
            label = f"{row.name}@{version.number}"
            if version.status == ARCHIVED:
                raise TransitionError(f"{label} is archived (frozen); it cannot be approved")
            gates = [t.gates.approvals for t in self.policy.transitions_to(env)
                     if t.gates.approvals is not None]
            if any(g.not_author for g in gates) and actor.name == version.author:
                raise ApprovalError(
                    f"{actor.name} is the author of {label} and cannot approve it for {env}; "
                    "ask another approver")
            roles = sorted(actor.roles) if actor.roles is not None else None
            needed = {g.role for g in gates}
            if roles is not None and needed and not needed & set(roles):
                raise ApprovalError(
                    f"{actor.name} has roles {roles}, and approving for {env} needs "
                    f"{' or '.join(sorted(needed))}")
            existing = s.exec(select(Approval).where(
                Approval.name_id == row.id, Approval.digest == version.digest,
                Approval.env == env, Approval.approver == actor.name)).first()
            if existing is not None:
                return approval_info(row.name, existing), False
            record = Approval(name_id=name_id(row), digest=version.digest, env=env,
                              approver=actor.name, roles=roles, comment=comment,
                              teams=dict(actor.teams) if actor.teams is not None else None,
                              created_at=utcnow())
            s.add(record)
            s.flush()
            audit.append(s, actor=actor.name, action="approval", name=row.name, target=label,
                         env=env, detail={"digest": version.digest, "comment": comment},
                         rows=[approval_row(row.name, record)])
            outbox.emit(s, event="approval", name=row.name, at=record.created_at,
                        data={"name": row.name, "version": version.number,
                              "digest": version.digest, "env": env, "approver": actor.name,
                              "comment": comment[:500]})
            return approval_info(row.name, record), True

    def list(self, ref: str, env: str) -> builtins.list[ApprovalInfo]:
        """The approvals of ``ref``'s digest for ``env``, oldest first."""
        env = self.policy.canonical_env(env)
        with self.db.read() as s:
            row, version = resolve_in(s, ref, self.policy)
            rows = s.exec(select(Approval).where(
                Approval.name_id == row.id, Approval.digest == version.digest,
                Approval.env == env).order_by(col(Approval.id))).all()
            return [approval_info(row.name, a) for a in rows]
