"""Read routes: versions, bundles, listings, diffs, status, evidence, audit, blobs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from llmreg.bundle.diff import BundleDiff
from llmreg.bundle.digest import check_digest
from llmreg.contract.models import (
    AuditVerifyResult,
    BundleResponse,
    DeployedBundle,
    EnvironmentResponse,
    FsckResult,
    GateVerdict,
    PolicyResponse,
    WhoAmI,
)
from llmreg.errors import IntegrityError, InvalidRefError
from llmreg.server.deps import Service, require
from llmreg.server.routes import endpoint
from llmreg.service.registry import RegistryService
from llmreg.types import (
    Actor,
    ApprovalInfo,
    AuditInfo,
    ChangelogEntry,
    EvidenceInfo,
    NameSummary,
    Page,
    Problem,
    SlotEventInfo,
    SlotStatus,
    VersionInfo,
)

router = APIRouter()
Offset = Annotated[int, Query(ge=0, le=10**9)]  # the database takes no larger offset
Limit = Annotated[int, Query(ge=1, le=1000)]
IMMUTABLE = "public, max-age=31536000, immutable"
WHOLE_IN_MEMORY = 16 * 1024 * 1024  # blobs up to this size are read and verified, then sent


@endpoint(router, "GET", "/v1/whoami", "reader")
def whoami(actor: Annotated[Actor, require("reader")]) -> WhoAmI:
    """The identity and roles of the caller's token (``anonymous`` with open reads)."""
    return WhoAmI(subject=actor.name, roles=sorted(actor.roles or []))


@endpoint(router, "GET", "/v1/refs/{ref}", "reader")
def version_info(s: Service, ref: str) -> VersionInfo:
    """The version a ref points to (``name@7``, ``name@sha256:…``, ``name@production``)."""
    return s.versions.resolve(ref)


@endpoint(router, "GET", "/v1/bundles/{ref}", "reader")
def bundle(s: Service, ref: str) -> BundleResponse:
    """A version and its manifest (the client re-hashes the manifest to verify it)."""
    info = s.versions.resolve(ref)
    return BundleResponse(version=info, manifest=json.loads(s.blobs.read(info.digest)))


@endpoint(router, "GET", "/v1/environments/{env}", "reader")
def environment(s: Service, env: str) -> EnvironmentResponse:
    """Everything active in one environment, with manifests, in one response."""
    return EnvironmentResponse(env=s.policy.canonical_env(env), items=[
        DeployedBundle(**dict(r), manifest=json.loads(s.blobs.read(r.digest)))
        for r in s.lifecycle.status(env=env)])


@endpoint(router, "GET", "/v1/names", "reader")
def names(s: Service, offset: Offset = 0, limit: Limit = 100) -> Page[NameSummary]:
    """Registered names with their latest version, by name (paginated)."""
    return s.versions.names_page(offset=offset, limit=limit)


@endpoint(router, "GET", "/v1/names/{name}/versions", "reader")
def versions(s: Service, name: str, offset: Offset = 0, limit: Limit = 100
             ) -> Page[VersionInfo]:
    """Every version of a name, oldest first (paginated)."""
    return s.versions.history_page(name, offset=offset, limit=limit)


@endpoint(router, "GET", "/v1/names/{name}/changelog", "reader")
def changelog(s: Service, name: str) -> list[ChangelogEntry]:
    """The release history of a name, newest first."""
    return s.versions.changelog(name)


@endpoint(router, "GET", "/v1/names/{name}/slots/{env}/history", "reader")
def slot_history(s: Service, name: str, env: str) -> list[SlotEventInfo]:
    """Every move of one environment slot."""
    return s.lifecycle.slot_history(name, env)


@endpoint(router, "GET", "/v1/diff", "reader")
def diff(s: Service, old: str, new: str) -> BundleDiff:
    """The semantic diff of two refs (``?old=name@3&new=name@production``)."""
    return s.versions.diff(s.versions.get(old), s.versions.get(new))


@endpoint(router, "GET", "/v1/stored-diffs/{ref}", "reader")
def stored_diff(s: Service, ref: str) -> dict[str, Any] | None:
    """The full diff recorded when a version was registered (null for a first version)."""
    return s.versions.stored_diff(s.versions.resolve(ref))


@endpoint(router, "GET", "/v1/status", "reader")
def status(s: Service, name: str | None = None, env: str | None = None) -> list[SlotStatus]:
    """What runs where: one row per environment slot."""
    return s.lifecycle.status(name, env)


@endpoint(router, "GET", "/v1/gates", "reader")
def gates(s: Service, ref: str, to: str) -> GateVerdict:
    """Judge every gate of promoting ``ref`` to ``to`` (changes nothing)."""
    return GateVerdict(**dict(s.lifecycle.check_gates(ref, to)))


@endpoint(router, "GET", "/v1/evidence/{ref}", "reader")
def evidence(s: Service, ref: str) -> list[EvidenceInfo]:
    """Evidence attached to the digest a ref points to."""
    return s.lifecycle.evidence_for(s.versions.resolve(ref).digest)


@endpoint(router, "GET", "/v1/approvals/{ref}/{env}", "reader")
def approvals(s: Service, ref: str, env: str) -> list[ApprovalInfo]:
    """The approvals a version holds for an environment."""
    return s.lifecycle.approvals_for(ref, env)


@endpoint(router, "GET", "/v1/audit", "reader", filters=True)
def audit(s: Service, name: str | None = None, limit: Limit | None = None,
          env: str | None = None) -> list[AuditInfo]:
    """Audit-log entries, oldest first (``name``, ``env``: only those; ``limit``: only
    the last N)."""
    return s.lifecycle.audit_log(name, limit, env)


@endpoint(router, "GET", "/v1/audit/verify", "reader", errors=[409])
def audit_verify(s: Service, head: str | None = None) -> AuditVerifyResult:
    """Recompute the hash chain; 409 ``AUDIT_BROKEN`` naming the first bad entry, or
    saying that ``head`` (a hash noted earlier) is no longer in the log."""
    count = s.lifecycle.verify_audit(head)
    return AuditVerifyResult(verified=count, head=s.lifecycle.audit_head())


@endpoint(router, "GET", "/v1/verify/{ref}", "reader")
def verify(s: Service, ref: str) -> list[Problem]:
    """Re-hash a version's manifest and artifacts; the problems found (empty: intact)."""
    return s.integrity.verify(ref)


@endpoint(router, "GET", "/v1/fsck", "admin")
def fsck(s: Service) -> FsckResult:
    """Check every blob and every reference; problems by digest."""
    count, problems = s.integrity.fsck()
    return FsckResult(blobs=count, problems=problems)


@endpoint(router, "GET", "/v1/policy", "reader")
def policy(s: Service) -> PolicyResponse:
    """The policy this server enforces, its digest and its flow."""
    p = s.policy
    return PolicyResponse(digest=p.digest, flow=p.describe(), policy=p.canonical_dict())


@endpoint(router, "GET", "/v1/blobs/{digest}", "reader", response_class=Response,
          errors=[500],
          responses={200: {"content": {"application/octet-stream": {}},
                           "description": "The blob, verified against its digest first."},
                     206: {"content": {"application/octet-stream": {}},
                           "description": "The requested range (one range per request)."},
                     416: {"description": "The range is outside the blob."}})
async def blob(s: Service, digest: str,
               range_: Annotated[str | None, Header(alias="Range")] = None) -> Response:
    """A blob by digest: immutable, ``Range`` supported (one range).

    No 2xx ever carries bytes that do not match the digest: a small blob is read whole
    and verified before it is sent; a large one, or a range, is verified whole first and
    then streamed through the verifying reader again, which aborts the connection (never
    a complete 2xx) if the bytes changed in between. A corrupt blob is a 500
    ``INTEGRITY_FAILED`` that no cache keeps.
    """
    check_digest(digest)
    size = await run_in_threadpool(s.blobs.size, digest)
    headers = {"ETag": f'"{digest}"', "Cache-Control": IMMUTABLE, "Accept-Ranges": "bytes"}
    if range_ is None and size <= WHOLE_IN_MEMORY:
        data = await run_in_threadpool(s.blobs.read, digest)  # verified
        return Response(data, media_type="application/octet-stream", headers=headers)
    start, end = _parse_range(range_, size) if range_ is not None else (0, size - 1)
    if range_ is not None and (start >= size or end < start):
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    if not await run_in_threadpool(s.blobs.intact, digest):
        raise IntegrityError(f"blob {digest} is corrupt in the store; it is not served. "
                             "Restore it from a backup or upload the right bytes again")
    if range_ is None:
        return StreamingResponse(_chunks(s, digest), media_type="application/octet-stream",
                                 headers={**headers, "Content-Length": str(size)})
    data = await run_in_threadpool(s.blobs.read_range, digest, start, end)
    return Response(data, status_code=206, media_type="application/octet-stream",
                    headers={**headers, "Content-Range": f"bytes {start}-{end}/{size}"})


def _chunks(s: RegistryService, digest: str) -> Iterator[bytes]:
    with s.blobs.open(digest) as fh:
        while chunk := fh.read(1024 * 1024):
            yield chunk


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
