"""The moves: gate checks, promotion, rollback, deprecation, archiving and an import's move.

This is the one enforcement point: the CLI, the client and the HTTP API all end in
these methods, and every gate is judged here, inside the write transaction that moves
the slot. So the gates are judged against the slot as it is at that moment (and against
the evidence and approvals on that exact digest), and two promotions of one slot cannot
interleave. Evidence and approvals are given in :mod:`~llmreg.service.lifecycle.evidence`
and :mod:`~llmreg.service.lifecycle.approvals`; the slots are read in
:mod:`~llmreg.service.lifecycle.slots`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import exc as sa_exc
from sqlalchemy import update
from sqlmodel import Session, col, select

from llmreg.bundle.names import Ref, check_name
from llmreg.db.engine import Database
from llmreg.db.models import Approval, BundleName, Slot, SlotEvent, Version, utcnow
from llmreg.errors import (
    EmptySlotError,
    GateFailedError,
    InvalidRefError,
    PermissionDeniedError,
    SlotConflictError,
    TransitionError,
    shown,
)
from llmreg.policy import ARCHIVED, DEPRECATED, REGISTERED, Policy
from llmreg.service import audit
from llmreg.service.audited import slot_row, version_row
from llmreg.service.authority import owner_team, require
from llmreg.service.blobs import Blobs
from llmreg.service.hygiene.owners import owner_of
from llmreg.service.lifecycle.enforced import note_policy
from llmreg.service.lifecycle.evidence import evidence_rows
from llmreg.service.lifecycle.gates import judge
from llmreg.service.notifications import outbox
from llmreg.service.refs import name_id, name_row, resolve_in
from llmreg.service.rows import approval_info, event_info, version_info
from llmreg.teams import may_move, refusal
from llmreg.types import Actor, GateReport, GateResult, SlotEventInfo, VersionInfo


class Lifecycle:
    """Gate checks and slot moves of one registry.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from llmreg.bundle.schema import Bundle
        >>> from llmreg.service import RegistryService
        >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
        >>> b = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
        ...                       "template": {"source": "Hi"}})
        >>> _ = svc.versions.register(b, name="chat", message="first", author="ana")
        >>> event, report = svc.lifecycle.promote("chat@1", "staging", actor=Actor("ana"),
        ...                                       reason="try it")
        >>> event.to_version, [r.gate for r in report.results]
        (1, ['transition'])
        >>> [(r.gate, r.passed) for r in svc.lifecycle.check_gates("chat@1", "prod").results]
        [('transition', True), ('eval:regression', False), ('approvals', False)]
        >>> svc.close()
    """

    def __init__(self, db: Database, blobs: Blobs, policy: Policy) -> None:
        self.db = db
        self.blobs = blobs
        self.policy = policy

    def _resolve_in(self, session: Session, ref: str | Ref) -> tuple[BundleName, Version]:
        return resolve_in(session, ref, self.policy)

    # -- gates and promotion -------------------------------------------------------

    def check_gates(self, ref: str, env: str) -> GateReport:
        """Judge every gate of moving ``ref`` to ``env``, changing nothing."""
        env = self.policy.canonical_env(env)
        with self.db.read() as s:
            row, version = self._resolve_in(s, ref)
            return self._judge(s, row, version, env)

    def promote(self, ref: str, env: str, *, actor: Actor, reason: str,
                expect_current: str | None = None) -> tuple[SlotEventInfo, GateReport]:
        """Move ``env``'s slot to ``ref`` if every gate is met; else raise listing them.

        With ``expect_current`` the move happens only if the slot still holds that
        version (compare-and-set); otherwise :class:`SlotConflictError`.
        """
        try:
            return self._promote(ref, env, actor=actor, reason=reason,
                                 expect_current=expect_current)
        except GateFailedError as exc:
            if isinstance(exc.report, GateReport):
                self._gate_failed(exc.report, actor=actor, reason=reason)
            raise

    def _gate_failed(self, report: GateReport, *, actor: Actor, reason: str) -> None:
        """Emit ``gate_failed`` for a refused promotion.

        The refused promotion's transaction rolled back and changed nothing, so there is
        no state change to share a commit with: the event gets its own small transaction
        after it. (A crash in between loses only the notice of an attempt that changed
        nothing.)
        """
        with self.db.write() as s:
            outbox.emit(s, event="gate_failed", name=report.name, at=utcnow(),
                        data={"name": report.name, "version": report.version,
                              "digest": report.digest, "env": report.to_env,
                              "actor": actor.name, "reason": (reason or "")[:500],
                              "policy_digest": report.policy_digest,
                              "unmet": [{"gate": r.gate, "detail": r.detail[:500]}
                                        for r in report.unmet()][:20]})

    def _promote(self, ref: str, env: str, *, actor: Actor, reason: str,
                 expect_current: str | None) -> tuple[SlotEventInfo, GateReport]:
        env = self.policy.canonical_env(env)
        reason = _reason(reason)
        with self.db.write() as s:
            note_policy(s, self.policy, self.blobs, actor)
            row, version = self._resolve_in(s, ref)
            transition = self.policy.transition(version.status, env)
            why = may_move(actor, row.name, owner_team(s, row.id),
                           transition.by if transition is not None else [],
                           f"{version.status} -> {env}")
            if why is not None:
                raise PermissionDeniedError(why)
            slot = _slot(s, row, env, lock=True)
            if expect_current is not None:
                exp_row, expected = self._resolve_in(s, expect_current)
                if exp_row.id != row.id:
                    raise InvalidRefError(
                        f"--expect-current {shown(expect_current)} names {exp_row.name}, not "
                        f"{row.name}")
                if slot is None or slot.version != expected.number:
                    holds = f"@{slot.version}" if slot else "nothing"
                    raise SlotConflictError(
                        f"{row.name}/{env} holds {holds}, not @{expected.number} as expected; "
                        f"nothing changed; see `llmreg status {row.name}`")
            report = self._judge(s, row, version, env, slot=slot)
            if report.passed:
                event = self._move(s, row, version, env, slot, actor=actor, reason=reason,
                                   action="promote", gates=report.results)
                return event, report
            # Leaving the block by an exception rolls back everything (the policy note too).
            unmet = "; ".join(f"{r.gate}: {r.detail}" for r in report.unmet())
            raise GateFailedError(
                f"{row.name}@{version.number} cannot move to {env}: {unmet}", report)

    def rollback(self, name: str, env: str, *, actor: Actor, reason: str,
                 to: int | None = None) -> SlotEventInfo:
        """Return ``env``'s slot to a version it held before: the one before the current
        one, or version ``to`` (any version the slot held before).

        The policy's ``rollback`` rules apply: the actor needs ``rollback.role``, and with
        ``rollback.gates`` the version must meet, now, the gates of a transition into
        ``env``; without, it returns on its record (it held the slot before), and the
        reason is recorded.
        """
        check_name(name)
        env = self.policy.canonical_env(env)
        reason = _reason(reason)
        rules = self.policy.rollback
        if actor.roles is not None and rules.role not in actor.roles:
            raise PermissionDeniedError(
                f"{actor.name} may not roll back {shown(name)}/{env}: the policy's "
                f"rollback.role is {rules.role}; ask someone with that role")
        with self.db.write() as s:
            note_policy(s, self.policy, self.blobs, actor)
            row = name_row(s, name)
            why = refusal(actor, name, owner_team(s, row.id), rules.role)
            if why is not None:
                raise PermissionDeniedError(f"{why} (the policy's rollback.role)")
            slot = _slot(s, row, env, lock=True)
            if slot is None:
                raise EmptySlotError(f"{shown(name)} has nothing in {shown(env)} to roll back")
            number = self._rollback_target(s, row, env, slot, to)
            _, target = self._resolve_in(s, Ref(name=name, version=number))
            if target.status == ARCHIVED:
                raise TransitionError(
                    f"{name}@{target.number} is archived; an admin can take it out of the "
                    f"archive with `llmreg restore {name}@{target.number}`, or promote "
                    "another version")
            gates = [GateResult(gate="rollback", passed=True,
                                detail=f"{name}@{target.number} held {env} before "
                                       f"{name}@{slot.version}")]
            if rules.gates:
                report = self._judge_into(s, row, target, env, slot)
                if not report.passed:
                    unmet = "; ".join(f"{r.gate}: {r.detail}" for r in report.unmet())
                    raise GateFailedError(
                        f"{name}@{target.number} cannot return to {env} (the policy's "
                        f"rollback.gates is true): {unmet}", report)
                gates += report.results
            return self._move(s, row, target, env, slot, actor=actor, reason=reason,
                              action="rollback", gates=gates)

    @staticmethod
    def _rollback_target(s: Session, row: BundleName, env: str, slot: Slot,
                         to: int | None) -> int:
        """The version a rollback returns ``env`` to: ``to``, which the slot must have
        held before, or the one it held before the current one."""
        name = row.name
        if to is not None:
            if to == slot.version:
                raise TransitionError(f"{name}/{env} holds @{to} already; nothing to roll "
                                      "back")
            held = s.exec(select(SlotEvent.id).where(
                SlotEvent.name_id == row.id, SlotEvent.env == env,
                SlotEvent.to_version == to).limit(1)).first()
            if held is None:
                raise TransitionError(
                    f"{env} never held {name}@{to}; a rollback returns to a version the "
                    f"slot held before (`llmreg history {name} --env {env}`); promote it "
                    "instead")
            return to
        last = s.exec(select(SlotEvent).where(
            SlotEvent.name_id == row.id, SlotEvent.env == env,
            SlotEvent.to_version == slot.version).order_by(col(SlotEvent.id).desc())).first()
        if last is None or last.from_version is None:
            raise TransitionError(
                f"{name}@{slot.version} is the first version {env} has held; there is "
                "nothing to roll back to")
        return last.from_version

    def _judge_into(self, s: Session, row: BundleName, version: Version, env: str,
                    slot: Slot) -> GateReport:
        """The gates of the policy's transitions into ``env`` for ``version``, as it is
        now: the report of the first transition it meets, else of the first one."""
        reports: list[GateReport] = []
        if not self.policy.transitions_to(env):
            return GateReport(name=row.name, version=version.number, digest=version.digest,
                              from_status=version.status, to_env=env,
                              current_version=slot.version, policy_digest=self.policy.digest,
                              results=[GateResult(gate="transition", passed=False,
                                                  detail=f"the policy has no transition "
                                                         f"into {env}")])
        for transition in self.policy.transitions_to(env):
            approvals = s.exec(select(Approval).where(
                Approval.name_id == row.id, Approval.digest == version.digest,
                Approval.env == env)).all()
            label = f"{row.name}@{version.number}"
            results = judge(transition, ref=label, author=version.author,
                            evidence=evidence_rows(s, version.digest),
                            approvals=[approval_info(row.name, a) for a in approvals],
                            baseline=evidence_rows(s, slot.digest),
                            baseline_ref=f"{row.name}@{slot.version}",
                            owner=owner_team(s, row.id))
            reports.append(GateReport(name=row.name, version=version.number,
                                      digest=version.digest, from_status=transition.from_,
                                      to_env=env, current_version=slot.version,
                                      policy_digest=self.policy.digest, results=results))
            if reports[-1].passed:
                return reports[-1]
        return reports[0]

    def import_move_in(self, s: Session, name: str, number: int, env: str, *, actor: Actor,
                       reason: str) -> SlotEventInfo | None:
        """Point ``env``'s slot of ``name`` at version ``number`` inside the caller's write
        transaction, as an import: the policy's gates are not judged but recorded, each
        as bypassed-by-import, in the slot event and the audit entry (action ``import``).

        None when the slot already holds that version (a re-run moves nothing).
        """
        env = self.policy.canonical_env(env)
        note_policy(s, self.policy, self.blobs, actor)
        row, version = self._resolve_in(s, Ref(name=name, version=number))
        slot = _slot(s, row, env, lock=True)
        if slot is not None and slot.version == version.number:
            return None
        if version.status == ARCHIVED:
            raise TransitionError(f"{name}@{number} is archived (frozen); the import cannot "
                                  f"point {env} at it; nothing was imported")
        transition = self.policy.transition(version.status, env)
        names = ["transition"] if transition is None else transition.gates.names()
        # Bypassed gates are recorded as not passed: nobody judged them.
        gates = [GateResult(gate="bypassed-by-import", passed=True, detail=reason)]
        gates += [GateResult(gate=f"{g} (bypassed-by-import)", passed=False,
                             detail=f"not judged: {version.status} -> {env} was an import")
                  for g in names]
        return self._move(s, row, version, env, slot, actor=actor, reason=reason,
                          action="import", gates=gates)

    def _judge(self, s: Session, row: BundleName, version: Version, env: str, *,
               slot: Slot | None = None) -> GateReport:
        label = f"{row.name}@{version.number}"
        if version.status == ARCHIVED:
            raise TransitionError(f"{label} is archived (frozen) and cannot be promoted")
        slot = slot if slot is not None else _slot(s, row, env)
        if slot is not None and slot.version == version.number:
            raise TransitionError(f"{label} already holds {env}; nothing to do")
        base = dict(name=row.name, version=version.number, digest=version.digest,
                    from_status=version.status, to_env=env,
                    current_version=slot.version if slot else None,
                    policy_digest=self.policy.digest)
        transition = self.policy.transition(version.status, env)
        if transition is None:
            allowed = ", ".join(t.to for t in self.policy.transitions_from(version.status))
            detail = (f"{label} is {version.status}; the policy allows no "
                      f"{version.status} -> {env} (from {version.status}: "
                      f"{allowed or 'nothing'})")
            return GateReport(**base, results=[GateResult(gate="transition", passed=False,
                                                          detail=detail)])
        approvals = s.exec(select(Approval).where(
            Approval.name_id == row.id, Approval.digest == version.digest,
            Approval.env == env)).all()
        owner_gate = self._owner_gate(s, row, version)
        results = ([owner_gate] if owner_gate is not None else []) + judge(
            transition, ref=label, author=version.author,
            evidence=evidence_rows(s, version.digest),
            approvals=[approval_info(row.name, a) for a in approvals],
            baseline=evidence_rows(s, slot.digest) if slot else None,
            baseline_ref=f"{row.name}@{slot.version}" if slot else None,
            owner=owner_team(s, row.id))
        return GateReport(**base, results=results)

    def _owner_gate(self, s: Session, row: BundleName, version: Version) -> GateResult | None:
        """With ``require_owner``, a name's first version leaves ``registered`` only once
        the name has an owner (None: the policy does not ask)."""
        if not self.policy.require_owner or version.status != REGISTERED:
            return None
        moved_before = s.exec(select(SlotEvent.id).where(SlotEvent.name_id == row.id)
                              .limit(1)).first()
        if moved_before is not None:
            return None
        owner = owner_of(s, row)
        if owner is None:
            return GateResult(gate="owner", passed=False,
                              detail=f"{row.name!r} has no owner and the policy requires one "
                                     f"(require_owner); run `llmreg owner set {row.name} "
                                     "--team TEAM --contact ADDRESS`")
        return GateResult(gate="owner", passed=True, detail=f"owned by {owner.team}")

    def _move(self, s: Session, row: BundleName, version: Version, env: str,
              slot: Slot | None, *, actor: Actor, reason: str, action: str,
              gates: list[GateResult]) -> SlotEventInfo:
        now = utcnow()
        previous = slot.version if slot else None
        # Read the version again under its row lock: a deprecation run locks it too (after
        # this slot's lock) before it retires it, so a version retired after it was judged
        # is seen here, and a run that comes later sees this move. SQLite: the write lock.
        judged = version.status
        s.refresh(version, with_for_update=True)
        if version.status != judged:
            label = f"{row.name}@{version.number}"
            if version.status == ARCHIVED:
                raise TransitionError(f"{label} was archived while this {action} was judged; "
                                      "nothing changed; promote another version instead")
            raise SlotConflictError(f"{label} became {version.status} while this {action} "
                                    "was judged; nothing changed; try again")
        if slot is not None:
            # Compare-and-set on the version the slot held when we judged it.
            moved = s.execute(
                update(Slot).where(col(Slot.id) == slot.id, col(Slot.version) == previous)
                .values(version=version.number, digest=version.digest, updated_at=now,
                        updated_by=actor.name)).rowcount  # type: ignore[attr-defined]
            if moved != 1:
                raise SlotConflictError(f"{row.name}/{env} moved while this promotion was "
                                        "judged; nothing changed")
        else:
            s.add(Slot(name_id=name_id(row), env=env, version=version.number, digest=version.digest,
                       updated_at=now, updated_by=actor.name))
            try:
                s.flush()
            except sa_exc.IntegrityError:
                raise SlotConflictError(f"{row.name}/{env} was filled by another promotion; "
                                        "nothing changed") from None
        version.status = env
        s.add(version)
        rows = [version_row(row.name, version),
                slot_row(row.name, env, version.number, version.digest, now, actor.name)]
        if previous is not None:
            left = self._restatus(s, row, previous)
            if left is not None:
                rows.append(version_row(row.name, left))
        event = SlotEvent(name_id=name_id(row), env=env, action=action, from_version=previous,
                          to_version=version.number, to_digest=version.digest,
                          actor=actor.name, reason=reason, policy_digest=self.policy.digest,
                          gates=[g.model_dump() for g in gates], at=now)
        s.add(event)
        s.flush()
        audit.append(s, actor=actor.name, action=action, name=row.name,
                     target=f"{row.name}@{version.number}", env=env, at=now,
                     detail={"from_version": previous, "digest": version.digest,
                             "reason": reason, "policy": self.policy.digest,
                             "gates": [g.gate for g in gates], "event_id": event.id},
                     rows=rows)
        outbox.emit(s, event="promotion" if action == "promote" else "rollback", name=row.name,
                    at=now, data={"name": row.name, "env": env, "version": version.number,
                                  "digest": version.digest, "from_version": previous,
                                  "actor": actor.name, "reason": reason[:500],
                                  "policy_digest": self.policy.digest})
        return event_info(row.name, event)

    def _restatus(self, s: Session, row: BundleName, number: int) -> Version | None:
        """A version that left a slot takes the status of the furthest slot it still holds
        (a version that holds none keeps its last status); the version if it changed."""
        envs = s.exec(select(Slot.env).where(Slot.name_id == row.id, Slot.version == number)
                      ).all()
        if not envs:
            return None
        order = list(self.policy.environments)
        furthest = max(envs, key=lambda e: order.index(e) if e in order else -1)
        old = s.exec(select(Version).where(Version.name_id == row.id,
                                           Version.number == number)).one()
        if old.status != furthest:
            old.status = furthest
            s.add(old)
            return old
        return None

    # -- deprecation -----------------------------------------------------------------

    def deprecate(self, ref: str, *, actor: Actor, reason: str = "") -> VersionInfo:
        """Mark a version deprecated (it must run nowhere)."""
        return self.retire(ref, DEPRECATED, actor=actor, reason=reason)

    def archive(self, ref: str, *, actor: Actor, reason: str = "") -> VersionInfo:
        """Archive a version: frozen and tagged, never deleted, never promoted again."""
        return self.retire(ref, ARCHIVED, actor=actor, reason=reason)

    def restore(self, ref: str, *, actor: Actor, reason: str) -> VersionInfo:
        """Take an archived version out of the archive, audited with the reason: it is
        ``registered`` again (a deprecated version too: the policy moves versions out of
        ``registered``), untagged, and moves only through the policy's gates, with
        evidence that is still valid. The deprecation job leaves it alone for
        ``archive_grace_days``.
        """
        reason = _reason(reason)
        with self.db.write() as s:
            row, version = self._resolve_in(s, ref)
            label = f"{row.name}@{version.number}"
            if version.status != ARCHIVED:
                raise TransitionError(f"{label} is {version.status}, not archived; only an "
                                      "archived version can be restored")
            version.status = REGISTERED
            version.retired_at = version.retire_rule = version.retire_policy = None
            s.add(version)
            s.flush()
            audit.append(s, actor=actor.name, action="restore", name=row.name, target=label,
                         at=utcnow(), detail={"digest": version.digest,
                                              "version": version.number, "from": ARCHIVED,
                                              "to": REGISTERED, "reason": reason},
                         rows=[version_row(row.name, version)])
            return version_info(row.name, version)

    def retire(self, ref: str, status: str, *, actor: Actor, reason: str,
               rule: str = "manual") -> VersionInfo:
        """Move a version that runs nowhere to ``deprecated`` or ``archived``, tagged with
        the rule, the time and the policy digest."""
        if status not in (DEPRECATED, ARCHIVED):
            raise TransitionError(f"status {status!r} is not {DEPRECATED!r} or {ARCHIVED!r}")
        with self.db.write() as s:
            row, version = self._resolve_in(s, ref)
            require(s, actor, row.name, row.id, "publisher")
            label = f"{row.name}@{version.number}"
            if version.status == ARCHIVED:
                raise TransitionError(f"{label} is already archived")
            if version.status == status:
                raise TransitionError(f"{label} is already {status}")
            holding = s.exec(select(Slot.env).where(
                Slot.name_id == row.id, Slot.version == version.number)).all()
            if holding:
                raise TransitionError(
                    f"{label} runs in {', '.join(holding)}; promote another version there "
                    f"first")
            old = version.status
            retire_version(s, row, version, status, actor=actor.name, rule=rule,
                           reason=reason, policy_digest=self.policy.digest, at=utcnow(),
                           old=old)
            return version_info(row.name, version)


def retire_version(s: Session, row: BundleName, version: Version, status: str, *, actor: str,
                   rule: str, reason: str, policy_digest: str, at: datetime, old: str) -> None:
    """Deprecate or archive ``version`` in ``s``: tag it, audit it, and emit ``archive``.

    The caller has checked that no environment holds it.
    """
    version.status = status
    version.retired_at, version.retire_rule, version.retire_policy = at, rule, policy_digest
    s.add(version)
    s.flush()
    label = f"{row.name}@{version.number}"
    detail = {"digest": version.digest, "from": old, "reason": reason, "rule": rule,
              "policy": policy_digest}
    audit.append(s, actor=actor, action=status.removesuffix("d"), name=row.name,
                 target=label, detail=detail, rows=[version_row(row.name, version)])
    if status == ARCHIVED:
        outbox.emit(s, event="archive", name=row.name, at=at,
                    data={"name": row.name, "version": version.number, **detail, "by": actor})


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidRefError("--reason is empty; say why, e.g. --reason 'passes regression v3'")
    return reason


def _slot(s: Session, row: BundleName, env: str, *, lock: bool = False) -> Slot | None:
    query = select(Slot).where(Slot.name_id == row.id, Slot.env == env)
    if lock:
        query = query.with_for_update()  # PostgreSQL row lock; SQLite holds the db lock
    return s.exec(query).first()

