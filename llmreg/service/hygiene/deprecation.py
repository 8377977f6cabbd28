"""The deprecation policy, applied: ``plan`` says what it would do now and why, ``run``
does it.

Rules (``deprecation:`` in the policy; docs/policy.md):

- ``keep_last: N`` — a version that is not among its name's newest N and that no
  environment holds is archived (rule ``keep_last``);
- ``deprecate_after_days: D`` (optional) — a version that held an environment and left
  its last one more than D days ago becomes ``deprecated`` (rule
  ``deprecate_after_days``); such versions are archived by ``keep_last`` only once they
  are deprecated, so deprecation comes first.
- Rollback targets are never archived: for each environment, the last ``keep_rollback``
  versions it held before the one it holds (rule ``keep_rollback``), every version that
  left an environment less than ``archive_grace_days`` ago (rule ``archive_grace_days``)
  and every version restored (``llmreg restore``) that recently (rule ``restored``) stay.

The report lists every version that is not archived and that no action touches in
``kept``, with the first rule that keeps it.

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

from collections.abc import Collection
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from llmreg.db.engine import Database
from llmreg.db.models import AuditEntry, BundleName, Slot, SlotEvent, Version, utcnow
from llmreg.policy import ARCHIVED, DEPRECATED, Policy
from llmreg.policy import Deprecation as Rules
from llmreg.service.lifecycle.lifecycle import retire_version
from llmreg.service.refs import name_id
from llmreg.types import DeprecationAction, DeprecationReport, KeptVersion

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
            actions, kept = plan_in(s, self.policy, now)
        return DeprecationReport(policy_digest=self.policy.digest, at=now, applied=False,
                                 actions=actions, kept=kept)

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
            planned, kept = plan_in(s, self.policy, now)
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
                                                     else DEPRECATED,
                                                     rules=self.policy.deprecation, now=now))
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
                                 actions=actions, skipped=skipped, kept=kept)


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


def recheck(s: Session, row: BundleName, number: int, status: str, *, rules: Rules,
            now: datetime) -> tuple[Version | None, str]:
    """Read version ``number`` again under its row lock (after :func:`lock_slots`) and say
    whether it may still become ``status``: ``(version, "")``, or ``(None, why not)``.

    The version row is locked before the slots are read again, so a promotion into a
    slot that did not exist yet (it has no slot row to wait on; it locks the version
    before it moves, see ``Lifecycle._move``) is seen here or refused there. A version
    to archive must also still be no rollback target: a move since the plan was read may
    have made it one.

    Example:
        >>> with svc.db.write() as s:  # doctest: +SKIP
        ...     row = name_row(s, "chat"); lock_slots(s, row)
        ...     recheck(s, row, 2, "archived", rules=policy.deprecation, now=utcnow())[1]
        'production holds it now (moved there after the plan was read)'
    """
    version = s.exec(select(Version).where(Version.name_id == row.id, Version.number == number)
                     .with_for_update().execution_options(populate_existing=True)).one()
    holding = s.exec(select(Slot.env).where(Slot.name_id == row.id, Slot.version == number)
                     .order_by(col(Slot.env))).all()
    if holding:
        return None, f"{', '.join(holding)} holds it now (moved there after the plan was read)"
    if version.status == ARCHIVED or version.status == status:
        return None, f"it is {version.status} already"
    if status == ARCHIVED:
        nid = name_id(row)
        keeps = protected_in(s, rules, now, [nid]).get((nid, number))
        if keeps is not None:
            return None, f"{keeps[1]} (a move since the plan was read made it one)"
    return version, ""


def protected_in(s: Session, rules: Rules, now: datetime,
                 name_ids: Collection[int] | None = None) -> dict[tuple[int, int], tuple[str, str]]:
    """The versions no archive may take because a rollback may need them, read in ``s``:
    ``(name_id, number) -> (rule, reason)``, for every name or only ``name_ids``.

    - ``keep_rollback``: for each environment, the last ``keep_rollback`` versions it
      held before the one it holds now (newest first, each counted once);
    - ``archive_grace_days``: a version that left any environment less than that many
      days ago;
    - ``restored``: a version restored from the archive less than that many days ago.

    A version kept by several is reported under the first rule of that list.

    Example:
        >>> with svc.db.read() as s:  # doctest: +SKIP
        ...     protected_in(s, policy.deprecation, utcnow())
        {(1, 1): ('keep_rollback', 'one of the last 2 versions production held ...')}
    """
    grace = timedelta(days=rules.archive_grace_days)
    by_rule: dict[str, dict[tuple[int, int], str]] = {
        "keep_rollback": {}, "archive_grace_days": {}, "restored": {}}
    moves = sa.select(col(SlotEvent.name_id), col(SlotEvent.env), col(SlotEvent.from_version),
                      col(SlotEvent.to_version), col(SlotEvent.at)
                      ).order_by(col(SlotEvent.id).desc())
    if name_ids is not None:
        moves = moves.where(col(SlotEvent.name_id).in_(sorted(name_ids)))
    holds: dict[tuple[int, str], int] = {}  # (name, env) -> the version it holds now
    targets: dict[tuple[int, str], list[int]] = {}  # (name, env) -> its rollback targets
    for nid, env, left, to, at in s.execute(moves).all():
        current = holds.setdefault((nid, env), to)
        if left is None:
            continue
        found = targets.setdefault((nid, env), [])
        if left != current and left not in found and len(found) < rules.keep_rollback:
            found.append(left)
            by_rule["keep_rollback"].setdefault(
                (nid, left), f"one of the last {rules.keep_rollback} versions {env} held "
                             f"before @{current}: a rollback target")
        if now - at < grace:
            by_rule["archive_grace_days"].setdefault(
                (nid, left), f"left {env} on {at:%Y-%m-%d}, less than "
                             f"{rules.archive_grace_days} days ago")
    if grace:
        restores = select(BundleName.id, AuditEntry.detail, AuditEntry.at).join(
            BundleName, col(BundleName.name) == col(AuditEntry.name)).where(
            AuditEntry.action == "restore", col(AuditEntry.at) > now - grace)
        if name_ids is not None:
            restores = restores.where(col(BundleName.id).in_(sorted(name_ids)))
        for nid, detail, at in s.exec(restores).all():
            number = detail.get("version")
            if nid is not None and isinstance(number, int):
                by_rule["restored"].setdefault(
                    (nid, number), f"restored on {at:%Y-%m-%d}, less than "
                                   f"{rules.archive_grace_days} days ago")
    out: dict[tuple[int, int], tuple[str, str]] = {}
    for rule, found_by in by_rule.items():
        for key, reason in found_by.items():
            out.setdefault(key, (rule, reason))
    return out


def plan_in(s: Session, policy: Policy, now: datetime
            ) -> tuple[list[DeprecationAction], list[KeptVersion]]:
    """The actions the rules call for over the whole registry, read in ``s``, and every
    other version that is not archived with the rule that keeps it."""
    rules = policy.deprecation
    names = {i: (n, latest) for i, n, latest in s.exec(
        select(BundleName.id, BundleName.name, BundleName.latest_version)).all()}
    held: dict[tuple[int, int], list[str]] = {}
    for nid, v, env in s.exec(select(Slot.name_id, Slot.version, Slot.env)
                              .order_by(col(Slot.env))).all():
        held.setdefault((nid, v), []).append(env)
    ever = {(nid, v) for nid, v in s.exec(
        select(SlotEvent.name_id, SlotEvent.to_version).distinct()).all()}
    left = {(nid, v): at for nid, v, at in s.exec(
        select(SlotEvent.name_id, SlotEvent.from_version, func.max(SlotEvent.at))
        .where(col(SlotEvent.from_version).is_not(None))
        .group_by(col(SlotEvent.name_id), col(SlotEvent.from_version))).all()}
    protected = protected_in(s, rules, now)
    after = timedelta(days=rules.deprecate_after_days) if rules.deprecate_after_days else None
    out: list[DeprecationAction] = []
    kept: list[KeptVersion] = []
    query = select(Version.name_id, Version.number, Version.digest, Version.status).where(
        Version.status != ARCHIVED).order_by(col(Version.name_id), col(Version.number))
    for nid, number, digest, status in s.exec(query).all():
        name, latest = names[nid]

        def keep(rule: str, reason: str) -> None:
            kept.append(KeptVersion(name=name, version=number, digest=digest, rule=rule,  # noqa: B023
                                    reason=reason))

        if (nid, number) in held:
            keep("held", f"{', '.join(held[(nid, number)])} holds it")
            continue
        if after is not None and (nid, number) in ever and status != DEPRECATED:
            gone = left.get((nid, number))
            if gone is not None and now - gone >= after:
                out.append(DeprecationAction(
                    name=name, version=number, digest=digest, action="deprecate",
                    rule="deprecate_after_days",
                    reason=f"left its last environment on {gone:%Y-%m-%d}, more than "
                           f"{rules.deprecate_after_days} days ago"))
            else:  # archived only once deprecated
                keep("deprecate_after_days",
                     f"left its last environment on {gone:%Y-%m-%d}; deprecated "
                     f"{rules.deprecate_after_days} days after that" if gone is not None
                     else "held an environment; deprecated "
                          f"{rules.deprecate_after_days} days after it leaves")
            continue
        first = latest - rules.keep_last + 1
        newest = f"@{max(first, 1)}" if max(first, 1) == latest else f"@{max(first, 1)}-@{latest}"
        if number >= first:
            keep("keep_last", f"among the last {rules.keep_last} versions ({newest})")
        elif (nid, number) in protected:
            keep(*protected[(nid, number)])
        else:
            out.append(DeprecationAction(
                name=name, version=number, digest=digest, action="archive", rule="keep_last",
                reason=f"not among the last {rules.keep_last} versions ({newest}) and no "
                       "environment holds it"))
    return out, kept
