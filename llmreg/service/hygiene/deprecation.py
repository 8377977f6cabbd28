"""The deprecation policy, applied: ``plan`` says what it would do now and why, ``run``
does it.

Rules (``deprecation:`` in the policy; docs/policy.md):

- ``keep_last: N`` — a version that is not among its name's newest N and that no
  environment holds is archived (rule ``keep_last``);
- ``deprecate_after_days: D`` (optional) — a version that held an environment and left
  its last one more than D days ago becomes ``deprecated`` (rule
  ``deprecate_after_days``); such versions are archived by ``keep_last`` only once they
  are deprecated, so deprecation comes first.

Each action is one audit entry whose actor is :data:`ACTOR` (the policy, not a person),
carrying the rule and the policy digest; an archive also emits an ``archive`` event.
A run plans and acts inside one write transaction that holds the registry's deprecation
lock (SQLite: the write lock of ``BEGIN IMMEDIATE``; PostgreSQL: an advisory
transaction lock), so two runs at once act once: the second finds nothing left to do.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from llmreg.db.engine import Database
from llmreg.db.models import BundleName, Slot, SlotEvent, Version, utcnow
from llmreg.policy import ARCHIVED, DEPRECATED, Policy
from llmreg.service.lifecycle.lifecycle import retire_version
from llmreg.types import DeprecationAction, DeprecationReport

ACTOR = "policy:deprecation"
LOCK_KEY = 7226313


class Deprecation:
    """Plan and run the deprecation rules of one registry.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from llmreg.bundle.schema import Bundle
        >>> from llmreg.service import RegistryService
        >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
        >>> for i in range(12):
        ...     _ = svc.versions.register(Bundle.from_dict({"model": {"provider": "openai",
        ...         "id": "gpt-4o-2024-08-06"}, "template": {"source": f"Hi {i}"}}),
        ...         name="chat", message=f"v{i}", author="ana")
        >>> [(a.version, a.rule) for a in svc.deprecation.plan().actions]
        [(1, 'keep_last'), (2, 'keep_last')]
        >>> len(svc.deprecation.run().actions), len(svc.deprecation.run().actions)
        (2, 0)
        >>> svc.close()
    """

    def __init__(self, db: Database, policy: Policy) -> None:
        self.db = db
        self.policy = policy

    def plan(self, *, now: datetime | None = None) -> DeprecationReport:
        """What a run would do now, and why; changes nothing."""
        now = now or utcnow()
        with self.db.read() as s:
            actions = plan_in(s, self.policy, now)
        return DeprecationReport(policy_digest=self.policy.digest, at=now, applied=False,
                                 actions=actions)

    def run(self, *, now: datetime | None = None) -> DeprecationReport:
        """Apply the plan under the deprecation lock; a second run finds nothing to do."""
        now = now or utcnow()
        with self.db.write() as s:
            if s.get_bind().dialect.name == "postgresql":
                s.execute(sa.text(f"SELECT pg_advisory_xact_lock({LOCK_KEY})"))
            actions = plan_in(s, self.policy, now)
            rows: dict[int, BundleName] = {}
            by_name = {r.name: r for r in s.exec(select(BundleName).where(
                col(BundleName.name).in_(sorted({a.name for a in actions})))).all()} \
                if actions else {}
            for a in actions:
                row = by_name[a.name]
                rows[a.version] = row
                version = s.exec(select(Version).where(Version.name_id == row.id,
                                                       Version.number == a.version)
                                 .with_for_update()).one()
                status = ARCHIVED if a.action == "archive" else DEPRECATED
                retire_version(s, row, version, status, actor=ACTOR, rule=a.rule,
                               reason=a.reason, policy_digest=self.policy.digest, at=now,
                               old=version.status)
        return DeprecationReport(policy_digest=self.policy.digest, at=now, applied=True,
                                 actions=actions)


def plan_in(s: Session, policy: Policy, now: datetime) -> list[DeprecationAction]:
    """The actions the rules call for, over the whole registry, read in ``s``."""
    rules = policy.deprecation
    names = {i: (n, latest) for i, n, latest in s.exec(
        select(BundleName.id, BundleName.name, BundleName.latest_version)).all()}
    held = {(nid, v) for nid, v in s.exec(select(Slot.name_id, Slot.version)).all()}
    ever = {(nid, v) for nid, v in s.exec(
        select(SlotEvent.name_id, SlotEvent.to_version).distinct()).all()}
    left = {(nid, v): at for nid, v, at in s.exec(
        select(SlotEvent.name_id, SlotEvent.from_version, func.max(SlotEvent.at))
        .where(col(SlotEvent.from_version).is_not(None))
        .group_by(col(SlotEvent.name_id), col(SlotEvent.from_version))).all()}
    after = timedelta(days=rules.deprecate_after_days) if rules.deprecate_after_days else None
    out = []
    query = select(Version.name_id, Version.number, Version.digest, Version.status).where(
        Version.status != ARCHIVED).order_by(col(Version.name_id), col(Version.number))
    for nid, number, digest, status in s.exec(query).all():
        if (nid, number) in held:
            continue
        name, latest = names[nid]
        if after is not None and (nid, number) in ever and status != DEPRECATED:
            gone = left.get((nid, number))
            if gone is not None and now - gone >= after:
                out.append(DeprecationAction(
                    name=name, version=number, digest=digest, action="deprecate",
                    rule="deprecate_after_days",
                    reason=f"left its last environment on {gone:%Y-%m-%d}, more than "
                           f"{rules.deprecate_after_days} days ago"))
            continue  # archived only once deprecated
        if number <= latest - rules.keep_last:
            first = latest - rules.keep_last + 1
            kept = f"@{first}" if first == latest else f"@{first}-@{latest}"
            out.append(DeprecationAction(
                name=name, version=number, digest=digest, action="archive", rule="keep_last",
                reason=f"not among the last {rules.keep_last} versions ({kept}) and no "
                       "environment holds it"))
    return out
