"""The FastAPI application, built by :func:`create_app` from :class:`Settings`.

Run it with ``llmreg serve`` (uvicorn). It is stateless apart from small caches: the
database and the blob store hold everything, so replicas can run side by side.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from llmreg._version import __version__
from llmreg.policy import find_policy
from llmreg.server import errors
from llmreg.server.routes import reads, resolve, writes
from llmreg.server.routes.resolve import FastResolve, ResolveCache
from llmreg.service.registry import RegistryService
from llmreg.settings import Settings

MAX_JSON_BODY = 16 * 1024 * 1024


def create_app(settings: Settings | None = None,
               service: RegistryService | None = None) -> FastAPI:
    """Build the app over ``service`` (or the registry ``settings`` point to).

    Example:
        >>> app = create_app(Settings(home=Path("/srv/llmreg/.llmreg")))  # doctest: +SKIP
    """
    settings = settings or Settings.from_env()
    if service is None:
        home = settings.resolve_home()
        service = RegistryService.open_home(home, database_url=settings.database_url,
                                            store=settings.store,
                                            policy=find_policy(settings.policy, home))
    app = FastAPI(title="llmreg", version=__version__,
                  description="The registry of LLM bundles: what runs where, and why.")
    app.state.settings = settings
    app.state.service = service
    app.state.resolve_cache = ResolveCache(settings.resolve_ttl)
    app.state.token_cache = {}
    app.state.verified_blobs = set()
    errors.install(app)
    app.add_middleware(_LimitBody)
    app.add_middleware(FastResolve, state=app.state)  # outermost: the hot path
    for module in (resolve, reads, writes):
        app.include_router(module.router)

    @app.get("/healthz", include_in_schema=True)
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz(request: Request) -> Any:
        """Readiness: the database answers at the current schema and the store is there."""
        svc: RegistryService = request.app.state.service
        try:
            svc.check_ready()
        except Exception as exc:  # readiness reports any failure, it never raises
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, 503)
        return {"status": "ready"}

    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker builds its own app)."""
    return create_app(Settings.from_env())


class _LimitBody:
    """Refuse JSON bodies over 16 MiB with 413 before reading them (blobs stream)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PATCH"):
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and int(length) > MAX_JSON_BODY:
                body = errors.error_body("PAYLOAD_TOO_LARGE",
                                         f"request body is {int(length)} bytes; the limit is "
                                         f"{MAX_JSON_BODY}")
                await JSONResponse(body, 413)(scope, receive, send)
                return
        await self.app(scope, receive, send)


