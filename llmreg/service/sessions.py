"""Web sessions: a token exchanged for a browser session, ended server-side.

Signing in checks the token (:meth:`Access.authenticate`) and stores a session row that
names the token; the browser keeps ``<session id>.<secret>`` in an HttpOnly cookie and
the database keeps only the secret's SHA-256. A session acts with its token's subject
and role, and is refused as soon as the token is revoked or expires, the session is signed out
(``ended_at``) or it expires (:data:`SESSION_TTL`). The session's CSRF token is derived
from its secret, so it needs no column and dies with the session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from llmreg.db.engine import Database
from llmreg.db.models import Token, WebSession, utcnow
from llmreg.errors import AuthError
from llmreg.service.access import Access, actor_of, refusal
from llmreg.types import Actor

SESSION_TTL = timedelta(hours=12)  # a sign-in lasts at most this long
PURGE_AFTER = timedelta(days=1)  # ended or expired sessions are deleted after this
_COOKIE_RE = re.compile(r"^([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")
_TOKEN_ID_RE = re.compile(r"^llmreg_([0-9a-f]{12})_")


def _hash(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A live session: who acts through it, and the CSRF token its forms carry."""

    actor: Actor
    csrf: str
    token_id: str


class Sessions:
    """Browser sessions of one registry.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from llmreg.service import RegistryService
        >>> svc = RegistryService.open_home(Path(tempfile.mkdtemp()))
        >>> token, _ = svc.access.create_token("ana", "approver", created_by="setup")
        >>> cookie, info = svc.sessions.start(token)
        >>> svc.sessions.lookup(cookie).actor.name
        'ana'
        >>> svc.sessions.end(cookie)
        True
        >>> svc.sessions.lookup(cookie) is None
        True
        >>> svc.close()
    """

    def __init__(self, db: Database, access: Access) -> None:
        self.db = db
        self.access = access

    def start(self, token: str) -> tuple[str, SessionInfo]:
        """Open a session for ``token``; return the cookie value and the session.

        Raises :class:`AuthError` for an unknown, malformed or revoked token.
        """
        actor = self.access.identify(token)
        match = _TOKEN_ID_RE.match(token or "")
        if isinstance(actor, str):
            raise AuthError(actor)
        expired = refusal(actor, utcnow())
        if expired is not None:
            raise AuthError(expired)
        if match is None:  # pragma: no cover - identify refuses such a token first
            raise AuthError("the token is not an llmreg token")
        session_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = utcnow()
        with self.db.write() as s:
            # Rows stay bounded: sessions over for a day are deleted as new ones start.
            s.execute(sa.delete(WebSession).where(
                sa.or_(col(WebSession.expires_at) < now - PURGE_AFTER,
                       col(WebSession.ended_at) < now - PURGE_AFTER)))
            s.add(WebSession(session_id=session_id, secret_hash=_hash(secret),
                             token_id=match.group(1), created_at=now,
                             expires_at=now + SESSION_TTL))
        cookie = f"{session_id}.{secret}"
        return cookie, SessionInfo(actor, csrf_of(cookie), match.group(1))

    def lookup(self, cookie: str | None) -> SessionInfo | None:
        """The live session a cookie stands for, or None (malformed, unknown, ended,
        expired, or its token revoked)."""
        match = _COOKIE_RE.fullmatch(cookie or "")
        if match is None:
            return None
        session_id, secret = match.groups()
        with self.db.read() as s:
            found = s.exec(select(WebSession, Token)
                           .join(Token, col(Token.token_id) == col(WebSession.token_id))
                           .where(WebSession.session_id == session_id)).first()
        if found is None:
            return None
        row, token = found
        now = utcnow()
        if row.ended_at is not None or row.expires_at <= now \
                or token.revoked_at is not None \
                or (token.expires_at is not None and token.expires_at <= now):
            return None
        if not hmac.compare_digest(row.secret_hash, _hash(secret)):
            return None
        return SessionInfo(actor_of(token), csrf_of(cookie or ""), token.token_id)

    def end(self, cookie: str | None) -> bool:
        """Sign out: the session is refused from now on. False if it was not live."""
        info = self.lookup(cookie)
        if info is None:
            return False
        session_id = (cookie or "").partition(".")[0]
        with self.db.write() as s:
            s.execute(sa.update(WebSession).where(col(WebSession.session_id) == session_id)
                      .values(ended_at=utcnow()))
        return True


def csrf_of(cookie: str) -> str:
    """The CSRF token of the session behind ``cookie`` (a keyed hash of its secret).

    Example:
        >>> len(csrf_of("0123456789abcdef." + "x" * 43))
        43
    """
    digest = hmac.new(cookie.encode(), b"llmreg-csrf", hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
