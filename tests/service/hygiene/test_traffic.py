"""Served traffic over the fleet (conftest.py): hourly rollups kept eight days, pruned
after, and what `served` reports once the old hours are gone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import select

from llmreg.service.hygiene.traffic import RETENTION_DAYS, hour_of
from tests.service.hygiene.conftest import Fleet


def test_prune_keeps_eight_days_of_hours_and_served_still_reports(fleet: Fleet) -> None:
    assert RETENTION_DAYS == 8
    now = hour_of(fleet.at(20)) + timedelta(minutes=30)
    prod, staged = fleet.digest("chat@2"), fleet.digest("chat@3")
    # chat@2 in production: one batch per age, each count a power of two, so every sum
    # below names exactly the batches it includes.
    ages = {timedelta(hours=1): 1,  # last day
            timedelta(days=3): 2,  # last week
            timedelta(days=7): 4,  # the week's first hour
            timedelta(days=7, hours=12): 8,  # older than a week, younger than 8 days
            timedelta(days=8): 16,  # the oldest hour kept
            timedelta(days=8, hours=1): 32}  # older than 8 days: pruned
    for age, count in ages.items():
        fleet.svc.traffic.record([{"name": "chat", "env": "production", "digest": prod,
                                   "count": count}], now=now - age)
    fleet.svc.traffic.record([{"name": "chat", "env": "staging", "digest": staged,
                               "count": 64}], now=now - timedelta(days=9))
    assert fleet.svc.traffic.prune(now=now) == 2  # the 8 days 1 hour and 9 day old hours
    assert fleet.svc.traffic.prune(now=now) == 0
    with fleet.svc.db.read() as s:
        kept = s.execute(text("SELECT count FROM heartbeat_hours ORDER BY hour")).all()
    assert [c for (c,) in kept] == [16, 8, 4, 2, 1]
    served = {(r.name, r.env, r.version): r for r in fleet.svc.traffic.served(now=now)}
    chat = served[("chat", "production", 2)]
    assert (chat.in_slot, chat.day, chat.week, chat.total) == (True, 1, 1 + 2 + 4, 63)
    assert chat.last_served == now - timedelta(hours=1)
    # The staging slot's traffic is all older than a week: pruned hours, lifetime kept.
    staging = served[("chat", "staging", 3)]
    assert (staging.in_slot, staging.day, staging.week, staging.total) == (True, 0, 0, 64)
    assert staging.last_served == now - timedelta(days=9)
    # Every slot of the fleet is listed, served or not.
    assert sorted(k for k, r in served.items() if r.in_slot) == [
        ("chat", "production", 2), ("chat", "shadow", 5), ("chat", "staging", 3),
        ("search", "production", 1), ("search", "staging", 3),
        ("triage", "production", 1), ("triage", "staging", 1)]


# --- what record() accepts, and what each rollup holds -------------------------------


def test_each_rollup_counts_only_its_own_name_env_digest_and_hour(fleet: Fleet) -> None:
    from llmreg.db.models import HeartbeatHour

    t = hour_of(fleet.at(20)) + timedelta(minutes=30, seconds=45, microseconds=123)
    chat2, chat3, search1 = fleet.digest("chat@2"), fleet.digest("chat@3"), fleet.digest(
        "search@1")
    keys = [("chat", "staging", chat3, 5), ("chat", "production", chat2, 7),
            ("chat", "production", chat3, 11), ("chat", "staging", chat2, 13),
            ("search", "production", search1, 17)]
    record = fleet.svc.traffic.record
    assert record([{"name": n, "env": e, "digest": d, "count": c} for n, e, d, c in keys],
                  now=t) == 5
    # The same key twice in one batch adds up; one more beat in the same hour, then in the
    # next; an earlier beat (a late batch) does not move last_at back; an alias counts
    # for its environment; a beat without a count is one request.
    assert record([{"name": "chat", "env": "staging", "digest": chat3, "count": 1},
                   {"name": "chat", "env": "pre-prod", "digest": chat3, "count": 2}],
                  now=t + timedelta(minutes=29)) == 2
    assert record([{"name": "chat", "env": "staging", "digest": chat3}],
                  now=t + timedelta(minutes=30)) == 1
    assert record([{"name": "chat", "env": "staging", "digest": chat3, "count": 100}],
                  now=t - timedelta(days=1)) == 1
    rows = fleet.svc.traffic.heartbeats()
    assert rows == [
        {"name": "chat", "env": "staging", "digest": chat3, "count": 5 + 3 + 1 + 100,
         "first_at": t, "last_at": t + timedelta(minutes=30)},
        {"name": "chat", "env": "production", "digest": chat2, "count": 7, "first_at": t,
         "last_at": t},
        {"name": "chat", "env": "production", "digest": chat3, "count": 11, "first_at": t,
         "last_at": t},
        {"name": "chat", "env": "staging", "digest": chat2, "count": 13, "first_at": t,
         "last_at": t},
        {"name": "search", "env": "production", "digest": search1, "count": 17,
         "first_at": t, "last_at": t}]
    assert fleet.svc.traffic.heartbeats("search") == rows[-1:]
    assert fleet.svc.traffic.heartbeats("triage") == []
    with fleet.svc.db.read() as s:
        hours = sorted((h.name, h.env, h.digest[:12], h.hour, h.count)
                       for h in s.exec(select(HeartbeatHour)).all())
    top = hour_of(t)
    assert top == t.replace(minute=0, second=0, microsecond=0)
    assert hours == sorted([
        ("chat", "staging", chat3[:12], top, 5 + 3),
        ("chat", "staging", chat3[:12], top + timedelta(hours=1), 1),
        ("chat", "staging", chat3[:12], top - timedelta(days=1), 100),
        ("chat", "production", chat2[:12], top, 7),
        ("chat", "production", chat3[:12], top, 11),
        ("chat", "staging", chat2[:12], top, 13),
        ("search", "production", search1[:12], top, 17)])


@pytest.mark.parametrize(("beat", "message"), [
    ({"name": "", "env": "staging"}, "beats[1].name"),
    ({"env": "staging"}, "beats[1].name"),
    ({"name": "chat", "env": "nowhere"},
     "beats[1].env: environment 'nowhere' is not in the policy; use one of staging"),
    ({"name": "chat"}, "beats[1].env: environment '' is not in the policy"),
    ({"name": "chat", "env": "staging", "digest": "sha256:xyz"}, "beats[1].digest"),
    ({"name": "chat", "env": "staging", "digest": None}, "beats[1].digest"),
    ({"name": "chat", "env": "staging", "count": -1},
     "beats[1].count -1 must be a whole number from 0 to 1000000"),
    ({"name": "chat", "env": "staging", "count": True},
     "beats[1].count True must be a whole number from 0 to 1000000"),
    ({"name": "chat", "env": "staging", "count": 1.5},
     "beats[1].count 1.5 must be a whole number from 0 to 1000000"),
    ({"name": "chat", "env": "staging", "count": 1_000_001},
     "beats[1].count is 1000001; one beat reports at most 1000000 requests"),
])
def test_a_bad_beat_is_named_and_the_batch_changes_nothing(
        fleet: Fleet, beat: dict[str, Any], message: str) -> None:
    from llmreg.errors import LLMRegError

    good = {"name": "chat", "env": "staging", "digest": fleet.digest("chat@3")}
    with pytest.raises(LLMRegError) as refused:
        fleet.svc.traffic.record([good, {"digest": good["digest"], **beat}],
                                 now=fleet.at(20))
    assert message in str(refused.value)
    assert fleet.svc.traffic.heartbeats() == []


def test_a_batch_holds_at_most_1000_beats_and_names_only_registered_versions(
        fleet: Fleet) -> None:
    from llmreg.errors import InvalidRefError, RefNotFoundError

    beat = {"name": "chat", "env": "staging", "digest": fleet.digest("chat@3"), "count": 0}
    assert fleet.svc.traffic.record([beat] * 1000, now=fleet.at(20)) == 1000
    with pytest.raises(InvalidRefError) as big:
        fleet.svc.traffic.record([beat] * 1001, now=fleet.at(20))
    assert str(big.value) == "1001 heartbeats in one batch; the limit is 1000"
    other = fleet.digest("search@1")  # registered, but as search's, not chat's
    with pytest.raises(RefNotFoundError) as unknown:
        fleet.svc.traffic.record([{**beat, "count": 1}, {**beat, "digest": other}],
                                 now=fleet.at(20))
    assert str(unknown.value) == (f"beats[1]: chat@{other[:19]}… is not a registered "
                                  "version; report only bundles resolved from this registry")
    assert fleet.svc.traffic.heartbeats() == []
