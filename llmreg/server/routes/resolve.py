"""The hot path: resolving an environment slot to its manifest.

The body is the canonical manifest bytes themselves, so a client verifies it by hashing
the body against the strong ``ETag`` (the digest). Slot lookups are cached in memory
for ``LLMREG_RESOLVE_TTL`` seconds (default 1; nothing in memory is authoritative),
manifests by digest (immutable, so a cached one is never stale).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from llmreg.server.deps import TOKEN_CACHE_S, refresh_token
from llmreg.server.routes import endpoint
from llmreg.service.registry import RegistryService

router = APIRouter()
MANIFEST_CACHE = 4096


class ResolveCache:
    """(name, env) -> (expires, digest, version, canonical env); digest -> manifest bytes."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.slots: dict[tuple[str, str], tuple[float, str, int, str]] = {}
        self.manifests: OrderedDict[str, bytes] = OrderedDict()

    def lookup(self, svc: RegistryService, name: str, env: str, *, force: bool = False
               ) -> tuple[str, int, str, bytes]:
        now = time.monotonic()
        hit = self.slots.get((name, env))
        if force or hit is None or hit[0] <= now:
            canonical = svc.policy.canonical_env(env)
            info = svc.versions.slot(name, canonical)
            hit = (now + self.ttl, info.digest, info.version, canonical)
            if self.ttl > 0:
                self.slots[(name, env)] = hit
        _, digest, version, canonical = hit
        body = self.manifests.get(digest)
        if body is None:
            body = svc.blobs.read(digest)  # verified against the digest
            self.manifests[digest] = body
            if len(self.manifests) > MANIFEST_CACHE:
                self.manifests.popitem(last=False)
        return digest, version, canonical, body


@endpoint(router, "GET", "/v1/resolve/{name}/{env}", "reader",
          responses={200: {"content": {"application/json": {}}}, 304: {}})
async def resolve(request: Request, name: str, env: str,
                  if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """What runs in ``env`` for ``name``: the canonical manifest, the digest as ETag.

    Send ``If-None-Match`` with the ETag you hold to get ``304`` while it is current.
    """
    # Cache hits from authorised callers never get here: FastResolve answers them.
    state = request.app.state
    cache: ResolveCache = state.resolve_cache
    digest, version, canonical, body = await run_in_threadpool(
        cache.lookup, state.service, name, env)
    headers = slot_headers(name, digest, version, canonical)
    if etag_matches(headers["etag"], if_none_match):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def slot_headers(name: str, digest: str, version: int, env: str) -> dict[str, str]:
    """The headers of every resolve answer: the digest as a strong ETag, and the slot."""
    return {"etag": f'"{digest}"', "cache-control": "no-cache", "x-llmreg-name": name,
            "x-llmreg-version": str(version), "x-llmreg-env": env}


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
    REFRESH_AHEAD = 0.3  # refresh in the background in the last 30% of an entry's life

    def __init__(self, app: Any, state: Any) -> None:
        self.app = app
        self.state = state
        self._refreshing: set[Any] = set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" \
                and scope["path"].startswith(self.PREFIX) and await self._answer(scope, send):
            return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Any, send: Any) -> bool:
        name, _, env = scope["path"][len(self.PREFIX):].partition("/")
        cache: ResolveCache = self.state.resolve_cache
        hit = cache.slots.get((name, env))
        now = time.monotonic()
        if hit is None or hit[0] <= now:
            return False
        body = cache.manifests.get(hit[1])
        if body is None:
            return False
        auth = inm = None
        for key, value in scope["headers"]:
            if key == b"authorization":
                auth = value
            elif key == b"if-none-match":
                inm = value
        if not self._authorised(auth, now):
            return False
        # Refresh ahead, once, off the event loop: under load an entry is renewed before
        # it expires, so no burst of requests ever queues behind the database.
        if hit[0] - now < cache.ttl * self.REFRESH_AHEAD:
            self._behind(("slot", name, env), cache.lookup, self.state.service, name, env,
                         force=True)
        fields = slot_headers(name, hit[1], hit[2], hit[3])
        headers = [(k.encode(), v.encode()) for k, v in fields.items()]
        if etag_matches(fields["etag"], inm.decode("latin-1") if inm is not None else None):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return True
        headers += [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

    def _authorised(self, auth: bytes | None, now: float) -> bool:
        if auth is None:
            return bool(self.state.settings.read_auth == "open")
        scheme, _, token = auth.decode("latin-1").partition(" ")
        if scheme.lower() != "bearer":
            return False
        hit = self.state.token_cache.get(token)
        if hit is None or hit[0] <= now or hit[1] is None:
            return False
        if hit[0] - now < TOKEN_CACHE_S * self.REFRESH_AHEAD:
            self._behind(("token", token), refresh_token, self.state, token)
        roles = hit[1].roles
        return roles is None or "reader" in roles

    def _behind(self, key: Any, fn: Any, *args: Any, **kwargs: Any) -> None:
        if key in self._refreshing:
            return
        self._refreshing.add(key)

        def run() -> None:
            try:
                fn(*args, **kwargs)
            except Exception:  # the next request falls through and reports it properly
                pass
            finally:
                self._refreshing.discard(key)

        asyncio.get_running_loop().run_in_executor(None, run)
