"""The deprecation rules over the fleet (conftest.py): several names, three environments,
old versions held by staging and shadow, versions that left an environment twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from llmreg.policy import parse_policy
from llmreg.service.hygiene.deprecation import ACTOR, Deprecation
from llmreg.types import Actor
from tests.service.hygiene.conftest import KEEP3, ROLLBACK_SAFE, Fleet

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



# --- rollback targets (keep_rollback, archive_grace_days, restored) ------------------
# ROLLBACK_SAFE is keep_last 3 with the default rollback rules. Staging held, newest
# first: chat@3 (now), @6, @4, @5, @4, @2; so its two rollback targets are chat@6 and
# chat@4. search's staging: @3 (now), @2, @1.


def kept(fleet: Fleet, day: float, policy_text: str) -> dict[tuple[str, int], tuple[str, str]]:
    policy = parse_policy(policy_text, source="p.yaml")
    report = Deprecation(fleet.svc.db, policy).plan(now=fleet.at(day))
    return {(k.name, k.version): (k.rule, k.reason) for k in report.kept}


def test_the_last_versions_each_environment_held_are_never_archived(fleet: Fleet) -> None:
    for day in (12, 400):  # with or without the grace period
        assert plan(fleet, day, ROLLBACK_SAFE) == [("chat", 1, "archive"),
                                                   ("chat", 7, "archive")]
    why = kept(fleet, 400, ROLLBACK_SAFE)
    assert why[("chat", 6)] == ("keep_rollback", "one of the last 2 versions staging held "
                                                 "before @3: a rollback target")
    assert why[("chat", 4)][0] == "keep_rollback"
    assert why[("search", 2)] == ("keep_rollback", "one of the last 2 versions staging "
                                                   "held before @3: a rollback target")
    # Every version that is not archived and not acted on is listed, with the first rule.
    assert why[("chat", 3)] == ("held", "staging holds it")
    assert why[("triage", 1)] == ("held", "production, staging holds it")
    assert why[("chat", 5)][0] == "held"  # shadow holds it (and staging held it)
    assert why[("chat", 9)] == ("keep_last", "among the last 3 versions (@8-@10)")
    assert {k for k, (rule, _) in why.items() if rule == "keep_rollback"} == {
        ("chat", 4), ("chat", 6), ("search", 2)}
    svc = fleet.open(ROLLBACK_SAFE)
    report = svc.deprecation.run(now=fleet.at(400))
    assert [(a.name, a.version) for a in report.actions] == [("chat", 1), ("chat", 7)]
    assert {(k.name, k.version, k.rule) for k in report.kept} >= {("chat", 6, "keep_rollback")}
    # The incident: staging rolls back to chat@6, which was not archived.
    event = svc.lifecycle.rollback("chat", "staging", actor=Actor("ana"), reason="incident")
    assert (event.from_version, event.to_version) == (3, 6)


@pytest.mark.parametrize(("keep", "targets"), [
    (1, {("chat", 6), ("search", 2)}),
    (2, {("chat", 6), ("chat", 4), ("search", 2)}),
    # chat@5 is the third (shadow holds it: "held" comes first); search@1 production holds.
    (3, {("chat", 6), ("chat", 4), ("search", 2)}),
])
def test_keep_rollback_counts_each_version_once_newest_first(
        fleet: Fleet, keep: int, targets: set[tuple[str, int]]) -> None:
    text = ROLLBACK_SAFE.replace("keep_rollback: 2", f"keep_rollback: {keep}")
    why = kept(fleet, 400, text)
    assert {k for k, (rule, _) in why.items() if rule == "keep_rollback"} == targets
    archived = {(n, v) for n, v, _ in plan(fleet, 400, text)}
    assert archived == {("chat", 1), ("chat", 4), ("chat", 6), ("chat", 7),
                        ("search", 2)} - targets


def test_a_version_that_left_an_environment_recently_is_kept_for_the_grace_period(
        fleet: Fleet) -> None:
    """Rollback targets off: chat@4 left staging last on day 10, chat@6 on day 12,
    search@2 on day 5; each is kept for 14 days after it left, to the second."""
    text = ROLLBACK_SAFE.replace("keep_rollback: 2", "keep_rollback: 0")
    assert plan(fleet, 12, text) == [("chat", 1, "archive"), ("chat", 7, "archive")]
    day5 = fleet.at(5).strftime("%Y-%m-%d")
    assert kept(fleet, 12, text)[("search", 2)] == (
        "archive_grace_days", f"left staging on {day5}, less than 14 days ago")
    assert plan(fleet, 18.99, text) == plan(fleet, 12, text)
    assert ("search", 2, "archive") in plan(fleet, 19, text)
    assert ("chat", 4, "archive") not in plan(fleet, 23.99, text)
    assert ("chat", 4, "archive") in plan(fleet, 24, text)
    assert ("chat", 6, "archive") not in plan(fleet, 25.99, text)
    assert ("chat", 6, "archive") in plan(fleet, 26, text)
    # archive_grace_days: 0 turns the rule off.
    off = text.replace("archive_grace_days: 14", "archive_grace_days: 0")
    assert plan(fleet, 12, off) == [(n, v, "archive") for n, v in KEEP_LAST_ONLY]


def test_the_rollback_rules_only_stop_archives_not_deprecation(fleet: Fleet) -> None:
    """A rollback target may be deprecated (it can still be rolled back to); it is
    never archived."""
    text = ROLLBACK_SAFE.replace("  remind_every_days: 7",
                                 "  remind_every_days: 7\n  deprecate_after_days: 14")
    svc = fleet.open(text)
    first = svc.deprecation.run(now=fleet.at(400))
    assert ("chat", 6, "deprecate") in {(a.name, a.version, a.action) for a in first.actions}
    second = svc.deprecation.run(now=fleet.at(401))
    assert ("chat", 6) not in {(a.name, a.version) for a in second.actions}
    assert svc.versions.resolve("chat@6").status == "deprecated"
    assert {(k.name, k.version, k.rule) for k in second.kept} >= {
        ("chat", 6, "keep_rollback"), ("chat", 4, "keep_rollback")}


def test_the_run_rechecks_a_rollback_target_under_the_slot_locks(fleet: Fleet) -> None:
    """A move between the plan and the retirement can make a planned version a rollback
    target: the run's re-check, under the slot locks, skips it with the reason."""
    from llmreg.policy import ARCHIVED, DEPRECATED
    from llmreg.service.hygiene.deprecation import lock_slots, recheck
    from llmreg.service.refs import name_row

    rules = parse_policy(ROLLBACK_SAFE, source="p.yaml").deprecation
    with fleet.svc.db.write() as s:
        row = name_row(s, "chat")
        lock_slots(s, row)
        version, why = recheck(s, row, 6, ARCHIVED, rules=rules, now=fleet.at(400))
        assert version is None
        assert why == ("one of the last 2 versions staging held before @3: a rollback "
                       "target (a move since the plan was read made it one)")
        version, why = recheck(s, row, 6, DEPRECATED, rules=rules, now=fleet.at(400))
        assert version is not None and version.number == 6 and why == ""
        version, why = recheck(s, row, 7, ARCHIVED, rules=rules, now=fleet.at(400))
        assert version is not None and version.number == 7


def test_a_restored_version_is_kept_for_the_grace_period_then_archived_again(
        fleet: Fleet) -> None:
    svc = fleet.open(KEEP3)
    svc.deprecation.run(now=fleet.at(13))
    assert svc.versions.resolve("chat@7").status == "archived"
    restored = svc.lifecycle.restore("chat@7", actor=Actor("lee"), reason="incident 42")
    assert restored.status == "registered"
    text = KEEP3.replace("archive_grace_days: 0", "archive_grace_days: 14")
    now = fleet.now  # the fleet's clock stamps the restore
    why = {(k.name, k.version): (k.rule, k.reason)
           for k in Deprecation(svc.db, parse_policy(text, source="p.yaml")).plan(
               now=now + timedelta(days=13)).kept}
    assert why[("chat", 7)] == ("restored", f"restored on {now:%Y-%m-%d}, less than 14 "
                                            "days ago")
    later = Deprecation(svc.db, parse_policy(text, source="p.yaml")).plan(
        now=now + timedelta(days=15))
    assert ("chat", 7) in {(a.name, a.version) for a in later.actions}


def test_a_planned_version_that_a_slot_holds_at_run_time_is_skipped_with_the_reason(
        fleet: Fleet, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan is read before the slot locks: a version an environment took meanwhile
    (here: a plan that names production's chat@2 and shadow's chat@5) is skipped, named,
    and left as it is; the rest of the plan is done."""
    from llmreg.service.hygiene import deprecation as module
    from llmreg.types import DeprecationAction

    real = module.plan_in

    def stale_plan(s: Any, policy: Any, now: Any) -> Any:
        actions, kept = real(s, policy, now)
        extra = [DeprecationAction(name="chat", version=v, digest=fleet.digest(f"chat@{v}"),
                                   action="archive", rule="keep_last", reason="planned")
                 for v in (2, 5)]
        return actions + extra, kept

    monkeypatch.setattr(module, "plan_in", stale_plan)
    report = fleet.open(KEEP3).deprecation.run(now=fleet.at(13))
    assert [(a.name, a.version) for a in report.actions] == list(KEEP_LAST_ONLY)
    assert [(a.name, a.version, a.action, a.rule, a.reason) for a in report.skipped] == [
        ("chat", 2, "archive", "keep_last",
         "skipped: production holds it now (moved there after the plan was read)"),
        ("chat", 5, "archive", "keep_last",
         "skipped: shadow holds it now (moved there after the plan was read)")]
    assert fleet.svc.versions.resolve("chat@2").status == "production"
    assert fleet.svc.versions.resolve("chat@5").status == "shadow"
    # What was done is audited with the planned reason and the status it left.
    [first] = [e for e in fleet.svc.audit.entries() if e.target == "chat@1"
               and e.action == "archive"]
    assert {k: v for k, v in first.detail.items() if k != "rows"} == {
        "digest": fleet.digest("chat@1"), "from": "registered", "rule": "keep_last",
        "reason": "not among the last 3 versions (@8-@10) and no environment holds it",
        "policy": report.policy_digest}


def test_the_kept_reasons_name_the_newest_versions_and_the_deprecation_wait(
        fleet: Fleet) -> None:
    from tests.service.hygiene.conftest import DEPRECATE14

    why = kept(fleet, 19, DEPRECATE14)
    day10 = fleet.at(10).strftime("%Y-%m-%d")
    assert why[("chat", 4)] == ("deprecate_after_days", f"left its last environment on "
                                                        f"{day10}; deprecated 14 days after "
                                                        "that")
    # With fewer versions than keep_last, the newest range starts at @1.
    assert kept(fleet, 19, KEEP3.replace("keep_last: 3", "keep_last: 7"))[("search", 6)] == (
        "keep_last", "among the last 7 versions (@1-@6)")
    assert kept(fleet, 19, KEEP3.replace("keep_last: 3", "keep_last: 1"))[("search", 6)] == (
        "keep_last", "among the last 1 versions (@6)")
    assert kept(fleet, 19, KEEP3.replace("keep_last: 3", "keep_last: 6"))[("search", 6)] == (
        "keep_last", "among the last 6 versions (@1-@6)")
