"""The transactional outbox: every notified state change writes one event row in the
same transaction as the change, so the change and its event commit together or not at
all. A crash between the commit and the delivery loses nothing: the delivery worker
(:mod:`llmreg.service.notifications.notify`) finds the pending rows after a restart.

:func:`emit` also writes one ``pending`` delivery per webhook subscribed to the event
that hears about its name (:func:`hears`: a webhook scoped to a team or to name patterns
gets only the events about those names), in that same transaction; each delivery's
``webhook-id`` (``msg_<event id>_<webhook>``) is fixed there, so retries and
redeliveries of one event to one endpoint always carry the same id and a receiver can
drop duplicates.

Payloads are built at send time from the event row: CloudEvents 1.0 structured JSON
(:func:`cloudevent`) or a Slack incoming-webhook message (:func:`slack_message`). Every
event's data carries ``"audit": {"seq", "head"}``, the audit chain's newest entry when the
event was written (its own change's entry included), so each receiver holds an anchor
that ``llmreg audit verify --head`` can check the database against.

Example:
    >>> from datetime import UTC, datetime
    >>> event = OutboxEvent(event_id="0f" * 16, type="promotion", name="chat",
    ...                     data={"env": "production", "version": 3},
    ...                     at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    >>> ce = cloudevent(event)
    >>> ce["type"], ce["subject"], ce["time"]
    ('dev.llmreg.promotion', 'chat', '2026-01-02T03:04:05Z')
    >>> slack_message(event)["text"]
    ':rocket: *chat*: promotion — env: production, version: 3'
"""

from __future__ import annotations

import fnmatch
import json
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from llmreg.db.models import BundleName, Delivery, OutboxEvent, Owner, Webhook, table
from llmreg.service.audit import tail_in
from llmreg.service.notifications.email import EMAIL, EMAIL_EVENTS

EVENTS: tuple[str, ...] = ("registration", "promotion", "rollback", "gate_failed", "approval",
                           "archive", "owner_change", "stale_production")
TEST_EVENT = "test"  # sent by `llmreg webhook test` to one endpoint, never subscribed to
TYPE_PREFIX = "dev.llmreg."
SOURCE = "/llmreg"  # CloudEvents `source`: a URI-reference naming this registry
MAX_DATA_BYTES = 64 * 1024  # an event's data, as JSON
_ICONS = {"registration": ":package:", "promotion": ":rocket:", "rollback": ":rewind:",
          "gate_failed": ":no_entry:", "approval": ":white_check_mark:",
          "archive": ":file_cabinet:", "owner_change": ":busts_in_silhouette:",
          "stale_production": ":warning:", TEST_EVENT: ":bell:"}


def emit(session: Session, *, event: str, name: str | None, data: dict[str, Any],
         at: datetime) -> None:
    """Write one outbox row in the caller's transaction (same commit as the state change).

    Also writes one pending delivery for each webhook subscribed to ``event``. ``data``
    must be JSON (at most 64 KiB); ``at`` is when the change happened. The audit head
    (``seq`` and ``head`` of the newest entry in this transaction) is added as
    ``data["audit"]``.

    Example:
        >>> from datetime import UTC, datetime
        >>> with svc.db.write() as s:  # doctest: +SKIP
        ...     emit(s, event="promotion", name="chat", data={"env": "production"},
        ...          at=datetime.now(UTC))
    """
    if event not in EVENTS:
        raise ValueError(f"event {event!r} is not one of {', '.join(EVENTS)}")
    _write(session, event=event, name=name, data=data, at=at, only=None)


_EVENTS, _WEBHOOKS = table(OutboxEvent), table(Webhook)
_ADD_EVENT = sa.insert(_EVENTS).returning(_EVENTS.c.id)
_HOOKS = (sa.select(_WEBHOOKS.c.id, _WEBHOOKS.c.events, _WEBHOOKS.c.team, _WEBHOOKS.c.names,
                    _WEBHOOKS.c.url, _WEBHOOKS.c.format)
          .where(_WEBHOOKS.c.removed_at.is_(None)).order_by(_WEBHOOKS.c.id))
_OWNERS, _NAMES = table(Owner), table(BundleName)
_OWNER = (sa.select(_OWNERS.c.team, _OWNERS.c.contacts)
          .join(_NAMES, _NAMES.c.id == _OWNERS.c.name_id).where(_NAMES.c.name == sa.bindparam("n")))
_ADD_DELIVERIES = sa.insert(table(Delivery))


def _write(session: Session, *, event: str, name: str | None, data: dict[str, Any],
           at: datetime, only: int | None) -> int:
    """The event row and its deliveries (``only``: to that one webhook, subscribed or not);
    the event's row id. Two or three statements, no ORM unit of work: every registration
    writes one."""
    # The audit head as this transaction sees it (its own entry included): a copy of the
    # chain's head outside the database, kept by every receiver (docs/integrity.md).
    tail = tail_in(session)
    data = {**data, "audit": {"seq": tail[0], "head": tail[1]} if tail else None}
    text = json.dumps(data, default=str)
    if len(text) > MAX_DATA_BYTES:
        raise ValueError(f"event data is {len(text)} bytes; the limit is {MAX_DATA_BYTES}")
    event_id = uuid.uuid4().hex
    row_id = int(session.execute(_ADD_EVENT, {
        "event_id": event_id, "type": event, "name": name, "data": json.loads(text),
        "at": at}).scalar_one())
    query = _HOOKS if only is None else _HOOKS.where(_WEBHOOKS.c.id == only)
    hooks = session.execute(query).all()
    owner: str | None = None
    contacts: list[str] = []
    mailed = event in EMAIL_EVENTS
    if only is None and name is not None and (mailed or any(h.team or h.names for h in hooks)):
        found = session.execute(_OWNER, {"n": name}).first()
        if found is not None:
            owner, contacts = found[0], list(found[1] or [])
    targets = [h.id for h in hooks if only is not None or (
        event in h.events and (h.url[len("mailto:"):] in contacts if h.format == EMAIL
                               else hears(h.team, h.names, h.id, name, owner, contacts)))]
    if only is None and mailed:
        targets += _new_mailboxes(session, contacts, at)
    deliveries = [{"event_id": row_id, "webhook_id": hook_id,
                   "message_id": message_id(event_id, hook_id), "status": "pending",
                   "attempts": 0, "next_at": at, "created_at": at} for hook_id in targets]
    if deliveries:
        session.execute(_ADD_DELIVERIES, deliveries)
    return row_id


def hears(team: str | None, names: list[str] | None, hook_id: int, name: str | None,
          owner: str | None, contacts: list[str]) -> bool:
    """Whether a webhook with scope (``team``, ``names``) gets an event about ``name``,
    owned by ``owner`` whose contacts are ``contacts``: an unscoped webhook gets every
    event; a scoped one, events about its team's names, names matching its patterns, and
    names whose owner lists it as a contact (``webhook:ID``). An event about no name goes
    to unscoped webhooks only.

    Example:
        >>> hears("search", [], 3, "billing-bot", "billing", [])
        False
        >>> hears("search", [], 3, "billing-bot", "billing", ["webhook:3"])
        True
    """
    if team is None and not names:
        return True
    if name is None:
        return False
    return ((team is not None and team == owner) or f"webhook:{hook_id}" in contacts
            or any(fnmatch.fnmatchcase(name, p) for p in names or []))


def _new_mailboxes(session: Session, contacts: list[str], at: datetime) -> list[int]:
    """The destination rows made now for the email contacts that have none yet (an
    address whose row was removed gets nothing more)."""
    made = []
    for contact in contacts:
        if "@" not in contact or contact.startswith(("http", "webhook:")):
            continue
        url = f"mailto:{contact}"
        if session.execute(sa.select(_WEBHOOKS.c.id).where(_WEBHOOKS.c.url == url)).first():
            continue
        made.append(int(session.execute(sa.insert(_WEBHOOKS).returning(_WEBHOOKS.c.id), {
            "url": url, "events": list(EMAIL_EVENTS), "format": EMAIL,
            "secret": "whsec_" + secrets.token_urlsafe(24), "created_at": at,
            "created_by": "llmreg"}).scalar_one()))
    return made


def message_id(event_id: str, webhook_id: int) -> str:
    """The Standard Webhooks ``webhook-id`` of one event to one webhook (never changes).

    Example:
        >>> message_id("ab" * 16, 7)
        'msg_abababababababababababababababab_7'
    """
    return f"msg_{event_id}_{webhook_id}"


def cloudevent(event: OutboxEvent) -> dict[str, Any]:
    """The event as a CloudEvents 1.0 structured-mode JSON object.

    Example:
        >>> from datetime import UTC, datetime
        >>> e = OutboxEvent(event_id="1" * 32, type="approval", name=None, data={},
        ...                 at=datetime(2026, 1, 1, tzinfo=UTC))
        >>> sorted(cloudevent(e))
        ['data', 'datacontenttype', 'id', 'source', 'specversion', 'time', 'type']
    """
    out: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.event_id,
        "source": SOURCE,
        "type": TYPE_PREFIX + event.type,
        "time": event.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": event.data,
    }
    if event.name is not None:
        out["subject"] = event.name
    return out


def slack_message(event: OutboxEvent) -> dict[str, Any]:
    """The event as a readable Slack incoming-webhook message ``{"text": …}``.

    Example:
        >>> from datetime import UTC, datetime
        >>> e = OutboxEvent(event_id="1" * 32, type="rollback", name="chat",
        ...                 data={"env": "production", "to_version": 2},
        ...                 at=datetime(2026, 1, 1, tzinfo=UTC))
        >>> slack_message(e)
        {'text': ':rewind: *chat*: rollback — env: production, to_version: 2'}
    """
    icon = _ICONS.get(event.type, ":bell:")
    subject = f"*{event.name}*: " if event.name else ""
    facts = ", ".join(f"{k}: {_short(v)}" for k, v in event.data.items()
                      if v not in (None, "", [], {}) and k != "audit")
    label = event.type.replace("_", " ")
    return {"text": f"{icon} {subject}{label}" + (f" — {facts}" if facts else "")}


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:119] + "…"
