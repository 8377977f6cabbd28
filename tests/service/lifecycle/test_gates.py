"""Gate judging: pure functions over evidence and approvals, every message exact.

These call ``llmreg.service.lifecycle.gates`` directly (no registry, no database), so they keep
working whatever shape the service class takes. Numbers are chosen to be exact in
binary floating point (0.5, 0.75, 0.25, ...) so that edge cases really sit on the edge.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from llmreg.bundle.lineage import check_metrics
from llmreg.errors import InvalidEvidenceError
from llmreg.policy import Transition
from llmreg.service.lifecycle.gates import judge, latest
from llmreg.types import ApprovalInfo, EvidenceInfo, GateResult

T0 = datetime(2026, 1, 1, tzinfo=UTC)
REF = "chat@3"
BASE_REF = "chat@2"


def ev(id: int, metrics: dict[str, float], *, type: str = "eval", suite: str = "regression",
       passed: bool | None = True, minutes: int = 0) -> EvidenceInfo:
    return EvidenceInfo(id=id, digest="sha256:" + "c" * 64, type=type, suite=suite,
                        metrics=metrics, passed=passed, created_by="ci",
                        created_at=T0 + timedelta(minutes=minutes))


def shadow(id: int, metrics: dict[str, float], *, minutes: int = 0) -> EvidenceInfo:
    return ev(id, metrics, type="shadow-metrics", suite="live", passed=None, minutes=minutes)


def approval(approver: str, roles: list[str] | None = None) -> ApprovalInfo:
    return ApprovalInfo(name="chat", digest="sha256:" + "c" * 64, env="production",
                        approver=approver, roles=roles, created_at=T0)


def transition(**gates: Any) -> Transition:
    return Transition.model_validate({"from": "staging", "to": "production", "gates": gates})


def eval_gate(**threshold: Any) -> Transition:
    return transition(evals=[{"suite": "regression", "metrics": {"accuracy": threshold}}])


def run(t: Transition, evidence: list[EvidenceInfo] = (),  # type: ignore[assignment]
        approvals: list[ApprovalInfo] = (),  # type: ignore[assignment]
        baseline: list[EvidenceInfo] | None = None, author: str = "ana") -> list[GateResult]:
    return judge(t, ref=REF, author=author, evidence=evidence, approvals=approvals,
                 baseline=baseline, baseline_ref=BASE_REF if baseline is not None else None)


def one(t: Transition, evidence: list[EvidenceInfo] = (),  # type: ignore[assignment]
        **kw: Any) -> tuple[bool, str]:
    """The verdict of the single gate after the always-present "transition" one."""
    results = run(t, evidence, **kw)
    assert len(results) == 2, results
    g = t.gates
    expected = (f"eval:{g.evals[0].suite}" if g.evals else
                "shadow-metrics" if g.shadow_metrics else "approvals")
    assert results[1].gate == expected
    return results[1].passed, results[1].detail


# --- the transition itself and the order of results -------------------------------


def test_no_gates_means_only_the_transition_result() -> None:
    assert run(transition()) == [
        GateResult(gate="transition", passed=True, detail="staging -> production is allowed")]


def test_every_gate_is_judged_and_reported_in_order() -> None:
    t = transition(
        evals=[{"suite": "regression", "metrics": {"accuracy": {"min": 0.5}}},
               {"suite": "safety", "metrics": {"refusals": {"max": 0.25}}}],
        shadow_metrics={"error_rate": {"max": 0.125}},
        approvals={"count": 1})
    results = run(t, [ev(1, {"accuracy": 0.75})], [approval("bo")])
    assert [(r.gate, r.passed) for r in results] == [
        ("transition", True), ("eval:regression", True), ("eval:safety", False),
        ("shadow-metrics", False), ("approvals", True)]
    assert results[2].detail.startswith("no 'safety' eval is attached")


# --- evals: presence, failure, supersession ------------------------------------------


def test_missing_eval_names_the_command_that_fixes_it() -> None:
    assert one(eval_gate(min=0.5)) == (False, (
        "no 'regression' eval is attached to chat@3's digest; run `llmreg eval attach "
        "chat@3 --suite regression --metrics FILE.json`"))


def test_an_eval_of_another_suite_or_type_does_not_count() -> None:
    evidence = [ev(1, {"accuracy": 0.75}, suite="smoke"), shadow(2, {"accuracy": 0.75})]
    passed, detail = one(eval_gate(min=0.5), evidence)
    assert not passed and detail.startswith("no 'regression' eval is attached")


def test_a_failing_eval_fails_the_gate_even_when_metrics_are_met() -> None:
    assert one(eval_gate(min=0.5), [ev(4, {"accuracy": 0.75}, passed=False)]) == (
        False, "the latest 'regression' eval (#4) reports failure")


def test_an_eval_without_a_verdict_is_judged_on_its_metrics() -> None:
    assert one(eval_gate(min=0.5), [ev(4, {"accuracy": 0.75}, passed=None)]) == (
        True, "eval #4: accuracy 0.75")


def test_the_latest_eval_supersedes_earlier_ones() -> None:
    old_fail = ev(1, {"accuracy": 0.75}, passed=False, minutes=0)
    new_pass = ev(2, {"accuracy": 0.75}, minutes=5)
    assert one(eval_gate(min=0.5), [new_pass, old_fail]) == (True, "eval #2: accuracy 0.75")
    newer_fail = ev(3, {"accuracy": 0.75}, passed=False, minutes=9)
    assert one(eval_gate(min=0.5), [new_pass, newer_fail, old_fail])[0] is False


def test_latest_orders_by_time_then_id_and_filters_type_and_suite() -> None:
    a = ev(7, {}, minutes=10)           # later, lower id
    b = ev(9, {}, minutes=5)
    c = ev(8, {}, minutes=10)           # same time as a, higher id
    other = ev(99, {}, suite="smoke", minutes=60)
    live = shadow(50, {}, minutes=1)
    assert latest([b, a, other, live], "eval", "regression") == a
    assert latest([a, c, b], "eval", "regression") == c
    assert latest([a, other], "eval") == other  # no suite: any suite
    assert latest([a, b, live], "shadow-metrics") == live
    assert latest([a, b], "shadow-metrics") is None
    assert latest([], "eval", "regression") is None


# --- thresholds --------------------------------------------------------------------


def test_an_eval_that_lacks_the_gated_metric() -> None:
    assert one(eval_gate(min=0.5), [ev(5, {"f1": 0.75})]) == (
        False, "'regression' eval #5 has no 'accuracy' metric")


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinite_metrics_count_as_missing(bad: float) -> None:
    assert one(eval_gate(min=0.5), [ev(5, {"accuracy": bad})]) == (
        False, "'regression' eval #5 has no 'accuracy' metric")
    assert one(eval_gate(max=0.5), [ev(5, {"accuracy": bad})])[0] is False


def test_non_numeric_metrics_never_reach_the_gates() -> None:
    with pytest.raises(InvalidEvidenceError,
                       match=r"metrics\['accuracy'\] = 'high' is not a number"):
        check_metrics({"accuracy": "high"})
    with pytest.raises(InvalidEvidenceError, match=r"= nan is not a number"):
        check_metrics({"accuracy": math.nan})
    with pytest.raises(ValidationError):
        ev(1, {"accuracy": "high"})  # type: ignore[dict-item]


def test_min_is_inclusive() -> None:
    assert one(eval_gate(min=0.5), [ev(1, {"accuracy": 0.5})]) == (True, "eval #1: accuracy 0.5")
    assert one(eval_gate(min=0.5), [ev(1, {"accuracy": 0.4375})]) == (
        False, "accuracy 0.4375 is below the minimum 0.5")


def test_max_is_inclusive() -> None:
    assert one(eval_gate(max=0.25), [ev(1, {"accuracy": 0.25})]) == (
        True, "eval #1: accuracy 0.25")
    assert one(eval_gate(max=0.25), [ev(1, {"accuracy": 0.375})]) == (
        False, "accuracy 0.375 is above the maximum 0.25")


def test_min_and_max_together() -> None:
    gate = eval_gate(min=0.25, max=0.75)
    assert one(gate, [ev(1, {"accuracy": 0.25})])[0] is True
    assert one(gate, [ev(1, {"accuracy": 0.75})])[0] is True
    assert one(gate, [ev(1, {"accuracy": 0.125})]) == (
        False, "accuracy 0.125 is below the minimum 0.25")
    assert one(gate, [ev(1, {"accuracy": 0.875})]) == (
        False, "accuracy 0.875 is above the maximum 0.75")


@given(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6))
def test_min_and_max_agree_with_plain_comparison(bound: float, value: float) -> None:
    assert one(eval_gate(min=bound), [ev(1, {"accuracy": value})])[0] is (value >= bound)
    assert one(eval_gate(max=bound), [ev(1, {"accuracy": value})])[0] is (value <= bound)


def test_every_problem_is_listed_and_met_metrics_are_shown() -> None:
    t = transition(evals=[{"suite": "regression", "metrics": {
        "accuracy": {"min": 0.5}, "latency_s": {"max": 2}, "f1": {"min": 0.5}}}])
    assert one(t, [ev(6, {"accuracy": 0.25, "latency_s": 3})]) == (False, (
        "accuracy 0.25 is below the minimum 0.5; latency_s 3 is above the maximum 2; "
        "'regression' eval #6 has no 'f1' metric"))
    assert one(t, [ev(6, {"accuracy": 0.75, "latency_s": 1.5, "f1": 0.5})]) == (
        True, "eval #6: accuracy 0.75, latency_s 1.5, f1 0.5")
    # A missing metric does not stop the check of the ones after it.
    first_missing = transition(evals=[{"suite": "regression", "metrics": {
        "f1": {"min": 0.5}, "accuracy": {"min": 0.5}}}])
    assert one(first_missing, [ev(6, {"accuracy": 0.25})]) == (False, (
        "'regression' eval #6 has no 'f1' metric; accuracy 0.25 is below the minimum 0.5"))


# --- no_regression against the target slot -------------------------------------------


def test_no_regression_with_an_empty_target_slot_has_nothing_to_compare() -> None:
    assert one(eval_gate(no_regression=True), [ev(1, {"accuracy": 0.25})], baseline=None) == (
        True, "eval #1: accuracy 0.25")


def test_no_regression_needs_the_metric_on_the_slot_holder() -> None:
    expected = (False, "accuracy: cannot check for regression, chat@2 (in the target slot "
                       "now) has no 'regression' eval with 'accuracy'; attach one to it first")
    candidate = [ev(2, {"accuracy": 0.75})]
    assert one(eval_gate(no_regression=True), candidate, baseline=[]) == expected
    assert one(eval_gate(no_regression=True), candidate,
               baseline=[ev(1, {"f1": 0.5})]) == expected
    # The slot holder's eval of another suite does not count either.
    assert one(eval_gate(no_regression=True), candidate,
               baseline=[ev(1, {"accuracy": 0.5}, suite="smoke")]) == expected


def test_no_regression_higher_is_better_and_the_tolerance_edge() -> None:
    gate = eval_gate(no_regression=True, tolerance=0.25)
    base = [ev(1, {"accuracy": 0.75})]
    # exactly at reference - tolerance: allowed
    assert one(gate, [ev(2, {"accuracy": 0.5})], baseline=base) == (
        True, "eval #2: accuracy 0.5 (vs 0.75 in chat@2)")
    assert one(gate, [ev(2, {"accuracy": 0.4375})], baseline=base) == (
        False, "accuracy 0.4375 regresses from 0.75 (chat@2), tolerance 0.25")
    assert one(gate, [ev(2, {"accuracy": 1.0})], baseline=base)[0] is True


def test_no_regression_without_tolerance_allows_equal_only() -> None:
    gate = eval_gate(no_regression=True)
    base = [ev(1, {"accuracy": 0.75})]
    assert one(gate, [ev(2, {"accuracy": 0.75})], baseline=base)[0] is True
    assert one(gate, [ev(2, {"accuracy": 0.6875})], baseline=base) == (
        False, "accuracy 0.6875 regresses from 0.75 (chat@2), tolerance 0")


def test_no_regression_lower_is_better_and_the_tolerance_edge() -> None:
    gate = eval_gate(no_regression=True, higher_is_better=False, tolerance=0.25)
    base = [ev(1, {"accuracy": 0.5})]
    assert one(gate, [ev(2, {"accuracy": 0.75})], baseline=base) == (
        True, "eval #2: accuracy 0.75 (vs 0.5 in chat@2)")
    assert one(gate, [ev(2, {"accuracy": 0.8125})], baseline=base) == (
        False, "accuracy 0.8125 regresses from 0.5 (chat@2), tolerance 0.25")
    assert one(gate, [ev(2, {"accuracy": 0.125})], baseline=base)[0] is True


def test_no_regression_compares_with_the_slot_holders_latest_eval() -> None:
    gate = eval_gate(no_regression=True)
    base = [ev(1, {"accuracy": 0.5}, minutes=0), ev(3, {"accuracy": 0.875}, minutes=5)]
    assert one(gate, [ev(4, {"accuracy": 0.75})], baseline=base) == (
        False, "accuracy 0.75 regresses from 0.875 (chat@2), tolerance 0")


def test_bounds_are_checked_before_regression() -> None:
    gate = eval_gate(min=0.5, no_regression=True)
    assert one(gate, [ev(2, {"accuracy": 0.25})], baseline=[ev(1, {"accuracy": 0.125})]) == (
        False, "accuracy 0.25 is below the minimum 0.5")
    assert one(gate, [ev(2, {"accuracy": 0.75})], baseline=[ev(1, {"accuracy": 0.5})]) == (
        True, "eval #2: accuracy 0.75 (vs 0.5 in chat@2)")


# --- shadow metrics ----------------------------------------------------------------


def test_missing_shadow_metrics_name_the_command() -> None:
    t = transition(shadow_metrics={"error_rate": {"max": 0.125}})
    assert one(t, [ev(1, {"error_rate": 0.0})]) == (False, (
        "no shadow metrics are attached to chat@3's digest; run `llmreg shadow report "
        "chat@3 --metrics FILE.json`"))


def test_shadow_metrics_bounds_and_regression() -> None:
    t = transition(shadow_metrics={"error_rate": {"max": 0.125},
                                   "p95_ms": {"no_regression": True, "higher_is_better": False}})
    good = [shadow(3, {"error_rate": 0.125, "p95_ms": 400}, minutes=1)]
    base = [shadow(1, {"p95_ms": 400})]
    assert one(t, good, baseline=base) == (
        True, "shadow metrics #3: error_rate 0.125, p95_ms 400 (vs 400 in chat@2)")
    bad = [shadow(4, {"error_rate": 0.25, "p95_ms": 401}, minutes=2)]
    assert one(t, good + bad, baseline=base) == (False, (
        "error_rate 0.25 is above the maximum 0.125; p95_ms 401 regresses from 400 "
        "(chat@2), tolerance 0"))
    assert one(t, [shadow(5, {"error_rate": 0.0})], baseline=[ev(1, {"p95_ms": 400})]) == (
        False, "shadow metrics #5 has no 'p95_ms' metric")
    assert one(t, [shadow(5, {"error_rate": 0.0, "p95_ms": 1})],
               baseline=[ev(1, {"p95_ms": 400})]) == (False, (
        "p95_ms: cannot check for regression, chat@2 (in the target slot now) has no "
        "shadow metrics with 'p95_ms'; attach one to it first"))


def test_shadow_metrics_with_an_empty_slot() -> None:
    t = transition(shadow_metrics={"p95_ms": {"no_regression": True}})
    assert one(t, [shadow(2, {"p95_ms": 5})]) == (True, "shadow metrics #2: p95_ms 5")


# --- approvals ---------------------------------------------------------------------


def approvals_gate(**gate: Any) -> Transition:
    return transition(approvals=gate)


def test_approvals_met_at_exactly_the_count() -> None:
    assert one(approvals_gate(count=2), approvals=[approval("cy"), approval("bo")]) == (
        True, "2 of 2 approvals (bo, cy)")


def test_approvals_short_name_the_command_and_the_author() -> None:
    assert one(approvals_gate(count=2), approvals=[approval("bo")]) == (False, (
        "1 of 2 approvals for production (bo); approvers other than the author (ana) run "
        "`llmreg approve chat@3 --to production`"))
    assert one(approvals_gate(count=1), approvals=[]) == (False, (
        "0 of 1 approvals for production (nobody yet); approvers other than the author "
        "(ana) run `llmreg approve chat@3 --to production`"))


def test_one_person_counts_once() -> None:
    assert one(approvals_gate(count=2), approvals=[approval("bo"), approval("bo")])[1] \
        .startswith("1 of 2 approvals for production (bo);")


def test_not_counted_details_name_each_ignored_approval_and_why() -> None:
    given_ = [approval("ana", ["approver"]), approval("bo", ["viewer"]), approval("cy"),
              approval("dee", ["approver", "admin"])]
    assert one(approvals_gate(count=2), approvals=given_) == (
        True, "2 of 2 approvals (cy, dee); not counted: ana (the author), bo (no 'approver' role)")
    assert one(approvals_gate(count=3), approvals=given_) == (False, (
        "2 of 3 approvals for production (cy, dee); not counted: ana (the author), bo (no "
        "'approver' role); approvers other than the author (ana) run "
        "`llmreg approve chat@3 --to production`"))


def test_the_author_is_named_as_such_even_without_the_role() -> None:
    assert one(approvals_gate(count=1), approvals=[approval("ana", ["viewer"])])[1].startswith(
        "0 of 1 approvals for production (nobody yet); not counted: ana (the author);")


def test_the_authors_approval_counts_when_the_policy_allows_it() -> None:
    assert one(approvals_gate(count=1, not_author=False), approvals=[approval("ana")]) == (
        True, "1 of 1 approvals (ana)")


def test_a_custom_role_is_required_of_approvers_with_roles() -> None:
    gate = approvals_gate(count=1, role="release-manager")
    assert one(gate, approvals=[approval("bo", ["approver"])]) == (False, (
        "0 of 1 approvals for production (nobody yet); not counted: bo (no 'release-manager' "
        "role); approvers other than the author (ana) run `llmreg approve chat@3 --to "
        "production`"))
    assert one(gate, approvals=[approval("bo", ["release-manager"])])[0] is True
    # An approval recorded without roles (an open registry) counts.
    assert one(gate, approvals=[approval("bo", None)])[0] is True


# --- every declared kind has a judge; an unknown kind is refused --------------------


def test_every_declared_kind_has_a_judge_and_reports_under_its_name() -> None:
    from llmreg.policy import GATE_KINDS
    from llmreg.service.lifecycle.gates import JUDGES

    assert set(JUDGES) == {k.key for k in GATE_KINDS}
    t = transition(evals=[{"suite": "regression", "metrics": {"accuracy": {"min": 0.5}}}],
                   shadow_metrics={"error_rate": {"max": 0.125}}, approvals={"count": 1})
    assert {k.key for k, _ in t.gates.each()} == set(JUDGES), "a sample of every kind"
    assert [r.gate for r in run(t)] == ["transition", *t.gates.names()]


def test_the_judge_refuses_a_kind_it_has_no_judge_for(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmreg import policy
    from llmreg.errors import PolicyError
    from llmreg.service.lifecycle.gates import Candidate, judge_gate

    canary: policy.GateKind[str] = policy.GateKind(
        key="canary", of=lambda gates: ["5%"], label=lambda pct: "canary",
        describe=lambda pct: f"canary at {pct}", bounds=lambda pct, type_, suite: {})
    candidate = Candidate(ref=REF, env="production", author="ana", evidence=[],
                          approvals=[], baseline=None, baseline_ref=None)
    with pytest.raises(PolicyError) as info:
        judge_gate(canary, "5%", candidate)
    assert str(info.value) == (
        "the policy asks for a gate of kind 'canary', which llmreg cannot judge (it judges "
        "evals, shadow_metrics, approvals); nothing was promoted")
    monkeypatch.setattr(policy, "GATE_KINDS", (*policy.GATE_KINDS, canary))
    assert transition().gates.names() == ["canary"]
    with pytest.raises(PolicyError, match="'canary'"):
        run(transition())
