"""Dependencies: the service, the caller's identity, and role checks.

Every route under ``/v1`` declares the role it needs with :func:`require`; the route
table test checks that none is left without one.
"""

from __future__ import annotations

import functools
import time
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from llmreg.errors import AuthError, PermissionDeniedError
from llmreg.service.registry import RegistryService
from llmreg.types import Actor, roles_of

ANONYMOUS = Actor("anonymous", roles_of("reader"))
TOKEN_CACHE_S = 5.0  # a revoked token stops working within this many seconds


def service(request: Request) -> RegistryService:
    svc: RegistryService = request.app.state.service
    return svc


def _actor(request: Request, authorization: str | None) -> Actor | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError("the Authorization header must be 'Bearer <token>'")
    hit = request.app.state.token_cache.get(token)
    actor = hit[1] if hit is not None and hit[0] > time.monotonic() \
        else refresh_token(request.app.state, token)
    if actor is None:
        raise AuthError("the token is unknown or revoked; create one with "
                        "`llmreg token create --subject NAME --role ROLE`")
    return actor


def refresh_token(state: Any, token: str) -> Actor | None:
    """Authenticate ``token`` against the database and cache the answer for 5 s."""
    actor: Actor | None = state.service.access.authenticate(token)
    cache: dict[str, tuple[float, Actor | None]] = state.token_cache
    if len(cache) > 10_000:
        cache.clear()
    cache[token] = (time.monotonic() + TOKEN_CACHE_S, actor)
    return actor


@functools.cache
def require(role: str) -> Any:
    """A dependency that returns the caller's :class:`Actor` if they hold ``role``.

    Reads (role ``reader``) are open to anonymous callers when the server runs with
    ``--read-auth open``; every write needs a token.
    """

    def dependency(request: Request,
                   authorization: Annotated[str | None, Header()] = None) -> Actor:
        actor = _actor(request, authorization)
        if actor is None:
            if role == "reader" and request.app.state.settings.read_auth == "open":
                return ANONYMOUS
            raise AuthError(f"this needs a token with the {role} role; send "
                            "'Authorization: Bearer <token>'")
        if actor.roles is not None and role not in actor.roles:
            raise PermissionDeniedError(
                f"{actor.name}'s token has roles {sorted(actor.roles)}; this needs {role}")
        return actor

    dependency.__name__ = f"require_{role}"
    return Depends(dependency)
