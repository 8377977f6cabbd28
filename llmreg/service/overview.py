"""Read-only views for people: the environments board, newest-first histories, a
filtered audit timeline. Every list is cut by the database (``OFFSET``/``LIMIT``), and
each page is a fixed, small number of queries whatever the registry's size.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from llmreg.bundle import Bundle
    >>> from llmreg.service import RegistryService
    >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
    >>> b = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
    ...                       "template": {"source": "Hi"}})
    >>> _ = svc.versions.register(b, name="chat", message="first", author="ana")
    >>> row = svc.overview.board(limit=10).items[0]
    >>> row.name, row.latest_version, row.cells
    ('chat', 1, {})
    >>> svc.overview.audit_page(actor="ana").items[0].action
    'register'
    >>> svc.close()
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from sqlmodel import col, func, select

from llmreg.db.engine import Database
from llmreg.db.models import AuditEntry, BundleName, Heartbeat, Slot, SlotEvent, Version
from llmreg.names import check_name
from llmreg.policy import Policy
from llmreg.service import audit
from llmreg.service.refs import name_row
from llmreg.service.rows import event_info, version_info
from llmreg.types import AuditInfo, Page, SlotEventInfo, VersionInfo


class BoardCell(BaseModel):
    """What one environment slot of one name holds, and when it last served."""

    model_config = ConfigDict(frozen=True)

    version: int
    digest: str
    since: datetime
    by: str
    action: str  # the move that put it there: "promote" or "rollback"
    reason: str
    last_served: datetime | None = None  # any digest, from the heartbeats
    served_current: bool = False  # the last heartbeat was of the digest held now


class BoardRow(BaseModel):
    """One name on the environments board: its latest version and one cell per slot."""

    model_config = ConfigDict(frozen=True)

    name: str
    latest_version: int
    updated_at: datetime
    cells: dict[str, BoardCell]
    drift: bool  # staging and production hold different digests


class Overview:
    """The people's views of one registry (reads only)."""

    def __init__(self, db: Database, policy: Policy) -> None:
        self.db = db
        self.policy = policy

    def drift_pair(self) -> tuple[str, str]:
        """The two environments compared for drift: staging and production when the
        policy has them, else its first and last environments."""
        envs = list(self.policy.environments)
        first = "staging" if "staging" in envs else envs[0]
        last = "production" if "production" in envs else envs[-1]
        return first, last

    def board(self, *, offset: int = 0, limit: int = 50) -> Page[BoardRow]:
        """One page of names (sorted) with every slot they hold: four queries."""
        with self.db.read() as s:
            total = s.exec(select(func.count()).select_from(BundleName)
                           .where(col(BundleName.latest_version) > 0)).one()
            names = s.exec(
                select(BundleName, Version)
                .join(Version, sa.and_(col(Version.name_id) == col(BundleName.id),
                                       col(Version.number) == col(BundleName.latest_version)))
                .order_by(col(BundleName.name)).offset(offset).limit(limit)).all()
            ids = [n.id for n, _ in names]
            slots = s.exec(select(Slot).where(col(Slot.name_id).in_(ids))).all()
            last_ids = select(func.max(SlotEvent.id)).where(
                col(SlotEvent.name_id).in_(ids)).group_by(
                col(SlotEvent.name_id), col(SlotEvent.env))
            events = {(e.name_id, e.env): e for e in s.exec(
                select(SlotEvent).where(col(SlotEvent.id).in_(last_ids))).all()}
            beats = s.exec(select(Heartbeat.name, Heartbeat.env, Heartbeat.digest,
                                  Heartbeat.last_at)
                           .where(col(Heartbeat.name).in_([n.name for n, _ in names]))).all()
        served: dict[tuple[str, str], tuple[datetime, str]] = {}
        for bname, env, digest, last_at in beats:
            seen = served.get((bname, env))
            if seen is None or last_at > seen[0]:
                served[(bname, env)] = (last_at, digest)
        by_name: dict[int | None, dict[str, BoardCell]] = {}
        names_of = {n.id: n.name for n, _ in names}
        for slot in slots:
            ev = events.get((slot.name_id, slot.env))
            seen = served.get((names_of[slot.name_id], slot.env))
            by_name.setdefault(slot.name_id, {})[slot.env] = BoardCell(
                version=slot.version, digest=slot.digest, since=slot.updated_at,
                by=slot.updated_by, action=ev.action if ev else "promote",
                reason=ev.reason if ev else "",
                last_served=seen[0] if seen else None,
                served_current=seen is not None and seen[1] == slot.digest)
        first, last = self.drift_pair()
        rows = []
        for n, v in names:
            cells = by_name.get(n.id, {})
            drift = (first in cells and last in cells
                     and cells[first].digest != cells[last].digest)
            rows.append(BoardRow(name=n.name, latest_version=v.number, updated_at=v.created_at,
                                 cells=cells, drift=drift))
        return Page.of(rows, offset=offset, limit=limit, total=int(total))

    def versions_page(self, name: str, *, offset: int = 0, limit: int = 50
                      ) -> Page[VersionInfo]:
        """One page of ``name``'s versions, newest first."""
        check_name(name)
        with self.db.read() as s:
            row = name_row(s, name)
            rows = s.exec(select(Version).where(Version.name_id == row.id)
                          .order_by(col(Version.number).desc()).offset(offset).limit(limit)
                          ).all()
            return Page.of([version_info(name, r) for r in rows], offset=offset, limit=limit,
                           total=row.latest_version)

    def slot_events_page(self, name: str, *, offset: int = 0, limit: int = 50
                         ) -> Page[SlotEventInfo]:
        """One page of every move of ``name``'s slots (all environments), newest first."""
        check_name(name)
        with self.db.read() as s:
            row = name_row(s, name)
            total = s.exec(select(func.count()).select_from(SlotEvent)
                           .where(SlotEvent.name_id == row.id)).one()
            rows = s.exec(select(SlotEvent).where(SlotEvent.name_id == row.id)
                          .order_by(col(SlotEvent.id).desc()).offset(offset).limit(limit)).all()
            return Page.of([event_info(name, e) for e in rows], offset=offset, limit=limit,
                           total=int(total))

    def slots_of(self, name: str) -> dict[str, int]:
        """Environment -> the version ``name``'s slot there holds now."""
        check_name(name)
        with self.db.read() as s:
            row = name_row(s, name)
            return {e: v for e, v in s.exec(select(Slot.env, Slot.version)
                                            .where(Slot.name_id == row.id)).all()}

    def versions_with_digest(self, digest: str, *, limit: int = 10) -> list[VersionInfo]:
        """The versions (of any name) registered with ``digest``, oldest first."""
        with self.db.read() as s:
            rows = s.exec(select(Version, BundleName.name).join(BundleName)
                          .where(Version.digest == digest).order_by(col(Version.id))
                          .limit(limit)).all()
            return [version_info(n, v) for v, n in rows]

    def audit_page(self, *, name: str | None = None, env: str | None = None,
                   actor: str | None = None, offset: int = 0, limit: int = 50
                   ) -> Page[AuditInfo]:
        """One page of audit entries, newest first, filtered by name, environment and
        actor (an environment alias is accepted; an unknown one is refused)."""
        where = []
        if name:
            where.append(col(AuditEntry.name) == name)
        if env:
            where.append(col(AuditEntry.env) == self.policy.canonical_env(env))
        if actor:
            where.append(col(AuditEntry.actor) == actor)
        with self.db.read() as s:
            total = s.exec(select(func.count()).select_from(AuditEntry).where(*where)).one()
            rows = s.exec(select(AuditEntry).where(*where)
                          .order_by(col(AuditEntry.seq).desc()).offset(offset).limit(limit)
                          ).all()
            return Page.of([audit.to_info(e) for e in rows], offset=offset, limit=limit,
                           total=int(total))
