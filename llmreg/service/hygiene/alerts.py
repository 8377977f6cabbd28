"""Alerts addressed to a name's owner. Today one kind: the stale production slot.

A production slot whose version has served nothing for the policy's
``deprecation.stale_production_days`` (counted from its last heartbeat in production,
or from its promotion if it never served there) opens ONE alert, addressed to the
owner's team and contacts, and emits a ``stale_production`` event. While it stays open
and unacknowledged it is reminded once every ``remind_every_days`` (another event), not
on every run. It closes by itself when the slot serves again or moves to another
version. ``ack`` records who knows and why; acknowledged alerts are not reminded and do
not fail ``llmreg alerts --check``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from llmreg.db.engine import Database
from llmreg.db.models import Alert, BundleName, Heartbeat, Owner, utcnow
from llmreg.errors import InvalidRefError, RefNotFoundError
from llmreg.policy import Policy
from llmreg.service import audit
from llmreg.service.authority import require
from llmreg.service.hygiene.traffic import slot_rows
from llmreg.service.notifications import outbox
from llmreg.service.rows import is_row_id
from llmreg.types import Actor, AlertInfo

STALE = "stale_production"
ACTOR = "policy:alerts"
ACTIVE = ("open", "acked")


def production_env(policy: Policy) -> str:
    """The environment the stale alert watches: ``production``, else the last one.

    Example:
        >>> production_env(Policy.default())
        'production'
    """
    envs = list(policy.environments)
    return "production" if "production" in envs else envs[-1]


def alert_info(a: Alert) -> AlertInfo:
    """The record of one alert."""
    assert a.id is not None
    return AlertInfo(id=a.id, kind=a.kind, name=a.name, env=a.env, version=a.version,
                     digest=a.digest, team=a.team, contacts=list(a.contacts),
                     message=a.message, state=a.state, opened_at=a.opened_at,
                     notified_at=a.notified_at, reminders=a.reminders, acked_by=a.acked_by,
                     ack_reason=a.ack_reason, closed_at=a.closed_at,
                     close_reason=a.close_reason)


class Alerts:
    """Raise, remind, close and acknowledge alerts.

    Example:
        >>> svc.alerts.check(now=now)  # doctest: +SKIP
        {'opened': 1, 'reminded': 0, 'closed': 0}
    """

    def __init__(self, db: Database, policy: Policy) -> None:
        self.db = db
        self.policy = policy

    def check(self, *, now: datetime | None = None) -> dict[str, int]:
        """Open, remind and close stale-production alerts as of ``now``; return counts.

        Runs in one write transaction (on PostgreSQL under an advisory lock), so two
        checks at once never open the same alert twice.
        """
        now = now or utcnow()
        rules = self.policy.deprecation
        threshold = timedelta(days=rules.stale_production_days)
        remind = timedelta(days=rules.remind_every_days)
        env = production_env(self.policy)
        counts = {"opened": 0, "reminded": 0, "closed": 0}
        with self.db.write() as s:
            if s.get_bind().dialect.name == "postgresql":
                s.execute(sa.text("SELECT pg_advisory_xact_lock(7226314)"))
            slots = {(n, e): (v, d) for n, e, v, d in slot_rows(s, env=env)}
            since = _slot_since(s, env)
            served_at = {(h.name, h.digest): h.last_at for h in s.exec(
                select(Heartbeat).where(Heartbeat.env == env)).all()}
            active = {(a.name, a.env): a for a in s.exec(
                select(Alert).where(Alert.kind == STALE, col(Alert.state).in_(ACTIVE))).all()}
            for key, alert in active.items():
                held = slots.get(key)
                served = served_at.get((alert.name, alert.digest))
                why = None
                if held is None or held[1] != alert.digest:
                    why = (f"the slot moved to @{held[0]}" if held else "the slot was emptied")
                elif served is not None and now - served < threshold:
                    why = f"traffic resumed (last served {served:%Y-%m-%d %H:%M} UTC)"
                if why is not None:
                    self._close(s, alert, why, now)
                    counts["closed"] += 1
                elif alert.state == "open" and now - alert.notified_at >= remind:
                    alert.notified_at = now
                    alert.reminders += 1
                    s.add(alert)
                    outbox.emit(s, event=STALE, name=alert.name, at=now,
                                data={"name": alert.name, **_event_data(alert),
                                      "reminder": alert.reminders})
                    counts["reminded"] += 1
            owners = {n: o for o, n in s.exec(select(Owner, BundleName.name).join(
                BundleName, col(BundleName.id) == col(Owner.name_id))).all()}
            for (name, e), (version, digest) in sorted(slots.items()):
                open_alert = active.get((name, e))
                if open_alert is not None and open_alert.state in ACTIVE \
                        and open_alert.closed_at is None:
                    continue
                served = served_at.get((name, digest))
                start = since.get(name, now)
                base = served if served is not None and served > start else start
                if now - base < threshold:
                    continue
                owner = owners.get(name)
                quiet = (f"last served {served:%Y-%m-%d}" if served is not None and served > start
                         else f"never served since its promotion on {start:%Y-%m-%d}")
                alert = Alert(kind=STALE, name=name, env=e, version=version, digest=digest,
                              team=owner.team if owner else None,
                              contacts=list(owner.contacts) if owner else [],
                              message=(f"{name}@{version} holds {e} but has served nothing for "
                                       f"{(now - base).days} days ({quiet}); roll it back, "
                                       "promote a successor, or ack with a reason"),
                              state="open", opened_at=now, notified_at=now, reminders=0)
                s.add(alert)
                s.flush()
                audit.append(s, actor=ACTOR, action="alert-open", name=name,
                             target=f"{name}@{version}", env=e,
                             detail={"alert": alert.id, "kind": STALE, "digest": digest,
                                     "team": alert.team, "policy": self.policy.digest})
                outbox.emit(s, event=STALE, name=name, at=now,
                            data={"name": name, **_event_data(alert), "reminder": 0})
                counts["opened"] += 1
        return counts

    def _close(self, s: Session, alert: Alert, why: str, now: datetime) -> None:
        alert.state, alert.closed_at, alert.close_reason = "closed", now, why
        s.add(alert)
        audit.append(s, actor=ACTOR, action="alert-close", name=alert.name,
                     target=f"{alert.name}@{alert.version}", env=alert.env,
                     detail={"alert": alert.id, "reason": why})

    def list(self, *, include_closed: bool = False, name: str | None = None) -> list[AlertInfo]:
        """Alerts, newest first: open and acknowledged ones (and closed with the flag)."""
        with self.db.read() as s:
            query = select(Alert)
            if not include_closed:
                query = query.where(col(Alert.state).in_(ACTIVE))
            if name is not None:
                query = query.where(Alert.name == name)
            return [alert_info(a) for a in s.exec(query.order_by(col(Alert.id).desc())
                                                   .limit(1000)).all()]

    def ack(self, alert_id: int, *, reason: str, actor: Actor,
            now: datetime | None = None) -> AlertInfo:
        """Acknowledge an open alert with a reason (audited): no more reminders."""
        reason = (reason or "").strip()
        if not reason:
            raise InvalidRefError("--reason is empty; say why, e.g. --reason 'feature "
                                  "paused until Q3'")
        now = now or utcnow()
        with self.db.write() as s:
            alert = s.get(Alert, alert_id) if is_row_id(alert_id) else None
            if alert is None:
                raise RefNotFoundError(f"no alert #{alert_id}; see `llmreg alerts`")
            if alert.state != "open":
                raise InvalidRefError(f"alert #{alert_id} is {alert.state}, not open; "
                                      "nothing to acknowledge")
            found = s.exec(select(BundleName.id).where(BundleName.name == alert.name)).first()
            require(s, actor, alert.name, found, "publisher")
            alert.state, alert.acked_by, alert.ack_reason, alert.acked_at = (
                "acked", actor.name, reason, now)
            s.add(alert)
            audit.append(s, actor=actor.name, action="alert-ack", name=alert.name,
                         target=f"{alert.name}@{alert.version}", env=alert.env,
                         detail={"alert": alert.id, "reason": reason})
            return alert_info(alert)


def _slot_since(s: Session, env: str) -> dict[str, datetime]:
    from llmreg.db.models import Slot

    rows = s.exec(select(BundleName.name, Slot.updated_at).join(BundleName)
                  .where(Slot.env == env)).all()
    return {n: t for n, t in rows}


def _event_data(alert: Alert) -> dict[str, Any]:
    return {"alert": alert.id, "env": alert.env, "version": alert.version,
            "digest": alert.digest, "team": alert.team, "contacts": alert.contacts,
            "message": alert.message, "opened_at": alert.opened_at.isoformat()}
