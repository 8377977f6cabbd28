"""Read routes: versions, bundles, listings, diffs, status, evidence, audit, blobs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from llmreg.digest import check_digest
from llmreg.errors import InvalidRefError
from llmreg.server.deps import require
from llmreg.server.routes import endpoint, page
from llmreg.service.registry import RegistryService
from llmreg.types import Actor

router = APIRouter()
Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=1000)]
IMMUTABLE = "public, max-age=31536000, immutable"


def svc(request: Request) -> RegistryService:
    s: RegistryService = request.app.state.service
    return s


@endpoint(router, "GET", "/v1/whoami", "reader")
def whoami(request: Request, actor: Annotated[Actor, require("reader")]) -> dict[str, Any]:
    """The identity and roles of the caller's token (``anonymous`` with open reads)."""
    return {"subject": actor.name, "roles": sorted(actor.roles or [])}


@endpoint(router, "GET", "/v1/refs/{ref}", "reader")
def version_info(request: Request, ref: str) -> dict[str, Any]:
    """The version a ref points to (``name@7``, ``name@sha256:…``, ``name@production``)."""
    return svc(request).versions.resolve(ref).model_dump(mode="json")


@endpoint(router, "GET", "/v1/bundles/{ref}", "reader")
def bundle(request: Request, ref: str) -> dict[str, Any]:
    """A version and its manifest (the client re-hashes the manifest to verify it)."""
    info = svc(request).versions.resolve(ref)
    manifest = json.loads(svc(request).blobs.read(info.digest))
    return {"version": info.model_dump(mode="json"), "manifest": manifest}


@endpoint(router, "GET", "/v1/environments/{env}", "reader")
def environment(request: Request, env: str) -> dict[str, Any]:
    """Everything active in one environment, with manifests, in one response."""
    s = svc(request)
    rows = s.lifecycle.status(env=env)
    return {"env": s.policy.canonical_env(env), "items": [
        {**r.model_dump(mode="json"), "manifest": json.loads(s.blobs.read(r.digest))}
        for r in rows]}


@endpoint(router, "GET", "/v1/names", "reader")
def names(request: Request, offset: Offset = 0, limit: Limit = 100) -> dict[str, Any]:
    """Registered names with their latest version (paginated)."""
    items = [n.model_dump(mode="json") for n in svc(request).versions.list_names()]
    return page(items, offset, limit)


@endpoint(router, "GET", "/v1/names/{name}/versions", "reader")
def versions(request: Request, name: str, offset: Offset = 0,
             limit: Limit = 100) -> dict[str, Any]:
    """Every version of a name, oldest first (paginated)."""
    history = svc(request).versions.history(name)
    return page([v.model_dump(mode="json") for v in history], offset, limit)


@endpoint(router, "GET", "/v1/names/{name}/changelog", "reader")
def changelog(request: Request, name: str) -> list[dict[str, Any]]:
    """The release history of a name, newest first."""
    return [e.model_dump(mode="json") for e in svc(request).versions.changelog(name)]


@endpoint(router, "GET", "/v1/names/{name}/slots/{env}/history", "reader")
def slot_history(request: Request, name: str, env: str) -> list[dict[str, Any]]:
    """Every move of one environment slot."""
    return [e.model_dump(mode="json") for e in svc(request).lifecycle.slot_history(name, env)]


@endpoint(router, "GET", "/v1/diff", "reader")
def diff(request: Request, old: str, new: str) -> dict[str, Any]:
    """The semantic diff of two refs (``?old=name@3&new=name@production``)."""
    s = svc(request)
    return s.versions.diff(s.versions.get(old), s.versions.get(new)).to_json()


@endpoint(router, "GET", "/v1/stored-diffs/{ref}", "reader")
def stored_diff(request: Request, ref: str) -> Any:
    """The full diff recorded when a version was registered (null for a first version)."""
    s = svc(request)
    return s.versions.stored_diff(s.versions.resolve(ref))


@endpoint(router, "GET", "/v1/status", "reader")
def status(request: Request, name: str | None = None, env: str | None = None
           ) -> list[dict[str, Any]]:
    """What runs where: one row per environment slot."""
    return [r.model_dump(mode="json") for r in svc(request).lifecycle.status(name, env)]


@endpoint(router, "GET", "/v1/gates", "reader")
def gates(request: Request, ref: str, to: str) -> dict[str, Any]:
    """Judge every gate of promoting ``ref`` to ``to`` (changes nothing)."""
    report = svc(request).lifecycle.check_gates(ref, to)
    return {**report.model_dump(mode="json"), "passed": report.passed}


@endpoint(router, "GET", "/v1/evidence/{ref}", "reader")
def evidence(request: Request, ref: str) -> list[dict[str, Any]]:
    """Evidence attached to the digest a ref points to."""
    s = svc(request)
    found = s.lifecycle.evidence_for(s.versions.resolve(ref).digest)
    return [e.model_dump(mode="json") for e in found]


@endpoint(router, "GET", "/v1/approvals/{ref}/{env}", "reader")
def approvals(request: Request, ref: str, env: str) -> list[dict[str, Any]]:
    return [a.model_dump(mode="json") for a in svc(request).lifecycle.approvals_for(ref, env)]


@endpoint(router, "GET", "/v1/audit", "reader")
def audit(request: Request, name: str | None = None, limit: Limit | None = None
          ) -> list[dict[str, Any]]:
    """Audit-log entries, oldest first (``limit``: only the last N)."""
    return [e.model_dump(mode="json") for e in svc(request).lifecycle.audit_log(name, limit)]


@endpoint(router, "GET", "/v1/audit/verify", "reader")
def audit_verify(request: Request, head: str | None = None) -> dict[str, Any]:
    """Recompute the hash chain; 409 ``AUDIT_BROKEN`` naming the first bad entry, or
    saying that ``head`` (a hash noted earlier) is no longer in the log."""
    s = svc(request)
    count = s.lifecycle.verify_audit(head)
    return {"verified": count, "head": s.lifecycle.audit_head()}


@endpoint(router, "GET", "/v1/verify/{ref}", "reader")
def verify(request: Request, ref: str) -> list[dict[str, Any]]:
    """Re-hash a version's manifest and artifacts; the problems found (empty: intact)."""
    return [p.model_dump() for p in svc(request).integrity.verify(ref)]


@endpoint(router, "GET", "/v1/fsck", "admin")
def fsck(request: Request) -> dict[str, Any]:
    """Check every blob and every reference; problems by digest."""
    count, problems = svc(request).integrity.fsck()
    return {"blobs": count, "problems": [p.model_dump() for p in problems]}


@endpoint(router, "GET", "/v1/policy", "reader")
def policy(request: Request) -> dict[str, Any]:
    """The policy this server enforces, its digest and its flow."""
    p = svc(request).policy
    return {"digest": p.digest, "flow": p.describe(), "policy": p.canonical_dict()}


@endpoint(router, "GET", "/v1/blobs/{digest}", "reader")
async def blob(request: Request, digest: str,
               range_: Annotated[str | None, Header(alias="Range")] = None) -> Response:
    """A blob by digest: streamed, immutable, ``Range`` supported (one range)."""
    check_digest(digest)
    s = svc(request)
    size = await run_in_threadpool(s.blobs.size, digest)
    headers = {"ETag": f'"{digest}"', "Cache-Control": IMMUTABLE, "Accept-Ranges": "bytes"}
    if range_ is None:
        # Streamed through the verifying reader: corruption aborts the response.
        return StreamingResponse(_chunks(s, digest), media_type="application/octet-stream",
                                 headers={**headers, "Content-Length": str(size)})
    start, end = _parse_range(range_, size)
    if start >= size or end < start:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    verified: set[str] = request.app.state.verified_blobs
    if digest not in verified:  # a part cannot be verified alone: check the whole once
        await run_in_threadpool(_verify_whole, s, digest)
        verified.add(digest)
    data = await run_in_threadpool(s.blobs.read_range, digest, start, end)
    return Response(data, status_code=206, media_type="application/octet-stream",
                    headers={**headers, "Content-Range": f"bytes {start}-{end}/{size}"})


def _chunks(s: RegistryService, digest: str) -> Iterator[bytes]:
    with s.blobs.open(digest) as fh:
        while chunk := fh.read(1024 * 1024):
            yield chunk


def _verify_whole(s: RegistryService, digest: str) -> None:
    for _ in _chunks(s, digest):
        pass




def _parse_range(header: str, size: int) -> tuple[int, int]:
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        raise InvalidRefError(f"Range {header!r}: only one 'bytes=START-END' range is supported")
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        raise InvalidRefError(f"Range {header!r} is not 'bytes=START-END'") from None
    return start, min(end, size - 1)


