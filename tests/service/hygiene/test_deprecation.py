"""The deprecation rules over the fleet (conftest.py): several names, three environments,
old versions held by staging and shadow, versions that left an environment twice."""

from __future__ import annotations

import pytest

from llmreg.policy import parse_policy
from llmreg.service.hygiene.deprecation import ACTOR, Deprecation
from tests.service.hygiene.conftest import KEEP3, Fleet

# keep_last 3 alone: every old version that no environment holds is archived; the held
# ones (chat@2 production, chat@3 staging, chat@5 shadow, search@1, search@3) never are.
KEEP_LAST_ONLY = [("chat", 1), ("chat", 4), ("chat", 6), ("chat", 7), ("search", 2)]


def plan(fleet: Fleet, day: float, policy_text: str | None = None) -> list[tuple[str, int, str]]:
    svc = fleet.svc
    policy = parse_policy(policy_text, source="p.yaml") if policy_text else svc.policy
    report = Deprecation(svc.db, policy).plan(now=fleet.at(day))
    return [(a.name, a.version, a.action) for a in report.actions]


def test_keep_last_never_archives_a_version_any_environment_holds(fleet: Fleet) -> None:
    for day in (12, 400):
        assert plan(fleet, day, KEEP3) == [(n, v, "archive") for n, v in KEEP_LAST_ONLY]
    report = fleet.open(KEEP3).deprecation.run(now=fleet.at(13))
    assert [(a.name, a.version, a.rule) for a in report.actions] == [
        (n, v, "keep_last") for n, v in KEEP_LAST_ONLY]
    held = sorted((s.name, s.env, s.version) for s in fleet.svc.slots.status())
    assert held == [("chat", "production", 2), ("chat", "shadow", 5), ("chat", "staging", 3),
                    ("search", "production", 1), ("search", "staging", 3),
                    ("triage", "production", 1), ("triage", "staging", 1)]
    for name, _env, version in held:
        assert fleet.svc.versions.resolve(f"{name}@{version}").status != "archived"


def test_deprecate_after_days_counts_from_the_last_departure(fleet: Fleet) -> None:
    """chat@4 left staging on day 2 and again on day 10; chat@6 on day 12; search@2 on
    day 5. With 14 days, each is deprecated 14 days after its *last* departure, and
    archived by keep_last only once deprecated; versions never held are archived now."""
    never_held = [("chat", 1, "archive"), ("chat", 7, "archive")]
    assert plan(fleet, 18.9) == never_held
    assert plan(fleet, 19) == [("chat", 1, "archive"), ("chat", 7, "archive"),
                               ("search", 2, "deprecate")]
    assert plan(fleet, 23.9) == plan(fleet, 19)
    assert plan(fleet, 24) == [("chat", 1, "archive"), ("chat", 4, "deprecate"),
                               ("chat", 7, "archive"), ("search", 2, "deprecate")]
    assert plan(fleet, 26) == [("chat", 1, "archive"), ("chat", 4, "deprecate"),
                               ("chat", 6, "deprecate"), ("chat", 7, "archive"),
                               ("search", 2, "deprecate")]
    first = fleet.svc.deprecation.run(now=fleet.at(24))
    reasons = {(a.name, a.version): a.reason for a in first.actions}
    day10 = fleet.at(10).strftime("%Y-%m-%d")
    assert reasons[("chat", 4)] == (f"left its last environment on {day10}, more than 14 "
                                    "days ago")
    # Deprecated versions are archived by keep_last on the next run; the held ones stay.
    assert plan(fleet, 24) == [("chat", 4, "archive"), ("search", 2, "archive")]
    entries = [e for e in fleet.svc.audit.entries() if e.actor == ACTOR]
    assert sorted((e.action, e.target) for e in entries) == [
        ("archive", "chat@1"), ("archive", "chat@7"), ("deprecate", "chat@4"),
        ("deprecate", "search@2")]


@pytest.mark.flaky_prone
def test_two_runs_at_once_act_once(fleet: Fleet) -> None:
    """Both runs are started while the audit log is locked, so each is inside its
    transaction when the other plans; the deprecation lock makes the second find
    nothing left to do."""
    from tests.pg import overlapping

    services = [fleet.open(KEEP3), fleet.open(KEEP3)]
    counts: list[int] = []

    def run(i: int) -> None:
        counts.append(len(services[i].deprecation.run(now=fleet.at(13)).actions))

    overlapping(fleet.url, [lambda: run(0), lambda: run(1)])
    assert sorted(counts) == [0, len(KEEP_LAST_ONLY)]
    archived = [e for e in fleet.svc.audit.entries() if e.action == "archive"]
    assert len(archived) == len(KEEP_LAST_ONLY)

