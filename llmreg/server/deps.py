"""Dependencies: the server state, the service, and the caller's role.

Every route under ``/v1`` declares the role it needs with :func:`require` (through
``endpoint()``); the route table test checks that none is left without one.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from llmreg.server.state import ServerState
from llmreg.service.registry import RegistryService
from llmreg.types import Actor


def state_of(request: Request) -> ServerState:
    """The process's :class:`ServerState` (set by ``create_app``)."""
    st: ServerState = request.app.state.llmreg
    return st


# Both are async only so that FastAPI calls them inline, not in a worker thread.
async def state(request: Request) -> ServerState:
    return state_of(request)


async def service(request: Request) -> RegistryService:
    """The registry service: the only way routes reach state."""
    return state_of(request).service


Service = Annotated[RegistryService, Depends(service)]
State = Annotated[ServerState, Depends(state)]


class _Bearer(HTTPBearer):
    """Declares the ``bearer`` security scheme in OpenAPI; hands over the raw header.

    :meth:`ServerState.authenticate` parses it, so that a malformed header gets the same
    401 on every path (FastAPI's own parser would treat ``Basic …`` as no header).
    """

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        return request.headers.get("authorization")


BEARER = _Bearer(scheme_name="bearer", auto_error=False,
                 description="An API token: `llmreg token create --subject NAME --role ROLE`.")


@functools.cache
def require(role: str) -> Any:
    """A dependency that returns the caller's :class:`Actor` if they hold ``role``.

    Reads (role ``reader``) are open to anonymous callers when the server runs with
    ``--read-auth open``; every write needs a token.
    """

    def dependency(request: Request,
                   authorization: Annotated[str | None, Depends(BEARER)]) -> Actor:
        actor = state_of(request).authenticate(authorization, role)
        assert actor is not None  # only a cached_only lookup answers None
        return actor

    dependency.__name__ = f"require_{role}"
    return Depends(dependency)
