"""Blob routes: bytes by digest, uploaded and downloaded as streams.

These are the transport's own: every other route comes from the operation table
(:mod:`llmreg.server.routes.operations`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from llmreg.bundle.digest import check_digest
from llmreg.contract.models import BlobPut
from llmreg.errors import IntegrityError, InvalidRefError, PayloadTooLargeError, shown
from llmreg.server.deps import Service, State
from llmreg.server.errors import error_response
from llmreg.server.guard import MAX_BLOB, body_chunks
from llmreg.server.routes import endpoint
from llmreg.service.registry import RegistryService

router = APIRouter()
SPOOL_IN_MEMORY = 8 * 1024 * 1024  # an upload past this spools to a temporary file
IMMUTABLE = "public, max-age=31536000, immutable"
WHOLE_IN_MEMORY = 16 * 1024 * 1024  # blobs up to this size are read and verified, then sent


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
        raise InvalidRefError(f"Range {shown(header)}: only one 'bytes=START-END' range is "
                              "supported")
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        raise InvalidRefError(f"Range {shown(header)} is not 'bytes=START-END'") from None
    return start, min(end, size - 1)
