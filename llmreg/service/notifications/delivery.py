"""Sending one webhook delivery: the body, the Standard Webhooks signature, the pinned
connection, and the backoff after a failure.

Each attempt re-checks the URL with the SSRF guard and connects to the address it
checked (the ``Host`` header and TLS SNI carry the real host name, so certificates
are verified against it). Redirects are not followed (a 3xx is a failure), proxies
from the environment are ignored (they would bypass the pinning), and at most
:data:`MAX_ANSWER` bytes of the answer are read.

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
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from llmreg._version import __version__
from llmreg.db.models import OutboxEvent
from llmreg.errors import InvalidWebhookError, MissingDependencyError
from llmreg.service.notifications.netguard import Resolver, check_url
from llmreg.service.notifications.outbox import cloudevent, slack_message

CONNECT_TIMEOUT = 5.0
TIMEOUT = 10.0  # seconds for the whole exchange is bounded by these per phase
MAX_ANSWER = 1024  # bytes of a receiver's answer read (for the error message)
BASE_BACKOFF = timedelta(seconds=2)
MAX_BACKOFF = timedelta(hours=6)
PARALLEL = 8


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
    """Make one attempt of ``job``: check, pin, sign, POST, read a little of the answer.

    ``verify``: the TLS trust (default: the system's CAs), checked against the URL's
    host name even though the connection goes to the pinned address.
    """
    import httpx

    try:
        target = check_url(job.url, allow_hosts=allow_hosts, resolver=resolver)
    except InvalidWebhookError as exc:
        return Outcome(ok=False, error=str(exc)[:500])
    if verify is True:
        verify = _system_trust()
    body = body_of(job)
    headers = signed_headers(job, body, datetime.fromtimestamp(time.time(), UTC))
    headers["host"] = target.host_header
    extensions = {"sni_hostname": target.sni} if target.sni else {}
    timeout = httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT)
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False,
                          verify=verify) as client, \
                client.stream("POST", target.pinned_url, content=body, headers=headers,
                              extensions=extensions) as answer:
            head = b""
            for chunk in answer.iter_raw():
                head += chunk
                if len(head) >= MAX_ANSWER:
                    break
            status = answer.status_code
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
        return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= status < 300:
        return Outcome(ok=True, status=status)
    text = head[:MAX_ANSWER].decode("utf-8", "replace").strip()
    why = "redirect not followed" if 300 <= status < 400 else text[:200]
    return Outcome(ok=False, status=status, error=f"HTTP {status}" + (f": {why}" if why else ""))


@functools.lru_cache(maxsize=1)
def _system_trust() -> ssl.SSLContext:
    """The default TLS context, built once: loading the CA bundle takes ~0.4 s here, far
    more than a delivery."""
    import httpx

    return httpx.create_ssl_context()


def send_all(jobs: Sequence[Job], *, allow_hosts: Iterable[str], resolver: Resolver,
             verify: ssl.SSLContext | bool = True) -> list[Outcome]:
    """Send ``jobs`` a few at a time; the outcomes in the same order."""
    hosts = list(allow_hosts)

    def one(job: Job) -> Outcome:
        return send(job, allow_hosts=hosts, resolver=resolver, verify=verify)

    if len(jobs) == 1:
        return [one(jobs[0])]
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(jobs))) as pool:
        return list(pool.map(one, jobs))
