"""The routes of the operation table: one route per row of
:data:`llmreg.contract.operations.OPERATIONS`, bound to its handler in
:mod:`llmreg.service.operations` through :func:`~llmreg.server.routes.endpoint` (so each
names its role and error statuses in the OpenAPI).

A route's signature is built from the declaration: the caller's identity (with the
operation's role), each path and query parameter with its type and bounds, and the body
model, and any request header the operation declares (``If-Match`` on a promotion).
What only a server does after a handler — drop a moved slot from this replica's
resolve cache, count the move in the metrics, forget a revoked token — is in
:data:`AFTER`, keyed by operation.

Example:
    >>> sorted(r.path for r in router.routes if "/approvals" in r.path)
    ['/v1/approvals', '/v1/approvals/{ref}/{env}']
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request

from llmreg.contract.operations import OPERATIONS, Operation
from llmreg.errors import GateFailedError
from llmreg.server.deps import Service, State, require
from llmreg.server.routes import endpoint
from llmreg.server.state import ServerState
from llmreg.service.audit import WORKLOAD
from llmreg.service.operations import HANDLERS
from llmreg.types import Actor

router = APIRouter()
_KW = inspect.Parameter.KEYWORD_ONLY


def _promote(state: ServerState, request: Request, args: dict[str, Any],
             call: Callable[[], Any]) -> Any:
    try:
        result = call()
    except GateFailedError as exc:
        if state.metrics is not None:
            state.metrics.refused(str(getattr(exc.report, "to_env", "_unknown")))
        raise
    state.moved(result.event.name)  # this replica answers the new slot now
    if state.metrics is not None:
        state.metrics.moved(result.event.env, "promote")
    return result


def _rollback(state: ServerState, request: Request, args: dict[str, Any],
              call: Callable[[], Any]) -> Any:
    event = call()
    state.moved(event.name)
    if state.metrics is not None:
        state.metrics.moved(event.env, "rollback")
    return event


def _revoke(state: ServerState, request: Request, args: dict[str, Any],
            call: Callable[[], Any]) -> Any:
    info = call()
    state.tokens.invalidate()  # this replica refuses the token at once
    return info


AFTER: dict[str, Callable[[ServerState, Request, dict[str, Any], Callable[[], Any]], Any]] = {
    "promote": _promote,
    "rollback": _rollback,
    "revoke_token": _revoke,
    "rotate_token": _revoke,  # the old token is revoked
}


def _header_param(header: str) -> str:
    """The route parameter of a declared request header (``If-Match`` → ``if_match``)."""
    return header.lower().replace("-", "_")


def _route(op: Operation) -> Callable[..., Any]:
    """A FastAPI endpoint for ``op``: its signature declares the inputs; its body flattens
    them into the handler's keyword arguments."""
    handler = HANDLERS[op.name]
    after = AFTER.get(op.name)

    def route(**kw: Any) -> Any:
        svc, state, request, actor = kw.pop("s"), kw.pop("state"), kw.pop("request"), \
            kw.pop("actor")
        headers = {field: kw.pop(_header_param(h)) for h, field in op.headers.items()}
        body = kw.pop("body", None)
        if body is not None:
            kw.update(body.model_dump())
        for field, value in headers.items():  # a declared header sets its body field
            if value is not None:  # ``If-Match: "<ref>"``: an entity tag, quotes dropped
                kw[field] = value.strip().strip('"')
        # An OIDC workload's writes record it in each audit entry (audit.WORKLOAD).
        mark = WORKLOAD.set(actor.workload) if actor.workload else None
        try:
            if after is None:
                return handler(svc, actor, **kw)
            return after(state, request, kw, lambda: handler(svc, actor, **kw))
        finally:
            if mark is not None:
                WORKLOAD.reset(mark)

    params = [inspect.Parameter("s", _KW, annotation=Service),
              inspect.Parameter("state", _KW, annotation=State),
              inspect.Parameter("request", _KW, annotation=Request),
              inspect.Parameter("actor", _KW,
                                annotation=Annotated[Actor, require(op.role)])]
    for name in op.path_params:
        params.append(inspect.Parameter(name, _KW, annotation=op.path_types.get(name, str)))
    for name, q in op.query.items():
        default = inspect.Parameter.empty if q.default is ... else q.default
        params.append(inspect.Parameter(name, _KW, annotation=Annotated[q.type, Query()],
                                        default=default))
    if op.body is not None:
        params.append(inspect.Parameter("body", _KW, annotation=op.body))
    for h in op.headers:
        params.append(inspect.Parameter(_header_param(h), _KW, default=None,
                                        annotation=Annotated[str | None, Header(alias=h)]))
    route.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    route.__annotations__ = {p.name: p.annotation for p in params}
    route.__name__ = route.__qualname__ = op.name
    route.__doc__ = handler.__doc__
    return route


for _op in OPERATIONS.values():
    if _op.http:
        endpoint(router, _op.method, _op.path, _op.role, errors=_op.errors,
                 filters=_op.filters, status_code=_op.status,
                 response_model=_op.response)(_route(_op))
