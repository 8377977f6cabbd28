"""Read-only views for people: the environments board, newest-first histories, a
filtered audit timeline. Every list is cut by the database (``OFFSET``/``LIMIT``), and
each page is a fixed, small number of queries whatever the registry's size.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from llmreg.bundle.schema import Bundle
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

from llmreg.bundle.names import check_name
from llmreg.db.engine import Database
from llmreg.db.models import (
    Alert,
    Approval,
    AuditEntry,
    BundleName,
    Heartbeat,
    Owner,
    Slot,
    SlotEvent,
    Version,
)
from llmreg.policy import Policy
from llmreg.service import audit
from llmreg.service.hygiene.alerts import ACTIVE
from llmreg.service.refs import name_row
from llmreg.service.rows import approval_info, event_info, version_info
from llmreg.types import ApprovalInfo, AuditInfo, Page, SlotEventInfo, VersionInfo


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
    owner: str | None = None  # the owning team
    alerts: int = 0  # open or acknowledged alerts addressed to the owner


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

    def board(self, *, offset: int = 0, limit: int = 50,
              team: str | None = None) -> Page[BoardRow]:
        """One page of names (sorted) with every slot they hold, owner and open alerts:
        six queries. ``team``: only the names that team owns."""
        with self.db.read() as s:
            counted = sa.select(func.count()).select_from(BundleName).where(
                col(BundleName.latest_version) > 0)
            # Columns, not ORM objects: no JSON column is read or parsed.
            latest = sa.and_(col(Version.name_id) == col(BundleName.id),
                             col(Version.number) == col(BundleName.latest_version))
            listed = sa.select(col(BundleName.id), col(BundleName.name), col(Version.number),
                               col(Version.created_at)).join(Version, latest)
            if team is not None:
                owned = sa.select(col(Owner.name_id)).where(col(Owner.team) == team)
                counted = counted.where(col(BundleName.id).in_(owned))
                listed = listed.where(col(BundleName.id).in_(owned))
            total = s.execute(counted).scalar_one()
            names = s.execute(listed.order_by(col(BundleName.name)).offset(offset)
                              .limit(limit)).all()
            ids = [n[0] for n in names]
            slots = s.execute(sa.select(col(Slot.name_id), col(Slot.env), col(Slot.version),
                                        col(Slot.digest), col(Slot.updated_at),
                                        col(Slot.updated_by))
                              .where(col(Slot.name_id).in_(ids))).all()
            last_ids = select(func.max(SlotEvent.id)).where(
                col(SlotEvent.name_id).in_(ids)).group_by(
                col(SlotEvent.name_id), col(SlotEvent.env))
            events = {(i, e): (a, r) for i, e, a, r in s.execute(
                sa.select(col(SlotEvent.name_id), col(SlotEvent.env), col(SlotEvent.action),
                          col(SlotEvent.reason))
                .where(col(SlotEvent.id).in_(last_ids))).all()}
            beats = s.execute(sa.select(col(Heartbeat.name), col(Heartbeat.env),
                                        col(Heartbeat.digest), col(Heartbeat.last_at))
                              .where(col(Heartbeat.name).in_([n[1] for n in names]))).all()
            owners = {i: t for i, t in s.execute(
                sa.select(col(Owner.name_id), col(Owner.team))
                .where(col(Owner.name_id).in_(ids))).all()}
            alerts = {n: int(c) for n, c in s.execute(
                sa.select(col(Alert.name), func.count()).where(
                    col(Alert.name).in_([n[1] for n in names]),
                    col(Alert.state).in_(ACTIVE)).group_by(col(Alert.name))).all()}
        served: dict[tuple[str, str], tuple[datetime, str]] = {}
        for bname, env, digest, last_at in beats:
            seen = served.get((bname, env))
            if seen is None or last_at > seen[0]:
                served[(bname, env)] = (last_at, digest)
        by_name: dict[int | None, dict[str, BoardCell]] = {}
        names_of = {n[0]: n[1] for n in names}
        for name_id, env, version, digest, since, by in slots:
            ev = events.get((name_id, env))
            seen = served.get((names_of[name_id], env))
            by_name.setdefault(name_id, {})[env] = BoardCell(
                version=version, digest=digest, since=since, by=by,
                action=ev[0] if ev else "promote", reason=ev[1] if ev else "",
                last_served=seen[0] if seen else None,
                served_current=seen is not None and seen[1] == digest)
        first, last = self.drift_pair()
        rows = []
        for name_id, name, number, created_at in names:
            cells = by_name.get(name_id, {})
            drift = (first in cells and last in cells
                     and cells[first].digest != cells[last].digest)
            rows.append(BoardRow(name=name, latest_version=number, updated_at=created_at,
                                 cells=cells, drift=drift, owner=owners.get(name_id),
                                 alerts=alerts.get(name, 0)))
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

    def approvals_of(self, name: str, digest: str) -> dict[str, list[ApprovalInfo]]:
        """Environment -> the approvals of ``name``'s ``digest`` for it, oldest first (one
        query for every environment)."""
        check_name(name)
        with self.db.read() as s:
            row = name_row(s, name)
            out: dict[str, list[ApprovalInfo]] = {}
            for a in s.exec(select(Approval).where(Approval.name_id == row.id,
                                                   Approval.digest == digest)
                            .order_by(col(Approval.id))).all():
                out.setdefault(a.env, []).append(approval_info(name, a))
            return out

    def versions_with_digest(self, digest: str, *, limit: int = 10) -> list[VersionInfo]:
        """The versions (of any name) registered with ``digest``, oldest first."""
        with self.db.read() as s:
            rows = s.exec(select(Version, BundleName.name).join(BundleName)
                          .where(Version.digest == digest).order_by(col(Version.id))
                          .limit(limit)).all()
            return [version_info(n, v) for v, n in rows]

    def audit_page(self, *, name: str | None = None, env: str | None = None,
                   actor: str | None = None, before: int | None = None, limit: int = 50
                   ) -> Page[AuditInfo]:
        """One page of audit entries, newest first, filtered by name, environment and
        actor (an environment alias is accepted; an unknown one is refused).

        Pages are cut by key, not offset: ``before`` is the ``seq`` the page starts below
        (None: the newest), so page 200 costs what page 1 does. ``total`` counts every
        entry that matches; ``offset`` is how many newer entries match; ``next`` is the
        ``before`` of the following page (None on the last page).
        """
        where = []
        if name:
            where.append(col(AuditEntry.name) == name)
        if env:
            where.append(col(AuditEntry.env) == self.policy.canonical_env(env))
        if actor:
            where.append(col(AuditEntry.actor) == actor)
        with self.db.read() as s:
            total = int(s.exec(select(func.count()).select_from(AuditEntry).where(*where)
                               ).one())
            newer = 0
            query = select(AuditEntry).where(*where)
            if before is not None:
                query = query.where(col(AuditEntry.seq) < before)
                newer = int(s.exec(select(func.count()).select_from(AuditEntry)
                                   .where(*where, col(AuditEntry.seq) >= before)).one())
            rows = s.exec(query.order_by(col(AuditEntry.seq).desc()).limit(limit)).all()
            items = [audit.to_info(e) for e in rows]
            more = newer + len(items) < total
            return Page(items=items, total=total, offset=newer,
                        next=items[-1].seq if more and items else None)
