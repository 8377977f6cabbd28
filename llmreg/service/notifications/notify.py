"""Webhook endpoints and the delivery worker (``svc.notify``, class :class:`Notify`).

Events are written by :func:`llmreg.service.notifications.outbox.emit` in the transaction of the
change they report, with one ``pending`` delivery per subscribed webhook. The worker,
:meth:`Notify.deliver_due`, runs continuously inside ``llmreg serve`` and from
``llmreg jobs run``:

1. **Claim** due deliveries in a short write transaction: on PostgreSQL with
   ``FOR UPDATE SKIP LOCKED`` (replicas claim disjoint rows without waiting); on SQLite
   the write transaction holds the database lock. A claim counts the attempt and pushes
   ``next_at`` one lease ahead, so a worker killed mid-send leaves the delivery due
   again after the lease, never lost.
   At most one delivery per webhook is claimed at a time, and none for a webhook with an
   attempt in flight.
2. **Send** outside any transaction, each claimed delivery on its own worker at once,
   signed per Standard Webhooks (a fresh timestamp and signature, the same
   ``webhook-id``), with no redirects, to the address the SSRF guard checked
   (:mod:`llmreg.service.notifications.netguard`), within a total deadline per attempt
   (``delivery.DEADLINE``, 30 s) that is shorter than the lease (60 s); at most a small
   part of the answer is read.
3. **Record** each outcome as soon as its attempt ends: ``delivered``; or the next
   attempt after an exponential backoff with jitter; or ``dead`` after
   ``webhooks.max_attempts`` (policy). A stale worker whose lease ran out cannot
   overwrite a newer attempt's outcome. Deliveries that fall due meanwhile are claimed
   while slow ones are still in flight: one slow receiver never delays another.

Delivery is at least once: a receiver drops repeats by ``webhook-id``. What a webhook may
ask for (events, format) is checked in :mod:`llmreg.service.notifications.webhooks`.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from llmreg.service import RegistryService
    >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
    >>> hook = svc.notify.add("https://93.184.215.14/llmreg", ["promotion"],
    ...                       actor=Actor("ana"))
    >>> hook.secret[:6], hook.events
    ('whsec_', ['promotion'])
    >>> svc.notify.add("http://10.0.0.1/x", ["promotion"], actor=Actor("ana"))
    Traceback (most recent call last):
    ...
    llmreg.errors.InvalidWebhookError: url 'http://10.0.0.1/x': host 10.0.0.1 is a private ...
    >>> svc.notify.deliver_due()
    0
    >>> svc.close()
"""

from __future__ import annotations

import base64
import functools
import logging
import secrets
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import col, select

from llmreg.db.engine import Database
from llmreg.db.models import Delivery, OutboxEvent, Webhook, utcnow
from llmreg.errors import ConfigError, InvalidWebhookError, RefNotFoundError
from llmreg.policy import Policy
from llmreg.service import audit
from llmreg.service.notifications.delivery import (
    DEADLINE,
    Job,
    Outcome,
    backoff,
    dispatch,
    send,
    tls_context,
)
from llmreg.service.notifications.email import EMAIL, Relay, message, parse_relay, send_mail
from llmreg.service.notifications.netguard import Resolver, check_url, system_resolver
from llmreg.service.notifications.outbox import TEST_EVENT, _write
from llmreg.service.notifications.webhooks import check_events, check_format, check_scope
from llmreg.service.rows import is_row_id
from llmreg.types import Actor, DeliveryInfo, WebhookInfo

LEASE = timedelta(seconds=60)  # longer than one attempt can take (delivery.DEADLINE, 30 s)
MAX_WEBHOOKS = 100
MAX_LIST = 1000
KEEP = timedelta(days=30)  # delivered and dead deliveries, and their events, are kept this long
PRUNE_EVERY = timedelta(hours=1)
PRUNE_BATCH = 1000
log = logging.getLogger("llmreg")


class Notify:
    """Webhook endpoints, deliveries and the delivery worker of one registry.

    Example:
        >>> svc.notify.deliver_due()  # doctest: +SKIP
        0
    """

    def __init__(self, db: Database, policy: Policy, *,
                 resolver: Resolver = system_resolver,
                 verify: ssl.SSLContext | bool = True, smtp: Relay | None = None) -> None:
        self.db = db
        self.policy = policy
        self.resolver = resolver  # host names to addresses (tests inject a fake)
        self.verify = verify  # TLS trust for https receivers and the SMTP relay
        self.smtp = smtp  # the relay for email notices (None: LLMREG_SMTP_URL, read each time)
        self._pruned_at: datetime | None = None

    # -- endpoints ---------------------------------------------------------------

    def add(self, url: str, events: Iterable[str], *, actor: Actor,
            format: str = "cloudevents", team: str | None = None,
            names: Iterable[str] = ()) -> WebhookInfo:
        """Add a webhook; the answer carries its ``whsec_`` secret, shown this once.

        ``team`` and ``names`` scope it: it gets only the events about the names ``team``
        owns and names matching ``names`` (shell patterns); with neither, every event
        (a registry-wide subscription). Refused, changing nothing, for an unknown event
        or format, a bad scope, or a URL the SSRF guard blocks (checked against the
        addresses its host resolves to now).
        """
        wanted = check_events(events)
        team, patterns = check_scope(team, names)
        check_format(format)
        check_url(url, allow_hosts=self.policy.webhooks.allow_hosts, resolver=self.resolver)
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        with self.db.write() as s:
            active = s.exec(select(Webhook.id).where(  # owners' email addresses apart
                col(Webhook.removed_at).is_(None), Webhook.format != EMAIL)).all()
            if len(active) >= MAX_WEBHOOKS:
                raise InvalidWebhookError(f"this registry has {len(active)} webhooks, the "
                                          "limit; remove one first (`llmreg webhook remove`)")
            row = Webhook(url=url, events=wanted, format=format, secret=secret,
                          created_at=utcnow(), created_by=actor.name, team=team,
                          names=patterns or None)
            s.add(row)
            s.flush()
            scope = ({"team": team} if team else {}) | ({"names": patterns} if patterns else {})
            audit.append(s, actor=actor.name, action="webhook-add", target=f"webhook/{row.id}",
                         detail={"url": url, "events": wanted, "format": format, **scope})
            return _hook_info(row).model_copy(update={"secret": secret})

    def list_webhooks(self) -> list[WebhookInfo]:
        """The webhooks in use (removed ones are kept for their history, not listed)."""
        with self.db.read() as s:
            rows = s.exec(select(Webhook).where(col(Webhook.removed_at).is_(None))
                          .order_by(col(Webhook.id))).all()
            return [_hook_info(r) for r in rows]

    def remove(self, webhook_id: int, *, actor: Actor) -> WebhookInfo:
        """Remove a webhook: it gets nothing more, and its pending deliveries are dropped
        (marked ``dead``)."""
        now = utcnow()
        with self.db.write() as s:
            row = _hook(s, webhook_id)
            row.removed_at = now
            s.add(row)
            for d in s.exec(select(Delivery).where(Delivery.webhook_id == row.id,
                                                   Delivery.status == "pending")).all():
                d.status, d.last_error = "dead", "the webhook was removed"
                s.add(d)
            audit.append(s, actor=actor.name, action="webhook-remove",
                         target=f"webhook/{row.id}", detail={"url": row.url})
            return _hook_info(row)

    def test(self, webhook_id: int, *, actor: Actor) -> DeliveryInfo:
        """Send a ``test`` event to one webhook now (one attempt) and return the outcome."""
        now = utcnow()
        with self.db.write() as s:
            hook = _hook(s, webhook_id)
            event_id = _write(s, event=TEST_EVENT, name=None, at=now, only=hook.id,
                              data={"message": "a test event from llmreg", "by": actor.name})
            delivery = s.exec(select(Delivery).where(Delivery.event_id == event_id)).one()
            delivery_id = delivery.id
        assert delivery_id is not None
        self._deliver(utcnow, limit=1, ids=[delivery_id])
        return self.delivery(delivery_id)

    # -- deliveries --------------------------------------------------------------

    def deliveries(self, *, failed: bool = False, webhook_id: int | None = None,
                   limit: int = 100) -> list[DeliveryInfo]:
        """The newest deliveries first (``failed``: dead ones and pending ones that failed
        at least once)."""
        limit = max(1, min(limit, MAX_LIST))
        with self.db.read() as s:
            query = select(Delivery, OutboxEvent).join(OutboxEvent)
            if failed:
                query = query.where((col(Delivery.status) == "dead") | (
                    (col(Delivery.status) == "pending") & col(Delivery.last_error).is_not(None)))
            if webhook_id is not None:
                query = query.where(Delivery.webhook_id == webhook_id)
            rows = s.exec(query.order_by(col(Delivery.id).desc()).limit(limit)).all()
            return [_delivery_info(d, e) for d, e in rows]

    def delivery(self, delivery_id: int) -> DeliveryInfo:
        """One delivery by id."""
        with self.db.read() as s:
            found = s.exec(select(Delivery, OutboxEvent).join(OutboxEvent)
                           .where(Delivery.id == delivery_id)).first() \
                if is_row_id(delivery_id) else None
            if found is None:
                raise RefNotFoundError(f"no delivery {delivery_id}; see `llmreg webhook "
                                       "deliveries`")
            return _delivery_info(*found)

    def redeliver(self, delivery_id: int, *, actor: Actor) -> DeliveryInfo:
        """Queue a delivery again, due now, with a fresh attempt budget and the same
        ``webhook-id`` (a receiver that got it already can tell)."""
        now = utcnow()
        with self.db.write() as s:
            row = s.get(Delivery, delivery_id) if is_row_id(delivery_id) else None
            if row is None:
                raise RefNotFoundError(f"no delivery {delivery_id}; see `llmreg webhook "
                                       "deliveries`")
            hook = _hook(s, row.webhook_id)
            row.status, row.attempts, row.next_at = "pending", 0, now
            s.add(row)
            audit.append(s, actor=actor.name, action="webhook-redeliver",
                         target=f"webhook/{hook.id}",
                         detail={"delivery": row.id, "webhook_id": row.message_id})
        return self.delivery(delivery_id)

    # -- the worker --------------------------------------------------------------

    def deliver_due(self, now: datetime | None = None, *, limit: int = 100) -> int:
        """Deliver what is due at ``now`` (default: the clock, read again at each claim and
        record); return how many attempts were made, at most ``limit``. Returns when
        nothing due is left and every attempt it started has ended."""
        clock: Callable[[], datetime] = utcnow if now is None else (lambda: now)
        at = clock()
        if self._pruned_at is None or at - self._pruned_at >= PRUNE_EVERY \
                or at < self._pruned_at:
            self._pruned_at = at
            self.prune(at)
        return self._deliver(clock, limit=limit)

    def prune(self, now: datetime | None = None, *, keep: timedelta = KEEP) -> int:
        """Delete events older than ``keep`` that have nothing left to deliver, with their
        finished deliveries (at most a batch per call, so the table stays bounded without a
        long transaction); return how many events went. Pending deliveries are never
        deleted. :meth:`deliver_due` calls this at most once an hour."""
        cutoff = (now or utcnow()) - keep
        with self.db.write() as s:
            busy = select(Delivery.event_id).where(Delivery.status == "pending")
            old = s.exec(select(OutboxEvent.id).where(
                col(OutboxEvent.at) < cutoff, col(OutboxEvent.id).not_in(busy))
                .order_by(col(OutboxEvent.id)).limit(PRUNE_BATCH)).all()
            if not old:
                return 0
            s.execute(delete(Delivery).where(col(Delivery.event_id).in_(old)))
            s.execute(delete(OutboxEvent).where(col(OutboxEvent.id).in_(old)))
            return len(old)

    def _deliver(self, clock: Callable[[], datetime], *, limit: int,
                 ids: list[int] | None = None) -> int:
        asked = False

        def claim(n: int, busy: frozenset[int]) -> list[Job]:
            nonlocal asked
            if ids is not None and asked:
                return []  # the given deliveries, once
            asked = True
            return self._claim(clock(), n, ids, busy)

        def record(job: Job, outcome: Outcome) -> None:
            self._record(clock(), [job], [outcome])

        post = functools.partial(send, allow_hosts=self.policy.webhooks.allow_hosts,
                                 resolver=self.resolver, verify=self.verify)

        def sender(job: Job) -> Outcome:
            return self._mail(job) if job.format == EMAIL else post(job)

        return dispatch(claim, record, sender, limit=limit)

    def _mail(self, job: Job) -> Outcome:
        """One attempt of an email notice, through the relay (:mod:`...email`)."""
        try:
            relay = self.smtp or _relay_from_env()
        except ConfigError as exc:
            return Outcome(ok=False, error=str(exc)[:500])
        if relay is None:
            return Outcome(ok=False, error="no SMTP relay: set LLMREG_SMTP_URL (e.g. "
                                           "smtp://USER:PASSWORD@relay.example.com:587) for "
                                           "email notices, or remove this address")
        event = job.event
        to = job.url.removeprefix("mailto:")
        facts = "\n".join(f"{k}: {v}" for k, v in event.data.items() if k != "audit")
        msg = message(sender=relay.sender, to=to, message_id=job.message_id,
                      subject=f"[llmreg] {event.type.replace('_', ' ')}: {event.name or '-'}",
                      text=f"{event.type} for {event.name or 'the registry'} at "
                           f"{event.at:%Y-%m-%d %H:%M:%S} UTC\n\n{facts}\n")
        try:
            send_mail(relay, msg, context=tls_context(self.verify),
                      deadline=time.monotonic() + DEADLINE)
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
        return Outcome(ok=True, status=250)

    def _claim(self, now: datetime, limit: int, ids: list[int] | None,
               busy: frozenset[int] = frozenset()) -> list[Job]:
        if ids is None:
            # Look before taking the write lock: an idle loop must not take SQLite's
            # database lock twice a second.
            with self.db.read() as s:
                due = s.exec(select(Delivery.id).where(
                    Delivery.status == "pending", col(Delivery.next_at) <= now).limit(1)
                ).first()
            if due is None:
                return []
        with self.db.write() as s:
            query = select(Delivery).where(Delivery.status == "pending")
            if ids is not None:
                query = query.where(col(Delivery.id).in_(ids))
            else:
                # The oldest due delivery of each webhook with nothing in flight: a
                # webhook's backlog waits behind its own slow receiver, not others'.
                first = select(func.min(Delivery.id)).where(
                    Delivery.status == "pending", col(Delivery.next_at) <= now,
                    col(Delivery.webhook_id).not_in(busy)).group_by(col(Delivery.webhook_id))
                query = query.where(col(Delivery.id).in_(first))
            query = query.order_by(col(Delivery.next_at), col(Delivery.id)).limit(limit)
            if self.db.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            jobs = []
            for d in s.exec(query).all():
                hook = s.get(Webhook, d.webhook_id)
                event = s.get(OutboxEvent, d.event_id)
                assert hook is not None and event is not None and d.id is not None
                if hook.removed_at is not None:
                    d.status, d.last_error = "dead", "the webhook was removed"
                    s.add(d)
                    continue
                d.attempts += 1
                d.next_at = now + LEASE
                d.last_attempt_at = now
                s.add(d)
                jobs.append(Job(delivery_id=d.id, attempt=d.attempts, message_id=d.message_id,
                                url=hook.url, format=hook.format, secret=hook.secret,
                                event=_event_copy(event), webhook_id=d.webhook_id))
            return jobs

    def _record(self, now: datetime, jobs: list[Job], outcomes: list[Outcome]) -> None:
        limit = self.policy.webhooks.max_attempts
        with self.db.write() as s:
            for job, out in zip(jobs, outcomes, strict=True):
                d = s.get(Delivery, job.delivery_id)
                # A worker whose lease ran out (another one re-claimed it) records nothing.
                if d is None or d.attempts != job.attempt or d.status != "pending":
                    continue
                d.last_status, d.last_error = out.status, out.error
                if out.ok:
                    d.status, d.delivered_at, d.last_error = "delivered", now, None
                elif job.event.type == TEST_EVENT or d.attempts >= limit:
                    d.status = "dead"
                else:
                    d.next_at = now + backoff(d.attempts)
                s.add(d)

    def run(self, stop: threading.Event, *, interval: float = 0.5) -> None:
        """Deliver continuously until ``stop`` is set (the server's background loop).

        A failing round (the database briefly away) is retried on the next tick.
        """
        while not stop.is_set():
            try:
                made = self.deliver_due()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive a bad round
                log.warning("webhook delivery round failed (retried in %.1f s): %s",
                            interval, exc)
                made = 0
            if made == 0:
                stop.wait(interval)


def _relay_from_env() -> Relay | None:
    """The relay ``LLMREG_SMTP_URL`` names now (None: none is set)."""
    from llmreg.settings import Settings

    settings = Settings.from_env()
    if settings.smtp_url is None:
        return None
    return parse_relay(settings.smtp_url.get_secret_value(), settings.smtp_from)


def _hook(s: Any, webhook_id: int) -> Webhook:
    row = s.get(Webhook, webhook_id) if is_row_id(webhook_id) else None
    if row is None or row.removed_at is not None:
        raise RefNotFoundError(f"no webhook {webhook_id}; see `llmreg webhook list`")
    assert isinstance(row, Webhook)
    return row


def _hook_info(row: Webhook) -> WebhookInfo:
    assert row.id is not None
    return WebhookInfo(id=row.id, url=row.url, events=list(row.events), format=row.format,
                       created_at=row.created_at, created_by=row.created_by, team=row.team,
                       names=list(row.names or []))


def _event_copy(e: OutboxEvent) -> OutboxEvent:
    return OutboxEvent(id=e.id, event_id=e.event_id, type=e.type, name=e.name,
                       data=dict(e.data), at=e.at.astimezone(UTC))


def _delivery_info(d: Delivery, e: OutboxEvent) -> DeliveryInfo:
    assert d.id is not None
    return DeliveryInfo(id=d.id, webhook_id=d.webhook_id, event=e.type, name=e.name,
                        message_id=d.message_id, status=d.status, attempts=d.attempts,
                        next_at=d.next_at, created_at=d.created_at,
                        last_attempt_at=d.last_attempt_at, last_status=d.last_status,
                        last_error=d.last_error, delivered_at=d.delivered_at)
