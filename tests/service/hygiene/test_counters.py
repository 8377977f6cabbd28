"""Heartbeat counters over the fleet (conftest.py), on SQLite and PostgreSQL: 64-bit,
capped per beat (refused above, nothing written), saturating instead of overflowing,
and a beat of ``count: 0`` is no traffic."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from llmreg.errors import InvalidRefError
from llmreg.service.hygiene.traffic import MAX_COUNT, MAX_TOTAL
from tests.service.hygiene.conftest import Fleet


def _rows(fleet: Fleet) -> list[tuple[str, int]]:
    with fleet.svc.db.read() as s:
        return [(str(t), int(c)) for t, c in s.execute(text(
            "SELECT 'total', count FROM heartbeats UNION ALL "
            "SELECT 'hour', count FROM heartbeat_hours ORDER BY 1")).all()]


def test_a_beat_at_the_cap_is_stored_and_one_above_changes_nothing(fleet: Fleet) -> None:
    assert (MAX_COUNT, MAX_TOTAL) == (1_000_000, 9_223_372_036_854_775_807)
    beat = {"name": "chat", "env": "production", "digest": fleet.digest("chat@2")}
    assert fleet.svc.traffic.record([{**beat, "count": MAX_COUNT}] * 3,
                                    now=fleet.at(20)) == 3
    assert _rows(fleet) == [("hour", 3_000_000), ("total", 3_000_000)]
    with pytest.raises(InvalidRefError) as refused:
        fleet.svc.traffic.record([{**beat, "count": 1}, {**beat, "count": MAX_COUNT + 1}],
                                 now=fleet.at(21))
    assert str(refused.value) == (
        "beats[1].count is 1000001; one beat reports at most 1000000 requests; split it "
        "into several beats or flush more often; nothing was recorded")
    assert refused.value.code == "REF_INVALID"
    assert _rows(fleet) == [("hour", 3_000_000), ("total", 3_000_000)]
    [row] = fleet.svc.traffic.heartbeats("chat")
    assert row["last_at"] == fleet.at(20)


def test_a_counter_near_two_to_the_63_keeps_taking_honest_beats(fleet: Fleet) -> None:
    beat = {"name": "chat", "env": "production", "digest": fleet.digest("chat@2")}
    now = fleet.at(20)
    fleet.svc.traffic.record([{**beat, "count": 1}], now=now)
    with fleet.svc.db.write() as s:  # as if years of traffic (or a hostile past) got here
        s.execute(text("UPDATE heartbeats SET count = :c"), {"c": MAX_TOTAL - 5})
        s.execute(text("UPDATE heartbeat_hours SET count = :c"), {"c": MAX_TOTAL - 5})
    fleet.svc.traffic.record([{**beat, "count": 3}], now=now)
    assert _rows(fleet) == [("hour", MAX_TOTAL - 2), ("total", MAX_TOTAL - 2)]
    for _ in range(2):  # past the top: saturates, no overflow, no error
        assert fleet.svc.traffic.record([{**beat, "count": MAX_COUNT}] * 2, now=now) == 2
    assert _rows(fleet) == [("hour", MAX_TOTAL), ("total", MAX_TOTAL)]
    served = {(r.env, r.version): r for r in fleet.svc.traffic.served("chat", now=now)}
    assert served[("production", 2)].total == MAX_TOTAL


def test_a_beat_of_zero_is_not_traffic(fleet: Fleet) -> None:
    prod = fleet.digest("chat@2")
    beat = {"name": "chat", "env": "production", "digest": prod}
    # chat@2 and search@1 have held production since day 0 and never served: stale.
    assert fleet.svc.alerts.check(now=fleet.at(30))["opened"] == 2
    assert fleet.svc.traffic.record([{**beat, "count": 0}] * 5, now=fleet.at(31)) == 5
    assert _rows(fleet) == []
    assert fleet.svc.alerts.check(now=fleet.at(31)) == {"opened": 0, "reminded": 0,
                                                        "closed": 0}
    assert ("chat", "production", 2) in [(a.name, a.env, a.version)
                                         for a in fleet.svc.alerts.list()]
    [row] = [r for r in fleet.svc.traffic.served("chat", now=fleet.at(31))
             if r.env == "production"]
    assert (row.in_slot, row.last_served, row.total) == (True, None, 0)
    # A zero beat beside a real one: only the real one counts.
    fleet.svc.traffic.record([{**beat, "count": 0}, {**beat, "count": 2}], now=fleet.at(32))
    assert _rows(fleet) == [("hour", 2), ("total", 2)]
    assert fleet.svc.alerts.check(now=fleet.at(32))["closed"] == 1
    assert [a.name for a in fleet.svc.alerts.list()] == ["search"]
