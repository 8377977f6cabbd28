"""Webhook delivery from the service to a real receiver on 127.0.0.1 (allow-listed):
signatures verified with the standardwebhooks package, retries keep the webhook-id,
backoff, dead letters, redelivery, and safe claims by concurrent workers."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import col, select
from standardwebhooks import Webhook as Verifier

from llmreg.bundle.schema import Bundle
from llmreg.db.models import Delivery, OutboxEvent, utcnow
from llmreg.errors import InvalidRefError, InvalidWebhookError, RefNotFoundError
from llmreg.policy import Policy, Webhooks
from llmreg.service import RegistryService
from llmreg.service.notifications import delivery as delivery_mod
from llmreg.service.notifications import outbox
from llmreg.service.notifications.notify import LEASE, Notify
from llmreg.types import Actor
from tests.conftest import minimal
from tests.receiver import Receiver

ANA = Actor("ana")


def local_policy(**kw: object) -> Policy:
    return Policy.default().model_copy(
        update={"webhooks": Webhooks(allow_hosts=["127.0.0.1"], **kw)})  # type: ignore[arg-type]


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[RegistryService]:
    service = RegistryService.open_home(tmp_path / "reg", policy=local_policy(max_attempts=3))
    yield service
    service.close()


def promote_one(svc: RegistryService, i: int = 1) -> str:
    bundle = Bundle.from_dict(minimal(system_prompt=f"variant {i}"))
    ref = svc.versions.register(bundle, name="chat", message="m", author="ana").version.ref
    svc.lifecycle.promote(ref, "staging", actor=ANA, reason="try")
    return ref


def test_a_promotion_arrives_signed_as_a_cloudevent(svc: RegistryService,
                                                    receiver: Receiver) -> None:
    hook = svc.notify.add(receiver.url, ["promotion"], actor=ANA)
    assert hook.secret is not None and hook.secret.startswith("whsec_")
    assert all(h.secret is None for h in svc.notify.list_webhooks())
    promote_one(svc)
    assert svc.notify.deliver_due() == 1
    assert svc.notify.deliver_due() == 0  # nothing is due twice
    (got,) = receiver.received()
    event = Verifier(hook.secret).verify(got.body, got.headers)
    assert event["type"] == "dev.llmreg.promotion" and event["subject"] == "chat"
    assert event["data"]["env"] == "staging" and event["data"]["version"] == 1
    assert got.headers["content-type"] == "application/cloudevents+json"
    assert got.headers["webhook-id"] == f"msg_{event['id']}_{hook.id}"
    assert got.path == "/hook"
    (d,) = svc.notify.deliveries()
    assert (d.status, d.attempts, d.last_status, d.event) == ("delivered", 1, 204, "promotion")
    with pytest.raises(Exception, match="No matching signature"):
        Verifier("whsec_" + "A" * 44).verify(got.body, got.headers)


def test_slack_format_is_a_readable_message(svc: RegistryService, receiver: Receiver) -> None:
    hook = svc.notify.add(receiver.url, ["registration"], actor=ANA, format="slack")
    promote_one(svc)
    svc.notify.deliver_due()
    (got,) = receiver.received()
    assert json.loads(got.body) == {"text": ":package: *chat*: registration — name: chat, "
                                            "version: 1, digest: "
                                            + svc.versions.resolve("chat@1").digest
                                            + ", author: ana, message: m"}
    assert hook.secret is not None
    Verifier(hook.secret).verify(got.body, got.headers)


def test_a_down_receiver_gets_it_later_with_the_same_id(svc: RegistryService,
                                                        receiver: Receiver) -> None:
    hook = svc.notify.add(receiver.url, ["promotion"], actor=ANA)
    receiver.status = 503
    promote_one(svc)
    now = datetime.now(UTC)
    assert svc.notify.deliver_due(now) == 1
    (d,) = svc.notify.deliveries(failed=True)
    assert (d.status, d.attempts, d.last_status) == ("pending", 1, 503)
    assert d.last_error == "HTTP 503: ok"
    assert timedelta(seconds=1) <= d.next_at - now <= timedelta(seconds=2)
    assert svc.notify.deliver_due(now) == 0  # not due before its backoff
    receiver.status = 200
    assert svc.notify.deliver_due(now + timedelta(seconds=3)) == 1
    ids = {g.headers["webhook-id"] for g in receiver.received()}
    assert len(receiver.received()) == 2 and len(ids) == 1
    assert svc.notify.deliveries()[0].status == "delivered"
    assert svc.notify.deliveries(failed=True) == []
    assert hook.id == d.webhook_id


def test_after_the_retry_limit_it_is_dead_and_can_be_redelivered(
        svc: RegistryService, receiver: Receiver) -> None:
    svc.notify.add(receiver.url, ["promotion"], actor=ANA)
    receiver.status = 500
    promote_one(svc)
    now = datetime.now(UTC)
    for i in range(3):
        assert svc.notify.deliver_due(now + timedelta(hours=7 * i)) == 1
    (d,) = svc.notify.deliveries(failed=True)
    assert (d.status, d.attempts) == ("dead", 3)
    assert svc.notify.deliver_due(now + timedelta(days=9)) == 0
    receiver.status = 204
    again = svc.notify.redeliver(d.id, actor=ANA)
    assert (again.status, again.attempts, again.message_id) == ("pending", 0, d.message_id)
    assert svc.notify.deliver_due() == 1
    assert svc.notify.delivery(d.id).status == "delivered"
    assert len({g.headers["webhook-id"] for g in receiver.received()}) == 1
    assert [e.action for e in svc.audit.entries()][-1] == "webhook-redeliver"
    with pytest.raises(RefNotFoundError, match="no delivery 99"):
        svc.notify.redeliver(99, actor=ANA)
    with pytest.raises(RefNotFoundError, match="no delivery 99"):
        svc.notify.delivery(99)


def test_test_sends_once_now(svc: RegistryService, receiver: Receiver) -> None:
    hook = svc.notify.add(receiver.url, ["promotion"], actor=ANA)
    d = svc.notify.test(hook.id, actor=ANA)
    assert (d.event, d.status, d.last_status) == ("test", "delivered", 204)
    assert json.loads(receiver.received()[0].body)["type"] == "dev.llmreg.test"
    receiver.status = 500
    failed = svc.notify.test(hook.id, actor=ANA)
    assert (failed.status, failed.attempts, failed.last_error) == ("dead", 1, "HTTP 500: ok")
    with pytest.raises(RefNotFoundError, match="no webhook 42; see `llmreg webhook list`"):
        svc.notify.test(42, actor=ANA)


def test_removed_webhooks_get_nothing_more(svc: RegistryService, receiver: Receiver) -> None:
    hook = svc.notify.add(receiver.url, ["promotion"], actor=ANA)
    promote_one(svc)
    svc.notify.remove(hook.id, actor=ANA)
    assert svc.notify.deliver_due() == 0 and receiver.received() == []
    assert svc.notify.deliveries()[0].status == "dead"
    assert svc.notify.list_webhooks() == []
    with pytest.raises(RefNotFoundError):
        svc.notify.remove(hook.id, actor=ANA)
    with pytest.raises(RefNotFoundError):
        svc.notify.redeliver(1, actor=ANA)  # its webhook is gone


def test_a_webhook_removed_after_the_event_is_skipped_by_the_worker(
        svc: RegistryService, receiver: Receiver) -> None:
    hook = svc.notify.add(receiver.url, ["promotion"], actor=ANA)
    promote_one(svc)
    with svc.db.write() as s:  # removed by another replica, its deliveries untouched
        from llmreg.db.models import Webhook
        row = s.get(Webhook, hook.id)
        assert row is not None
        row.removed_at = datetime.now(UTC)
    assert svc.notify.deliver_due() == 0 and receiver.received() == []
    assert svc.notify.deliveries()[0].last_error == "the webhook was removed"


def test_bad_input_changes_nothing(svc: RegistryService) -> None:
    cases = [
        ((svc.notify.add, "http://127.0.0.1:9/x", ["promotion", "promoted"]),
         "--events: 'promoted' is not an event; use one or more of registration,"),
        ((svc.notify.add, "http://127.0.0.1:9/x", []), "--events is empty"),
        ((svc.notify.add, "http://10.0.0.8/x", ["promotion"]),
         "url 'http://10.0.0.8/x': host 10.0.0.8 is a private address"),
        ((svc.notify.add, "http://169.254.169.254/latest", ["promotion"]),
         "url 'http://169.254.169.254/latest': host 169.254.169.254 is a cloud metadata"),
    ]
    for (fn, url, events), message in cases:
        with pytest.raises(InvalidWebhookError) as info:
            fn(url, events, actor=ANA)
        assert str(info.value).startswith(message) and "\n" not in str(info.value)
    with pytest.raises(InvalidWebhookError, match="format 'teams' is not one of"):
        svc.notify.add("http://127.0.0.1:9/x", ["promotion"], actor=ANA, format="teams")
    assert svc.notify.list_webhooks() == []
    assert not any(e.action.startswith("webhook") for e in svc.audit.entries())


def test_the_number_of_webhooks_is_bounded(svc: RegistryService,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from llmreg.service.notifications import notify

    monkeypatch.setattr(notify, "MAX_WEBHOOKS", 2)
    for i in range(2):
        svc.notify.add(f"http://127.0.0.1:9/{i}", ["promotion"], actor=ANA)
    with pytest.raises(InvalidWebhookError, match="has 2 webhooks, the limit"):
        svc.notify.add("http://127.0.0.1:9/3", ["promotion"], actor=ANA)


def test_each_delivery_rechecks_the_address_and_never_connects_to_a_refused_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS rebinding: the name resolved to a public address at `add`, to a private one
    at delivery. The delivery is refused before any connection is opened."""
    answers = ["93.184.215.14"]
    service = RegistryService.open_home(tmp_path / "r", policy=local_policy())
    service.notify = Notify(service.db, service.policy,
                            resolver=lambda host, port: list(answers))
    service.notify.add("https://hooks.example.com/x", ["promotion"], actor=ANA)
    answers[:] = ["10.0.0.1"]

    def no_connection(*a: object, **k: object) -> None:
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(httpx, "Client", no_connection)
    promote_one(service)
    assert service.notify.deliver_due() == 1
    (d,) = service.notify.deliveries()
    assert d.status == "pending" and d.last_status is None
    assert d.last_error is not None and "is a private address (10.0.0.1)" in d.last_error
    service.close()


def test_redirects_are_not_followed(svc: RegistryService, receiver: Receiver) -> None:
    svc.notify.add(receiver.url, ["promotion"], actor=ANA)
    receiver.status = 302
    promote_one(svc)
    svc.notify.deliver_due()
    (d,) = svc.notify.deliveries()
    assert d.last_error == "HTTP 302: redirect not followed" and len(receiver.received()) == 1


def test_an_unreachable_receiver_is_a_failed_attempt(svc: RegistryService) -> None:
    closed = Receiver().start()
    closed.stop()  # nothing listens on this port now
    svc.notify.add(closed.url, ["promotion"], actor=ANA)
    promote_one(svc)
    svc.notify.deliver_due()
    (d,) = svc.notify.deliveries()
    assert d.status == "pending" and d.last_error is not None
    assert d.last_error.startswith("ConnectError")


def test_a_killed_worker_leaves_the_delivery_due_after_the_lease(
        svc: RegistryService, receiver: Receiver) -> None:
    svc.notify.add(receiver.url, ["promotion"], actor=ANA)
    promote_one(svc)
    now = datetime.now(UTC)
    claimed = svc.notify._claim(now, 10, None)  # claimed, then the process died
    assert len(claimed) == 1
    assert svc.notify.deliver_due(now + timedelta(seconds=1)) == 0  # still leased
    assert svc.notify.deliver_due(now + LEASE + timedelta(seconds=1)) == 1
    assert svc.notify.deliveries()[0].attempts == 2
    # The stale worker comes back and records its outcome: ignored.
    svc.notify._record(now, claimed, [delivery_mod.Outcome(ok=False, error="late")])
    assert svc.notify.deliveries()[0].status == "delivered"


def test_a_worker_whose_lease_ran_out_never_overwrites_the_newer_attempt(
        svc: RegistryService, tmp_path: Path) -> None:
    """Worker A's send outlives its lease; worker B (another replica) claims the delivery
    again and its attempt fails. A's late success must not mark it delivered (nor change
    its error, status or schedule): the newer attempt's outcome stands."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    first_in, release = threading.Event(), threading.Event()
    answers: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            self.rfile.read(int(self.headers.get("content-length", "0")))
            if not first_in.is_set():
                first_in.set()
                release.wait(30)
                status = 204  # A's attempt, answered long after its lease
            else:
                status = 503  # B's attempt
            answers.append(status)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    replica = RegistryService.open_home(tmp_path / "reg", policy=local_policy(max_attempts=3))
    try:
        svc.notify.add(f"http://127.0.0.1:{server.server_address[1]}/hook", ["promotion"],
                       actor=ANA)
        promote_one(svc)
        t0 = datetime.now(UTC)
        a = threading.Thread(target=svc.notify.deliver_due, args=(t0,))
        a.start()
        assert first_in.wait(30)
        assert replica.notify.deliver_due(t0 + LEASE + timedelta(seconds=1)) == 1
        newer = svc.notify.deliveries()[0]
        assert (newer.status, newer.attempts, newer.last_status) == ("pending", 2, 503)
        release.set()
        a.join(30)
        assert not a.is_alive()
        assert answers == [503, 204]
        assert svc.notify.deliveries()[0] == newer
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        replica.close()


def test_backoff_grows_with_jitter_and_a_cap() -> None:
    waits = [delivery_mod.backoff(n).total_seconds() for n in range(1, 20)]
    assert 1 <= waits[0] <= 2 and 2 <= waits[1] <= 4 and 512 <= waits[9] <= 1024
    assert max(waits) <= 6 * 3600
    assert len({delivery_mod.backoff(5) for _ in range(20)}) > 1  # jittered


def test_the_background_loop_delivers_and_stops(svc: RegistryService,
                                               receiver: Receiver) -> None:
    from llmreg.server.delivery_loop import DeliveryLoop

    svc.notify.add(receiver.url, ["promotion"], actor=ANA)
    loop = DeliveryLoop(svc, interval=0.05)
    loop.start()
    loop.start()  # once
    try:
        promote_one(svc)
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while not receiver.received() and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
    finally:
        loop.stop()
    assert len(receiver.received()) == 1


def test_a_failing_round_does_not_end_the_loop(svc: RegistryService,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    stop = threading.Event()

    def flaky(now: object = None, *, limit: int = 100) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database away")
        stop.set()
        return 0

    monkeypatch.setattr(svc.notify, "deliver_due", flaky)
    svc.notify.run(stop, interval=0.01)
    assert len(calls) == 2


@pytest.mark.postgres
@pytest.mark.flaky_prone
def test_concurrent_workers_claim_disjoint_deliveries_on_postgresql(
        tmp_path: Path, receiver: Receiver) -> None:
    from tests.pg import fresh_database

    for url in fresh_database():
        services = [RegistryService.open_home(tmp_path / f"r{i}", database_url=url,
                                              policy=local_policy()) for i in range(3)]
        services[0].notify.add(receiver.url, ["registration"], actor=ANA)
        for i in range(30):
            bundle = Bundle.from_dict(minimal(system_prompt=f"v{i}"))
            services[0].versions.register(bundle, name="chat", message="m", author="ana")
        made: list[int] = []
        barrier = threading.Barrier(3)

        def work(svc: RegistryService, barrier: threading.Barrier = barrier,
                 made: list[int] = made) -> None:
            barrier.wait()
            made.append(svc.notify.deliver_due(limit=100))

        try:
            threads = [threading.Thread(target=work, args=(s,)) for s in services]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert sum(made) == 30
            ids = [g.headers["webhook-id"] for g in receiver.received()]
            assert len(ids) == 30 and len(set(ids)) == 30
            with services[0].db.read() as s:
                assert {d.status for d in s.exec(select(Delivery)).all()} == {"delivered"}
        finally:
            for svc in services:
                svc.close()


@pytest.mark.flaky_prone
def test_concurrent_workers_on_sqlite_never_send_twice(tmp_path: Path,
                                                       receiver: Receiver) -> None:
    services = [RegistryService.open_home(tmp_path / "r", policy=local_policy())
                for _ in range(3)]
    services[0].notify.add(receiver.url, ["registration"], actor=ANA)
    for i in range(20):
        bundle = Bundle.from_dict(minimal(system_prompt=f"v{i}"))
        services[0].versions.register(bundle, name="chat", message="m", author="ana")
    threads = [threading.Thread(target=s.notify.deliver_due) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ids = [g.headers["webhook-id"] for g in receiver.received()]
    assert len(ids) == 20 and len(set(ids)) == 20
    for svc in services:
        svc.close()


def test_ids_out_of_range_name_nothing(svc: RegistryService) -> None:
    for bad in (0, -1, 2**63, 10**30):
        with pytest.raises(RefNotFoundError):
            svc.notify.remove(bad, actor=ANA)
        with pytest.raises(RefNotFoundError):
            svc.notify.redeliver(bad, actor=ANA)
        with pytest.raises(RefNotFoundError):
            svc.notify.delivery(bad)


def test_finished_history_is_pruned_after_thirty_days(svc: RegistryService,
                                                      receiver: Receiver) -> None:
    from llmreg.db.models import OutboxEvent

    svc.notify.add(receiver.url, ["promotion", "registration"], actor=ANA)
    promote_one(svc)  # a registration and a promotion
    now = datetime.now(UTC)
    assert svc.notify.deliver_due(now) == 2
    promotion = svc.notify.deliveries()[0]
    svc.notify.redeliver(promotion.id, actor=ANA)  # pending again
    assert svc.notify.prune(now + timedelta(days=29)) == 0
    assert svc.notify.prune(now + timedelta(days=31)) == 1  # the pending one stays
    with svc.db.read() as s:
        assert [e.type for e in s.exec(select(OutboxEvent)).all()] == ["promotion"]
    # deliver_due prunes by itself, at most once an hour, before it sends.
    svc.notify.deliver_due(now + timedelta(days=40))
    assert [(d.event, d.status) for d in svc.notify.deliveries()] == [("promotion",
                                                                       "delivered")]
    svc.notify.deliver_due(now + timedelta(days=40, minutes=30))
    assert len(svc.notify.deliveries()) == 1  # not an hour since the last prune
    svc.notify.deliver_due(now + timedelta(days=40, hours=2))
    assert svc.notify.deliveries() == []


def test_https_goes_to_the_checked_address_and_verifies_the_host_name(
        tmp_path: Path) -> None:
    """The connection is pinned to the address the guard checked (a fake resolver says
    hooks.test is 127.0.0.1), while TLS verifies the certificate against hooks.test."""
    import ssl

    import trustme

    ca = trustme.CA()
    receiver = Receiver()
    receiver.start()
    assert receiver._server is not None
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("hooks.test").configure_cert(server_ctx)
    receiver._server.socket = server_ctx.wrap_socket(receiver._server.socket,
                                                     server_side=True)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    asked: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    policy = Policy.default().model_copy(
        update={"webhooks": Webhooks(allow_hosts=["hooks.test", "other.test"])})
    service = RegistryService.open_home(tmp_path / "r", policy=policy)
    service.notify = Notify(service.db, policy, resolver=resolver, verify=client_ctx)
    try:
        good = service.notify.add(f"https://hooks.test:{receiver.port}/in", ["promotion"],
                                  actor=ANA)
        wrong = service.notify.add(f"https://other.test:{receiver.port}/in", ["promotion"],
                                   actor=ANA)
        promote_one(service)
        assert service.notify.deliver_due() == 2
        (got,) = receiver.received()  # only the host the certificate names
        assert got.headers["host"] == f"hooks.test:{receiver.port}" and got.path == "/in"
        assert good.secret is not None
        Verifier(good.secret).verify(got.body, got.headers)
        by_hook = {d.webhook_id: d for d in service.notify.deliveries()}
        assert by_hook[good.id].status == "delivered"
        assert "certificate" in (by_hook[wrong.id].last_error or "").lower()
        assert set(asked) == {"hooks.test", "other.test"}
    finally:
        service.close()
        receiver.stop()


# -- one slow receiver delays no other ----------------------------------------------------

def test_a_slow_receiver_holds_one_worker_and_delays_no_other(
        svc: RegistryService, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.service.notifications.test_delivery import HEAD, dripping

    monkeypatch.setattr(delivery_mod, "DEADLINE", 2.0)
    with dripping(HEAD, b"a", every=0.3) as port:
        slow = svc.notify.add(f"http://127.0.0.1:{port}/slow", ["promotion"], actor=ANA)
        fast = svc.notify.add(receiver.url, ["promotion"], actor=ANA)
        promote_one(svc)
        started = datetime.now(UTC)
        done: list[int] = []
        # A clock 5 s ahead: what is created during the test is due, retries are not.
        at = started + timedelta(seconds=5)
        worker = threading.Thread(target=lambda: done.append(svc.notify.deliver_due(at)),
                                  daemon=True)
        worker.start()
        # The fast receiver's delivery is recorded while the slow one is still in flight,
        # and one that falls due meanwhile goes out too, without waiting for the slow one.
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and not receiver.received():
            time.sleep(0.05)
        assert len(receiver.received()) == 1 and worker.is_alive()
        # The receiver has the request; the worker records the answer just after it.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and [
                d.status for d in svc.notify.deliveries(webhook_id=fast.id)] != ["delivered"]:
            time.sleep(0.02)
        assert [d.status for d in svc.notify.deliveries(webhook_id=fast.id)] == ["delivered"]
        assert worker.is_alive()  # recorded while the slow one is still in flight
        promote_one(svc, 2)  # a registration and a promotion later
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and len(receiver.received()) < 2:
            time.sleep(0.05)
        assert len(receiver.received()) == 2 and worker.is_alive()
        worker.join(10)
        assert not worker.is_alive()
    took = (datetime.now(UTC) - started).total_seconds()
    assert done == [4] and took < LEASE.total_seconds() / 5
    first, second = svc.notify.deliveries(webhook_id=slow.id)[::-1]
    assert first.status == "pending" and first.attempts == 1
    assert first.last_error == ("the receiver took longer than 2 s, the attempt's deadline "
                                "(it answers too slowly)")
    assert second.attempts == 1  # its turn came after the first: one attempt in flight each


def test_a_claim_takes_the_oldest_due_delivery_of_each_idle_webhook(
        svc: RegistryService, receiver: Receiver) -> None:
    a = svc.notify.add(receiver.url, ["promotion"], actor=ANA)
    b = svc.notify.add(receiver.url + "?b", ["promotion"], actor=ANA)
    for i in range(3):
        promote_one(svc, i)
    now = datetime.now(UTC) + timedelta(seconds=1)
    jobs = svc.notify._claim(now, 10, None, frozenset({a.id}))
    assert [j.webhook_id for j in jobs] == [b.id]
    oldest_b = min(d.id for d in svc.notify.deliveries(webhook_id=b.id))
    assert [j.delivery_id for j in jobs] == [oldest_b] and jobs[0].attempt == 1
    jobs = svc.notify._claim(now, 10, None, frozenset())
    assert sorted(j.webhook_id for j in jobs) == [a.id, b.id]
    assert len(svc.notify._claim(now, 1, None, frozenset())) == 1
    assert svc.notify._claim(now, 10, None, frozenset({a.id, b.id})) == []


# --- scoped subscriptions: notices reach the owner ----------------------------------------

def hook(svc: RegistryService, receiver: Receiver, **scope: Any) -> int:
    return svc.notify.add(receiver.url, ["registration", "stale_production"], actor=ANA,
                          **scope).id


def registered(svc: RegistryService, name: str, team: str) -> None:
    ci = Actor(f"{team}-ci", teams={"*": "reader", team: "publisher"})
    svc.versions.register(Bundle.from_dict(minimal(system_prompt=name)), name=name,
                          message="m", author=ci.name, actor=ci)  # claimed by its team
    svc.owners.set(name, team=team, contacts=[f"{team}@example.com"], actor=ci)


def heard(svc: RegistryService, hook_id: int) -> list[str | None]:
    with svc.db.read() as s:
        return [e.name for e in s.exec(select(OutboxEvent).join(
            Delivery, col(Delivery.event_id) == col(OutboxEvent.id)).where(
            Delivery.webhook_id == hook_id).order_by(col(OutboxEvent.id))).all()]


def test_a_webhook_scoped_to_a_team_or_patterns_hears_only_those_names(
        svc: RegistryService, receiver: Receiver) -> None:
    search = hook(svc, receiver, team="search")
    billing = hook(svc, receiver, team="billing")
    pattern = hook(svc, receiver, names=["chat-*"])
    everyone = hook(svc, receiver)
    registered(svc, "search-rag", "search")
    registered(svc, "chat-bot", "billing")
    with svc.db.write() as s:  # the alert job's notice, as it emits it
        outbox.emit(s, event="stale_production", name="search-rag", data={}, at=utcnow())
    assert heard(svc, search) == ["search-rag", "search-rag"]
    assert heard(svc, billing) == ["chat-bot"]
    assert heard(svc, pattern) == ["chat-bot"]
    assert heard(svc, everyone) == ["search-rag", "chat-bot", "search-rag"]
    assert [h.team for h in svc.notify.list_webhooks()
            if h.format != "email"] == ["search", "billing", None, None]


def test_an_owner_contact_webhook_hears_its_names(svc: RegistryService,
                                                  receiver: Receiver) -> None:
    pager = hook(svc, receiver, team="sre")
    registered(svc, "search-rag", "search")
    svc.owners.set("search-rag", team="search", contacts=[f"webhook:{pager}"], actor=ANA)
    with svc.db.write() as s:
        outbox.emit(s, event="stale_production", name="search-rag", data={}, at=utcnow())
    assert heard(svc, pager) == ["search-rag"]


def test_a_webhook_contact_must_exist(svc: RegistryService, receiver: Receiver) -> None:
    registered(svc, "search-rag", "search")
    gone = hook(svc, receiver)
    svc.notify.remove(gone, actor=ANA)
    for contact, why in [("webhook:99", "this registry has no webhook '99'"),
                         (f"webhook:{gone}", f"this registry has no webhook '{gone}' (it was "
                                             "removed)"),
                         ("webhook:x1", "this registry has no webhook 'x1'")]:
        with pytest.raises(InvalidRefError, match=f"^--contact '{contact}': {re.escape(why)}"):
            svc.owners.set("search-rag", team="search", contacts=[contact], actor=ANA)
    assert svc.owners.get("search-rag").contacts == ["search@example.com"]  # type: ignore[union-attr]


@pytest.mark.parametrize(("scope", "message"), [
    ({"team": "bad:team"}, "--team 'bad:team' is not a team name"),
    ({"names": ["Search RAG"]}, "--name 'Search RAG' is not a name pattern"),
])
def test_a_bad_scope_is_refused_and_adds_nothing(svc: RegistryService, receiver: Receiver,
                                                 scope: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidWebhookError, match=f"^{re.escape(message)}"):
        hook(svc, receiver, **scope)
    assert svc.notify.list_webhooks() == []
