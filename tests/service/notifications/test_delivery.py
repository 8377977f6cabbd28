"""One delivery attempt (``delivery.send``) against real sockets on 127.0.0.1: it ends at
its deadlines whatever the receiver does, and it is signed when it is sent, not when the
event happened."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from standardwebhooks import Webhook as Verifier

from llmreg.db.models import OutboxEvent
from llmreg.service.notifications import delivery
from llmreg.service.notifications.delivery import Job, Outcome, send
from llmreg.service.notifications.netguard import system_resolver
from tests.receiver import Receiver

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
LOCAL = ["127.0.0.1"]


def job(url: str, *, at: datetime) -> Job:
    event = OutboxEvent(id=1, event_id="e" * 32, type="promotion", name="chat",
                        data={"env": "production", "version": 2}, at=at)
    return Job(delivery_id=1, attempt=1, message_id="msg_e_1", url=url, format="cloudevents",
               secret=SECRET, event=event)


def attempt(url: str, *, limit: float = 20) -> tuple[Outcome, float]:
    """One attempt in a thread; fails the test if it is still going after ``limit`` s."""
    result: list[Outcome] = []
    start = time.monotonic()
    worker = threading.Thread(target=lambda: result.append(
        send(job(url, at=datetime.now(UTC)), allow_hosts=LOCAL, resolver=system_resolver)),
        daemon=True)
    worker.start()
    worker.join(limit)
    assert not worker.is_alive(), f"the attempt was still waiting after {limit:g} s"
    return result[0], time.monotonic() - start


@contextmanager
def silent_receiver() -> Iterator[int]:
    """A port that accepts connections and never answers (closed on exit)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
        for conn in held:
            conn.close()


@contextmanager
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full: a new connection is never established."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    queued = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(("127.0.0.1", port))
        queued.append(c)
    time.sleep(0.2)
    try:
        yield port
    finally:
        for c in queued:
            c.close()
        server.close()


def test_the_deadlines_are_the_documented_ones() -> None:
    # docs/security.md: one delivery attempt, 5 s to connect, 10 s per read or write;
    # the lease a claim holds is longer than that.
    from llmreg.service.notifications.notify import LEASE

    assert (delivery.CONNECT_TIMEOUT, delivery.TIMEOUT) == (5.0, 10.0)
    assert LEASE.total_seconds() > delivery.CONNECT_TIMEOUT + 2 * delivery.TIMEOUT


def test_a_receiver_that_never_answers_fails_the_attempt_at_the_read_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "TIMEOUT", 0.5)
    with silent_receiver() as port:
        outcome, took = attempt(f"http://127.0.0.1:{port}/hook")
    assert (outcome.ok, outcome.status) == (False, None)
    assert outcome.error is not None and outcome.error.startswith("ReadTimeout")
    assert 0.4 < took < 5


def test_a_connection_never_accepted_fails_the_attempt_at_the_connect_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "CONNECT_TIMEOUT", 0.5)
    monkeypatch.setattr(delivery, "TIMEOUT", 60.0)
    with full_backlog() as port:
        outcome, took = attempt(f"http://127.0.0.1:{port}/hook")
    assert (outcome.ok, outcome.status) == (False, None)
    assert outcome.error is not None and outcome.error.startswith("ConnectTimeout")
    assert 0.4 < took < 5


def test_the_signature_is_made_at_send_time_not_at_the_event_time(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """An event that waited an hour (a receiver down, a backlog) is signed with the time
    it is sent: receivers refuse signatures older than a few minutes (replay)."""
    happened = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    before = int(time.time())
    assert send(job(receiver.url, at=happened), allow_hosts=LOCAL,
                resolver=system_resolver).ok
    after = time.time()
    # A retry two minutes later signs again, with its own time and the same id.
    later = after + 120
    monkeypatch.setattr(delivery, "time", SimpleNamespace(time=lambda: later))
    assert send(job(receiver.url, at=happened), allow_hosts=LOCAL,
                resolver=system_resolver).ok
    first, retry = receiver.received()
    assert before <= int(first.headers["webhook-timestamp"]) <= after
    assert int(retry.headers["webhook-timestamp"]) == int(later)
    assert first.headers["webhook-signature"] != retry.headers["webhook-signature"]
    assert first.headers["webhook-id"] == retry.headers["webhook-id"] == "msg_e_1"
    for got in (first, retry):
        Verifier(SECRET).verify(got.body, got.headers)  # within its 5-minute tolerance
        assert json.loads(got.body)["time"] == happened.isoformat().replace("+00:00", "Z")
