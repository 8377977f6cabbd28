"""Stale-production alerts over the fleet (conftest.py): production holds chat@2 and
search@1 (since day 0) and triage@1 (since day 10); staging traffic and staging moves
must not count for production; every name is looked at on every check."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from llmreg.bundle.schema import Bundle
from llmreg.db.models import Alert, OutboxEvent
from llmreg.errors import InvalidRefError, RefNotFoundError
from llmreg.policy import parse_policy
from llmreg.service import RegistryService
from llmreg.service.hygiene.alerts import ACTOR, STALE, production_env
from llmreg.types import Actor
from tests.conftest import minimal
from tests.service.hygiene.conftest import Fleet

ANA = Actor("ana")


def beat(fleet: Fleet, ref: str, env: str, day: float) -> None:
    name = ref.partition("@")[0]
    fleet.svc.traffic.record([{"name": name, "env": env, "digest": fleet.digest(ref)}],
                             now=fleet.at(day))


def check(fleet: Fleet, day: float) -> dict[str, int]:
    return fleet.svc.alerts.check(now=fleet.at(day))


def active(fleet: Fleet) -> list[tuple[str, str, int, str | None, int]]:
    return sorted((a.name, a.env, a.version, a.team, a.reminders)
                  for a in fleet.svc.alerts.list())


def test_each_stale_production_slot_alerts_whatever_the_others_do(fleet: Fleet) -> None:
    # chat@2 serves only in staging (a staging client still on it); search@1 served in
    # production on day 25; triage@1 never served.
    for day in (20, 29):
        beat(fleet, "chat@2", "staging", day)
    beat(fleet, "search@1", "production", 25)
    assert check(fleet, 29.9) == {"opened": 0, "reminded": 0, "closed": 0}
    # Day 30: chat@2 has served nothing *in production* for 30 days. (Its staging slot
    # moved on day 12 and its digest served staging on day 29: neither counts.)
    assert check(fleet, 30) == {"opened": 1, "reminded": 0, "closed": 0}
    [alert] = fleet.svc.alerts.list()
    day0 = fleet.at(0).strftime("%Y-%m-%d")
    assert alert.message == (f"chat@2 holds production but has served nothing for 30 days "
                             f"(never served since its promotion on {day0}); roll it back, "
                             "promote a successor, or ack with a reason")
    assert (alert.team, alert.contacts) == ("chat-team", ["chat@example.com"])
    # Day 40: chat is alerted already and reminded; search is fresh; triage (sorted
    # after both) has been quiet for 30 days since its promotion on day 10.
    assert check(fleet, 40) == {"opened": 1, "reminded": 1, "closed": 0}
    assert active(fleet) == [("chat", "production", 2, "chat-team", 1),
                             ("triage", "production", 1, "triage-team", 0)]
    # More staging traffic closes nothing; day 56: search is stale too (last served day
    # 25), the other two are reminded.
    beat(fleet, "chat@2", "staging", 50)
    assert check(fleet, 56) == {"opened": 1, "reminded": 2, "closed": 0}
    assert active(fleet) == [("chat", "production", 2, "chat-team", 2),
                             ("search", "production", 1, "search-team", 0),
                             ("triage", "production", 1, "triage-team", 1)]
    # Production traffic closes chat's alert, and only chat's.
    beat(fleet, "chat@2", "production", 57)
    assert check(fleet, 57) == {"opened": 0, "reminded": 0, "closed": 1}
    assert [a.name for a in fleet.svc.alerts.list()] == ["search", "triage"]  # newest first
    with fleet.svc.db.read() as s:
        events = s.execute(text("SELECT name FROM outbox_events WHERE type = :t ORDER BY id"),
                           {"t": STALE}).all()
    # opened (chat, triage, search) and reminded (chat twice, triage once): one event each
    assert sorted(n for (n,) in events) == ["chat"] * 3 + ["search"] + ["triage"] * 2


@pytest.mark.flaky_prone
def test_two_checks_at_once_open_each_alert_once(fleet: Fleet) -> None:
    """Both checks are inside their transactions before either commits (tests/pg.py);
    the alerts lock makes the second see the first one's alerts."""
    from tests.pg import overlapping

    services = [fleet.open(), fleet.open()]
    counts: list[dict[str, int]] = []

    def run(i: int) -> None:
        counts.append(services[i].alerts.check(now=fleet.at(40)))

    overlapping(fleet.url, [lambda: run(0), lambda: run(1)])
    assert sorted(c["opened"] for c in counts) == [0, 3]
    assert active(fleet) == [("chat", "production", 2, "chat-team", 0),
                             ("search", "production", 1, "search-team", 0),
                             ("triage", "production", 1, "triage-team", 0)]
    opened = [e for e in fleet.svc.audit.entries() if e.action == "alert-open"]
    assert sorted(str(e.name) for e in opened) == ["chat", "search", "triage"]


# --- what each step writes, exactly (a small registry of its own) -------------------

FLAT = """\
version: 1
environments: {staging: {}, production: {}}
transitions:
  - {from: registered, to: staging}
  - {from: registered, to: production}
  - {from: staging, to: production}
"""


@pytest.fixture
def flat(tmp_path: Path, database_url: str | None) -> Iterator[RegistryService]:
    """Production reachable without gates; chat (owned) and solo (no owner), 2 each."""
    svc = RegistryService.open_home(tmp_path / "r", database_url=database_url,
                                    policy=parse_policy(FLAT, source="flat.yaml"))
    for name in ("chat", "solo"):
        for i in (1, 2):
            svc.versions.register(Bundle.from_dict(minimal(system_prompt=f"{name} {i}")),
                                  name=name, message=f"v{i}", author="ana")
    svc.owners.set("chat", team="chat-team", contacts=["chat@example.com"], actor=ANA)
    try:
        yield svc
    finally:
        svc.close()


def promoted(svc: RegistryService, ref: str) -> datetime:
    svc.lifecycle.promote(ref, "production", actor=ANA, reason="ship")
    name = ref.partition("@")[0]
    return svc.slots.status(name, "production")[0].since


def audit_since(svc: RegistryService, seq: int) -> list[tuple[Any, ...]]:
    return [(e.actor, e.action, e.name, e.target, e.env, e.detail)
            for e in svc.audit.entries() if e.seq > seq]


def events(svc: RegistryService) -> list[dict[str, Any]]:
    with svc.db.read() as s:
        rows = s.exec(select(OutboxEvent).where(OutboxEvent.type == STALE)
                      .order_by(col(OutboxEvent.id))).all()
    out = []
    for r in rows:  # each event also carries the audit head of its change (anchoring)
        data = dict(r.data)
        anchor = data.pop("audit")
        assert set(anchor) == {"seq", "head"} and anchor["head"].startswith("sha256:")
        out.append(data)
    return out


def test_production_env_is_production_else_the_last_environment() -> None:
    def env_of(names: str) -> str:
        envs = ", ".join(f"{n}: {{}}" for n in names.split())
        first = names.split()[0]
        return production_env(parse_policy(
            f"version: 1\nenvironments: {{{envs}}}\ntransitions:\n"
            f"  - {{from: registered, to: {first}}}\n", source="p.yaml"))

    assert env_of("dev production qa") == "production"
    assert env_of("dev qa live") == "live"
    assert env_of("one two") == "two"


def test_open_remind_close_write_their_exact_entries_and_events(flat: RegistryService
                                                                 ) -> None:
    svc = flat
    d1 = svc.versions.resolve("chat@1").digest
    since = promoted(svc, "chat@1")
    solo_since = promoted(svc, "solo@1")
    seq = svc.audit.entries()[-1].seq
    assert svc.alerts.check(now=since + timedelta(days=29, hours=23)) == {
        "opened": 0, "reminded": 0, "closed": 0}
    opened_at = max(since, solo_since) + timedelta(days=30)
    assert svc.alerts.check(now=opened_at) == {"opened": 2, "reminded": 0, "closed": 0}
    chat, solo = sorted(svc.alerts.list(), key=lambda a: a.name)
    assert (chat.team, chat.contacts, chat.reminders, chat.state) == (
        "chat-team", ["chat@example.com"], 0, "open")
    assert (solo.team, solo.contacts) == (None, [])  # no owner: addressed to nobody
    assert (chat.opened_at, chat.notified_at, chat.closed_at) == (opened_at, opened_at, None)
    assert audit_since(svc, seq) == [
        (ACTOR, "alert-open", "chat", "chat@1", "production",
         {"alert": chat.id, "kind": STALE, "digest": d1, "team": "chat-team",
          "policy": svc.policy.digest}),
        (ACTOR, "alert-open", "solo", "solo@1", "production",
         {"alert": solo.id, "kind": STALE, "digest": solo.digest, "team": None,
          "policy": svc.policy.digest})]
    first = {"name": "chat", "alert": chat.id, "env": "production", "version": 1,
             "digest": d1, "team": "chat-team", "contacts": ["chat@example.com"],
             "message": chat.message, "opened_at": opened_at.isoformat()}
    assert events(svc)[0] == {**first, "reminder": 0}
    # Reminded once remind_every_days (7) have passed since the last notice, not before.
    seq = svc.audit.entries()[-1].seq
    assert svc.alerts.check(now=opened_at + timedelta(days=6, hours=23))["reminded"] == 0
    assert svc.alerts.check(now=opened_at + timedelta(days=7)) == {
        "opened": 0, "reminded": 2, "closed": 0}
    assert events(svc)[2] == {**first, "reminder": 1}
    assert audit_since(svc, seq) == []  # reminders are events, not audit entries
    # Both slots move in one check: two closes, each with its entry and its time.
    promoted(svc, "chat@2")
    promoted(svc, "solo@2")
    seq = svc.audit.entries()[-1].seq
    closed_at = opened_at + timedelta(days=8)
    # (The test clock is 38 days past the real promotions of @2, so each opens anew.)
    assert svc.alerts.check(now=closed_at) == {"opened": 2, "reminded": 0, "closed": 2}
    assert audit_since(svc, seq)[:2] == [
        (ACTOR, "alert-close", "chat", "chat@1", "production",
         {"alert": chat.id, "reason": "the slot moved to @2"}),
        (ACTOR, "alert-close", "solo", "solo@1", "production",
         {"alert": solo.id, "reason": "the slot moved to @2"})]
    assert [(e[1], e[3]) for e in audit_since(svc, seq)[2:]] == [
        ("alert-open", "chat@2"), ("alert-open", "solo@2")]
    closed = {a.id: a for a in svc.alerts.list(include_closed=True)}
    assert (closed[chat.id].closed_at, closed[chat.id].close_reason) == (
        closed_at, "the slot moved to @2")
    # A closed alert is done with: later checks write nothing about it.
    seq = svc.audit.entries()[-1].seq
    assert svc.alerts.check(now=closed_at + timedelta(days=1)) == {
        "opened": 0, "reminded": 0, "closed": 0}
    assert audit_since(svc, seq) == []


def test_traffic_at_the_threshold_is_stale_and_served_at_promotion_is_never_served(
        flat: RegistryService) -> None:
    svc = flat
    since = promoted(svc, "chat@1")
    digest = svc.versions.resolve("chat@1").digest
    # A beat at the very moment of the promotion is not "served since the promotion".
    svc.traffic.record([{"name": "chat", "env": "production", "digest": digest}], now=since)
    assert svc.alerts.check(now=since + timedelta(days=30))["opened"] == 1
    [alert] = svc.alerts.list()
    assert f"(never served since its promotion on {since:%Y-%m-%d})" in alert.message
    # Traffic exactly 30 days old does not close it; a day younger does.
    beat_at = since + timedelta(days=31)
    svc.traffic.record([{"name": "chat", "env": "production", "digest": digest}], now=beat_at)
    assert svc.alerts.check(now=beat_at + timedelta(days=30))["closed"] == 0
    assert svc.alerts.check(now=beat_at + timedelta(days=29, hours=23))["closed"] == 1
    closed = svc.alerts.list(include_closed=True)[0]
    assert closed.close_reason == f"traffic resumed (last served {beat_at:%Y-%m-%d %H:%M} UTC)"
    # Stale again 30 days after that traffic: "last served", not "never served".
    assert svc.alerts.check(now=beat_at + timedelta(days=30))["opened"] == 1
    assert f"(last served {beat_at:%Y-%m-%d})" in svc.alerts.list()[0].message


def test_ack_records_who_why_and_when_exactly(flat: RegistryService) -> None:
    svc = flat
    since = promoted(svc, "chat@1")
    svc.alerts.check(now=since + timedelta(days=30))
    [alert] = svc.alerts.list()
    seq = svc.audit.entries()[-1].seq
    at = since + timedelta(days=31)
    with pytest.raises(InvalidRefError) as empty:
        svc.alerts.ack(alert.id, reason="", actor=ANA, now=at)
    assert str(empty.value) == ("--reason is empty; say why, e.g. --reason 'feature paused "
                                "until Q3'")
    with pytest.raises(RefNotFoundError) as missing:
        svc.alerts.ack(alert.id + 1, reason="x", actor=ANA, now=at)
    assert str(missing.value) == f"no alert #{alert.id + 1}; see `llmreg alerts`"
    acked = svc.alerts.ack(alert.id, reason="  seasonal  ", actor=ANA, now=at)
    assert (acked.state, acked.acked_by, acked.ack_reason) == ("acked", "ana", "seasonal")
    with svc.db.read() as s:
        assert s.get(Alert, alert.id).acked_at == at
    assert audit_since(svc, seq) == [
        ("ana", "alert-ack", "chat", "chat@1", "production",
         {"alert": alert.id, "reason": "seasonal"})]
    with pytest.raises(InvalidRefError) as again:
        svc.alerts.ack(alert.id, reason="x", actor=ANA, now=at)
    assert str(again.value) == (f"alert #{alert.id} is acked, not open; nothing to "
                                "acknowledge")


def test_list_filters_by_name_newest_first_and_reads_at_most_1000(flat: RegistryService
                                                                  ) -> None:
    svc = flat
    since = promoted(svc, "chat@1")
    promoted(svc, "solo@1")
    svc.alerts.check(now=since + timedelta(days=31))
    assert [a.name for a in svc.alerts.list()] == ["solo", "chat"]
    assert [a.name for a in svc.alerts.list(name="chat")] == ["chat"]
    assert svc.alerts.list(name="nobody") == []
    # Another kind of alert (a later feature's) is not the stale check's to close.
    with svc.db.write() as s:
        other = Alert(kind="other_kind", name="chat", env="production", version=9,
                      digest="sha256:" + "9" * 64, message="m", state="open",
                      opened_at=since, notified_at=since)
        s.add(other)
        s.flush()
        other_id = other.id
        for i in range(1000):
            s.add(Alert(kind=STALE, name=f"n{i}", env="production", version=1,
                        digest="sha256:" + "1" * 64, message="m", state="closed",
                        opened_at=since, notified_at=since, closed_at=since))
    counts = svc.alerts.check(now=since + timedelta(days=32))
    assert counts["closed"] == 0
    assert {a.id: a.state for a in svc.alerts.list()}[other_id] == "open"
    assert len(svc.alerts.list(include_closed=True)) == 1000
