"""Served traffic: heartbeats rolled up per hour, and "when did this slot last serve?".

Clients report in batches which bundle they served and how often. Nothing grows by a
row per request: each beat adds to two rollups, a lifetime one per (name, env, digest)
(``heartbeats``: first and last served, total) and an hourly one (``heartbeat_hours``)
that answers "how many in the last day / week" and is pruned after
:data:`RETENTION_DAYS`. Both are bounded by versions × environments (× hours kept).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from llmreg.bundle.digest import check_digest
from llmreg.bundle.names import check_name
from llmreg.contract.models import MAX_BEAT_COUNT
from llmreg.db.engine import Database, insert_ignore
from llmreg.db.models import BundleName, Heartbeat, HeartbeatHour, Slot, Version, utcnow
from llmreg.errors import (
    InvalidRefError,
    PermissionDeniedError,
    RefNotFoundError,
    UnknownEnvironmentError,
)
from llmreg.policy import Policy
from llmreg.service.authority import owner_team
from llmreg.teams import may_serve
from llmreg.types import Actor, ServedInfo

MAX_BEATS = 1000  # heartbeats in one batch
MAX_COUNT = MAX_BEAT_COUNT  # requests in one heartbeat (1,000,000), refused above
MAX_TOTAL = 2**63 - 1  # a stored count (BIGINT) saturates here instead of overflowing
RETENTION_DAYS = 8  # hourly rollups kept: a week of "resolves in the last 7 days" and a day


def hour_of(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC hour.

    Example:
        >>> from datetime import UTC
        >>> hour_of(datetime(2026, 3, 1, 14, 59, 7, tzinfo=UTC)).isoformat()
        '2026-03-01T14:00:00+00:00'
    """
    return moment.replace(minute=0, second=0, microsecond=0)


class Traffic:
    """Heartbeat rollups and the served-traffic view of one registry.

    Example:
        >>> svc.traffic.record([{"name": "chat", "env": "production",
        ...                      "digest": digest, "count": 3}])  # doctest: +SKIP
        1
        >>> svc.traffic.served("chat")[0].day  # doctest: +SKIP
        3
    """

    def __init__(self, db: Database, policy: Policy) -> None:
        self.db = db
        self.policy = policy

    def record(self, beats: list[dict[str, Any]], *, now: datetime | None = None,
               actor: Actor | None = None) -> int:
        """Add served-request counts per (name, env, digest); return how many beats were
        accepted.

        Each beat must name a registered version of the name (by its digest) and an
        environment of the policy, with a ``count`` from 0 to :data:`MAX_COUNT`. A batch
        with one bad beat changes nothing. A beat of ``count: 0`` is accepted and
        ignored: it reports no traffic, so it neither marks the slot as served nor closes
        a stale-production alert. Stored totals saturate at :data:`MAX_TOTAL`. With an
        ``actor``, every beat must be for a name it may serve
        (:func:`~llmreg.service.authority.may_serve`), or nothing is recorded.

        Example:
            >>> svc.traffic.record([{"name": "chat", "env": "production",
            ...                      "digest": digest, "count": 0}])  # doctest: +SKIP
            1
            >>> svc.traffic.served("chat")[0].last_served is None  # doctest: +SKIP
            True
        """
        if len(beats) > MAX_BEATS:
            raise InvalidRefError(f"{len(beats)} heartbeats in one batch; the limit is "
                                  f"{MAX_BEATS}")
        now = now or utcnow()
        hour = hour_of(now)
        totals: dict[tuple[str, str, str], int] = {}
        for i, beat in enumerate(beats):
            name = check_name(str(beat.get("name", "")), field=f"beats[{i}].name")
            try:
                env = self.policy.canonical_env(str(beat.get("env", "")))
            except UnknownEnvironmentError as exc:
                raise UnknownEnvironmentError(f"beats[{i}].env: {exc}") from None
            digest = check_digest(str(beat.get("digest", "")), field=f"beats[{i}].digest")
            count = beat.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise InvalidRefError(f"beats[{i}].count {count!r} must be a whole number "
                                      f"from 0 to {MAX_COUNT}")
            if count > MAX_COUNT:
                raise InvalidRefError(
                    f"beats[{i}].count is {count}; one beat reports at most {MAX_COUNT} "
                    "requests; split it into several beats or flush more often; nothing "
                    "was recorded")
            totals[(name, env, digest)] = totals.get((name, env, digest), 0) + count
        with self.db.write() as s:
            for i, (name, _env, digest) in enumerate(totals):
                known = s.exec(select(Version.name_id).join(BundleName).where(
                    BundleName.name == name, Version.digest == digest)).first()
                if known is None:
                    raise RefNotFoundError(
                        f"beats[{i}]: {name}@{digest[:19]}… is not a registered version; "
                        "report only bundles resolved from this registry")
                why = may_serve(actor, name, owner_team(s, known)) if actor else None
                if why is not None:
                    raise PermissionDeniedError(f"beats[{i}]: {why}; nothing was recorded")
            for (name, env, digest), count in totals.items():
                if count:  # a beat of 0 is no traffic: it must not look like serving
                    _add(s, name, env, digest, count, now, hour)
        return len(beats)

    def prune(self, *, now: datetime | None = None) -> int:
        """Drop hourly rollups older than :data:`RETENTION_DAYS`; return how many."""
        cutoff = hour_of(now or utcnow()) - timedelta(days=RETENTION_DAYS)
        with self.db.write() as s:
            result = s.execute(sa.delete(HeartbeatHour).where(col(HeartbeatHour.hour) < cutoff))
            return int(result.rowcount)  # type: ignore[attr-defined]

    def heartbeats(self, name: str | None = None) -> list[dict[str, Any]]:
        """The lifetime rollups, one per (name, env, digest)."""
        with self.db.read() as s:
            query = select(Heartbeat)
            if name is not None:
                query = query.where(Heartbeat.name == name)
            return [{"name": h.name, "env": h.env, "digest": h.digest, "count": h.count,
                     "first_at": h.first_at, "last_at": h.last_at}
                    for h in s.exec(query.order_by(col(Heartbeat.id))).all()]

    def served(self, name: str | None = None, env: str | None = None, *,
               now: datetime | None = None) -> list[ServedInfo]:
        """Per slot and per version that served: last served, requests in the last day
        and week, and whether it holds the slot now. A slot that never served is listed
        with no time."""
        if name is not None:
            check_name(name)
        canonical = self.policy.canonical_env(env) if env is not None else None
        now = now or utcnow()
        day, week = now - timedelta(days=1), now - timedelta(days=7)
        with self.db.read() as s:
            slots = slot_rows(s, name, canonical)
            held = {(n, e): (v, d) for n, e, v, d in slots}
            query = select(Heartbeat)
            hours = select(HeartbeatHour).where(col(HeartbeatHour.hour) >= hour_of(week))
            if name is not None:
                query = query.where(Heartbeat.name == name)
                hours = hours.where(HeartbeatHour.name == name)
            if canonical is not None:
                query = query.where(Heartbeat.env == canonical)
                hours = hours.where(HeartbeatHour.env == canonical)
            recent: dict[tuple[str, str, str], list[int]] = {}
            for hh in s.exec(hours).all():
                counts = recent.setdefault((hh.name, hh.env, hh.digest), [0, 0])
                counts[1] += hh.count
                if hh.hour >= hour_of(day):
                    counts[0] += hh.count
            numbers = _version_numbers(s, name)
            out: dict[tuple[str, str, str], ServedInfo] = {}
            for hb in s.exec(query).all():
                key = (hb.name, hb.env, hb.digest)
                d_count, w_count = recent.get(key, [0, 0])
                out[key] = ServedInfo(
                    name=hb.name, env=hb.env, version=numbers.get((hb.name, hb.digest)),
                    digest=hb.digest, in_slot=held.get((hb.name, hb.env), (0, ""))[1] == hb.digest,
                    last_served=hb.last_at, day=d_count, week=w_count, total=hb.count)
            for (n, e), (v, d) in held.items():
                out.setdefault((n, e, d), ServedInfo(name=n, env=e, version=v, digest=d,
                                                     in_slot=True, last_served=None, day=0,
                                                     week=0, total=0))
        order = {e: i for i, e in enumerate(self.policy.environments)}
        return sorted(out.values(), key=lambda r: (r.name, order.get(r.env, 99), not r.in_slot,
                                                   -(r.version or 0)))


def slot_rows(s: Session, name: str | None = None, env: str | None = None
              ) -> list[tuple[str, str, int, str]]:
    """(name, env, version, digest) of every slot, optionally filtered."""
    query = select(BundleName.name, Slot.env, Slot.version, Slot.digest).join(BundleName)
    if name is not None:
        query = query.where(BundleName.name == name)
    if env is not None:
        query = query.where(Slot.env == env)
    return [(n, e, v, d) for n, e, v, d in s.exec(query).all()]


def _version_numbers(s: Session, name: str | None) -> dict[tuple[str, str], int]:
    query = select(BundleName.name, Version.digest, Version.number).join(BundleName)
    if name is not None:
        query = query.where(BundleName.name == name)
    return {(n, d): v for n, d, v in s.exec(query).all()}


def _add(s: Session, name: str, env: str, digest: str, count: int, now: datetime,
         hour: datetime) -> None:
    """Add ``count`` to the lifetime and the hourly rollup, race-free on both backends."""
    s.execute(insert_ignore(s, Heartbeat, name=name, env=env, digest=digest, count=0,
                            first_at=now, last_at=now))
    s.execute(sa.update(Heartbeat).where(
        col(Heartbeat.name) == name, col(Heartbeat.env) == env,
        col(Heartbeat.digest) == digest).values(
        count=_saturating(col(Heartbeat.count), count),
        last_at=sa.case((col(Heartbeat.last_at) < now, now), else_=col(Heartbeat.last_at))))
    s.execute(insert_ignore(s, HeartbeatHour, name=name, env=env, digest=digest, hour=hour,
                            count=0))
    s.execute(sa.update(HeartbeatHour).where(
        col(HeartbeatHour.name) == name, col(HeartbeatHour.env) == env,
        col(HeartbeatHour.digest) == digest, col(HeartbeatHour.hour) == hour)
        .values(count=_saturating(col(HeartbeatHour.count), count)))


def _saturating(column: Any, count: int) -> Any:
    """``column + count``, stopping at :data:`MAX_TOTAL` (never overflowing BIGINT)."""
    return sa.case((column > MAX_TOTAL - count, MAX_TOTAL), else_=column + count)
