"""What one delivery puts on the wire, exactly (body bytes, header names, content type),
the backoff's bounds, how ``dispatch`` fans out (at most PARALLEL at once, each outcome
recorded as it ends, never past its limit), and TLS verified unless told otherwise."""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from llmreg._version import __version__
from llmreg.db.models import OutboxEvent
from llmreg.service.notifications import delivery
from llmreg.service.notifications.delivery import (
    BASE_BACKOFF,
    MAX_BACKOFF,
    PARALLEL,
    Job,
    Outcome,
    backoff,
    body_of,
    dispatch,
    send,
    signed_headers,
)
from llmreg.service.notifications.netguard import system_resolver
from tests.receiver import Receiver

SECRET = "whsec_" + base64.b64encode(b"w" * 32).decode()
AT = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def job(url: str = "http://127.0.0.1:9/", fmt: str = "cloudevents", i: int = 1) -> Job:
    event = OutboxEvent(id=i, event_id=f"{i:032x}", type="promotion", name="résumé-bot",
                        data={"env": "production", "version": 2, "reason": "naïve → ok"},
                        at=AT)
    return Job(delivery_id=i, attempt=1, message_id=f"msg_{i}", url=url, format=fmt,
               secret=SECRET, event=event, webhook_id=i)


# --- the body and the headers ------------------------------------------------------


@pytest.mark.parametrize("fmt", ["cloudevents", "slack"])
def test_the_body_is_compact_utf8_json(fmt: str) -> None:
    body = body_of(job(fmt=fmt))
    payload = json.loads(body)
    assert body == json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert len(body) < len(json.dumps(payload, ensure_ascii=False).encode())  # compact
    assert "résumé-bot".encode() in body and b"\\u" not in body  # UTF-8, not \u escapes


@pytest.mark.parametrize(("fmt", "kind"), [("cloudevents", "application/cloudevents+json"),
                                           ("slack", "application/json")])
def test_the_headers_are_the_standard_webhooks_ones_in_their_exact_names(
        fmt: str, kind: str) -> None:
    j = job(fmt=fmt)
    body = body_of(j)
    headers = signed_headers(j, body, AT)
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature",
                            "content-type", "user-agent"}
    assert headers["content-type"] == kind
    assert headers["user-agent"] == f"llmreg/{__version__}"
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-timestamp"] == str(int(AT.timestamp()))
    assert headers["webhook-signature"].startswith("v1,")


# --- the backoff ---------------------------------------------------------------------


@pytest.mark.parametrize("attempts", [1, 2, 5, 12, 13, 30, 31, 32, 200])
def test_the_backoff_is_between_half_and_all_of_the_capped_doubling(
        attempts: int, monkeypatch: pytest.MonkeyPatch) -> None:
    full = min(MAX_BACKOFF.total_seconds(),
               BASE_BACKOFF.total_seconds() * 2 ** (attempts - 1))
    monkeypatch.setattr(delivery.random, "random", lambda: 0.0)
    assert backoff(attempts).total_seconds() == pytest.approx(full / 2)
    monkeypatch.setattr(delivery.random, "random", lambda: 0.999999)
    assert backoff(attempts).total_seconds() == pytest.approx(full, rel=1e-5)


def test_the_doubling_stops_growing_past_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exponent is capped at 30 and then the 6 h ceiling applies: with the ceiling
    lifted, attempt 31 and attempt 32 wait as long as attempt 31 (2 s x 2^30)."""
    monkeypatch.setattr(delivery, "MAX_BACKOFF", timedelta(days=10**6))
    monkeypatch.setattr(delivery.random, "random", lambda: 1.0)
    assert backoff(31).total_seconds() == BASE_BACKOFF.total_seconds() * 2 ** 30
    assert backoff(32) == backoff(31) == backoff(500)
    assert backoff(0) == backoff(1) == BASE_BACKOFF


# --- fan-out -------------------------------------------------------------------------


class _Slow(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True


def test_dispatch_sends_at_most_parallel_at_once_and_records_each_outcome() -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            nonlocal active, peak
            self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.4)
            with lock:
                active -= 1
            status = 204 if self.path.endswith("/ok") else 500
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = _Slow(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    count = PARALLEL + 4
    base = f"http://127.0.0.1:{server.server_address[1]}"
    queue = [job(f"{base}/{i}/{'ok' if i % 3 else 'no'}", i=i) for i in range(1, count + 1)]
    asked: list[tuple[int, frozenset[int]]] = []
    recorded: dict[int, Outcome] = {}

    def claim(n: int, busy: frozenset[int]) -> list[Job]:
        asked.append((n, busy))
        out, queue[:] = queue[:n], queue[n:]
        return out

    try:
        made = dispatch(claim, lambda j, o: recorded.__setitem__(j.delivery_id, o),
                        lambda j: send(j, allow_hosts=["127.0.0.1"],
                                       resolver=system_resolver), limit=count - 1)
    finally:
        server.shutdown()
        server.server_close()
    assert made == count - 1 and len(recorded) == count - 1  # the limit holds
    assert peak == PARALLEL
    assert asked[0] == (PARALLEL, frozenset())
    assert all(n <= PARALLEL and len(busy) + n <= PARALLEL for n, busy in asked)
    assert any(busy for _, busy in asked)  # asked again while others were in flight
    assert {i: (o.ok, o.status) for i, o in recorded.items()} == {
        i: (bool(i % 3), 204 if i % 3 else 500) for i in range(1, count)}


def test_send_verifies_tls_unless_given_a_trust() -> None:
    """A receiver whose certificate no system CA signed is refused by default, and
    accepted with a context that trusts its CA."""
    import trustme

    ca = trustme.CA()
    receiver = Receiver().start()
    assert receiver._server is not None
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    receiver._server.socket = server_ctx.wrap_socket(receiver._server.socket,
                                                     server_side=True)
    try:
        j = job(f"https://127.0.0.1:{receiver.port}/in")
        refused = send(j, allow_hosts=["127.0.0.1"], resolver=system_resolver)
        assert not refused.ok and "certificate" in (refused.error or "").lower()
        trusted = ssl.create_default_context()
        ca.configure_trust(trusted)
        sent = send(j, allow_hosts=["127.0.0.1"], resolver=system_resolver, verify=trusted)
        assert sent.ok and len(receiver.received()) == 1
    finally:
        receiver.stop()
