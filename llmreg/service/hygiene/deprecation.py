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
transaction lock), so two runs at once act once: the second finds nothing left to do. Before each
version is retired, the run locks the slot rows of its name (the lock promotions and
rollbacks take) and the version row, and reads again whether an environment holds it:
one that moved there after the plan was read is skipped, with the reason, never retired
under a slot.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from llmreg.db.engine import Database
from llmreg.db.models import BundleName, Slot, SlotEvent, Version, utcnow
from llmreg.policy import ARCHIVED, DEPRECATED, Policy
from llmreg.service.lifecycle.lifecycle import retire_version
from llmreg.service.refs import name_id
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
        """Apply the plan under the deprecation lock; a second run finds nothing to do.

        Each planned version is checked again, under the slot row locks that promotions
        and rollbacks take, just before it is retired: a version that an environment took
        since the plan was read is left alone and reported in ``skipped`` with the reason.
        """
        now = now or utcnow()
        with self.db.write() as s:
            if s.get_bind().dialect.name == "postgresql":
                s.execute(sa.text(f"SELECT pg_advisory_xact_lock({LOCK_KEY})"))
            planned = plan_in(s, self.policy, now)
            by_name = {r.name: r for r in s.exec(select(BundleName).where(
                col(BundleName.name).in_(sorted({a.name for a in planned})))).all()} \
                if planned else {}
            # Every row lock first (slots, then versions: the order a move takes them),
            # and only then the audit chain's lock that each retirement takes, so a move
            # waiting on the chain never holds a row this run still needs.
            for row in sorted(by_name.values(), key=name_id):
                lock_slots(s, row)
            checked = [(a, by_name[a.name], *recheck(s, by_name[a.name], a.version,
                                                     ARCHIVED if a.action == "archive"
                                                     else DEPRECATED))
                       for a in planned]
            actions, skipped = [], []
            for a, row, version, why in checked:
                if version is None:
                    skipped.append(a.model_copy(update={"reason": f"skipped: {why}"}))
                    continue
                status = ARCHIVED if a.action == "archive" else DEPRECATED
                retire_version(s, row, version, status, actor=ACTOR, rule=a.rule,
                               reason=a.reason, policy_digest=self.policy.digest, at=now,
                               old=version.status)
                actions.append(a)
        return DeprecationReport(policy_digest=self.policy.digest, at=now, applied=True,
                                 actions=actions, skipped=skipped)


def lock_slots(s: Session, row: BundleName) -> None:
    """Take the row lock of every slot of ``row``'s name, in ``s``'s write transaction.

    A promotion or rollback of the name locks its slot (``SELECT … FOR UPDATE``) before
    it reads the version it moves there and holds the lock until it commits, so from
    here on each one of them has either committed (and is seen by the next read) or
    waits for this transaction (and then finds the version retired). SQLite holds the
    database write lock for the whole transaction instead.

    Example:
        >>> with svc.db.write() as s:  # doctest: +SKIP
        ...     lock_slots(s, name_row(s, "chat"))
    """
    s.exec(select(Slot.id).where(Slot.name_id == row.id).order_by(col(Slot.id))
           .with_for_update()).all()


def recheck(s: Session, row: BundleName, number: int, status: str
            ) -> tuple[Version | None, str]:
    """Read version ``number`` again under its row lock (after :func:`lock_slots`) and say
    whether it may still become ``status``: ``(version, "")``, or ``(None, why not)``.

    The version row is locked before the slots are read again, so a promotion into a
    slot that did not exist yet (it has no slot row to wait on; it locks the version
    before it moves, see ``Lifecycle._move``) is seen here or refused there.

    Example:
        >>> with svc.db.write() as s:  # doctest: +SKIP
        ...     row = name_row(s, "chat"); lock_slots(s, row)
        ...     recheck(s, row, 2, "archived")[1]
        'production holds it now'
    """
    version = s.exec(select(Version).where(Version.name_id == row.id, Version.number == number)
                     .with_for_update().execution_options(populate_existing=True)).one()
    holding = s.exec(select(Slot.env).where(Slot.name_id == row.id, Slot.version == number)
                     .order_by(col(Slot.env))).all()
    if holding:
        return None, f"{', '.join(holding)} holds it now (moved there after the plan was read)"
    if version.status == ARCHIVED or version.status == status:
        return None, f"it is {version.status} already"
    return version, ""


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
