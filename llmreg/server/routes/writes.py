"""Write routes. Every one needs a token; the token's subject is the actor recorded in
the audit log and used for separation of duties."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, Field, JsonValue
from starlette.concurrency import run_in_threadpool

from llmreg.bundle import Bundle
from llmreg.digest import check_digest
from llmreg.errors import PayloadTooLargeError
from llmreg.server.deps import require
from llmreg.server.routes import endpoint
from llmreg.service.registry import RegistryService
from llmreg.types import Actor

router = APIRouter()
MAX_BLOB = 64 * 1024**3  # 64 GiB; weights are large, but not unbounded


def svc(request: Request) -> RegistryService:
    s: RegistryService = request.app.state.service
    return s


class _Body(BaseModel):
    model_config = {"extra": "forbid"}


class RegisterBody(_Body):
    manifest: dict[str, JsonValue]
    message: str = Field(max_length=10_000)
    provenance: dict[str, JsonValue] = {}


class EvidenceBody(_Body):
    ref: str
    type: Literal["eval", "shadow-metrics"]
    suite: str
    metrics: dict[str, JsonValue]
    links: list[str] = Field(default=[], max_length=20)
    passed: bool | None = None
    report_digest: str | None = None


class ApprovalBody(_Body):
    ref: str
    env: str
    comment: str = Field("", max_length=2000)


class PromotionBody(_Body):
    ref: str
    env: str
    reason: str = Field(max_length=2000)
    expect_current: str | None = None


class RollbackBody(_Body):
    name: str
    env: str
    reason: str = Field(max_length=2000)


class RetireBody(_Body):
    ref: str
    reason: str = Field("", max_length=2000)


class Beat(_Body):
    name: str
    env: str
    digest: str
    count: int = Field(1, ge=0, le=10**9)


class HeartbeatBody(_Body):
    beats: list[Beat] = Field(max_length=1000)


class GcBody(_Body):
    dry_run: bool = True
    grace: float = Field(24 * 3600, ge=0)


class TokenBody(_Body):
    subject: str
    role: Literal["reader", "publisher", "approver", "admin"]


Publisher = Annotated[Actor, require("publisher")]
Approver = Annotated[Actor, require("approver")]
Admin = Annotated[Actor, require("admin")]
Reader = Annotated[Actor, require("reader")]


@endpoint(router, "PUT", "/v1/blobs/{digest}", "publisher")
async def put_blob(request: Request, digest: str,
                   content_length: Annotated[int | None, Header()] = None) -> dict[str, Any]:
    """Upload a blob under its digest; bytes that hash to anything else are refused."""
    check_digest(digest)
    if content_length is not None and content_length > MAX_BLOB:
        raise PayloadTooLargeError(f"blob is {content_length} bytes; the limit is {MAX_BLOB}")
    s = svc(request)
    if await run_in_threadpool(s.blobs.exists, digest):
        return {"digest": digest, "size": await run_in_threadpool(s.blobs.size, digest),
                "created": False}
    reader = _BodyReader(request)
    desc = await run_in_threadpool(s.blobs.put_stream, reader,  # type: ignore[arg-type]
                                   expected_digest=digest)
    return {"digest": desc.digest, "size": desc.size, "created": True}


class _BodyReader:
    """A blocking file-like view of the request body, for the store's streaming put."""

    def __init__(self, request: Request) -> None:
        import anyio.from_thread

        self._portal = anyio.from_thread
        self._stream = request.stream().__aiter__()
        self._buffer = b""
        self._done = False
        self._seen = 0

    def read(self, n: int = -1) -> bytes:
        while not self._done and (n < 0 or len(self._buffer) < n):
            try:
                chunk: bytes = self._portal.run(self._stream.__anext__)  # type: ignore[arg-type]
            except StopAsyncIteration:
                self._done = True
                break
            self._seen += len(chunk)
            if self._seen > MAX_BLOB:
                raise PayloadTooLargeError(f"blob is over the {MAX_BLOB}-byte limit")
            self._buffer += chunk
        if n < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


@endpoint(router, "POST", "/v1/names/{name}/versions", "publisher", status_code=201)
def register(request: Request, name: str, body: RegisterBody, actor: Publisher
             ) -> dict[str, Any]:
    """Register a manifest under ``name``; its artifacts must be uploaded first."""
    s = svc(request)
    bundle = Bundle.from_dict(body.manifest,
                              allow_floating_model_ids=s.policy.models.allow_floating)
    result = s.versions.register(bundle, name=name, message=body.message, author=actor.name,
                        provenance=dict(body.provenance))
    return result.model_dump(mode="json")


@endpoint(router, "POST", "/v1/evidence", "publisher", status_code=201)
def attach_evidence(request: Request, body: EvidenceBody, actor: Publisher) -> dict[str, Any]:
    """Attach an eval or shadow-metrics record to a ref's digest."""
    ev = svc(request).lifecycle.attach_evidence(
        body.ref, type=body.type, suite=body.suite, metrics=dict(body.metrics), actor=actor,
        links=body.links, passed=body.passed, report_digest=body.report_digest)
    return ev.model_dump(mode="json")


@endpoint(router, "POST", "/v1/approvals", "approver", status_code=201)
def approve(request: Request, body: ApprovalBody, actor: Approver) -> dict[str, Any]:
    """Approve a version for an environment as the token's subject."""
    info, created = svc(request).lifecycle.approve(body.ref, body.env, actor=actor,
                                                   comment=body.comment)
    return {**info.model_dump(mode="json"), "created": created}


@endpoint(router, "POST", "/v1/promotions", "publisher", status_code=201)
def promote(request: Request, body: PromotionBody, actor: Publisher,
            if_match: Annotated[str | None, Header()] = None) -> dict[str, Any]:
    """Promote if every gate is met. ``If-Match: "<ref>"`` is compare-and-set, like
    ``expect_current``."""
    expect = body.expect_current
    if if_match is not None:
        expect = if_match.strip().strip('"')
    event, report = svc(request).lifecycle.promote(body.ref, body.env, actor=actor,
                                                   reason=body.reason,
                                         expect_current=expect)
    request.app.state.resolve_cache.slots.clear()  # this replica answers the new slot now
    return {"event": event.model_dump(mode="json"),
            "report": {**report.model_dump(mode="json"), "passed": report.passed}}


@endpoint(router, "POST", "/v1/rollbacks", "publisher", status_code=201)
def rollback(request: Request, body: RollbackBody, actor: Publisher) -> dict[str, Any]:
    """Return a slot to the version it held before the current one."""
    event = svc(request).lifecycle.rollback(body.name, body.env, actor=actor, reason=body.reason)
    request.app.state.resolve_cache.slots.clear()
    return event.model_dump(mode="json")


@endpoint(router, "POST", "/v1/deprecations", "publisher")
def deprecate(request: Request, body: RetireBody, actor: Publisher) -> dict[str, Any]:
    return svc(request).lifecycle.deprecate(body.ref, actor=actor, reason=body.reason).model_dump(
        mode="json")


@endpoint(router, "POST", "/v1/archives", "publisher")
def archive(request: Request, body: RetireBody, actor: Publisher) -> dict[str, Any]:
    return svc(request).lifecycle.archive(body.ref, actor=actor, reason=body.reason).model_dump(
        mode="json")


@endpoint(router, "POST", "/v1/heartbeats", "reader", status_code=202)
def heartbeats(request: Request, body: HeartbeatBody, actor: Reader) -> dict[str, Any]:
    """Served-request counts from clients (they feed the stale-production alert)."""
    stored = svc(request).access.record_heartbeats([b.model_dump() for b in body.beats])
    return {"accepted": stored}


@endpoint(router, "POST", "/v1/gc", "admin")
def gc(request: Request, body: GcBody) -> dict[str, Any]:
    """List (dry run) or delete unreferenced blobs older than the grace period."""
    return {"blobs": svc(request).integrity.gc(dry_run=body.dry_run, grace=body.grace),
            "deleted": not body.dry_run}


@endpoint(router, "POST", "/v1/tokens", "admin", status_code=201)
def create_token(request: Request, body: TokenBody, actor: Admin) -> dict[str, Any]:
    """Create a token; the secret is in this response only."""
    token, info = svc(request).access.create_token(body.subject, body.role, created_by=actor.name)
    return {**info.model_dump(mode="json"), "token": token}


@endpoint(router, "GET", "/v1/tokens", "admin")
def list_tokens(request: Request) -> list[dict[str, Any]]:
    return [t.model_dump(mode="json") for t in svc(request).access.list_tokens()]


@endpoint(router, "DELETE", "/v1/tokens/{token_id}", "admin")
def revoke_token(request: Request, token_id: str, actor: Admin) -> dict[str, Any]:
    info = svc(request).access.revoke_token(token_id, actor=actor.name)
    request.app.state.token_cache.clear()
    return info.model_dump(mode="json")


