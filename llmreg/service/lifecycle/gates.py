"""Judging a transition's gates. Pure functions over what the registry already holds.

Every gate is judged and reported (not just the first failure), so one refusal lists
everything that is missing. Evidence counts only for the exact digest being promoted.
Each kind of gate declared in :data:`llmreg.policy.GATE_KINDS` has its judge in
:data:`JUDGES`; a kind without one is refused, never passed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llmreg.errors import PolicyError
from llmreg.policy import (
    APPROVALS,
    EVALS,
    SHADOW_METRICS,
    ApprovalGate,
    EvalGate,
    GateKind,
    Threshold,
    Transition,
)
from llmreg.teams import EVERYWHERE, counts_for
from llmreg.types import OWNER_GROUP, ApprovalInfo, EvidenceInfo, GateResult

#: A judge's answer: passed, and the detail the report shows.
Verdict = tuple[bool, str]


@dataclass(frozen=True)
class Candidate:
    """What every gate is judged on: the version ``ref`` moving to ``env``."""

    ref: str
    env: str
    author: str
    evidence: Sequence[EvidenceInfo]
    approvals: Sequence[ApprovalInfo]
    baseline: Sequence[EvidenceInfo] | None
    baseline_ref: str | None
    owner: str | None = None  # the team that owns the name (None: no owner)


def latest(evidence: Sequence[EvidenceInfo], type_: str, suite: str | None = None
           ) -> EvidenceInfo | None:
    """The most recent record of a type (and suite): a re-run supersedes earlier ones."""
    found = [e for e in evidence if e.type == type_ and (suite is None or e.suite == suite)]
    return max(found, key=lambda e: (e.created_at, e.id)) if found else None


def judge(transition: Transition, *, ref: str, author: str,
          evidence: Sequence[EvidenceInfo], approvals: Sequence[ApprovalInfo],
          baseline: Sequence[EvidenceInfo] | None, baseline_ref: str | None,
          owner: str | None = None) -> list[GateResult]:
    """Judge every gate of ``transition`` for the version ``ref``.

    Args:
        transition: the policy transition being taken.
        ref: ``name@version`` of the candidate, for messages.
        author: the candidate's author (separation of duties).
        evidence: evidence attached to the candidate's digest.
        approvals: approvals of the candidate's digest for the target environment.
        baseline: evidence of the version the target slot holds now (None if empty).
        baseline_ref: ``name@version`` the slot holds now, for messages.
        owner: the team that owns the name (whose approvals count, by default).
    """
    candidate = Candidate(ref=ref, env=transition.to, author=author, evidence=evidence,
                          approvals=approvals, baseline=baseline, baseline_ref=baseline_ref,
                          owner=owner)
    results = [GateResult(gate="transition", passed=True,
                          detail=f"{transition.from_} -> {transition.to} is allowed")]
    results += [judge_gate(kind, gate, candidate) for kind, gate in transition.gates.each()]
    return results


def judge_gate(kind: GateKind[Any], gate: Any, candidate: Candidate) -> GateResult:
    """Judge one gate of ``kind``, reported under the name the kind gives it.

    Raises:
        PolicyError: no judge is registered for ``kind`` (an unknown kind never passes).

    Example:
        >>> from llmreg.policy import APPROVALS, ApprovalGate
        >>> c = Candidate(ref="chat@3", env="production", author="ana", evidence=[],
        ...               approvals=[], baseline=None, baseline_ref=None)
        >>> r = judge_gate(APPROVALS, ApprovalGate(count=1), c)
        >>> r.gate, r.passed
        ('approvals', False)
    """
    judge_fn = JUDGES.get(kind.key)
    if judge_fn is None:
        raise PolicyError(f"the policy asks for a gate of kind {kind.key!r}, which llmreg "
                          f"cannot judge (it judges {', '.join(JUDGES)}); nothing was promoted")
    passed, detail = judge_fn(gate, candidate)
    return GateResult(gate=kind.label(gate), passed=passed, detail=detail)


def _eval(gate: EvalGate, c: Candidate) -> Verdict:
    record = latest(c.evidence, "eval", gate.suite)
    if record is None:
        return False, (
            f"no '{gate.suite}' eval is attached to {c.ref}'s digest; run `llmreg eval attach "
            f"{c.ref} --suite {gate.suite} --metrics FILE.json`")
    if record.passed is False:
        return False, f"the latest '{gate.suite}' eval (#{record.id}) reports failure"
    base = latest(c.baseline, "eval", gate.suite) if c.baseline is not None else None
    problems, met = _thresholds(gate.metrics, record, base, c.baseline, c.baseline_ref,
                                f"'{gate.suite}' eval")
    return not problems, ("; ".join(problems) if problems
                          else f"eval #{record.id}: " + ", ".join(met))


def _shadow(metrics: dict[str, Threshold], c: Candidate) -> Verdict:
    record = latest(c.evidence, "shadow-metrics")
    if record is None:
        return False, (
            f"no shadow metrics are attached to {c.ref}'s digest; run `llmreg shadow report "
            f"{c.ref} --metrics FILE.json`")
    base = latest(c.baseline, "shadow-metrics") if c.baseline is not None else None
    problems, met = _thresholds(metrics, record, base, c.baseline, c.baseline_ref,
                                "shadow metrics")
    return not problems, ("; ".join(problems) if problems
                          else f"shadow metrics #{record.id}: " + ", ".join(met))


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


def _group_text(group: str, owner: str | None) -> str:
    if group != OWNER_GROUP:
        return f"team {group}"
    return f"team {owner}" if owner is not None else "the owning team"


def _teams_text(teams: dict[str, str] | None) -> str:
    named = sorted(t for t in teams or {} if t != EVERYWHERE)
    return f"in team {', '.join(named)}" if named else "in no team"


def _approvals(gate: ApprovalGate, c: Candidate) -> Verdict:
    """Distinct approvers with the role, not the author (if asked), who count for the
    gate's groups (:meth:`ApprovalGate.groups`; none: the owning team); every approval
    that does not count is named with why."""
    groups = gate.groups() or [(OWNER_GROUP, 0)]
    eligible: list[ApprovalInfo] = []
    ignored: list[str] = []
    for a in c.approvals:
        if gate.not_author and a.approver == c.author:
            ignored.append(f"{a.approver} (the author)")
        elif a.roles is not None and gate.role not in a.roles:
            ignored.append(f"{a.approver} (no '{gate.role}' role)")
        elif not any(counts_for(a.teams, g, c.owner, gate.role) for g, _ in groups):
            wanted = " or ".join(_group_text(g, c.owner) for g, _ in groups)
            ignored.append(f"{a.approver} ({_teams_text(a.teams)}; {c.env} needs approvals "
                           f"from {wanted})")
        elif all(e.approver != a.approver for e in eligible):
            eligible.append(a)
    # Fill each group's share with distinct people, named teams first.
    used: set[str] = set()
    short: list[str] = []
    for group, need in groups:
        members = [a.approver for a in eligible if a.approver not in used
                   and counts_for(a.teams, group, c.owner, gate.role)][:need]
        used.update(members)
        if len(members) < need:
            short.append(f"{need - len(members)} more from {_group_text(group, c.owner)}")
    have = len(eligible)
    who = ", ".join(sorted(a.approver for a in eligible)) or "nobody yet"
    note = f"; not counted: {', '.join(ignored)}" if ignored else ""
    if have >= gate.count and not short:
        return True, f"{have} of {gate.count} approvals ({who}){note}"
    missing = f"; needs {', '.join(short)}" if short else ""
    return False, (
        f"{have} of {gate.count} approvals for {c.env} ({who}){missing}{note}; approvers "
        f"other than the author ({c.author}) run `llmreg approve {c.ref} --to {c.env}`")


#: The judge of each kind of gate, by :attr:`llmreg.policy.GateKind.key`.
JUDGES: dict[str, Callable[[Any, Candidate], Verdict]] = {
    EVALS.key: _eval,
    SHADOW_METRICS.key: _shadow,
    APPROVALS.key: _approvals,
}
