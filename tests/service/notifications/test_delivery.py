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
    # docs/security.md: one delivery attempt, 5 s to connect, 10 s per read or write, 30 s
    # in all; the lease a claim holds is twice that, so an attempt never outlives it.
    from llmreg.service.notifications.notify import LEASE

    assert (delivery.CONNECT_TIMEOUT, delivery.TIMEOUT, delivery.DEADLINE) == (5.0, 10.0, 30.0)
    assert LEASE.total_seconds() == 2 * delivery.DEADLINE
    assert (delivery.PARALLEL, delivery.POLL, delivery.MAX_ANSWER) == (8, 0.5, 1024)


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
    monkeypatch.setattr(delivery, "time", SimpleNamespace(time=lambda: later,
                                                         monotonic=time.monotonic))
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


# -- the total deadline: receivers that drip -------------------------------------------

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"
TLS_RECORD = b"\x16\x03\x03\x00\x80"  # a TLS handshake record of 128 bytes, to come


@contextmanager
def dripping(first: bytes, drip: bytes, every: float = 0.2) -> Iterator[int]:
    """A receiver on 127.0.0.1 that reads the request, sends ``first`` at once, then one
    byte of ``drip`` (repeated forever) every ``every`` seconds; stopped on exit."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                conn.sendall(first)
                i = 0
                while not stop.wait(every):
                    conn.sendall(drip[i % len(drip):i % len(drip) + 1])
                    i += 1
            except OSError:
                return

    def accept() -> None:
        while True:
            try:
                conn = server.accept()[0]
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        server.close()


@pytest.mark.parametrize(("scheme", "first", "drip"), [
    ("http", b"", b"HTTP/1.1 200 OK\r\n"),  # the status line, a byte at a time
    ("http", b"HTTP/1.1 200 OK\r\n", b"x-slow: yes\r\n"),  # endless headers
    ("http", HEAD, b"a"),  # a body that never completes
    ("http", b"HTTP/1.1 500 Boom\r\ntransfer-encoding: chunked\r\n\r\n", b"1\r\na\r\n"),
    ("https", TLS_RECORD, b"\x02"),  # a TLS handshake that never completes
], ids=["status-line", "headers", "body", "chunked-body", "tls-handshake"])
def test_a_dripping_receiver_fails_the_attempt_at_its_deadline(
        monkeypatch: pytest.MonkeyPatch, scheme: str, first: bytes, drip: bytes) -> None:
    """Each byte comes well inside the per-read timeout (10 s), so only the attempt's
    total deadline can end it."""
    monkeypatch.setattr(delivery, "DEADLINE", 1.0)
    with dripping(first, drip) as port:
        outcome, took = attempt(f"{scheme}://127.0.0.1:{port}/hook")
    assert not outcome.ok and outcome.status is None
    assert outcome.error == ("the receiver took longer than 1 s, the attempt's deadline (it "
                             "answers too slowly)")
    assert 0.9 < took < 3


def test_an_endless_fast_answer_is_read_only_up_to_its_cap() -> None:
    with dripping(b"HTTP/1.1 503 Busy\r\ncontent-length: 99999999\r\n\r\n" + b"z" * 5000,
                  b"z", every=0.01) as port:
        outcome, took = attempt(f"http://127.0.0.1:{port}/hook")
    assert (outcome.ok, outcome.status) == (False, 503)
    assert outcome.error == "HTTP 503: " + "z" * 200
    assert took < 3


def test_the_deadline_backend_cuts_every_wait_to_the_time_left(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(delivery, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    backend = delivery.DeadlineBackend(30.0)
    assert backend.left(None) == 30.0 and backend.left(10.0) == 10.0
    assert not backend.expired()
    clock[0] = 125.0
    assert backend.left(10.0) == 5.0 and backend.left(None) == 5.0
    clock[0] = 130.0
    assert backend.expired()
    with pytest.raises(TimeoutError, match="deadline has passed"):
        backend.left(10.0)


# -- dispatch: one slow receiver delays no other ----------------------------------------

def jobs_for(*webhooks: int) -> list[Job]:
    at = datetime.now(UTC)
    return [Job(delivery_id=i, attempt=1, message_id=f"m{i}", url="", format="cloudevents",
                secret=SECRET, event=job("", at=at).event, webhook_id=w)
            for i, w in enumerate(webhooks, start=1)]


def test_dispatch_records_a_fast_delivery_while_a_slow_one_is_in_flight() -> None:
    slow_may_end = threading.Event()
    pending = jobs_for(1, 2)
    later = jobs_for(1, 2, 3)[2]
    recorded: list[tuple[int, float]] = []
    asked: list[tuple[int, frozenset[int]]] = []
    started = time.monotonic()

    def claim(n: int, busy: frozenset[int]) -> list[Job]:
        asked.append((n, busy))
        if pending:
            out, pending[:] = pending[:n], pending[n:]
            return out
        if recorded and later.delivery_id not in [r[0] for r in recorded] \
                and 3 not in busy:
            return [later]  # fell due while the slow one is still in flight
        return []

    def send_one(j: Job) -> Outcome:
        if j.webhook_id == 1:
            slow_may_end.wait(10)
        return Outcome(ok=True)

    def record(j: Job, out: Outcome) -> None:
        recorded.append((j.delivery_id, time.monotonic() - started))
        if j.delivery_id == 3:
            slow_may_end.set()

    assert delivery.dispatch(claim, record, send_one, limit=10) == 3
    assert [r[0] for r in recorded] == [2, 3, 1]
    assert recorded[1][1] < 2  # the late one went out within a poll or two, not after 10 s
    assert asked[0] == (8, frozenset())
    assert all(1 in busy for _, busy in asked[1:-1])  # the slow webhook is never claimed twice


def test_dispatch_keeps_to_its_limit_and_its_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery, "PARALLEL", 3)
    supply = iter(jobs_for(*range(1, 100)))
    asked: list[int] = []
    lock = threading.Lock()
    now_running = [0, 0]  # current, most at once

    def claim(n: int, busy: frozenset[int]) -> list[Job]:
        asked.append(n)
        return [next(supply) for _ in range(n)]

    def send_one(j: Job) -> Outcome:
        with lock:
            now_running[0] += 1
            now_running[1] = max(now_running[1], now_running[0])
        time.sleep(0.01)
        with lock:
            now_running[0] -= 1
        return Outcome(ok=False, error="x")

    outcomes: list[Outcome] = []
    assert delivery.dispatch(claim, lambda j, o: outcomes.append(o), send_one, limit=7) == 7
    assert len(outcomes) == 7 and now_running[1] == 3
    assert asked[0] == 3 and max(asked) == 3 and sum(asked) == 7 and 0 not in asked


def test_dispatch_ends_at_once_when_nothing_is_due() -> None:
    started = time.monotonic()
    assert delivery.dispatch(lambda n, busy: [], lambda j, o: None,
                             lambda j: Outcome(ok=True), limit=5) == 0
    assert time.monotonic() - started < delivery.POLL
