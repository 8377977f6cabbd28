"""Bounded request bodies: the role checked before a byte is read, then read with a
size limit, a minimum pace, a deadline, a cap on large ones, and parsed with a bound on
values and depth.

A request that carries a body (POST, PUT, PATCH) meets :class:`BodyGuard` before any
route or framework code (the request line and headers were bounded before that, by
:mod:`llmreg.server.connection` under ``llmreg serve``):

1. **The role first.** The guard looks up the role the route needs (:class:`Roles`,
   read from the routes, which take it from the operation table) and checks the bearer
   token for it: without a usable token the answer is 401, with a token that lacks the
   role 403, both before a byte of the body is read (heartbeats may come without a
   token when reads are open). A ``/v1`` path no route answers gets its 404 or 405
   without its body being read. Web forms (paths outside ``/v1``) carry a session
   cookie instead, checked by their route; their bodies are capped at :data:`MAX_FORM`
   bytes.
2. **Size while streaming.** A JSON body is read into memory only up to
   ``LLMREG_MAX_BODY`` bytes (16 MiB), whatever ``Content-Length`` says or omits
   (chunked bodies included); one byte more is 413. Blob uploads stream to the route,
   which applies :data:`MAX_BLOB` the same way.
3. **Pace and deadline.** A body that stalls for ``LLMREG_BODY_IDLE_TIMEOUT`` seconds
   (30), or that has arrived slower than ``LLMREG_BODY_MIN_RATE`` bytes a second (8 KiB)
   once ``LLMREG_BODY_GRACE`` seconds (10) have passed, is 408; so is a JSON or form
   body not complete within ``LLMREG_BODY_TIMEOUT`` seconds (60). A blob upload's
   deadline is the pace rule's: its size at the minimum rate, after the grace. No
   worker thread waits on a slow client: bodies are read on the event loop.
4. **Few large bodies at once.** A body of ``LLMREG_LARGE_BODY`` bytes or more (1 MiB,
   by ``Content-Length`` or once that much has arrived) needs one of
   ``LLMREG_MAX_LARGE_BODIES`` slots per worker (4), held until its answer is sent; it
   waits for one as long as a body may stall (``LLMREG_BODY_IDLE_TIMEOUT``, at most
   :data:`LARGE_BODY_WAIT` seconds), then gets ``503 BUSY`` with ``Retry-After``. Blob
   uploads take the same slots.
5. **One value per key, bounded values and depth.** Every API route is a
   :class:`StrictJSONRoute` (routes are added through
   :func:`llmreg.server.routes.endpoint`), whose request parses a JSON body with
   :func:`strict_json`: more than ``LLMREG_MAX_JSON_NODES`` values (500,000) is 413,
   nesting deeper than :data:`~llmreg.bundle.parse.MAX_DEPTH` levels (64) is 400, both
   counted on the bytes before anything is built; an object that names a key twice, at
   any depth, is ``400 REQUEST_INVALID`` naming the key, never "the last one wins".

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
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmreg.bundle.parse import MAX_DEPTH
from llmreg.errors import (
    InvalidRefError,
    InvalidRequestError,
    LLMRegError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServerBusyError,
    shown,
)
from llmreg.server.errors import error_response
from llmreg.server.state import ServerState
from llmreg.settings import Settings

MAX_BLOB = 64 * 1024**3  # bytes of one blob upload: weights are large, not unbounded
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
MAX_FORM = 64 * 1024  # bytes of a web form (sign-in, approve, promote, rollback)
LARGE_BODY_WAIT = 10.0  # seconds a large body waits for a slot, at most, before 503 BUSY


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


async def body_chunks(receive: Receive, limit: int, settings: Settings,
                      deadline: float | None = None) -> AsyncIterator[bytes]:
    """The request body, chunk by chunk, under the size limit and the pace rule, and
    complete within ``deadline`` seconds when one is given."""
    pace, received = Pace(settings), 0
    idle = settings.body_idle_timeout
    ends = None if deadline is None else pace.started + deadline
    while True:
        wait = idle if ends is None else min(idle, ends - time.monotonic())
        try:
            if wait <= 0:
                raise TimeoutError
            message = await asyncio.wait_for(receive(), timeout=wait)
        except TimeoutError:
            if ends is not None and time.monotonic() >= ends - 0.01:
                raise RequestTimeoutError(
                    f"the request body was not complete within {deadline:g}s "
                    f"({received} bytes arrived; LLMREG_BODY_TIMEOUT): send it faster, or "
                    "less in one request") from None
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


class Roles:
    """The role each route needs, by method and path, read from the routes themselves
    (:func:`llmreg.server.routes.endpoint` records it as ``x-llmreg-role``; the operation
    table's rows give it to their routes), so the guard knows it before reading a body.

    Example:
        >>> from llmreg.server.routes import operations
        >>> Roles(operations.router.routes).role("POST", "/v1/promotions")
        'publisher'
        >>> Roles(operations.router.routes).role("POST", "/v1/nowhere") is None
        True
    """

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self._table = [(route.path_regex, frozenset(route.methods or ()),
                        str((route.openapi_extra or {})["x-llmreg-role"]))
                       for route in routes if isinstance(route, APIRoute)
                       and "x-llmreg-role" in (route.openapi_extra or {})]

    def role(self, method: str, path: str) -> str | None:
        """The role the route for ``method`` and ``path`` needs; None when none answers."""
        for regex, methods, role in self._table:
            if method in methods and regex.match(path):
                return role
        return None


class LargeBodies:
    """At most ``LLMREG_MAX_LARGE_BODIES`` bodies of ``LLMREG_LARGE_BODY`` bytes or more
    in one worker at once: their bytes, and what parsing them builds, are most of what a
    worker's memory holds."""

    def __init__(self, settings: Settings) -> None:
        self.size = settings.large_body
        self.slots = settings.max_large_bodies
        self.wait = min(LARGE_BODY_WAIT, settings.body_idle_timeout)
        self._free: asyncio.Semaphore | None = None  # made on the worker's event loop

    def slot(self) -> Slot:
        """A slot for one request, taken only if its body turns out to be large."""
        if self._free is None:
            self._free = asyncio.Semaphore(self.slots)
        return Slot(self, self._free)


class Slot:
    """One request's claim on a :class:`LargeBodies` slot (taken at most once)."""

    def __init__(self, bodies: LargeBodies, free: asyncio.Semaphore) -> None:
        self._bodies, self._free, self.held = bodies, free, False

    async def take(self) -> None:
        """Wait for a slot as long as a body may stall, else :class:`ServerBusyError`."""
        if self.held:
            return
        try:
            await asyncio.wait_for(self._free.acquire(), timeout=self._bodies.wait)
        except TimeoutError:
            raise ServerBusyError(
                f"this server is reading {self._bodies.slots} bodies of "
                f"{self._bodies.size} bytes or more already (LLMREG_MAX_LARGE_BODIES, "
                "LLMREG_LARGE_BODY); try again in a moment") from None
        self.held = True

    async def take_if(self, size: int | None) -> None:
        """Take a slot when a body of ``size`` bytes is large."""
        if size is not None and size >= self._bodies.size:
            await self.take()

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self._free.release()


class BodyGuard:
    """ASGI middleware: check the route's role, then read a JSON body within its bounds
    (blob uploads are checked here, and bounded by their route and the large-body cap).

    ``routes`` are those whose roles :class:`Roles` reads (every ``/v1`` route with a
    body)."""

    def __init__(self, app: ASGIApp, state: ServerState, routes: Iterable[BaseRoute] = ()
                 ) -> None:
        self.app = app
        self.state = state
        self.roles = Roles(routes)
        self.large = LargeBodies(state.settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        slot = self.large.slot()
        try:
            try:
                declared = await self._authenticate(scope)
                if scope["path"].startswith("/v1/") and self.roles.role(
                        scope["method"], scope["path"]) is None:
                    await self.app(scope, receive, send)  # 404 or 405: the body is not read
                    return
                if scope["path"].startswith("/v1/blobs/"):
                    # Streamed, bounded by the route; a large one takes a slot first.
                    await self.app(scope, _counted(receive, slot, declared), send)
                    return
                body = await self._read(scope, receive, slot, declared)
            except LLMRegError as exc:
                await error_response(exc)(scope, receive, send)
                return
            await self.app(scope, _replay(body, receive), send)
        finally:
            slot.give_back()

    async def _authenticate(self, scope: Scope) -> int | None:
        """Check the token for the route's role; return the declared body length."""
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None and not length.isdigit():
            raise InvalidRefError(f"Content-Length {shown(length.decode('latin-1'))} is not "
                                  "a number of bytes")
        if not scope["path"].startswith("/v1/"):
            # A web form: its route checks the session cookie and the CSRF token.
            return None if length is None else int(length)
        header = headers.get(b"authorization")
        authorization = None if header is None else header.decode("latin-1")
        # An unknown route needs what any request needs (a token, unless reads are open).
        role = self.roles.role(scope["method"], scope["path"]) or "reader"
        if self.state.authenticate(authorization, role, cached_only=True) is None:
            await run_in_threadpool(self.state.authenticate, authorization, role)
        return None if length is None else int(length)

    async def _read(self, scope: Scope, receive: Receive, slot: Slot,
                    declared: int | None) -> bytes:
        settings = self.state.settings
        limit = settings.max_body
        if not scope["path"].startswith("/v1/"):
            limit = min(limit, MAX_FORM)  # read before the session is checked: keep it small
        if declared is not None and declared > limit:
            raise PayloadTooLargeError(f"the request body is {declared} bytes; the limit "
                                       f"is {limit} (LLMREG_MAX_BODY)")
        await slot.take_if(declared)
        parts, received = [], 0
        async for chunk in body_chunks(receive, limit, settings, settings.body_timeout):
            parts.append(chunk)
            received += len(chunk)
            await slot.take_if(received)  # a chunked body that grows large
        return b"".join(parts)


def _counted(receive: Receive, slot: Slot, declared: int | None
             ) -> Callable[[], Awaitable[Message]]:
    """A ``receive`` that takes a large-body slot before the first byte of a body
    declared large, or once a body has grown large."""
    received = 0

    async def counted() -> Message:
        nonlocal received
        await slot.take_if(declared)
        message = await receive()
        received += len(message.get("body", b""))
        await slot.take_if(received)
        return message

    return counted


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


# One token of JSON structure: a string (escapes included, possessive so that no input
# makes the regex backtrack or stack up state; an unterminated one runs to the end and
# json.loads reports it), or a bracket or comma outside strings.
_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+"?|[\[\]{},]', re.DOTALL)
_OPEN, _COMMA, _QUOTE = frozenset(b"[{"), ord(","), ord('"')


def check_json_shape(body: bytes, max_nodes: int, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a JSON text with more than ``max_nodes`` values
    (:class:`PayloadTooLargeError`) or more than ``max_depth`` levels of nesting
    (:class:`InvalidRequestError`), counted on its bytes before anything is built from
    them: parsing builds 10 to 20 times the text's size in objects, and deep nesting
    recurses.

    Values are counted from the commas and opening brackets outside strings (an empty
    container may count one high, never low). The count costs no memory and at most
    ``4 * max_nodes`` steps whatever the text: a text with no more brackets and commas
    than the bounds, even inside strings, is not walked at all.

    Example:
        >>> check_json_shape(b'{"a": [1, 2, {"b": "[[[,,,"}]}', max_nodes=10, max_depth=3)
        >>> check_json_shape(b"[" * 100 + b"]" * 100, max_nodes=1000)
        Traceback (most recent call last):
        ...
        llmreg.errors.InvalidRequestError: the JSON body is nested more than 64 levels ...
    """
    opened = body.count(b"[") + body.count(b"{")
    if opened <= max_depth and opened + body.count(b",") + 1 <= max_nodes:
        return  # within both bounds even counting what strings hold
    nodes, depth, steps = 1, 0, 0
    for token in _TOKEN.finditer(body):
        steps += 1
        first = body[token.start()]
        if first == _QUOTE:
            pass
        elif first == _COMMA:
            nodes += 1
        elif first in _OPEN:
            nodes, depth = nodes + 1, depth + 1
            if depth > max_depth:
                raise InvalidRequestError(
                    f"the JSON body is nested more than {max_depth} levels deep (constant "
                    "MAX_DEPTH); send a flatter document")
        else:
            depth -= 1
        if nodes > max_nodes or steps > 4 * max_nodes:  # a value is at most 4 tokens
            raise PayloadTooLargeError(
                f"the JSON body holds more than {max_nodes} values; the limit is "
                f"{max_nodes} (LLMREG_MAX_JSON_NODES): send fewer items in one request")


def strict_json(body: bytes | str, *, max_nodes: int = Settings.max_json_nodes,
                max_depth: int = MAX_DEPTH) -> Any:
    """Parse a JSON request body within bounds: more than ``max_nodes`` values is a
    :class:`PayloadTooLargeError`, nesting deeper than ``max_depth`` or an object that
    names a key twice (at any depth) an :class:`InvalidRequestError`, all raised before
    the body is built; other malformed JSON raises :class:`json.JSONDecodeError`, as
    :func:`json.loads` does.

    Example:
        >>> strict_json(b'{"model": {"id": "a", "temperature": 0}}')
        {'model': {'id': 'a', 'temperature': 0}}
        >>> strict_json(b'{"model": {"id": "a", "id": "b"}}')
        Traceback (most recent call last):
        ...
        llmreg.errors.InvalidRequestError: the JSON body names the key 'id' twice in one ...
        >>> strict_json(b"[" + b"0," * 20 + b"0]", max_nodes=10)
        Traceback (most recent call last):
        ...
        llmreg.errors.PayloadTooLargeError: the JSON body holds more than 10 values; ...
    """

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise InvalidRequestError(f"the JSON body names the key {shown(key)} twice in "
                                          "one object; send each key once")
            out[key] = value
        return out

    check_json_shape(body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body,
                     max_nodes, max_depth)
    return json.loads(body, object_pairs_hook=pairs)


class StrictJSONRequest(Request):
    """A request whose :meth:`json` is :func:`strict_json`, with the server's bounds."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            state = getattr(self.app.state, "llmreg", None)
            nodes = state.settings.max_json_nodes if state is not None else \
                Settings.max_json_nodes
            # In a worker thread: counting and parsing 16 MiB takes a second, and the
            # event loop has other connections to serve meanwhile.
            self._json = await run_in_threadpool(strict_json, await self.body(),
                                                 max_nodes=nodes)
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
                if isinstance(exc.__cause__, LLMRegError):
                    raise exc.__cause__ from None
                raise

        return strict
