"""Webhooks against the real `llmreg serve` process and a real receiver on 127.0.0.1
(allow-listed by the policy): delivered and verified within 2 s; delivered after the
receiver comes back; delivered after the server is killed with SIGKILL right after a
promotion; never twice under different webhook-ids."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook as Verifier

from tests.conftest import EXAMPLES, free_port
from tests.e2e.test_serve import Served, local_cli
from tests.receiver import Receiver

pytestmark = pytest.mark.slow


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Served, dict[str, str], Receiver, str]]:
    home = tmp_path / "srv" / ".llmreg"
    s = Served(home, tmp_path)
    local_cli(home, "init")
    policy = home.parent / "llmreg-policy.yaml"
    policy.write_text(policy.read_text().replace("allow_hosts: []", "allow_hosts: [127.0.0.1]")
                      .replace("require_owner: true", "require_owner: false"))
    tokens = {}
    for subject, role in [("ci", "publisher"), ("ada", "admin")]:
        out = local_cli(home, "token", "create", "--subject", subject, "--role", role, "--json")
        tokens[subject] = json.loads(out)["token"]
    receiver = Receiver(port=free_port()).start()
    s.start()
    added = s.cli("webhook", "add", receiver.url, "--events", "promotion,rollback", "--json",
                  token=tokens["ada"])
    secret = json.loads(added.stdout)["secret"]
    s.cli("register", str(EXAMPLES / "support-rag"), "-m", "first", token=tokens["ci"])
    yield s, tokens, receiver, secret
    s.stop()
    receiver.stop()


def wait_for(receiver: Receiver, count: int, timeout: float) -> float:
    started = time.monotonic()
    while len(receiver.received()) < count and time.monotonic() - started < timeout:
        time.sleep(0.02)
    return time.monotonic() - started


def events(receiver: Receiver, secret: str) -> dict[str, set[str]]:
    """CloudEvent id -> the webhook-ids it arrived under (every one verified)."""
    out: dict[str, set[str]] = {}
    for got in receiver.received():
        event = Verifier(secret).verify(got.body, got.headers)
        out.setdefault(event["id"], set()).add(got.headers["webhook-id"])
    return out


def promote(s: Served, token: str, to: str) -> None:
    answer = httpx.post(f"{s.url}/v1/promotions", timeout=30,
                        headers={"Authorization": f"Bearer {token}"},
                        json={"ref": "support-rag@1", "env": to, "reason": "e2e"})
    assert answer.status_code == 201, answer.text


def test_delivered_and_verified_within_two_seconds(setup) -> None:  # type: ignore[no-untyped-def]
    s, tokens, receiver, secret = setup
    promote(s, tokens["ci"], "staging")
    took = wait_for(receiver, 1, 10)
    assert len(receiver.received()) == 1, "nothing arrived"
    assert took < 2.0, f"the promotion arrived after {took:.2f} s"
    got = receiver.received()[0]
    event = Verifier(secret).verify(got.body, got.headers)
    assert (event["type"], event["subject"]) == ("dev.llmreg.promotion", "support-rag")
    assert event["data"]["env"] == "staging" and event["data"]["actor"] == "ci"
    listed = s.cli("webhook", "deliveries", "--json", token=tokens["ada"])
    (row,) = json.loads(listed.stdout)
    assert row["status"] == "delivered" and row["message_id"] == got.headers["webhook-id"]


def test_a_receiver_that_was_down_gets_it_when_it_returns(setup) -> None:  # type: ignore[no-untyped-def]
    s, tokens, receiver, secret = setup
    receiver.stop()
    promote(s, tokens["ci"], "staging")
    time.sleep(3)  # down for a while: attempts fail and back off
    failed = json.loads(s.cli("webhook", "deliveries", "--failed", "--json",
                              token=tokens["ada"]).stdout)
    assert failed and failed[0]["status"] == "pending" and failed[0]["attempts"] >= 1
    receiver.start()  # back on the same port
    wait_for(receiver, 1, 30)
    seen = events(receiver, secret)
    assert len(seen) == 1 and all(len(ids) == 1 for ids in seen.values())


def test_sigkill_right_after_a_promotion_loses_nothing(setup) -> None:  # type: ignore[no-untyped-def]
    s, tokens, receiver, secret = setup
    promote(s, tokens["ci"], "staging")
    s.kill()  # within a few ms of the answer: the event is committed, maybe not sent
    with sqlite3.connect(s.home / "registry.db") as db:
        (status,) = db.execute("SELECT status FROM webhook_deliveries").fetchone()
    if status == "pending":  # the usual case (the loop looks every 0.5 s): not sent yet
        assert receiver.received() == []
    s.start()
    wait_for(receiver, 1, 30)
    seen = events(receiver, secret)
    assert len(seen) == 1, seen
    assert all(len(ids) == 1 for ids in seen.values()), seen
    time.sleep(1.5)  # a duplicate, if any, would arrive under the same id
    assert all(len(ids) == 1 for ids in events(receiver, secret).values())
    rows = json.loads(s.cli("webhook", "deliveries", "--json", token=tokens["ada"]).stdout)
    assert [r["status"] for r in rows] == ["delivered"]
