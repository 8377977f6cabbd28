"""What runs where: each environment slot's version now, and every move it made.

Reads only; slots move in :class:`llmreg.service.lifecycle.lifecycle.Lifecycle`.
"""

from __future__ import annotations

from sqlmodel import col, select

from llmreg.bundle.names import check_name
from llmreg.db.engine import Database
from llmreg.db.models import BundleName, Owner, Slot, SlotEvent
from llmreg.policy import Policy
from llmreg.service.refs import name_id, name_row
from llmreg.service.rows import event_info
from llmreg.types import GateResult, SlotEventInfo, SlotStatus


class Slots:
    """The slots of every name: their status and their history.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from llmreg.bundle.schema import Bundle
        >>> from llmreg.service import RegistryService
        >>> from llmreg.types import Actor
        >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
        >>> b = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
        ...                       "template": {"source": "Hi"}})
        >>> _ = svc.versions.register(b, name="chat", message="first", author="ana")
        >>> _ = svc.lifecycle.promote("chat@1", "staging", actor=Actor("ana"), reason="try")
        >>> [(s.name, s.env, s.version, s.promoted_by) for s in svc.slots.status()]
        [('chat', 'staging', 1, 'ana')]
        >>> [(e.action, e.to_version, e.reason) for e in svc.slots.history("chat", "staging")]
        [('promote', 1, 'try')]
        >>> svc.close()
    """

    def __init__(self, db: Database, policy: Policy) -> None:
        self.db = db
        self.policy = policy

    def status(self, name: str | None = None, env: str | None = None) -> list[SlotStatus]:
        """Every slot (optionally of one name / one environment): what runs, since when,
        promoted by whom, with which gates."""
        if name is not None:
            check_name(name)
        canonical = self.policy.canonical_env(env) if env is not None else None
        order = {e: i for i, e in enumerate(self.policy.environments)}
        with self.db.read() as s:
            if name is not None:
                name_row(s, name)
            query = select(Slot, BundleName).join(BundleName)
            if name is not None:
                query = query.where(BundleName.name == name)
            if canonical is not None:
                query = query.where(Slot.env == canonical)
            out = []
            teams = {o.name_id: o.team for o in s.exec(select(Owner)).all()}
            for slot, row in s.exec(query).all():
                ev = s.exec(select(SlotEvent).where(
                    SlotEvent.name_id == row.id, SlotEvent.env == slot.env,
                    SlotEvent.to_version == slot.version).order_by(col(SlotEvent.id).desc())
                ).first()
                out.append(SlotStatus(
                    name=row.name, env=slot.env, version=slot.version, digest=slot.digest,
                    since=slot.updated_at, promoted_by=slot.updated_by,
                    reason=ev.reason if ev else "", policy_digest=ev.policy_digest if ev else None,
                    gates=[GateResult(**g) for g in ev.gates] if ev else [],
                    owner=teams.get(name_id(row))))
            return sorted(out, key=lambda x: (x.name, order.get(x.env, 99)))

    def history(self, name: str, env: str) -> list[SlotEventInfo]:
        """Every move of one slot, oldest first: who, when, from which version, why."""
        check_name(name)
        env = self.policy.canonical_env(env)
        with self.db.read() as s:
            row = name_row(s, name)
            events = s.exec(select(SlotEvent).where(
                SlotEvent.name_id == row.id, SlotEvent.env == env).order_by(col(SlotEvent.id))
            ).all()
            return [event_info(name, e) for e in events]
