"""Write routes. Every one needs a token; the token's subject is the actor recorded in
the audit log and used for separation of duties. Bodies are :mod:`llmreg.contract.models`."""

from __future__ import annotations

import tempfile
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from llmreg.bundle.digest import check_digest
from llmreg.bundle.schema import Bundle
from llmreg.contract.models import (
    ApprovalBody,
    ApprovalResult,
    BlobPut,
    EvidenceBody,
    GateVerdict,
    GcBody,
    GcResult,
    HeartbeatBody,
    HeartbeatResult,
    NewToken,
    PromotionBody,
    PromotionResult,
    RegisterBody,
    RegisterManyBody,
    RegistrationBatch,
    RetireBody,
    RollbackBody,
    TokenBody,
)
from llmreg.errors import (
    GateFailedError,
    IntegrityError,
    InvalidBundleError,
    PayloadTooLargeError,
)
from llmreg.server.deps import Service, State, require
from llmreg.server.errors import error_response
from llmreg.server.guard import MAX_BLOB, body_chunks
from llmreg.server.routes import endpoint
from llmreg.types import (
    Actor,
    EvidenceInfo,
    Registration,
    SlotEventInfo,
    TokenInfo,
    VersionInfo,
)

router = APIRouter()
SPOOL_IN_MEMORY = 8 * 1024 * 1024  # an upload past this spools to a temporary file

Publisher = Annotated[Actor, require("publisher")]
Approver = Annotated[Actor, require("approver")]
Admin = Annotated[Actor, require("admin")]
Reader = Annotated[Actor, require("reader")]


@endpoint(router, "PUT", "/v1/blobs/{digest}", "publisher", response_model=BlobPut,
          openapi_extra={"requestBody": {"required": True, "content": {
              "application/octet-stream": {"schema": {"type": "string",
                                                      "format": "binary"}}}}})
async def put_blob(request: Request, s: Service, state: State, digest: str,
                   content_length: Annotated[int | None, Header()] = None
                   ) -> BlobPut | JSONResponse:
    """Upload a blob under its digest; bytes that hash to anything else are refused.

    The body is spooled on the event loop (under the size limit and the pace rule of
    :mod:`llmreg.server.guard`), so a slow client holds no worker thread; then it is
    stored. A copy already there is checked by hash: a corrupt one is replaced.
    """
    check_digest(digest)
    if content_length is not None and content_length > MAX_BLOB:
        raise PayloadTooLargeError(f"blob is {content_length} bytes; the limit is {MAX_BLOB}")
    if await run_in_threadpool(s.blobs.intact, digest):
        return BlobPut(digest=digest, size=await run_in_threadpool(s.blobs.size, digest),
                       created=False)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        async for chunk in body_chunks(request.receive, MAX_BLOB, state.settings):
            spool.write(chunk)
        spool.seek(0)
        try:
            desc = await run_in_threadpool(s.blobs.put_stream, spool,  # type: ignore[arg-type]
                                           expected_digest=digest)
        except IntegrityError as exc:  # the upload, not the store, is at fault: 400
            return error_response(exc, 400)
    return BlobPut(digest=desc.digest, size=desc.size, created=True)


@endpoint(router, "POST", "/v1/names/{name}/versions", "publisher", status_code=201,
          errors=[409])
def register(s: Service, name: str, body: RegisterBody, actor: Publisher) -> Registration:
    """Register a manifest under ``name``; its artifacts must be uploaded first."""
    bundle = Bundle.from_dict(body.manifest,
                              allow_floating_model_ids=s.policy.models.allow_floating)
    return s.versions.register(bundle, name=name, message=body.message, author=actor.name,
                               provenance=dict(body.provenance))


@endpoint(router, "POST", "/v1/names/{name}/version-batches", "publisher", status_code=201,
          response_model=RegistrationBatch, errors=[409])
def register_many(s: Service, name: str, body: RegisterManyBody,
                  actor: Publisher) -> RegistrationBatch:
    """Register several manifests as consecutive versions of ``name``, in one
    transaction (at most 500 a request; artifacts must be uploaded first)."""
    allow = s.policy.models.allow_floating
    bundles = []
    for i, item in enumerate(body.items):
        try:
            bundles.append(Bundle.from_dict(item.manifest, allow_floating_model_ids=allow))
        except InvalidBundleError as exc:
            raise type(exc)(f"items[{i}]: {exc}") from None
    return RegistrationBatch(items=s.versions.register_many(
        bundles, name=name, message=body.message, author=actor.name,
        provenance=[dict(item.provenance) for item in body.items]))


@endpoint(router, "POST", "/v1/evidence", "publisher", status_code=201)
def attach_evidence(s: Service, body: EvidenceBody, actor: Publisher) -> EvidenceInfo:
    """Attach an eval or shadow-metrics record to a ref's digest."""
    return s.lifecycle.attach_evidence(
        body.ref, type=body.type, suite=body.suite, metrics=dict(body.metrics), actor=actor,
        links=body.links, passed=body.passed, report_digest=body.report_digest)


@endpoint(router, "POST", "/v1/approvals", "approver", status_code=201, errors=[409])
def approve(s: Service, body: ApprovalBody, actor: Approver) -> ApprovalResult:
    """Approve a version for an environment as the token's subject."""
    info, created = s.lifecycle.approve(body.ref, body.env, actor=actor, comment=body.comment)
    return ApprovalResult(**dict(info), created=created)


@endpoint(router, "POST", "/v1/promotions", "publisher", status_code=201, errors=[409, 422])
def promote(s: Service, state: State, body: PromotionBody, actor: Publisher,
            if_match: Annotated[str | None, Header()] = None) -> PromotionResult:
    """Promote if every gate is met. ``If-Match: "<ref>"`` is compare-and-set, like
    ``expect_current``."""
    expect = body.expect_current
    if if_match is not None:
        expect = if_match.strip().strip('"')
    try:
        event, report = s.lifecycle.promote(body.ref, body.env, actor=actor,
                                            reason=body.reason, expect_current=expect)
    except GateFailedError as exc:
        if state.metrics is not None:
            state.metrics.refused(str(getattr(exc.report, "to_env", "_unknown")))
        raise
    state.moved(event.name)  # this replica answers the new slot now; the mirror follows
    if state.metrics is not None:
        state.metrics.moved(event.env, "promote")
    return PromotionResult(event=event, report=GateVerdict(**dict(report)))


@endpoint(router, "POST", "/v1/rollbacks", "publisher", status_code=201, errors=[409])
def rollback(s: Service, state: State, body: RollbackBody, actor: Publisher) -> SlotEventInfo:
    """Return a slot to the version it held before the current one."""
    event = s.lifecycle.rollback(body.name, body.env, actor=actor, reason=body.reason)
    state.moved(event.name)
    if state.metrics is not None:
        state.metrics.moved(event.env, "rollback")
    return event


@endpoint(router, "POST", "/v1/deprecations", "publisher", errors=[409])
def deprecate(s: Service, body: RetireBody, actor: Publisher) -> VersionInfo:
    """Mark a version deprecated (it keeps serving; new promotions of it are refused)."""
    return s.lifecycle.deprecate(body.ref, actor=actor, reason=body.reason)


@endpoint(router, "POST", "/v1/archives", "publisher", errors=[409])
def archive(s: Service, body: RetireBody, actor: Publisher) -> VersionInfo:
    """Archive a version that no slot holds."""
    return s.lifecycle.archive(body.ref, actor=actor, reason=body.reason)


@endpoint(router, "POST", "/v1/heartbeats", "reader", status_code=202)
def heartbeats(s: Service, body: HeartbeatBody, actor: Reader) -> HeartbeatResult:
    """Served-request counts from clients (they feed the stale-production alert)."""
    stored = s.access.record_heartbeats([b.model_dump() for b in body.beats])
    return HeartbeatResult(accepted=stored)


@endpoint(router, "POST", "/v1/gc", "admin")
def gc(s: Service, body: GcBody) -> GcResult:
    """List (dry run) or delete unreferenced blobs older than the grace period."""
    return GcResult(blobs=s.integrity.gc(dry_run=body.dry_run, grace=body.grace),
                    deleted=not body.dry_run)


@endpoint(router, "POST", "/v1/tokens", "admin", status_code=201)
def create_token(s: Service, body: TokenBody, actor: Admin) -> NewToken:
    """Create a token; the secret is in this response only."""
    token, info = s.access.create_token(body.subject, body.role, created_by=actor.name)
    return NewToken(**dict(info), token=token)


@endpoint(router, "GET", "/v1/tokens", "admin")
def list_tokens(s: Service) -> list[TokenInfo]:
    """Every token's record (never a secret)."""
    return s.access.list_tokens()


@endpoint(router, "DELETE", "/v1/tokens/{token_id}", "admin")
def revoke_token(s: Service, state: State, token_id: str, actor: Admin) -> TokenInfo:
    """Revoke a token: this replica refuses it at once, others within seconds."""
    info = s.access.revoke_token(token_id, actor=actor.name)
    state.tokens.invalidate()
    return info
