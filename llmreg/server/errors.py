"""One error shape for every failure: ``{"errors": [{"code", "message", "detail"}]}``.

The codes are the ``code`` attributes of :mod:`llmreg.errors`; :data:`STATUS` maps them
to HTTP once, and the remote client maps each code back to the same exception class.
:func:`responses` turns the statuses a route can return into its OpenAPI ``responses``,
all with the one :class:`~llmreg.contract.models.ErrorBody` schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from llmreg import errors as e
from llmreg.contract.models import ErrorBody
from llmreg.errors import shown
from llmreg.server.declared import allowed_methods, declared_routes

STATUS: dict[type[e.LLMRegError], int] = {
    e.RefNotFoundError: 404, e.EmptySlotError: 404, e.BlobNotFoundError: 404,
    e.AuthError: 401, e.PermissionDeniedError: 403, e.ApprovalError: 403,
    e.GateFailedError: 422, e.SlotConflictError: 409, e.TransitionError: 409,
    e.AuditChainError: 409, e.PayloadTooLargeError: 413, e.HeaderTooLargeError: 431,
    e.RequestTimeoutError: 408, e.ServerBusyError: 503,
    e.DigestInvalidError: 400, e.IntegrityError: 500,
    e.ServerError: 500,
}


RETRY_AFTER = 1  # seconds a client waits after 503 BUSY (a slot frees within a body's time)


def _codes(status: int) -> str:
    return ", ".join(sorted(cls.code for cls, s in STATUS.items() if s == status))


# What each error status means, for OpenAPI (the codes come from the table above).
MEANING: dict[int, str] = {
    400: "The request is malformed or refused for its content: REQUEST_INVALID (a "
         "parameter or body field fails validation) or the refusal's code, e.g. "
         "REF_INVALID, MANIFEST_INVALID, ENVIRONMENT_UNKNOWN, EVIDENCE_INVALID.",
    401: f"No usable bearer token ({_codes(401)}); sent with `WWW-Authenticate: Bearer`.",
    403: f"The token lacks the role, or the policy refuses the caller ({_codes(403)}).",
    404: f"A ref, name, environment slot, digest or token is unknown ({_codes(404)}).",
    409: f"The state changed or forbids this ({_codes(409)}).",
    408: f"The request body stalled or came too slowly ({_codes(408)}).",
    413: f"The request body is over the server's limit ({_codes(413)}).",
    431: f"The request line and headers are over the server's limit ({_codes(431)}).",
    503: f"Every slot for a large body is taken ({_codes(503)}); sent with `Retry-After`.",
    422: f"A promotion's gates are not all met ({_codes(422)}; `detail` is the gate report).",
    500: f"Stored bytes do not match their digest, or the server failed ({_codes(500)}); "
         "sent with `Cache-Control: no-store`.",
}


def responses(statuses: Iterable[int]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error ``statuses``, each with the one error schema."""
    return {status: {"model": ErrorBody, "description": MEANING[status]}
            for status in sorted(statuses)}


def status_for(exc: e.LLMRegError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400  # every other refusal is about the request's content


def error_body(code: str, message: str, detail: Any = None) -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "detail": detail}]}


def error_response(exc: e.LLMRegError, status: int | None = None) -> JSONResponse:
    """The response for ``exc``: its status from :data:`STATUS` unless ``status`` says."""
    detail = None
    report = getattr(exc, "report", None)
    if report is not None and hasattr(report, "model_dump"):
        detail = report.model_dump(mode="json")
    # No error is ever kept by a cache (a 5xx for a corrupt blob least of all).
    headers = {"Cache-Control": "no-store"}
    if isinstance(exc, e.AuthError):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, e.ServerBusyError):
        headers["Retry-After"] = str(RETRY_AFTER)
    return JSONResponse(error_body(exc.code, str(exc), detail), status or status_for(exc),
                        headers=headers)


_VALIDATION = "#/components/schemas/HTTPValidationError"
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")


def _part(part: object) -> str:
    """One step of a field's location: a field name or index as is; a key the caller
    chose (a metrics name, a provenance key) quoted through :func:`shown`."""
    if isinstance(part, int) or (isinstance(part, str) and _FIELD.fullmatch(part)):
        return str(part)
    return shown(part, limit=40)


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one JSON shape."""

    @app.exception_handler(e.LLMRegError)
    async def _llmreg(_: Request, exc: e.LLMRegError) -> JSONResponse:
        return error_response(exc)

    # Invalid input is answered with 400 REQUEST_INVALID (below), so FastAPI's default
    # 422 "HTTPValidationError" response, which it adds to every route with inputs, would
    # misstate the contract: drop it from the OpenAPI.
    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = default_openapi()  # also stored as app.openapi_schema, edited in place
        for operations in schema["paths"].values():
            for operation in operations.values():
                declared = operation.get("responses", {})
                if _VALIDATION in str(declared.get("422")):
                    del declared["422"]
        for name in ("HTTPValidationError", "ValidationError"):
            schema.get("components", {}).get("schemas", {}).pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        field = ".".join(_part(p) for p in first.get("loc", ()) if p != "body")
        message = f"{field or 'body'}: {first.get('msg', 'invalid')}"
        # The caller's input is not echoed back: it may be bytes, or megabytes.
        detail = [{k: str(v) if k == "msg" else v for k, v in err.items()
                   if k in ("type", "loc", "msg")} for err in exc.errors()[:5]]
        return JSONResponse(error_body("REQUEST_INVALID", message, detail), 400,
                            headers={"Cache-Control": "no-store"})

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
        headers = {**(exc.headers or {}), "Cache-Control": "no-store"}
        message = str(exc.detail)
        if exc.status_code == 405:
            # Allow (RFC 9110 §15.5.6) lists what every route on this path answers, read
            # from the app's routes: the framework's own names only the first route found.
            allow = allowed_methods(declared_routes(request.app.routes), request.scope["path"])
            headers["Allow"] = ", ".join(allow)
            message = (f"method {shown(request.method)} is not allowed here; this path "
                       f"answers {', '.join(allow) or 'nothing'}")
        return JSONResponse(error_body(code, message), exc.status_code, headers=headers)
