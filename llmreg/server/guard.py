"""Bounded request bodies: authenticated before they are read, read with a size limit
and a minimum pace.

A request that carries a body (POST, PUT, PATCH) meets :class:`BodyGuard` before any
route or framework code:

1. **Authentication first.** Without a usable bearer token the answer is 401 before a
   byte of the body is read (only heartbeats may come without one, when reads are
   open). The role is still checked by the route. Web forms (paths outside ``/v1``)
   carry a session cookie instead, checked by their route; their bodies are capped at
   :data:`MAX_FORM` bytes.
2. **Size while streaming.** A JSON body is read into memory only up to
   ``LLMREG_MAX_BODY`` bytes (16 MiB), whatever ``Content-Length`` says or omits
   (chunked bodies included); one byte more is 413. Blob uploads stream to the route,
   which applies :data:`MAX_BLOB` the same way.
3. **Pace.** A body that stalls for ``LLMREG_BODY_IDLE_TIMEOUT`` seconds (30), or that
   has arrived slower than ``LLMREG_BODY_MIN_RATE`` bytes a second (8 KiB) once
   ``LLMREG_BODY_GRACE`` seconds (10) have passed, is 408. No worker thread waits on a
   slow client: bodies are read on the event loop.
4. **One value per key.** Every API route is a :class:`StrictJSONRoute` (routes are
   added through :func:`llmreg.server.routes.endpoint`), whose request parses a JSON
   body with :func:`strict_json`: an object that names a key twice, at any depth, is
   ``400 REQUEST_INVALID`` naming the key, never "the last one wins".

Example:
    >>> pace = Pace(Settings())
    >>> pace.check(received=0, now=pace.started + 1)  # early on, anything goes
    >>> pace.check(received=10, now=pace.started + 20)
    Traceback (most recent call last):
    ...
    llmreg.errors.RequestTimeoutError: the request body arrived at 0 bytes/s; ...
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmreg.errors import (
    AuthError,
    InvalidRefError,
    InvalidRequestError,
    LLMRegError,
    PayloadTooLargeError,
    RequestTimeoutError,
    shown,
)
from llmreg.server.errors import error_response
from llmreg.server.state import ServerState
from llmreg.settings import Settings

MAX_BLOB = 64 * 1024**3  # bytes of one blob upload: weights are large, not unbounded
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_FORM = 64 * 1024  # bytes of a web form (sign-in, approve, promote, rollback)


class Pace:
    """The pace rule for one body: a grace period, then a minimum average rate."""

    def __init__(self, settings: Settings) -> None:
        self.grace = settings.body_grace
        self.min_rate = settings.body_min_rate
        self.started = time.monotonic()

    def check(self, received: int, now: float | None = None) -> None:
        """Raise :class:`RequestTimeoutError` when the body is too slow."""
        elapsed = (now if now is not None else time.monotonic()) - self.started
        if elapsed > self.grace and received < self.min_rate * elapsed:
            raise RequestTimeoutError(
                f"the request body arrived at {received / elapsed:.0f} bytes/s; the "
                f"minimum is {self.min_rate} bytes/s after {self.grace:g}s "
                "(LLMREG_BODY_MIN_RATE, LLMREG_BODY_GRACE)")


async def body_chunks(receive: Receive, limit: int, settings: Settings
                      ) -> AsyncIterator[bytes]:
    """The request body, chunk by chunk, under the size limit and the pace rule."""
    pace, received = Pace(settings), 0
    idle = settings.body_idle_timeout
    while True:
        try:
            message = await asyncio.wait_for(receive(), timeout=idle)
        except TimeoutError:
            raise RequestTimeoutError(f"the request body stalled for {idle:g}s "
                                      "(LLMREG_BODY_IDLE_TIMEOUT)") from None
        if message["type"] == "http.disconnect":
            raise RequestTimeoutError("the client went away before sending its body")
        chunk: bytes = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise PayloadTooLargeError(f"the request body is over {limit} bytes; the limit "
                                       f"is {limit} (LLMREG_MAX_BODY for JSON bodies)")
        pace.check(received)
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


class BodyGuard:
    """ASGI middleware: authenticate, then read a JSON body within its bounds (blob
    uploads are authenticated here and bounded by their route)."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            await self._authenticate(scope)
            if scope["path"].startswith("/v1/blobs/"):
                await self.app(scope, receive, send)  # streamed, bounded by the route
                return
            body = b"".join([c async for c in body_chunks(receive, self._limit(scope),
                                                          self.state.settings)])
        except LLMRegError as exc:
            await error_response(exc)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _authenticate(self, scope: Scope) -> None:
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and not length.isdigit():
            raise InvalidRefError(f"Content-Length {shown(length.decode('latin-1'))} is not "
                                  "a number of bytes")
        header = headers.get(b"authorization")
        if not scope["path"].startswith("/v1/"):
            return  # a web form: its route checks the session cookie and the CSRF token
        if header is None:
            if scope["path"] == "/v1/heartbeats" and self.state.settings.read_auth == "open":
                return
            raise AuthError("this needs a token; send 'Authorization: Bearer <token>'")
        # Any valid token passes here; the route checks its role.
        await run_in_threadpool(self.state.authenticate, header.decode("latin-1"), "reader")

    def _limit(self, scope: Scope) -> int:
        limit = self.state.settings.max_body
        if not scope["path"].startswith("/v1/"):
            limit = min(limit, MAX_FORM)  # read before the session is checked: keep it small
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and int(length) > limit:
            raise PayloadTooLargeError(f"the request body is {int(length)} bytes; the limit "
                                       f"is {limit} (LLMREG_MAX_BODY)")
        return limit


def _replay(body: bytes, receive: Receive) -> Callable[[], Awaitable[Message]]:
    """A ``receive`` that hands the app the body already read, then the real stream
    (so the app still hears a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def strict_json(body: bytes | str) -> Any:
    """Parse a JSON request body, refusing an object that names a key twice (at any
    depth) with :class:`InvalidRequestError`; other malformed JSON raises
    :class:`json.JSONDecodeError`, as :func:`json.loads` does.

    Example:
        >>> strict_json(b'{"model": {"id": "a", "temperature": 0}}')
        {'model': {'id': 'a', 'temperature': 0}}
        >>> strict_json(b'{"model": {"id": "a", "id": "b"}}')
        Traceback (most recent call last):
        ...
        llmreg.errors.InvalidRequestError: the JSON body names the key 'id' twice in one ...
    """

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise InvalidRequestError(f"the JSON body names the key {shown(key)} twice in "
                                          "one object; send each key once")
            out[key] = value
        return out

    return json.loads(body, object_pairs_hook=pairs)


class StrictJSONRequest(Request):
    """A request whose :meth:`json` is :func:`strict_json`."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An API route that reads its JSON body through :class:`StrictJSONRequest`.

    FastAPI turns any error of body parsing other than a ``JSONDecodeError`` into a bare
    ``400 "There was an error parsing the body"``; the refusal it wraps is raised again
    here, so it reaches the one error shape with its code and message.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def strict(request: Request) -> Response:
            try:
                return await handle(StrictJSONRequest(request.scope, request.receive))
            except HTTPException as exc:
                if isinstance(exc.__cause__, InvalidRequestError):
                    raise exc.__cause__ from None
                raise

        return strict
