"""Who is looking at a page, and the CSRF check of every form.

A browser signs in by exchanging a token for a session (:mod:`llmreg.service.sessions`):
the cookie ``llmreg_session`` is HttpOnly, ``SameSite=Strict`` and ``Secure`` when the
request came over HTTPS. Reading follows the server's ``--read-auth``: with ``open``
anyone may read; with ``token`` (the default) a page without a live session sends the
browser to the sign-in page. Roles are checked by :meth:`ServerState.authorize`, the
same check as for bearer tokens.

Every form carries a CSRF token. A signed-in form's token is derived from the session's
secret; the sign-in form, which has no session yet, uses a random value also kept in a
short-lived ``SameSite=Strict`` cookie (double submit). A POST whose token is missing or
wrong is refused with 403 before anything else happens.

Example:
    >>> safe_next("/names/chat"), safe_next("//evil.example/"), safe_next("https://x")
    ('/names/chat', '/', '/')
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from llmreg.errors import AuthError, InvalidRefError, PermissionDeniedError, shown
from llmreg.server.deps import state_of
from llmreg.service.sessions import SESSION_TTL, SessionInfo
from llmreg.types import ROLES, Actor

SESSION_COOKIE = "llmreg_session"
SIGNIN_COOKIE = "llmreg_signin"  # the sign-in form's CSRF value (double submit)
MAX_FIELDS = 20


class SignInRequired(Exception):
    """Reading needs a session (``--read-auth token``) and there is none."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The person looking at a page: signed in (with a session) or anonymous."""

    session: SessionInfo | None

    @property
    def actor(self) -> Actor | None:
        return self.session.actor if self.session else None

    @property
    def role(self) -> str:
        """The highest role the signed-in actor holds ('' for nobody)."""
        actor = self.actor
        if actor is None:
            return ""
        return next((r for r in reversed(ROLES) if actor.roles is None or r in actor.roles), "")

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session else ""

    def can(self, role: str) -> bool:
        """Whether the signed-in actor holds ``role`` (anonymous readers hold none)."""
        actor = self.actor
        return actor is not None and (actor.roles is None or role in actor.roles)


def viewer(request: Request) -> Viewer:
    """The viewer of a page; :class:`SignInRequired` when reads need a session."""
    state = state_of(request)
    session = state.service.sessions.lookup(request.cookies.get(SESSION_COOKIE))
    if session is None and state.settings.read_auth != "open":
        raise SignInRequired()
    return Viewer(session)


def actor_for(request: Request, form: dict[str, str], role: str) -> Actor:
    """The actor behind a form POST: a live session, the right CSRF token, ``role``.

    Raises :class:`AuthError` (401, no session) or :class:`PermissionDeniedError`
    (403: a missing or wrong CSRF token, or the role missing).
    """
    state = state_of(request)
    session = state.service.sessions.lookup(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise AuthError("sign in first: this action needs a session")
    check_csrf(form.get("csrf", ""), session.csrf)
    return state.authorize(session.actor, role)


def check_csrf(sent: str, expected: str) -> None:
    """Raise :class:`PermissionDeniedError` unless ``sent`` is ``expected`` (constant
    time)."""
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise PermissionDeniedError("the form's CSRF token is missing or wrong; nothing changed. "
                        "Reload the page and submit the form again")


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded form of a POST (its size is capped by the body guard)."""
    body = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if not body:
        return {}  # no fields at all: refused later for its missing CSRF token
    if kind != "application/x-www-form-urlencoded":
        raise InvalidRefError(f"Content-Type {shown(kind)}: a web form must be sent as "
                              "application/x-www-form-urlencoded")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True,
                          max_num_fields=MAX_FIELDS, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRefError(f"the form is not UTF-8 urlencoded text with at most "
                              f"{MAX_FIELDS} fields") from None
    return {k: v[0] for k, v in fields.items()}


def set_session(response: Response, request: Request, cookie: str) -> None:
    """Give the browser its session cookie."""
    response.set_cookie(SESSION_COOKIE, cookie, max_age=int(SESSION_TTL.total_seconds()),
                        httponly=True, samesite="strict", secure=is_https(request), path="/")


def new_signin_token(response: Response, request: Request) -> str:
    """A fresh CSRF value for the sign-in form, also set as its cookie."""
    value = secrets.token_urlsafe(32)
    response.set_cookie(SIGNIN_COOKIE, value, max_age=3600, httponly=True,
                        samesite="strict", secure=is_https(request), path="/")
    return value


def is_https(request: Request) -> bool:
    """Whether the browser reached us over HTTPS (uvicorn applies proxy headers)."""
    return request.url.scheme == "https"


def safe_next(target: str | None) -> str:
    """A local path to go to after sign-in (anything else, e.g. another site, is '/')."""
    if not target or not target.startswith("/") or target.startswith("//") \
            or "\\" in target:
        return "/"
    return target
