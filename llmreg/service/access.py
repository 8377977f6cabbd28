"""API tokens and serving heartbeats.

A token is ``llmreg_<id>_<secret>``: the id finds the row, the secret is checked
against its stored SHA-256 in constant time. The secret is printed once and stored
nowhere. Roles are ordered — reader < publisher < approver < admin — and a token holds
its role and every role below it.

A token has a registry-wide ``role`` and a role in each of its ``teams``
(``--team search:publisher``); what it may do to a name is decided by
:mod:`llmreg.service.authority`. A token without teams is *unscoped*: its role applies to
every name, as for every token made before teams.

A token may expire (``expires_at``, set from ``--expires 90d`` or a date by
:func:`parse_expiry`, at most :data:`MAX_LIFETIME` ahead); without one it never does.
An expired or revoked token is refused with a message naming it, when, and what to do
(:func:`refusal`); rotating a token (:meth:`Access.rotate_token`) issues a new secret for
the same subject and role and revokes the old one, in one transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import col, select

from llmreg.db.engine import Database
from llmreg.db.models import Token, utcnow
from llmreg.errors import (
    InvalidRefError,
    InvalidRequestError,
    RefNotFoundError,
    TransitionError,
    shown,
)
from llmreg.policy import Policy
from llmreg.service import audit
from llmreg.service.audited import token_row
from llmreg.service.rows import token_info
from llmreg.teams import EVERYWHERE, parse_teams
from llmreg.types import ROLES, Actor, TokenInfo, roles_of

_TOKEN_RE = re.compile(r"^llmreg_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_DURATION_RE = re.compile(r"([+-]?[0-9]{1,12})([mhdw])")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1),
          "w": timedelta(weeks=1)}
MAX_LIFETIME = timedelta(days=5 * 365 + 1)  # "5 years": a longer lifetime is a typo
_EXPIRES_FIX = ("give a duration such as 30m, 12h, 90d or 8w, or an ISO date or time "
                "such as 2027-03-01 or 2027-03-01T12:00:00Z, at most 5 years ahead; "
                "leave --expires out for a token that never expires")


def parse_expiry(text: str | None, now: datetime) -> datetime | None:
    """When a token given ``--expires text`` at ``now`` stops working (None: never).

    ``text`` is a duration — minutes, hours, days or weeks (``30m``, ``12h``, ``90d``,
    ``8w``) — or an ISO 8601 date or date and time. A date means 00:00 UTC that day; a
    time without an offset is UTC. The moment must be after ``now`` and at most
    :data:`MAX_LIFETIME` (5 years) later; anything else raises
    :class:`~llmreg.errors.InvalidRequestError` naming the value and the fix.

    Example:
        >>> now = datetime(2027, 1, 1, tzinfo=UTC)
        >>> parse_expiry("90d", now).isoformat()
        '2027-04-01T00:00:00+00:00'
        >>> parse_expiry("2027-03-01", now).isoformat()
        '2027-03-01T00:00:00+00:00'
        >>> parse_expiry(None, now) is None
        True
    """
    if text is None:
        return None
    given = text.strip()
    match = _DURATION_RE.fullmatch(given)
    if match is not None:
        amount = int(match.group(1))
        if amount <= 0:
            raise InvalidRequestError(
                f"expires {shown(text)} is not a positive duration; {_EXPIRES_FIX}")
        # Compared before multiplying: 999999999999d does not fit in a timedelta.
        if amount > MAX_LIFETIME // _UNITS[match.group(2)]:
            raise InvalidRequestError(
                f"expires {shown(text)} is more than 5 years ahead; {_EXPIRES_FIX}")
        return now + amount * _UNITS[match.group(2)]
    try:
        at = datetime.fromisoformat(given) if given[:4].isdigit() else None
    except ValueError:
        at = None
    if at is None:
        raise InvalidRequestError(
            f"expires {shown(text)} is neither a duration nor an ISO date; {_EXPIRES_FIX}")
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    if at <= now:
        raise InvalidRequestError(
            f"expires {shown(text)} is not in the future (it is now "
            f"{now.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}); {_EXPIRES_FIX}")
    if at - now > MAX_LIFETIME:
        raise InvalidRequestError(
            f"expires {shown(text)} is more than 5 years ahead; {_EXPIRES_FIX}")
    return at


def when(at: datetime) -> str:
    """A moment as messages show it: UTC, to the second.

    Example:
        >>> when(datetime(2027, 1, 2, 3, 4, 5, 600, tzinfo=UTC))
        '2027-01-02T03:04:05Z'
    """
    return f"{at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def refusal(actor: Actor, now: datetime) -> str | None:
    """Why a token's ``actor`` is refused at ``now`` (None: it is not expired).

    Example:
        >>> a = Actor("ci", token_id="0123456789ab",
        ...           expires_at=datetime(2027, 1, 1, tzinfo=UTC))
        >>> refusal(a, datetime(2026, 12, 31, tzinfo=UTC)) is None
        True
        >>> refusal(a, datetime(2027, 1, 1, tzinfo=UTC))[:49]
        'token 0123456789ab expired at 2027-01-01T00:00:00'
    """
    if actor.expires_at is None or actor.expires_at > now:
        return None
    if actor.workload is not None:
        return (f"the ID token of {actor.name} expired at {when(actor.expires_at)}; ask your "
                "CI's OIDC provider for a fresh one")
    return (f"token {actor.token_id} expired at {when(actor.expires_at)}; an admin renews "
            f"it with `llmreg token rotate {actor.token_id}` (or creates a new one with "
            "`llmreg token create`)")


def actor_of(row: Token) -> Actor:
    """The actor a token row stands for: its subject, every role it holds somewhere, and
    its role per team (``*``: the registry-wide ``role``).

    Example:
        >>> t = Token(token_id="0123456789ab", secret_hash="", subject="ci", role="reader",
        ...           created_at=utcnow(), created_by="ana", teams={"search": "publisher"})
        >>> a = actor_of(t)
        >>> sorted(a.roles), a.teams
        (['publisher', 'reader'], {'*': 'reader', 'search': 'publisher'})
    """
    teams = {EVERYWHERE: row.role, **(row.teams or {})}
    roles = frozenset().union(*(roles_of(r) for r in teams.values() if r in ROLES))
    return Actor(row.subject, roles, token_id=row.token_id, expires_at=row.expires_at,
                 teams=teams)


def _hash(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


class Access:
    """Tokens and heartbeats of one registry.

    Example:
        >>> secret, info = svc.access.create_token(
        ...     "ci", "publisher", created_by="ana")  # doctest: +SKIP
        >>> svc.access.authenticate(secret).name  # doctest: +SKIP
        'ci'
    """

    def __init__(self, db: Database, policy: Policy) -> None:
        self.db = db
        self.policy = policy

    def create_token(self, subject: str, role: str = "reader", *, created_by: str,
                     expires: str | None = None,
                     teams: dict[str, str] | list[str] | None = None) -> tuple[str, TokenInfo]:
        """Create a token; return the secret token string (shown once) and its record.

        ``role`` is registry-wide (``admin`` for a registry admin); ``teams`` the role in
        each team (``{"search": "publisher"}`` or ``["search:publisher"]``; see
        :func:`~llmreg.service.authority.parse_teams`). ``expires`` (see
        :func:`parse_expiry`): ``"90d"``, ``"12h"``, an ISO date; None for a token that
        never expires.
        """
        if role not in ROLES:
            raise InvalidRefError(f"role {shown(role)} is not one of {', '.join(ROLES)}")
        scoped = parse_teams(teams or [])
        if scoped and role not in ("reader", "admin"):
            raise InvalidRefError(
                f"--role {role} with --team: a token in teams holds its roles there, and "
                "reads everywhere; leave --role out (or --role admin for a registry admin)")
        subject = subject or ""  # never stripped: 'ana\n' is refused, not made 'ana'
        if not re.fullmatch(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$", subject):
            raise InvalidRefError(
                f"subject {shown(subject)} is not allowed; use a person's or a service's name "
                "(letters, digits, '.', '_', '@', '-')")
        now = utcnow()
        expires_at = parse_expiry(expires, now)
        with self.db.write() as s:
            secret, row = self._add(s, subject, role, created_by, now, expires_at, {}, scoped)
            info = token_info(row)
        return secret, info

    def rotate_token(self, token_id: str, *, actor: str,
                     expires: str | None = None) -> tuple[str, TokenInfo]:
        """Issue a new token for the subject and role of ``token_id`` and revoke that one
        (one transaction, two audit entries); return the new secret (shown once) and record.

        An expired token may be rotated (that is the fix for it); a revoked or unknown
        one is refused. ``expires`` is the new token's (see :func:`parse_expiry`).

        Example:
            >>> secret, new = svc.access.rotate_token("0123456789ab", actor="ana",
            ...                                       expires="90d")  # doctest: +SKIP
        """
        now = utcnow()
        expires_at = parse_expiry(expires, now)
        with self.db.write() as s:
            old = s.exec(select(Token).where(Token.token_id == token_id)).first()
            if old is None:
                raise RefNotFoundError(f"no token {shown(token_id)}; see `llmreg token list`")
            if old.revoked_at is not None:
                raise TransitionError(
                    f"token {old.token_id} was revoked at {when(old.revoked_at)} and cannot be "
                    f"rotated; create a new one with `llmreg token create --subject "
                    f"{old.subject} --role {old.role}`")
            secret, row = self._add(s, old.subject, old.role, actor, now, expires_at,
                                    {"rotated_from": old.token_id}, dict(old.teams or {}))
            old.revoked_at = now
            s.add(old)
            audit.append(s, actor=actor, action="token-revoke", target=old.token_id,
                         detail={"subject": old.subject, "rotated_to": row.token_id},
                         rows=[token_row(old)])
            info = token_info(row)
        return secret, info

    @staticmethod
    def _add(s: Any, subject: str, role: str, created_by: str, now: datetime,
             expires_at: datetime | None, detail: dict[str, Any],
             teams: dict[str, str]) -> tuple[str, Token]:
        """Add a token row and its ``token-create`` entry in session ``s``."""
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        row = Token(token_id=token_id, secret_hash=_hash(secret), subject=subject, role=role,
                    created_at=now, created_by=created_by, expires_at=expires_at,
                    teams=teams or None)
        s.add(row)
        s.flush()
        detail = {"subject": subject, "role": role, **({"teams": teams} if teams else {}),
                  **detail}
        if expires_at is not None:
            detail["expires_at"] = when(expires_at)
        audit.append(s, actor=created_by, action="token-create", target=token_id,
                     detail=detail, rows=[token_row(row)])
        return f"llmreg_{token_id}_{secret}", row

    def list_tokens(self) -> list[TokenInfo]:
        """Every token, revoked ones included, oldest first."""
        with self.db.read() as s:
            return [token_info(t) for t in s.exec(select(Token).order_by(col(Token.id))).all()]

    def revoke_token(self, token_id: str, *, actor: str) -> TokenInfo:
        """Revoke a token (audited once; revoking again changes nothing: the record's
        ``revoked_at`` stays the first revocation's)."""
        return self.revoke(token_id, actor=actor)[0]

    def revoke(self, token_id: str, *, actor: str) -> tuple[TokenInfo, bool]:
        """Revoke a token; return its record and whether this call revoked it (False: it
        was revoked before, and nothing changed).

        Example:
            >>> info, now = svc.access.revoke("0123456789ab", actor="ana")  # doctest: +SKIP
        """
        with self.db.write() as s:
            row = s.exec(select(Token).where(Token.token_id == token_id)).first()
            if row is None:
                raise RefNotFoundError(f"no token {shown(token_id)}; see `llmreg token list`")
            if row.revoked_at is not None:
                return token_info(row), False
            row.revoked_at = utcnow()
            s.add(row)
            audit.append(s, actor=actor, action="token-revoke", target=token_id,
                         detail={"subject": row.subject}, rows=[token_row(row)])
            return token_info(row), True

    def authenticate(self, token: str) -> Actor | None:
        """The actor a token stands for, or None when it is malformed, unknown, revoked or
        expired (:meth:`identify` says which)."""
        found = self.identify(token)
        if isinstance(found, str) or refusal(found, utcnow()) is not None:
            return None
        return found

    def identify(self, token: str) -> Actor | str:
        """The actor a token stands for (with its ``expires_at``, which the caller checks
        against the clock: see :func:`refusal`), or the one-line reason it is refused.

        A revoked token is named as such only to whoever holds its secret.

        Example:
            >>> svc.access.identify("llmreg_nope")  # doctest: +SKIP
            'the token is not an llmreg token (llmreg_<id>_<secret>); ...'
        """
        match = _TOKEN_RE.fullmatch(token or "")
        if match is None:
            return ("the token is not an llmreg token (llmreg_<id>_<secret>); send the whole "
                    "line `llmreg token create` printed")
        token_id, secret = match.groups()
        with self.db.read() as s:
            row = s.exec(select(Token).where(Token.token_id == token_id)).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
            return (f"token {token_id} is unknown to this registry; ask an admin for one "
                    "(`llmreg token create --subject NAME --role ROLE`)")
        if row.revoked_at is not None:
            return (f"token {token_id} was revoked at {when(row.revoked_at)}; it cannot be "
                    f"renewed: ask an admin for a new one (`llmreg token create --subject "
                    f"{row.subject} --role {row.role}`)")
        return actor_of(row)

    def record_heartbeats(self, beats: list[dict[str, Any]], *,
                          actor: Actor | None = None) -> int:
        """Add served-request counts (see :meth:`llmreg.service.hygiene.traffic.Traffic.record`)."""
        from llmreg.service.hygiene.traffic import Traffic

        return Traffic(self.db, self.policy).record(beats, actor=actor)

    def heartbeats(self, name: str | None = None) -> list[dict[str, Any]]:
        """The served-traffic rollups, one per (name, env, digest)."""
        from llmreg.service.hygiene.traffic import Traffic

        return Traffic(self.db, self.policy).heartbeats(name)
