"""Routes: those of the operation table (:mod:`.operations`), the blob streams
(:mod:`.blobs`) and the resolve hot path (:mod:`.resolve`), every one added through
:func:`endpoint`."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any, TypeVar, get_args, get_origin, get_type_hints

from fastapi import APIRouter, params
from pydantic import BaseModel

from llmreg.server.deps import require
from llmreg.server.errors import responses as error_responses
from llmreg.server.guard import StrictJSONRoute

F = TypeVar("F", bound=Callable[..., Any])

# Inputs that name something the registry looks up: unknown ones answer 404 (an unknown
# environment is a 400: the policy, not the registry, defines environments).
LOOKUPS = frozenset({"ref", "name", "digest", "token_id", "old", "new"})


def endpoint(router: APIRouter, method: str, path: str, role: str, *,
             errors: Iterable[int] = (), filters: bool = False,
             responses: dict[int | str, Any] | None = None,
             openapi_extra: dict[str, Any] | None = None, **kwargs: Any) -> Callable[[F], F]:
    """Add a route that needs ``role`` (recorded in the OpenAPI as ``x-llmreg-role``).

    Its OpenAPI ``responses`` list every error status it can return, with the one
    error schema: those that follow from its role and inputs (:func:`error_statuses`)
    and ``errors``, the ones particular to what it does (409, 422, …). ``filters``: the
    route filters by its optional inputs instead of looking them up (an unknown name
    gives an empty answer, not a 404). Every route is a
    :class:`~llmreg.server.guard.StrictJSONRoute`: a JSON body naming a key twice is
    refused.
    """

    def decorate(fn: F) -> F:
        statuses = error_statuses(method, path, role, fn, filters=filters) | set(errors)
        declared = error_responses(statuses)
        router.add_api_route(path, fn, methods=[method], dependencies=[require(role)],
                             openapi_extra={"x-llmreg-role": role, **(openapi_extra or {})},
                             responses={**declared, **(responses or {})},
                             route_class_override=StrictJSONRoute, **kwargs)
        return fn

    return decorate


def error_statuses(method: str, path: str, role: str, fn: Callable[..., Any], *,
                   filters: bool = False) -> set[int]:
    """The error statuses implied by a route's role, method and inputs.

    401 everywhere (a bad token is refused even where reads are open), 403 where the
    role is above reader, 408, 413 and 503 where there is a body, 400 where there is any input,
    404 where an input names something to look up (see :data:`LOOKUPS`). FastAPI's
    own 422 for invalid input is not among them: this server answers 400 instead (see
    :func:`llmreg.server.errors.install`).
    """
    out = {401} if role == "reader" else {401, 403}
    if method in ("POST", "PUT", "PATCH"):
        # A body may be too slow or too large, or wait in vain for a large-body slot
        # (llmreg.server.guard).
        out |= {408, 413, 503}
    in_path = set(re.findall(r"{(\w+)}", path))
    inputs = bool(in_path)
    looked_up = set() if method == "PUT" else in_path  # a PUT creates what its path names
    hints = get_type_hints(fn, include_extras=True)
    for name, param in inspect.signature(fn).parameters.items():
        hint = hints.get(name)
        if name == "request" or _is_dependency(hint):
            continue
        inputs = True
        if inspect.isclass(hint) and issubclass(hint, BaseModel):  # the JSON body
            looked_up |= _required_fields(hint)
        elif name not in in_path and (param.default is inspect.Parameter.empty or not filters):
            looked_up.add(name)  # a query parameter
    if inputs:
        out.add(400)
    if looked_up & LOOKUPS:
        out.add(404)
    return out


def _required_fields(model: type[BaseModel]) -> set[str]:
    """The required fields of a body model, and of the models nested in it."""
    out: set[str] = set()
    for name, info in model.model_fields.items():
        if info.is_required():
            out.add(name)
        for arg in get_args(info.annotation) or (info.annotation,):
            if inspect.isclass(arg) and issubclass(arg, BaseModel):
                out |= _required_fields(arg)
    return out


def _is_dependency(hint: Any) -> bool:
    return get_origin(hint) is Annotated and any(
        isinstance(m, params.Depends) for m in get_args(hint)[1:])


