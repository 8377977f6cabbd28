"""API tokens and serving heartbeats.

A token is ``llmreg_<id>_<secret>``: the id finds the row, the secret is checked
against its stored SHA-256 in constant time. The secret is printed once and stored
nowhere. Roles are ordered — reader < publisher < approver < admin — and a token holds
its role and every role below it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from sqlmodel import col, select

from llmreg.db.engine import Database
from llmreg.db.models import Token, utcnow
from llmreg.errors import InvalidRefError, RefNotFoundError, shown
from llmreg.policy import Policy
from llmreg.service import audit
from llmreg.service.audited import token_row
from llmreg.service.rows import token_info
from llmreg.types import ROLES, Actor, TokenInfo, roles_of

_TOKEN_RE = re.compile(r"^llmreg_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


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

    def create_token(self, subject: str, role: str, *, created_by: str) -> tuple[str, TokenInfo]:
        """Create a token; return the secret token string (shown once) and its record."""
        if role not in ROLES:
            raise InvalidRefError(f"role {shown(role)} is not one of {', '.join(ROLES)}")
        subject = subject or ""  # never stripped: 'ana\n' is refused, not made 'ana'
        if not re.fullmatch(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$", subject):
            raise InvalidRefError(
                f"subject {shown(subject)} is not allowed; use a person's or a service's name "
                "(letters, digits, '.', '_', '@', '-')")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        row = Token(token_id=token_id, secret_hash=_hash(secret), subject=subject, role=role,
                    created_at=utcnow(), created_by=created_by)
        with self.db.write() as s:
            s.add(row)
            s.flush()
            audit.append(s, actor=created_by, action="token-create", target=token_id,
                         detail={"subject": subject, "role": role}, rows=[token_row(row)])
            info = token_info(row)
        return f"llmreg_{token_id}_{secret}", info

    def list_tokens(self) -> list[TokenInfo]:
        """Every token, revoked ones included, oldest first."""
        with self.db.read() as s:
            return [token_info(t) for t in s.exec(select(Token).order_by(col(Token.id))).all()]

    def revoke_token(self, token_id: str, *, actor: str) -> TokenInfo:
        """Revoke a token (audited once; revoking again changes nothing)."""
        with self.db.write() as s:
            row = s.exec(select(Token).where(Token.token_id == token_id)).first()
            if row is None:
                raise RefNotFoundError(f"no token {shown(token_id)}; see `llmreg token list`")
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                s.add(row)
                audit.append(s, actor=actor, action="token-revoke", target=token_id,
                             detail={"subject": row.subject}, rows=[token_row(row)])
            return token_info(row)

    def authenticate(self, token: str) -> Actor | None:
        """The actor a token stands for, or None when it is malformed, unknown or revoked."""
        match = _TOKEN_RE.fullmatch(token or "")
        if match is None:
            return None
        token_id, secret = match.groups()
        with self.db.read() as s:
            row = s.exec(select(Token).where(Token.token_id == token_id)).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_hash, _hash(secret)):
            return None
        return Actor(row.subject, roles_of(row.role))

    def record_heartbeats(self, beats: list[dict[str, Any]]) -> int:
        """Add served-request counts (see :meth:`llmreg.service.hygiene.traffic.Traffic.record`)."""
        from llmreg.service.hygiene.traffic import Traffic

        return Traffic(self.db, self.policy).record(beats)

    def heartbeats(self, name: str | None = None) -> list[dict[str, Any]]:
        """The served-traffic rollups, one per (name, env, digest)."""
        from llmreg.service.hygiene.traffic import Traffic

        return Traffic(self.db, self.policy).heartbeats(name)
