"""Sending one webhook delivery: the body, the Standard Webhooks signature, the pinned
connection, and the backoff after a failure.

Each attempt re-checks the URL with the SSRF guard and connects to the address it
checked (the ``Host`` header and TLS SNI carry the real host name, so certificates
are verified against it). Redirects are not followed (a 3xx is a failure), proxies
from the environment are ignored (they would bypass the pinning), and at most
:data:`MAX_ANSWER` bytes of the answer are read.

An attempt ends by its :data:`DEADLINE` whatever the receiver does: every socket
operation (connect, TLS handshake, each write and read) waits at most for the time the
attempt has left, so a receiver that drips a byte every few seconds (in its status
line, its headers, its body or its TLS handshake) fails the attempt at the deadline,
well inside the delivery's lease. :func:`dispatch` sends each delivery on its own
worker as soon as it is claimed and records it as soon as it ends, with at most one
delivery per webhook in flight, so a slow receiver holds one worker and delays no other.

Example:
    >>> from datetime import timedelta
    >>> timedelta(seconds=1) <= backoff(1) <= timedelta(seconds=2)
    True
    >>> backoff(40) <= MAX_BACKOFF
    True
"""

from __future__ import annotations

import functools
import json
import random
import ssl
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from llmreg._version import __version__
from llmreg.db.models import OutboxEvent
from llmreg.errors import InvalidWebhookError, MissingDependencyError
from llmreg.service.notifications.netguard import Resolver, check_url
from llmreg.service.notifications.outbox import cloudevent, slack_message

if TYPE_CHECKING:
    import httpcore

CONNECT_TIMEOUT = 5.0  # seconds to connect
TIMEOUT = 10.0  # seconds one read or write may wait
DEADLINE = 30.0  # seconds for the whole attempt, whatever the receiver does (< the lease)
MAX_ANSWER = 1024  # bytes of a receiver's answer read (for the error message)
BASE_BACKOFF = timedelta(seconds=2)
MAX_BACKOFF = timedelta(hours=6)
PARALLEL = 8  # deliveries in flight at once, at most one per webhook
POLL = 0.5  # seconds between looks for newly due deliveries while others are in flight


@dataclass(frozen=True)
class Job:
    """One claimed attempt: which delivery, which attempt, and what to send where."""

    delivery_id: int
    attempt: int
    message_id: str
    url: str
    format: str
    secret: str
    event: OutboxEvent
    webhook_id: int = 0


@dataclass(frozen=True)
class Outcome:
    """What one attempt got: ``ok`` for a 2xx answer; else the status and/or error."""

    ok: bool
    status: int | None = None
    error: str | None = None


def backoff(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed attempts: exponential, capped, with jitter
    (between half and all of ``2 s × 2^(attempts-1)``, at most 6 h)."""
    full = min(MAX_BACKOFF.total_seconds(),
               BASE_BACKOFF.total_seconds() * 2 ** min(max(attempts, 1) - 1, 30))
    return timedelta(seconds=full * (0.5 + random.random() / 2))


def body_of(job: Job) -> bytes:
    """The request body: CloudEvents structured JSON, or a Slack message."""
    payload = slack_message(job.event) if job.format == "slack" else cloudevent(job.event)
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def signed_headers(job: Job, body: bytes, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of ``body`` sent at ``at`` (plus content type).

    Example:
        >>> from datetime import UTC, datetime
        >>> job = Job(delivery_id=1, attempt=1, message_id="msg_x", url="", format="slack",
        ...           secret="whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", event=None)
        >>> h = signed_headers(job, b'{"text":"hi"}', datetime(2026, 1, 1, tzinfo=UTC))
        >>> h["webhook-id"], h["webhook-timestamp"], h["webhook-signature"][:3]
        ('msg_x', '1767225600', 'v1,')
    """
    try:
        from standardwebhooks.webhooks import Webhook
    except ImportError:  # pragma: no cover - the server and webhooks extras install it
        raise MissingDependencyError(
            "webhook delivery needs the standardwebhooks package; "
            "pip install 'llmreg[webhooks]'") from None
    signature = Webhook(job.secret).sign(job.message_id, at, body.decode())
    kind = "application/json" if job.format == "slack" else "application/cloudevents+json"
    return {"webhook-id": job.message_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
            "content-type": kind,
            "user-agent": f"llmreg/{__version__}"}


def send(job: Job, *, allow_hosts: Iterable[str], resolver: Resolver,
         verify: ssl.SSLContext | bool = True) -> Outcome:
    """Make one attempt of ``job``: check, pin, sign, POST, read a little of the answer,
    all within :data:`DEADLINE` seconds.

    ``verify``: the TLS trust (default: the system's CAs), checked against the URL's
    host name even though the connection goes to the pinned address.

    Example:
        >>> send(Job(delivery_id=1, attempt=1, message_id="msg_x", url="http://10.0.0.1/",
        ...          format="slack", secret="whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ...          event=None), allow_hosts=(), resolver=lambda h, p: []).error
        "url 'http://10.0.0.1/': host 10.0.0.1 is a private address (10.0.0.1); ..."
    """
    import httpcore

    try:
        target = check_url(job.url, allow_hosts=allow_hosts, resolver=resolver)
    except InvalidWebhookError as exc:
        return Outcome(ok=False, error=str(exc)[:500])
    context = tls_context(verify) if target.scheme == "https" else None
    body = body_of(job)
    headers = signed_headers(job, body, datetime.fromtimestamp(time.time(), UTC))
    headers["host"] = target.host_header
    headers["content-length"] = str(len(body))
    extensions: dict[str, Any] = {"timeout": {"connect": CONNECT_TIMEOUT, "read": TIMEOUT,
                                              "write": TIMEOUT}}
    if target.sni:
        extensions["sni_hostname"] = target.sni
    backend = DeadlineBackend(DEADLINE)
    try:
        network = cast("httpcore.NetworkBackend", backend)
        with httpcore.ConnectionPool(ssl_context=context, network_backend=network) as pool, \
                pool.stream("POST", target.pinned_url, headers=list(headers.items()),
                            content=body, extensions=extensions) as answer:
            head = b""
            for chunk in answer.iter_stream():
                head += chunk
                if len(head) >= MAX_ANSWER:
                    break
            status = answer.status
    except (httpcore.TimeoutException, TimeoutError) as exc:
        if backend.expired():
            return Outcome(ok=False, error=f"the receiver took longer than {DEADLINE:g} s, "
                                           "the attempt's deadline (it answers too slowly)")
        return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol,
            OSError, ValueError) as exc:
        return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= status < 300:
        return Outcome(ok=True, status=status)
    text = head[:MAX_ANSWER].decode("utf-8", "replace").strip()
    why = "redirect not followed" if 300 <= status < 400 else text[:200]
    return Outcome(ok=False, status=status, error=f"HTTP {status}" + (f": {why}" if why else ""))


class DeadlineBackend:
    """An httpcore network backend whose every socket operation waits at most for the time
    left before one deadline, so the whole exchange ends by it (httpcore's own timeouts
    are per operation: a byte every few seconds would reset them forever).

    Example:
        >>> backend = DeadlineBackend(0.0)
        >>> backend.expired()
        True
        >>> backend.left(10.0)
        Traceback (most recent call last):
        ...
        TimeoutError: the attempt's deadline has passed
    """

    def __init__(self, seconds: float) -> None:
        import httpcore

        self.inner = httpcore.SyncBackend()
        self.at = time.monotonic() + seconds

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return time.monotonic() >= self.at

    def left(self, timeout: float | None) -> float:
        """``timeout`` cut to the time left; :class:`TimeoutError` once none is left."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise TimeoutError("the attempt's deadline has passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[Any] | None = None) -> _DeadlineStream:
        """Connect within the time left."""
        stream = self.inner.connect_tcp(host, port, timeout=self.left(timeout),
                                        local_address=local_address,
                                        socket_options=socket_options)
        return _DeadlineStream(stream, self)


class _DeadlineStream:
    """A network stream whose reads, writes and TLS handshake end by the backend's
    deadline."""

    def __init__(self, inner: Any, backend: DeadlineBackend) -> None:
        self.inner = inner
        self.backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = self.inner.read(max_bytes, timeout=self.backend.left(timeout))
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, timeout=self.backend.left(timeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> _DeadlineStream:
        tls = self.inner.start_tls(ssl_context, server_hostname=server_hostname,
                                   timeout=self.backend.left(timeout))
        return _DeadlineStream(tls, self.backend)

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


def tls_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    """The TLS context of a delivery: the system's trust (True), none (False: tests
    only), or the context given (a test CA).

    Example:
        >>> tls_context(False).verify_mode == ssl.CERT_NONE
        True
    """
    if verify is True:
        return _system_trust()
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return verify


@functools.lru_cache(maxsize=1)
def _system_trust() -> ssl.SSLContext:
    """The default TLS context, built once: loading the CA bundle takes ~0.4 s here, far
    more than a delivery."""
    import httpx

    return httpx.create_ssl_context()


def dispatch(claim: Callable[[int, frozenset[int]], list[Job]],
             record: Callable[[Job, Outcome], None], send_one: Callable[[Job], Outcome], *,
             limit: int) -> int:
    """Send what ``claim`` hands out, each on its own worker, and ``record`` each outcome
    as soon as its attempt ends; return how many attempts were made (at most ``limit``).

    ``claim(n, busy)`` claims at most ``n`` deliveries, none for a webhook in ``busy``
    (those with an attempt in flight) and at most one per webhook. It is asked again
    whenever a worker is free, and every :data:`POLL` seconds while attempts are in
    flight, so a delivery that falls due meanwhile goes out at once: a receiver that
    takes its whole :data:`DEADLINE` holds one worker and delays no other receiver.

    Example:
        >>> jobs = [Job(delivery_id=i, attempt=1, message_id=f"m{i}", url="", format="slack",
        ...             secret="", event=None, webhook_id=i) for i in (1, 2)]
        >>> done = []
        >>> dispatch(lambda n, busy: [jobs.pop() for _ in range(min(n, len(jobs)))],
        ...          lambda job, out: done.append((job.delivery_id, out.ok)),
        ...          lambda job: Outcome(ok=True), limit=10)
        2
        >>> sorted(done)
        [(1, True), (2, True)]
    """
    made = 0
    running: dict[Future[Outcome], Job] = {}
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        while True:
            free = min(PARALLEL - len(running), limit - made)
            if free > 0:
                busy = frozenset(job.webhook_id for job in running.values())
                for job in claim(free, busy):
                    running[pool.submit(send_one, job)] = job
                    made += 1
            if not running:
                return made
            done, _ = wait(running, timeout=POLL, return_when=FIRST_COMPLETED)
            for future in done:
                record(running.pop(future), future.result())
