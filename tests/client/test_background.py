"""The client's background heartbeat batcher: counts kept per slot, sent as beats the
server takes, kept through a failed flush, bounded."""

from __future__ import annotations

from typing import Any

import pytest

from llmreg.client.background import HeartbeatBatcher
from llmreg.contract.models import MAX_BEAT_COUNT


class Sink:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[list[dict[str, Any]]] = []
        self.fail = fail

    def __call__(self, beats: list[dict[str, Any]]) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionError("registry down")
        self.sent.append(beats)


def batcher(sink: Sink) -> HeartbeatBatcher:
    b = HeartbeatBatcher(sink, interval=3600)
    b.start = lambda: None  # type: ignore[method-assign]  # flushed by hand here
    return b


def test_the_clients_cap_is_the_servers() -> None:
    assert HeartbeatBatcher.MAX_BEAT_COUNT == MAX_BEAT_COUNT


def test_counts_are_summed_per_slot_and_sent_once() -> None:
    sink = Sink()
    b = batcher(sink)
    for _ in range(3):
        b.add("chat", "production", "sha256:a")
    b.add("chat", "staging", "sha256:b", count=5)
    b.flush()
    b.flush()  # nothing new: nothing sent
    assert sink.sent == [[
        {"name": "chat", "env": "production", "digest": "sha256:a", "count": 3},
        {"name": "chat", "env": "staging", "digest": "sha256:b", "count": 5}]]


def test_a_count_kept_through_an_outage_goes_as_beats_the_server_takes() -> None:
    sink = Sink(fail=2)
    b = batcher(sink)
    for _ in range(3):  # three flushes fail or succeed; the count grows meanwhile
        b.add("chat", "production", "sha256:a", count=900_000)
        b.flush()
    [beats] = sink.sent
    assert [x["count"] for x in beats] == [MAX_BEAT_COUNT, MAX_BEAT_COUNT, 700_000]
    assert all(x["count"] <= MAX_BEAT_COUNT for x in beats)


@pytest.mark.parametrize(("count", "parts"), [
    (1, [1]), (MAX_BEAT_COUNT, [MAX_BEAT_COUNT]), (MAX_BEAT_COUNT + 1, [MAX_BEAT_COUNT, 1]),
    (10 * MAX_BEAT_COUNT, [MAX_BEAT_COUNT] * 10),
    (10**12, [MAX_BEAT_COUNT] * 10),  # past ten beats the rest is dropped, not sent
])
def test_parts_are_bounded_in_size_and_number(count: int, parts: list[int]) -> None:
    assert batcher(Sink())._parts(count) == parts


def test_slots_beyond_max_keys_are_not_counted() -> None:
    sink = Sink()
    b = batcher(sink)
    b.MAX_KEYS = 2
    for env in ("a", "b", "c"):
        b.add("chat", env, "sha256:a")
    b.add("chat", "a", "sha256:a")  # a known slot still counts
    b.flush()
    assert [(x["env"], x["count"]) for x in sink.sent[0]] == [("a", 2), ("b", 1)]
