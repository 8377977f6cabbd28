"""One router per resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter

from llmreg.server.deps import require

F = TypeVar("F", bound=Callable[..., Any])


def endpoint(router: APIRouter, method: str, path: str, role: str, **kwargs: Any
             ) -> Callable[[F], F]:
    """Add a route that needs ``role`` (recorded in the OpenAPI as ``x-llmreg-role``)."""

    def decorate(fn: F) -> F:
        router.add_api_route(path, fn, methods=[method], dependencies=[require(role)],
                             openapi_extra={"x-llmreg-role": role}, **kwargs)
        return fn

    return decorate


def page(items: list[Any], offset: int, limit: int) -> dict[str, Any]:
    """A page of a listing: ``items``, ``total`` and ``next`` (the next offset or null)."""
    chunk = items[offset: offset + limit]
    nxt = offset + limit if offset + limit < len(items) else None
    return {"items": chunk, "total": len(items), "offset": offset, "next": nxt}
