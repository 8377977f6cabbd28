"""Served traffic over the fleet (conftest.py): hourly rollups kept eight days, pruned
after, and what `served` reports once the old hours are gone."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

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
