"""Bounded request heads, in front of uvicorn's HTTP parser (``llmreg serve``).

uvicorn's ``httptools`` protocol puts no limit on a request line or its headers and no
deadline on sending them. It keeps whatever arrives, and the parser joins the pieces of
a header with ``bytes +=`` at every read, so one endless header line costs time
quadratic in its length and stalls the worker's event loop for every other connection;
a connection that sends a byte now and then stays open for ever. (``h11`` bounds the
size with ``h11_max_incomplete_event_size`` but has no deadline either, and answers a
plain-text 400.) So ``llmreg serve`` runs :class:`BoundedHttpToolsProtocol`: the same
parser, behind limits applied to the bytes before the parser sees them:

- **Size.** At most ``LLMREG_MAX_HEADER_BYTES`` (32 KiB) may reach the parser without it
  making progress: the request line and headers, and in a chunked body the chunk framing
  and trailers between two pieces of data. One byte more is ``431 HEADERS_TOO_LARGE``.
- **Count.** At most ``LLMREG_MAX_HEADERS`` header fields (100) in one request, trailers
  included: one more is 431.
- **Deadline.** The request line and headers must be complete within
  ``LLMREG_HEADER_TIMEOUT`` seconds (10) of the connection opening or of the request's
  first byte: otherwise ``408 REQUEST_TIMEOUT`` (a connection that sent nothing is closed
  without a word). Idle keep-alive connections close after uvicorn's 5 s, as before.
- **The rest of a refused body.** When the answer is sent before the request's body is
  all in (a 401, 403 or 413 answered before reading it, a ``GET`` with a body), the rest
  is read and dropped for :data:`LINGER` seconds (or :data:`LINGER_BYTES`), then the
  connection is closed: no body keeps a connection open after its answer.

Refusals of a head are in the one JSON error shape (:mod:`llmreg.server.errors`), sent
with ``Connection: close``; the connection then reads and drops what the client still
sends for :data:`LINGER` seconds (at most :data:`LINGER_BYTES`), so the client sees the
answer instead of a reset. A
chunked body's framing or trailers over the bound close the connection without an
answer (its request has, or is getting, one already).
Malformed HTTP is ``400 REQUEST_INVALID`` in the same shape.

Example:
    >>> import uvicorn
    >>> uvicorn.run("llmreg.server.app:create_app_from_env", factory=True,
    ...             http="llmreg.server.connection:BoundedHttpToolsProtocol")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Sequence
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from llmreg.errors import (
    HeaderTooLargeError,
    InvalidRequestError,
    LLMRegError,
    RequestTimeoutError,
)
from llmreg.server.errors import error_body, status_for
from llmreg.settings import Settings

LINGER = 2.0  # seconds a refused or answered request's remaining bytes are read and dropped
LINGER_BYTES = 1024 * 1024  # or until this many have been: the client is not listening


@functools.cache
def _settings() -> Settings:
    """The worker's settings (read once per process: a protocol is made per connection)."""
    return Settings.from_env()


class _Refused(Exception):
    """Raised inside a parser callback to stop the parser and refuse the request."""

    def __init__(self, error: LLMRegError) -> None:
        super().__init__(str(error))
        self.error = error


def refusal(error: LLMRegError, default_headers: Sequence[tuple[bytes, bytes]] = ()) -> bytes:
    """The bytes of a complete HTTP/1.1 answer for ``error`` in the one JSON shape, sent
    with ``Connection: close``.

    Example:
        >>> refusal(RequestTimeoutError("too slow")).split(b"\\r\\n")[0]
        b'HTTP/1.1 408 Request Timeout'
    """
    body = json.dumps(error_body(error.code, str(error))).encode()
    head = [STATUS_LINE[status_for(error)]]
    for name, value in [*default_headers, (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"cache-control", b"no-store"), (b"connection", b"close")]:
        head += [name, b": ", value, b"\r\n"]
    return b"".join([*head, b"\r\n", body])


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded request heads (see the module's doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = _settings()
        self.max_head = settings.max_header_bytes
        self.max_fields = settings.max_headers
        self.head_timeout = settings.header_timeout
        self._unparsed = 0  # bytes fed since the parser last made progress
        self._fields = 0  # header fields (and trailers) of the current request
        self._begun = False  # the current request's first byte has arrived
        self._body_open = False  # its head is complete, its body is not
        self._refused = False  # answered with a refusal: what still comes is dropped
        self._head_timer: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None
        self._lingered = 0  # bytes read while lingering

    # -- the connection -------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._linger):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._linger = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        if self._linger is not None:
            self._lingered += len(data)
            if self._lingered > LINGER_BYTES:
                self._hang_up()
                return
        if self._refused:
            return  # lingering after a refusal: dropped
        try:
            while data:
                room = self.max_head - self._unparsed
                if room <= 0:
                    raise _Refused(HeaderTooLargeError(
                        f"the request line and headers (or a chunked body's framing and "
                        f"trailers) are over {self.max_head} bytes; the limit is "
                        f"{self.max_head} (LLMREG_MAX_HEADER_BYTES)"))
                piece, data = data[:room], data[room:]
                self._unparsed += len(piece)
                if not self._feed(piece) or self.transport.is_closing():
                    return
        except _Refused as refused:
            self._refuse(refused.error)

    def _feed(self, piece: bytes) -> bool:
        """Give ``piece`` to the parser; False when the connection is done with HTTP."""
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _Refused):
                raise exc.__context__ from None
            raise _Refused(InvalidRequestError(
                "the request could not be read as HTTP/1.1; check the request line, the "
                "headers and the body's framing")) from None
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        except httptools.HttpParserError as exc:
            raise _Refused(InvalidRequestError(
                f"the request is not valid HTTP/1.1 ({exc}); check the request line, "
                "the headers and the body's framing")) from None
        return True

    # -- parser callbacks: progress, and the count of header fields --------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._fields, self._begun = 0, True
        if self._head_timer is None:
            self._arm_head_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._fields += 1
        if self._fields > self.max_fields:
            raise _Refused(HeaderTooLargeError(
                f"the request has more than {self.max_fields} header fields; the limit is "
                f"{self.max_fields} (LLMREG_MAX_HEADERS)"))
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._unparsed, self._begun, self._body_open = 0, False, True
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._unparsed = 0
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._unparsed, self._body_open = 0, False
        if self._linger is not None:  # the rest arrived in time: the connection goes on
            self._linger.cancel()
            self._linger, self._lingered = None, 0
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._body_open and self._linger is None and not self.transport.is_closing():
            # Answered before the body was all in: drop the rest for a moment, then close.
            self._linger = self.loop.call_later(LINGER, self._hang_up)

    # -- refusals ------------------------------------------------------------------------

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_late)

    def _head_late(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if not self._begun and (self.cycle is None or self.cycle.response_complete):
            self._hang_up()  # nothing sent: nothing to answer
            return
        self._refuse(RequestTimeoutError(
            f"the request line and headers were not complete within {self.head_timeout:g}s "
            "(LLMREG_HEADER_TIMEOUT)"))

    def _refuse(self, error: LLMRegError) -> None:
        """Answer ``error`` and close. A request whose answer is under way or sent (its
        body's framing or trailers went over a bound) is cut instead: one request, one
        answer."""
        self._refused = True
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if self.transport.is_closing():
            return
        if self._body_open or (self.cycle is not None and not self.cycle.response_complete):
            # About a body whose request is answered or being answered: cut, not answered.
            self._hang_up()
            return
        self.transport.write(refusal(error, self.server_state.default_headers))
        if self.transport.can_write_eof():
            # Half-close after the answer and keep reading for a moment, so the client
            # reads the answer instead of a reset for the bytes it is still sending.
            self.transport.write_eof()
            if self._linger is None:
                self._linger = self.loop.call_later(LINGER, self._hang_up)
        else:
            self.transport.close()

    def _hang_up(self) -> None:
        self._linger = None
        if not self.transport.is_closing():
            self.transport.close()
