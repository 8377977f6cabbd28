"""Promotion through the core service: every gate, enforced in one place."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmreg.bundle.schema import Bundle
from llmreg.errors import (
    ApprovalError,
    EmptySlotError,
    GateFailedError,
    SlotConflictError,
    TransitionError,
    UnknownEnvironmentError,
)
from llmreg.policy import DEFAULT_POLICY_YAML as INIT_POLICY_YAML
from llmreg.policy import parse_policy
from llmreg.service import RegistryService
from llmreg.types import Actor
from tests.conftest import minimal
from tests.service.conftest import on_each_database

# These tests are about gates, not owners: the init policy without require_owner.
DEFAULT_POLICY_YAML = INIT_POLICY_YAML.replace("require_owner: true", "require_owner: false")

ANA, BO, CY = Actor("ana"), Actor("bo"), Actor("cy")


svc = pytest.fixture(on_each_database, name="svc")


def register(svc: RegistryService, i: int, author: str = "ana") -> str:
    bundle = Bundle.from_dict(minimal(system_prompt=f"variant {i}"))
    info = svc.versions.register(bundle, name="chat", message=f"v{i}", author=author).version
    return info.ref


def to_staging(svc: RegistryService, ref: str) -> None:
    svc.lifecycle.promote(ref, "staging", actor=ANA, reason="try it")


def ready_for_production(svc: RegistryService, ref: str, accuracy: float = 0.93) -> None:
    svc.evidence.attach(ref, type="eval", suite="regression",
                        metrics={"accuracy": accuracy}, actor=ANA)
    svc.approvals.approve(ref, "production", actor=BO)
    svc.approvals.approve(ref, "production", actor=CY)


def gates(exc: pytest.ExceptionInfo[GateFailedError]) -> dict[str, bool]:
    return {r.gate: r.passed for r in exc.value.report.results}  # type: ignore[attr-defined]


def test_the_default_flow_end_to_end(svc: RegistryService) -> None:
    ref = register(svc, 1)
    to_staging(svc, ref)
    with pytest.raises(GateFailedError) as refused:
        svc.lifecycle.promote(ref, "production", actor=ANA, reason="ship")
    assert gates(refused) == {"transition": True, "eval:regression": False, "approvals": False}
    svc.evidence.attach(ref, type="eval", suite="regression", metrics={"accuracy": 0.85},
                        actor=ANA)
    report = svc.lifecycle.check_gates(ref, "production")
    assert not report.passed
    assert "accuracy 0.85 is below the minimum 0.9" in report.results[1].detail
    svc.evidence.attach(ref, type="eval", suite="regression", metrics={"accuracy": 0.93},
                        actor=ANA)
    with pytest.raises(ApprovalError, match="ana is the author of chat@1"):
        svc.approvals.approve(ref, "production", actor=ANA)
    svc.approvals.approve(ref, "production", actor=BO)
    with pytest.raises(GateFailedError, match="1 of 2 approvals"):
        svc.lifecycle.promote(ref, "production", actor=ANA, reason="ship")
    svc.approvals.approve(ref, "prod", actor=CY)
    event, report = svc.lifecycle.promote(ref, "production", actor=ANA, reason="ship")
    assert report.passed and event.to_version == 1 and event.policy_digest == svc.policy.digest
    (prod,) = svc.slots.status("chat", "production")
    assert (prod.version, prod.promoted_by, prod.reason) == (1, "ana", "ship")
    assert svc.versions.resolve("chat@production").version == 1
    assert svc.versions.resolve("chat@prod").status == "production"


def test_evidence_for_one_version_does_not_count_for_the_next(svc: RegistryService) -> None:
    v1, v2 = register(svc, 1), register(svc, 2)
    to_staging(svc, v1)
    ready_for_production(svc, v1)
    svc.lifecycle.promote(v2, "staging", actor=ANA, reason="next")
    svc.approvals.approve(v2, "production", actor=BO)
    svc.approvals.approve(v2, "production", actor=CY)
    with pytest.raises(GateFailedError) as refused:
        svc.lifecycle.promote(v2, "production", actor=ANA, reason="same suite name")
    assert gates(refused)["eval:regression"] is False
    assert "no 'regression' eval is attached to chat@2's digest" in str(refused.value)


def test_shadow_is_its_own_status_and_needs_shadow_metrics(svc: RegistryService) -> None:
    ref = register(svc, 1)
    to_staging(svc, ref)
    with pytest.raises(GateFailedError, match="0 of 1 approvals"):
        svc.lifecycle.promote(ref, "shadow", actor=ANA, reason="shadow")
    svc.approvals.approve(ref, "shadow", actor=BO)
    svc.lifecycle.promote(ref, "shadow", actor=ANA, reason="shadow")
    slots = [(s.env, s.version) for s in svc.slots.status("chat")]
    assert slots == [("staging", 1), ("shadow", 1)]
    assert svc.slots.status("chat", "production") == []
    with pytest.raises(EmptySlotError, match="'chat' has nothing in 'production'"):
        svc.versions.resolve("chat@production")
    ready_for_production(svc, ref)
    with pytest.raises(GateFailedError) as refused:
        svc.lifecycle.promote(ref, "production", actor=ANA, reason="go")
    assert gates(refused)["shadow-metrics"] is False
    # An eval is never shadow evidence, even with the right metric name.
    svc.evidence.attach(ref, type="eval", suite="shadow", metrics={"error_rate": 0.0},
                        actor=ANA)
    with pytest.raises(GateFailedError, match="no shadow metrics"):
        svc.lifecycle.promote(ref, "production", actor=ANA, reason="go")
    svc.evidence.attach(ref, type="shadow-metrics", suite="shadow",
                        metrics={"error_rate": 0.02}, actor=ANA)
    with pytest.raises(GateFailedError, match="error_rate 0.02 is above the maximum 0.01"):
        svc.lifecycle.promote(ref, "production", actor=ANA, reason="go")
    svc.evidence.attach(ref, type="shadow-metrics", suite="shadow",
                        metrics={"error_rate": 0.005}, actor=ANA)
    svc.lifecycle.promote(ref, "production", actor=ANA, reason="go")
    assert svc.slots.status("chat", "production")[0].version == 1


def test_unknown_environment_and_disallowed_transition_change_nothing(
    svc: RegistryService,
) -> None:
    ref = register(svc, 1)
    before = len(svc.audit.entries())
    with pytest.raises(UnknownEnvironmentError, match="use one of staging"):
        svc.lifecycle.promote(ref, "qa", actor=ANA, reason="x")
    with pytest.raises(GateFailedError, match="allows no registered -> production"):
        svc.lifecycle.promote(ref, "production", actor=ANA, reason="x")
    assert svc.slots.status() == [] and len(svc.audit.entries()) == before


def test_expect_current_is_compare_and_set(svc: RegistryService) -> None:
    v1, v2 = register(svc, 1), register(svc, 2)
    to_staging(svc, v1)
    with pytest.raises(SlotConflictError, match="holds @1, not @2"):
        svc.lifecycle.promote(v2, "staging", actor=ANA, reason="x", expect_current="chat@2")
    svc.lifecycle.promote(v2, "staging", actor=ANA, reason="x", expect_current="chat@1")
    assert svc.slots.status("chat", "staging")[0].version == 2


def test_rollback_returns_the_previous_version(svc: RegistryService) -> None:
    v1, v2 = register(svc, 1), register(svc, 2)
    with pytest.raises(EmptySlotError):
        svc.lifecycle.rollback("chat", "production", actor=ANA, reason="x")
    to_staging(svc, v1)
    with pytest.raises(TransitionError, match="nothing to roll back to"):
        svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="x")
    to_staging(svc, v2)
    event = svc.lifecycle.rollback("chat", "pre-prod", actor=BO, reason="latency regression")
    assert (event.from_version, event.to_version, event.action) == (2, 1, "rollback")
    history = svc.slots.history("chat", "staging")
    assert [(e.from_version, e.to_version) for e in history] == [(None, 1), (1, 2), (2, 1)]
    assert history[-1].reason == "latency regression" and history[-1].actor == "bo"


def test_deprecate_and_archive(svc: RegistryService) -> None:
    v1, v2 = register(svc, 1), register(svc, 2)
    to_staging(svc, v1)
    with pytest.raises(TransitionError, match="runs in staging"):
        svc.lifecycle.archive(v1, actor=ANA)
    assert svc.lifecycle.deprecate(v2, actor=ANA, reason="superseded").status == "deprecated"
    assert svc.lifecycle.archive(v2, actor=ANA).status == "archived"
    with pytest.raises(TransitionError, match="archived"):
        svc.lifecycle.promote(v2, "staging", actor=ANA, reason="x")
    with pytest.raises(TransitionError, match="archived"):
        svc.evidence.attach(v2, type="eval", suite="s", metrics={"a": 1}, actor=ANA)
    with pytest.raises(TransitionError, match="archived"):
        svc.approvals.approve(v2, "production", actor=BO)
    assert svc.versions.get(v2).digest  # archived, never deleted


def test_no_regression_gate_compares_with_the_slot(tmp_path: Path) -> None:
    text = DEFAULT_POLICY_YAML.replace(
        "accuracy: {min: 0.9}", "accuracy: {no_regression: true, tolerance: 0.01}", 1)
    svc = RegistryService.open_home(tmp_path / "r", policy=parse_policy(text, source="t"))
    v1, v2 = register(svc, 1), register(svc, 2)
    to_staging(svc, v1)
    ready_for_production(svc, v1, accuracy=0.90)  # empty slot: nothing to regress against
    svc.lifecycle.promote(v1, "production", actor=ANA, reason="first")
    svc.lifecycle.promote(v2, "staging", actor=ANA, reason="next")
    ready_for_production(svc, v2, accuracy=0.88)
    with pytest.raises(GateFailedError, match=r"accuracy 0.88 regresses from 0.9 \(chat@1\)"):
        svc.lifecycle.promote(v2, "production", actor=ANA, reason="x")
    svc.evidence.attach(v2, type="eval", suite="regression", metrics={"accuracy": 0.895},
                        actor=ANA)
    svc.lifecycle.promote(v2, "production", actor=ANA, reason="within tolerance")
    svc.close()


def test_policy_changes_are_audited_and_recorded(tmp_path: Path) -> None:
    home = tmp_path / "r"
    first = RegistryService.open_home(home)
    ref = register(first, 1)
    to_staging(first, ref)
    first.close()
    stricter = parse_policy(DEFAULT_POLICY_YAML.replace("min: 0.9", "min: 0.95"), source="t")
    second = RegistryService.open_home(home, policy=stricter)
    second.approvals.approve(ref, "production", actor=BO)
    changes = [e for e in second.audit.entries() if e.action == "policy"]
    assert [(c.detail["from"], c.detail["to"]) for c in changes] == [
        (None, first.policy.digest), (first.policy.digest, stricter.digest)]
    assert second.blobs.exists(stricter.digest)  # the enforced policy is kept, by digest
    second.close()


def test_lower_is_better_missing_metrics_and_failed_runs(tmp_path: Path) -> None:
    text = DEFAULT_POLICY_YAML.replace(
        "accuracy: {min: 0.9}",
        "latency_ms: {no_regression: true, higher_is_better: false, tolerance: 5}", 1)
    svc = RegistryService.open_home(tmp_path / "r", policy=parse_policy(text, source="t"))
    v1, v2 = register(svc, 1), register(svc, 2)
    to_staging(svc, v1)

    def eval_(ref: str, passed: bool | None = None, **metrics: float) -> None:
        svc.evidence.attach(ref, type="eval", suite="regression", metrics=metrics,
                            actor=ANA, passed=passed)

    def problems(ref: str) -> list[str]:
        report = svc.lifecycle.check_gates(ref, "production")
        (result,) = [r for r in report.results if r.gate == "eval:regression"]
        return [] if result.passed else [result.detail]

    eval_(v1, latency_ms=100)
    svc.approvals.approve(v1, "production", actor=BO)
    svc.approvals.approve(v1, "production", actor=CY)
    svc.lifecycle.promote(v1, "production", actor=ANA, reason="first")
    svc.lifecycle.promote(v2, "staging", actor=ANA, reason="next")
    eval_(v2, latency_ms=120)
    assert "latency_ms 120 regresses from 100 (chat@1), tolerance 5" in problems(v2)[0]
    eval_(v2, latency_ms=104)
    assert problems(v2) == []  # slower, but within the tolerance
    eval_(v2, accuracy=0.9)
    assert "has no 'latency_ms' metric" in problems(v2)[0]
    eval_(v2, passed=False, latency_ms=90)
    assert problems(v2) == ["the latest 'regression' eval (#5) reports failure"]
    svc.close()
