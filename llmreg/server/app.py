"""The FastAPI application, built by :func:`create_app` from :class:`Settings`.

Run it with ``llmreg serve`` (uvicorn). It is stateless apart from small caches: the
database and the blob store hold everything, so replicas can run side by side.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from llmreg._version import __version__
from llmreg.contract.models import Health
from llmreg.policy import find_policy
from llmreg.server import errors, web
from llmreg.server.declared import declared_routes
from llmreg.server.delivery_loop import DeliveryLoop
from llmreg.server.deps import Service
from llmreg.server.guard import BodyGuard
from llmreg.server.metrics import exposition
from llmreg.server.routes import blobs, operations, resolve
from llmreg.server.routes.resolve import FastResolve
from llmreg.server.scheduler import Scheduler
from llmreg.server.state import ServerState
from llmreg.service.registry import RegistryService
from llmreg.settings import Settings


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
    jobs_on = settings.jobs
    jobs_tick = settings.jobs_tick
    registry = service

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # With LLMREG_JOBS (`llmreg serve`), the scheduler runs every job beside the
        # routes: deprecation and alerts once per period across replicas, webhook
        # deliveries on every tick. Without it (an app built in a test or embedded in
        # another), only the delivery loop runs, so events still go out.
        worker: Scheduler | DeliveryLoop = (Scheduler(registry, tick=jobs_tick) if jobs_on
                                            else DeliveryLoop(registry))
        worker.start()
        try:
            yield
        finally:
            worker.stop()

    # /openapi.json is always served; the pages that render it load Swagger UI and ReDoc
    # from a CDN onto this origin (beside the web session cookie): only when asked for.
    app = FastAPI(title="llmreg", version=__version__, lifespan=lifespan,
                  description="The registry of LLM bundles: what runs where, and why.",
                  docs_url="/docs" if settings.api_docs else None,
                  redoc_url="/redoc" if settings.api_docs else None)
    state = app.state.llmreg = ServerState.build(settings, service)
    errors.install(app)
    routers = [module.router for module in (resolve, operations, blobs)]
    # Before any route reads a body; it reads each route's role from these routers.
    app.add_middleware(BodyGuard, state=state,
                       routes=[route for router in routers for route in router.routes])
    app.add_middleware(FastResolve, state=state)  # outermost: the hot path
    for router in routers:
        app.include_router(router)

    if state.metrics is not None:
        metrics_mode = settings.metrics

        @app.get("/metrics", response_class=Response,
                 responses={**(errors.responses({401}) if metrics_mode == "token" else {}),
                            200: {"content": {"text/plain": {}},
                                  "description": "Prometheus text format."}})
        async def metrics(request: Request) -> Response:
            """Prometheus metrics (every worker's, summed). ``LLMREG_METRICS=token`` needs
            what a read needs; ``public`` needs nothing."""
            if metrics_mode == "token":
                await run_in_threadpool(state.authenticate,
                                        request.headers.get("authorization"), "reader")
            if state.metrics is not None:
                state.metrics.flush()  # on the event loop, where the tallies are kept
            body, content_type = exposition()
            return Response(body, media_type=content_type,
                            headers={"cache-control": "no-store"})
    web.install(app)  # the pages for people, at / (after the API: /v1 wins)

    @app.get("/healthz")
    async def healthz() -> Health:
        """Liveness: the process answers."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Health,
             responses={503: {"description": "Not ready; `reason` says why."}})
    def readyz(svc: Service) -> Health | JSONResponse:
        """Readiness: the database answers at the current schema and the store is there."""
        try:
            svc.check_ready()
        except Exception as exc:  # readiness reports any failure, it never raises
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, 503)
        return Health(status="ready")

    if state.metrics is not None:  # the closed set of route labels: what the app declares
        state.metrics.routes = frozenset(d.path for d in declared_routes(app.routes))
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (each worker builds its own app)."""
    return create_app(Settings.from_env())
