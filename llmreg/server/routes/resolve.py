"""The hot path: resolving an environment slot to its manifest.

The body is the canonical manifest bytes themselves, so a client verifies it by hashing
the body against the strong ``ETag`` (the digest). Slot lookups are cached in memory
for ``LLMREG_RESOLVE_TTL`` seconds (default 1; nothing in memory is authoritative),
manifests by digest (immutable, so a cached one is never stale).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

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

    def lookup(self, svc: RegistryService, name: str, env: str) -> tuple[str, int, str, bytes]:
        now = time.monotonic()
        hit = self.slots.get((name, env))
        if hit is None or hit[0] <= now:
            canonical = svc.policy.canonical_env(env)
            info = svc.resolve(f"{name}@{canonical}")
            hit = (now + self.ttl, info.digest, info.version, canonical)
            if self.ttl > 0:
                self.slots[(name, env)] = hit
        _, digest, version, canonical = hit
        body = self.manifests.get(digest)
        if body is None:
            body = svc.store.get_bytes(digest)  # verified against the digest
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
    state = request.app.state
    cache: ResolveCache = state.resolve_cache
    key = (name, env)
    hit = cache.slots.get(key)
    if hit is not None and hit[0] > time.monotonic() and hit[1] in cache.manifests:
        digest, version, canonical = hit[1], hit[2], hit[3]
        body = cache.manifests[digest]
    else:
        digest, version, canonical, body = await run_in_threadpool(
            cache.lookup, state.service, name, env)
    etag = f'"{digest}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Llmreg-Name": name,
               "X-Llmreg-Version": str(version), "X-Llmreg-Env": canonical}
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
