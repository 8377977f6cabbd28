"""Owners: the team each name belongs to, and how to reach it.

A contact is an email address, an http(s) URL (a chat channel, a runbook, an incident
tool) or a webhook endpoint of this registry written ``webhook:ID``. Setting an owner is
audited (old → new team and contacts) and emits an ``owner_change`` event in the same
transaction. Only the owning team (or an admin) changes an owner; a name with no owner
is claimed by a team its caller publishes for (see :mod:`llmreg.service.authority`).
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from llmreg.bundle.names import check_name
from llmreg.db.engine import Database
from llmreg.db.models import BundleName, Owner, Webhook, utcnow
from llmreg.errors import InvalidRefError, shown
from llmreg.service import audit
from llmreg.service.audited import owner_row
from llmreg.service.authority import require
from llmreg.service.notifications import outbox
from llmreg.service.refs import name_row
from llmreg.teams import check_team, claim
from llmreg.types import Actor, OwnerInfo

MAX_CONTACTS = 10
_EMAIL_RE = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}"
                       r"(\.[A-Za-z0-9-]{1,63})+$")
_WEBHOOK_RE = re.compile(r"^webhook:[A-Za-z0-9_-]{1,64}$")


def check_contact(contact: str) -> str:
    """``contact`` if it is an email address, an http(s) URL or ``webhook:ID``; else a
    one-line error naming the field and the fix.

    Example:
        >>> check_contact("search-team@example.com")
        'search-team@example.com'
        >>> check_contact("call bob")
        Traceback (most recent call last):
        ...
        llmreg.errors.InvalidRefError: --contact 'call bob' is not an email address, ...
    """
    value = (contact or "").strip()
    if _EMAIL_RE.fullmatch(value) or _WEBHOOK_RE.fullmatch(value):
        return value
    if len(value) <= 2000 and not any(c.isspace() for c in value):
        try:
            parts = urlsplit(value)
            web = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises ValueError for a port out of range
        except ValueError:  # a malformed [IPv6] host or port: refused below, never a 500
            web = False
        if web:
            return value
    raise InvalidRefError(
        f"--contact {shown(value, 80)} is not an email address, an http(s) URL or a webhook "
        "endpoint (webhook:ID); e.g. --contact team@example.com")


def _check_webhooks(s: Session, contacts: list[str]) -> None:
    """Every ``webhook:ID`` contact names a webhook of this registry that is in use."""
    for contact in contacts:
        if not contact.startswith("webhook:"):
            continue
        ident = contact.removeprefix("webhook:")
        hook = s.get(Webhook, int(ident)) if ident.isdigit() and len(ident) < 10 else None
        if hook is None or hook.removed_at is not None:
            raise InvalidRefError(
                f"--contact {shown(contact, 80)}: this registry has no webhook {shown(ident)}"
                + (" (it was removed)" if hook is not None else "")
                + "; see `llmreg webhook list`, or add one with `llmreg webhook add`")


def owner_of(session: Session, row: BundleName) -> Owner | None:
    """The owner row of a name (None when it has none)."""
    return session.get(Owner, row.id)


def record_owner(s: Session, name: str, name_id: int, team: str, contacts: list[str], *,
                 actor: Actor, at: datetime) -> Owner:
    """Set the owner row of ``name`` in session ``s``, with its audit entry (old → new
    team and contacts) and ``owner_change`` event; the caller checked who may."""
    current = s.get(Owner, name_id)
    before = ({"team": current.team, "contacts": list(current.contacts)}
              if current is not None else None)
    if current is None:
        current = Owner(name_id=name_id, team=team, contacts=contacts, updated_at=at,
                        updated_by=actor.name)
    else:
        current.team, current.contacts = team, contacts
        current.updated_at, current.updated_by = at, actor.name
    s.add(current)
    s.flush()
    after = {"team": team, "contacts": contacts}
    audit.append(s, actor=actor.name, action="owner", name=name, target=name,
                 detail={"from": before, "to": after}, rows=[owner_row(name, current)])
    outbox.emit(s, event="owner_change", name=name, at=at,
                data={"name": name, "from": before, "to": after, "by": actor.name})
    return current


def _info(name: str, o: Owner) -> OwnerInfo:
    return OwnerInfo(name=name, team=o.team, contacts=list(o.contacts),
                     updated_at=o.updated_at, updated_by=o.updated_by)


class Owners:
    """Who owns each name.

    Example:
        >>> svc.owners.set("chat", team="search", contacts=["search@example.com"],
        ...                actor=Actor("ana")).team  # doctest: +SKIP
        'search'
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def set(self, name: str, *, team: str, contacts: list[str], actor: Actor,
            now: datetime | None = None) -> OwnerInfo:
        """Set (or replace) the owner of a registered name; audited when it changes."""
        check_name(name)
        team = check_team((team or "").strip())
        if not contacts:
            raise InvalidRefError("--contact is missing; give at least one, e.g. "
                                  "--contact team@example.com")
        if len(contacts) > MAX_CONTACTS:
            raise InvalidRefError(f"{len(contacts)} contacts; the limit is {MAX_CONTACTS}")
        clean = list(dict.fromkeys(check_contact(c) for c in contacts))
        at = now or utcnow()
        with self.db.write() as s:
            row = name_row(s, name)
            assert row.id is not None
            current = owner_of(s, row)
            _check_webhooks(s, clean)
            if current is None:  # unowned: claimed for a team the caller publishes for
                claim(actor, name, team)
            else:  # only the owning team (or an admin) hands it over
                require(s, actor, name, row.id, "publisher")
            if current is not None and current.team == team and current.contacts == clean:
                return _info(name, current)
            return _info(name, record_owner(s, name, row.id, team, clean, actor=actor, at=at))

    def get(self, name: str) -> OwnerInfo | None:
        """The owner of a registered name, or None."""
        check_name(name)
        with self.db.read() as s:
            row = name_row(s, name)
            found = owner_of(s, row)
            return _info(name, found) if found is not None else None

    def list(self) -> list[OwnerInfo]:
        """Every owner, by name."""
        with self.db.read() as s:
            rows = s.exec(select(Owner, BundleName).join(BundleName)
                          .order_by(col(BundleName.name))).all()
            return [_info(n.name, o) for o, n in rows]

    def teams(self, session: Session) -> dict[int, Owner]:
        """Owner rows by name id (for joins inside another part's session)."""
        return {o.name_id: o for o in session.exec(select(Owner)).all()}
