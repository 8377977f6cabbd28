"""Judging a transition's gates. Pure functions over what the registry already holds.

Every gate is judged and reported (not just the first failure), so one refusal lists
everything that is missing. Evidence counts only for the exact digest being promoted.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from llmreg.policy import ApprovalGate, EvalGate, Threshold, Transition
from llmreg.types import ApprovalInfo, EvidenceInfo, GateResult


def latest(evidence: Sequence[EvidenceInfo], type_: str, suite: str | None = None
           ) -> EvidenceInfo | None:
    """The most recent record of a type (and suite): a re-run supersedes earlier ones."""
    found = [e for e in evidence if e.type == type_ and (suite is None or e.suite == suite)]
    return max(found, key=lambda e: (e.created_at, e.id)) if found else None


def judge(transition: Transition, *, ref: str, author: str,
          evidence: Sequence[EvidenceInfo], approvals: Sequence[ApprovalInfo],
          baseline: Sequence[EvidenceInfo] | None, baseline_ref: str | None) -> list[GateResult]:
    """Judge every gate of ``transition`` for the version ``ref``.

    Args:
        transition: the policy transition being taken.
        ref: ``name@version`` of the candidate, for messages.
        author: the candidate's author (separation of duties).
        evidence: evidence attached to the candidate's digest.
        approvals: approvals of the candidate's digest for the target environment.
        baseline: evidence of the version the target slot holds now (None if empty).
        baseline_ref: ``name@version`` the slot holds now, for messages.
    """
    results = [GateResult(gate="transition", passed=True,
                          detail=f"{transition.from_} -> {transition.to} is allowed")]
    for gate in transition.gates.evals:
        results.append(_eval(gate, ref, evidence, baseline, baseline_ref))
    if transition.gates.shadow_metrics:
        results.append(_shadow(transition.gates.shadow_metrics, ref, evidence, baseline,
                               baseline_ref))
    if transition.gates.approvals is not None:
        results.append(_approvals(transition.gates.approvals, transition.to, ref, author,
                                  approvals))
    return results


def _eval(gate: EvalGate, ref: str, evidence: Sequence[EvidenceInfo],
          baseline: Sequence[EvidenceInfo] | None, baseline_ref: str | None) -> GateResult:
    name = f"eval:{gate.suite}"
    record = latest(evidence, "eval", gate.suite)
    if record is None:
        return GateResult(gate=name, passed=False, detail=(
            f"no '{gate.suite}' eval is attached to {ref}'s digest; run `llmreg eval attach "
            f"{ref} --suite {gate.suite} --metrics FILE.json`"))
    if record.passed is False:
        return GateResult(gate=name, passed=False,
                          detail=f"the latest '{gate.suite}' eval (#{record.id}) reports failure")
    base = latest(baseline, "eval", gate.suite) if baseline is not None else None
    problems, met = _thresholds(gate.metrics, record, base, baseline, baseline_ref,
                                f"'{gate.suite}' eval")
    detail = "; ".join(problems) if problems else f"eval #{record.id}: " + ", ".join(met)
    return GateResult(gate=name, passed=not problems, detail=detail)


def _shadow(metrics: dict[str, Threshold], ref: str, evidence: Sequence[EvidenceInfo],
            baseline: Sequence[EvidenceInfo] | None, baseline_ref: str | None) -> GateResult:
    record = latest(evidence, "shadow-metrics")
    if record is None:
        return GateResult(gate="shadow-metrics", passed=False, detail=(
            f"no shadow metrics are attached to {ref}'s digest; run `llmreg shadow report "
            f"{ref} --metrics FILE.json`"))
    base = latest(baseline, "shadow-metrics") if baseline is not None else None
    problems, met = _thresholds(metrics, record, base, baseline, baseline_ref,
                                "shadow metrics")
    detail = "; ".join(problems) if problems else f"shadow metrics #{record.id}: " + ", ".join(met)
    return GateResult(gate="shadow-metrics", passed=not problems, detail=detail)


def _thresholds(bounds: dict[str, Threshold], record: EvidenceInfo, base: EvidenceInfo | None,
                baseline: Sequence[EvidenceInfo] | None, baseline_ref: str | None,
                what: str) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    met: list[str] = []
    for metric, th in bounds.items():
        value = record.metrics.get(metric)
        if value is None or not math.isfinite(value):
            problems.append(f"{what} #{record.id} has no '{metric}' metric")
            continue
        if th.min is not None and value < th.min:
            problems.append(f"{metric} {value:g} is below the minimum {th.min:g}")
        elif th.max is not None and value > th.max:
            problems.append(f"{metric} {value:g} is above the maximum {th.max:g}")
        elif th.no_regression and baseline is not None:
            reference = base.metrics.get(metric) if base is not None else None
            if reference is None:
                problems.append(
                    f"{metric}: cannot check for regression, {baseline_ref} (in the target "
                    f"slot now) has no {what} with '{metric}'; attach one to it first")
            elif th.higher_is_better and value < reference - th.tolerance:
                problems.append(f"{metric} {value:g} regresses from {reference:g} "
                                f"({baseline_ref}), tolerance {th.tolerance:g}")
            elif not th.higher_is_better and value > reference + th.tolerance:
                problems.append(f"{metric} {value:g} regresses from {reference:g} "
                                f"({baseline_ref}), tolerance {th.tolerance:g}")
            else:
                met.append(f"{metric} {value:g} (vs {reference:g} in {baseline_ref})")
        else:
            met.append(f"{metric} {value:g}")
    return problems, met


def _approvals(gate: ApprovalGate, env: str, ref: str, author: str,
               approvals: Sequence[ApprovalInfo]) -> GateResult:
    valid: set[str] = set()
    ignored: list[str] = []
    for a in approvals:
        if gate.not_author and a.approver == author:
            ignored.append(f"{a.approver} (the author)")
        elif a.roles is not None and gate.role not in a.roles:
            ignored.append(f"{a.approver} (no '{gate.role}' role)")
        else:
            valid.add(a.approver)
    have = len(valid)
    who = ", ".join(sorted(valid)) or "nobody yet"
    note = f"; not counted: {', '.join(ignored)}" if ignored else ""
    if have >= gate.count:
        return GateResult(gate="approvals", passed=True,
                          detail=f"{have} of {gate.count} approvals ({who}){note}")
    return GateResult(gate="approvals", passed=False, detail=(
        f"{have} of {gate.count} approvals for {env} ({who}){note}; approvers other than "
        f"the author ({author}) run `llmreg approve {ref} --to {env}`"))
