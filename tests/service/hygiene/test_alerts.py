"""Stale-production alerts over the fleet (conftest.py): production holds chat@2 and
search@1 (since day 0) and triage@1 (since day 10); staging traffic and staging moves
must not count for production; every name is looked at on every check."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from llmreg.service.hygiene.alerts import STALE
from tests.service.hygiene.conftest import Fleet


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
