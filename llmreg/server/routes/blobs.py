"""Blob routes: bytes by digest, uploaded and downloaded as streams.

These are the transport's own: every other route comes from the operation table
(:mod:`llmreg.server.routes.operations`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from llmreg.bundle.digest import check_digest
from llmreg.contract.models import BlobPut
from llmreg.errors import (
    IntegrityError,
    PayloadTooLargeError,
    RangeNotSatisfiableError,
    shown,
)
from llmreg.server.deps import Service, State
from llmreg.server.errors import error_response
from llmreg.server.guard import MAX_BLOB, body_chunks
from llmreg.server.routes import endpoint
from llmreg.service.registry import RegistryService

router = APIRouter()
SPOOL_IN_MEMORY = 8 * 1024 * 1024  # an upload past this spools to a temporary file
IMMUTABLE = "public, max-age=31536000, immutable"
WHOLE_IN_MEMORY = 16 * 1024 * 1024  # blobs up to this size are read and verified, then sent
PIECE = 4 * 1024 * 1024  # a larger blob streams in verified pieces of this size


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
                           "description": "The blob, each part verified before it is sent."},
                     206: {"content": {"application/octet-stream": {}},
                           "description": "The requested range (one range per request)."},
                     416: {"content": {"application/json": {"schema": {
                               "$ref": "#/components/schemas/ErrorBody"}}},
                           "description": "RANGE_INVALID: the Range header does not parse, "
                                          "names several ranges, or starts past the end."}})
async def blob(s: Service, digest: str,
               range_: Annotated[str | None, Header(alias="Range")] = None) -> Response:
    """A blob by digest: immutable, ``Range`` supported (one range).

    No 2xx ever carries bytes that do not match the digest. A small blob is read whole
    and verified before it is sent. A large one, or a range of it, streams in pieces of
    :data:`PIECE` bytes, each checked against the blob's chunk hashes before it is sent
    (:mod:`llmreg.store.chunks`): memory stays flat whatever the size, and the whole blob
    is hashed once per change of the stored copy, not per request. The first piece is
    read before the status line is sent, so a corrupt blob is a 500 ``INTEGRITY_FAILED``
    that no cache keeps; bytes that change while they stream abort the connection before
    the last byte (never a complete 2xx).
    """
    check_digest(digest)
    size = await run_in_threadpool(s.blobs.size, digest)
    headers = {"ETag": f'"{digest}"', "Cache-Control": IMMUTABLE, "Accept-Ranges": "bytes"}
    try:
        start, end = (0, size - 1) if range_ is None else _parse_range(range_, size)
    except RangeNotSatisfiableError as exc:
        answer = error_response(exc, 416)
        answer.headers["Content-Range"] = f"bytes */{size}"
        return answer
    status = 200 if range_ is None else 206
    if range_ is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if size <= WHOLE_IN_MEMORY:
        data = await run_in_threadpool(s.blobs.read, digest)  # verified
        return Response(data[start:end + 1], status_code=status,
                        media_type="application/octet-stream", headers=headers)
    pieces = _pieces(s, digest, start, end)
    first = await run_in_threadpool(next, pieces)  # a corrupt blob fails here: a clean 500
    return StreamingResponse(_chain(first, pieces), status_code=status,
                             media_type="application/octet-stream",
                             headers={**headers, "Content-Length": str(end - start + 1)})


def _pieces(s: RegistryService, digest: str, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``start..end`` in verified pieces of at most :data:`PIECE`, aligned to it
    (so each piece reads whole chunks, and a partial one only at either end)."""
    while start <= end:
        stop = min(end, (start // PIECE + 1) * PIECE - 1)
        yield s.blobs.read_range(digest, start, stop)
        start = stop + 1


def _chain(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    # An IntegrityError raised by ``rest`` ends the response before its last byte: the
    # server closes the connection, and the client sees a body shorter than its length.
    yield first
    yield from rest


def _parse_range(header: str, size: int) -> tuple[int, int]:
    """``(start, end)``, inclusive, of the one range ``header`` names in a blob of
    ``size`` bytes; :class:`RangeNotSatisfiableError` for anything else.

    Example:
        >>> _parse_range("bytes=-5", 100), _parse_range("bytes=90-", 100)
        ((95, 99), (90, 99))
        >>> _parse_range("bytes=0-1,5-6", 100)
        Traceback (most recent call last):
        ...
        llmreg.errors.RangeNotSatisfiableError: Range 'bytes=0-1,5-6' names several ranges; ...
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes":
        raise RangeNotSatisfiableError(f"Range {shown(header)} is not in bytes; send "
                                       "'bytes=START-END'")
    if "," in spec:
        raise RangeNotSatisfiableError(f"Range {shown(header)} names several ranges; send "
                                       "one 'bytes=START-END' per request")
    first, dash, last = spec.partition("-")
    first, last = first.strip(" \t"), last.strip(" \t")  # blanks around the dash: allowed
    if not dash or not _DIGITS.fullmatch(first + last) or not (first or last):
        raise RangeNotSatisfiableError(f"Range {shown(header)} is not 'bytes=START-END', "
                                       "'bytes=START-' or 'bytes=-SUFFIX'")
    if first == "":
        if int(last) == 0 or size == 0:
            raise RangeNotSatisfiableError(f"Range {shown(header)} asks for no bytes of a "
                                           f"blob of {size} bytes")
        return max(0, size - int(last)), size - 1
    start, end = int(first), int(last) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiableError(f"Range {shown(header)} is outside the blob of "
                                       f"{size} bytes; ask for bytes 0-{size - 1}")
    return start, min(end, size - 1)


_DIGITS = re.compile(r"[0-9]{0,19}")  # at most 19 digits: no 10,000-digit int() to parse
