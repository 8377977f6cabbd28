"""The hot path: resolving an environment slot to its manifest.

The body is the canonical manifest bytes themselves, so a client verifies it by hashing
the body against the strong ``ETag`` (the digest). Slot lookups are cached in memory
for ``LLMREG_RESOLVE_TTL`` seconds (default 1; nothing in memory is authoritative),
manifests by digest (immutable, so a cached one is never stale): see
:class:`~llmreg.server.state.ResolveCache`.
"""

from __future__ import annotations

import time
from time import perf_counter
from typing import Annotated

from fastapi import APIRouter, Header
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmreg.errors import LLMRegError
from llmreg.server.deps import State
from llmreg.server.routes import endpoint
from llmreg.server.state import REFRESH_AHEAD, ServerState, SlotEntry

router = APIRouter()


@endpoint(router, "GET", "/v1/resolve/{name}/{env}", "reader",
          responses={200: {"content": {"application/json": {}},
                           "description": "The canonical manifest; its digest is the ETag."},
                     304: {"description": "The ETag in If-None-Match is current."}})
async def resolve(state: State, name: str, env: str,
                  if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """What runs in ``env`` for ``name``: the canonical manifest, the digest as ETag.

    Send ``If-None-Match`` with the ETag you hold to get ``304`` while it is current.
    """
    # Cache hits from authorised callers never get here: FastResolve answers them.
    entry, body = await run_in_threadpool(state.resolve_cache.lookup, name, env)
    headers = slot_headers(name, entry)
    if etag_matches(headers["etag"], if_none_match):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def slot_headers(name: str, entry: SlotEntry) -> dict[str, str]:
    """The headers of every resolve answer: the digest as a strong ETag, and the slot."""
    return {"etag": f'"{entry.digest}"', "cache-control": "no-cache", "x-llmreg-name": name,
            "x-llmreg-version": str(entry.version), "x-llmreg-env": entry.env}


def etag_matches(etag: str, if_none_match: str | None) -> bool:
    """Whether ``If-None-Match`` (a comma-separated list) names ``etag``."""
    return if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]


class FastResolve:
    """ASGI middleware: answers cache hits of the resolve route before any framework code.

    Only a request that would certainly succeed is answered here — the slot and its
    manifest are cached and unexpired, and the caller is authorised by a token already
    in the token cache (or reads are open). Everything else falls through to the
    FastAPI route, which does the real lookup, refreshes the caches, and produces every
    error. So this changes the speed of the hot path, never its answers.
    """

    PREFIX = "/v1/resolve/"

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics = self.state.metrics
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method == "GET" and scope["path"].startswith(self.PREFIX):
            start = perf_counter()
            status = await self._answer(scope, send)
            if status:
                if metrics is not None:
                    name, _, env = scope["path"][len(self.PREFIX):].partition("/")
                    metrics.resolved(name, env, status, perf_counter() - start, hit=True)
                return
            if metrics is None:
                await self.app(scope, receive, send)
                return
            sent = _Status(send)
            try:
                await self.app(scope, receive, sent)
            finally:
                name, _, env = scope["path"][len(self.PREFIX):].partition("/")
                metrics.resolved(name, env, sent.status, perf_counter() - start, hit=False)
        elif metrics is not None and method not in ("GET", "HEAD", "OPTIONS"):
            start = perf_counter()
            sent = _Status(send)
            try:
                await self.app(scope, receive, sent)
            finally:
                route = getattr(scope.get("route"), "path", "")  # "": no route matched
                metrics.wrote(method, route, sent.status, perf_counter() - start)
        else:
            await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> int:
        """Answer a cache hit: its status (200 or 304), or 0 to let the route answer."""
        name, _, env = scope["path"][len(self.PREFIX):].partition("/")
        state = self.state
        cache = state.resolve_cache
        now = time.monotonic()
        hit = cache.fresh(name, env, now)
        if hit is None:
            return 0
        entry, body = hit
        auth = inm = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                auth = value.decode("latin-1")
            elif key == b"if-none-match":
                inm = value.decode("latin-1")
        try:
            if state.authenticate(auth, "reader", cached_only=True) is None:
                return 0
        except LLMRegError:  # the route answers with the error
            return 0
        # Refresh ahead, once, off the event loop: under load an entry is renewed before
        # it expires, so no burst of requests ever queues behind the database.
        if entry.expires - now < cache.ttl * REFRESH_AHEAD:
            state.in_background(("slot", name, env), cache.lookup, name, env, force=True)
        fields = slot_headers(name, entry)
        headers = [(k.encode(), v.encode()) for k, v in fields.items()]
        if etag_matches(fields["etag"], inm):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return 304
        headers += [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return 200


class _Status:
    """A ``send`` that remembers the response status (500 if none was sent)."""

    __slots__ = ("send", "status")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)
