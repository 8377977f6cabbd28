"""What each lifecycle step records, exactly: audit entries, evidence and approval rows,
slot status and the status a version takes when it leaves a slot."""

from __future__ import annotations

from typing import Any
from unittest.mock import ANY

from llmreg.bundle.schema import Bundle
from llmreg.service import RegistryService
from llmreg.types import Actor
from tests.conftest import minimal

ANA, BO, CY = Actor("ana"), Actor("bo"), Actor("cy")


def register(svc: RegistryService, name: str, i: int) -> tuple[str, str]:
    bundle = Bundle.from_dict(minimal(system_prompt=f"{name} {i}"))
    info = svc.versions.register(bundle, name=name, message=f"v{i}", author="ana").version
    return info.ref, info.digest


def entries(svc: RegistryService, since: int) -> list[tuple[Any, ...]]:
    return [(e.actor, e.action, e.name, e.target, e.env, e.detail)
            for e in svc.audit.entries() if e.seq > since]


def test_each_step_writes_its_exact_audit_entry_and_rows(svc: RegistryService) -> None:
    ref, digest = register(svc, "chat", 1)
    policy = svc.policy.digest
    start = len(svc.audit.entries())
    report = svc.blobs.put_bytes(b"<p>report</p>").digest
    ev = svc.evidence.attach(ref, type="eval", suite="regression",
                             metrics={"accuracy": 0.95}, actor=ANA,
                             links=["https://ci.example/run/7"], passed=True,
                             report_digest=report)
    assert (ev.digest, ev.links, ev.report_digest, ev.created_by, ev.passed) == (
        digest, ["https://ci.example/run/7"], report, "ana", True)
    svc.lifecycle.promote(ref, "staging", actor=ANA, reason="try it")
    approver = Actor("bo", frozenset({"reader", "approver"}))
    approval, created = svc.approvals.approve(ref, "production", actor=approver,
                                              comment="read the evals")
    assert created and (approval.roles, approval.comment) == (["approver", "reader"],
                                                              "read the evals")
    svc.approvals.approve(ref, "production", actor=CY)
    svc.lifecycle.promote(ref, "production", actor=ANA, reason="passes")
    assert entries(svc, start) == [
        ("ana", "evidence", "chat", "chat@1", None,
         {"type": "eval", "suite": "regression", "metrics": {"accuracy": 0.95},
          "digest": digest, "passed": True, "report": report, "evidence_id": ev.id}),
        ("ana", "policy", None, policy, None, {"from": None, "to": policy}),
        ("ana", "promote", "chat", "chat@1", "staging",
         {"from_version": None, "digest": digest, "reason": "try it", "policy": policy,
          "gates": ["transition"], "event_id": ANY}),
        ("bo", "approval", "chat", "chat@1", "production",
         {"digest": digest, "comment": "read the evals"}),
        ("cy", "approval", "chat", "chat@1", "production", {"digest": digest, "comment": ""}),
        ("ana", "promote", "chat", "chat@1", "production",
         {"from_version": None, "digest": digest, "reason": "passes", "policy": policy,
          "gates": ["transition", "eval:regression", "approvals"], "event_id": ANY}),
    ]
    ref2, digest2 = register(svc, "chat", 2)
    svc.lifecycle.promote(ref2, "staging", actor=ANA, reason="next")
    mark = len(svc.audit.entries())
    svc.lifecycle.rollback("chat", "staging", actor=BO, reason="worse")
    svc.lifecycle.deprecate(ref2, actor=CY, reason="superseded")
    svc.lifecycle.archive(ref2, actor=CY, reason="cleanup")
    assert entries(svc, mark) == [
        ("bo", "rollback", "chat", "chat@1", "staging",
         {"from_version": 2, "digest": digest, "reason": "worse", "policy": policy,
          "gates": ["rollback"], "event_id": ANY}),
        ("cy", "deprecate", "chat", "chat@2", None,
         {"digest": digest2, "from": "staging", "reason": "superseded", "rule": "manual",
          "policy": policy}),
        ("cy", "archive", "chat", "chat@2", None,
         {"digest": digest2, "from": "deprecated", "reason": "cleanup", "rule": "manual",
          "policy": policy}),
    ]
    [event] = [e for e in svc.slots.history("chat", "staging")
               if e.action == "rollback"]
    assert [(g.gate, g.passed, g.detail) for g in event.gates] == [
        ("rollback", True, "chat@1 held staging before chat@2")]


def test_a_version_leaving_a_slot_takes_the_furthest_slot_it_still_holds(
        svc: RegistryService) -> None:
    # Another name holds the same version numbers in other slots: nothing leaks across.
    o1, _ = register(svc, "other", 1)
    o2, _ = register(svc, "other", 2)
    for ref in (o1, o2):
        svc.lifecycle.promote(ref, "staging", actor=ANA, reason="x")
    svc.approvals.approve(o2, "shadow", actor=BO)
    svc.lifecycle.promote(o2, "shadow", actor=ANA, reason="x")
    v1, _ = register(svc, "chat", 1)
    v2, _ = register(svc, "chat", 2)
    svc.lifecycle.promote(v1, "staging", actor=ANA, reason="a")
    svc.approvals.approve(v1, "shadow", actor=BO)
    svc.lifecycle.promote(v1, "shadow", actor=ANA, reason="b")
    svc.lifecycle.promote(v2, "staging", actor=ANA, reason="c")
    svc.approvals.approve(v2, "shadow", actor=BO)
    svc.lifecycle.promote(v2, "shadow", actor=ANA, reason="d")
    status = {v.version: v.status for v in svc.versions.history("chat")}
    assert status == {1: "shadow", 2: "shadow"}  # v1 holds nothing: it keeps its last
    svc.lifecycle.rollback("chat", "shadow", actor=ANA, reason="e")
    status = {v.version: v.status for v in svc.versions.history("chat")}
    assert status == {1: "shadow", 2: "staging"}  # v2 still holds staging
    assert [v.status for v in svc.versions.history("other")] == ["staging", "shadow"]


def test_status_shows_each_slots_own_latest_move(svc: RegistryService) -> None:
    v1, d1 = register(svc, "chat", 1)
    svc.lifecycle.promote(v1, "staging", actor=ANA, reason="first try")
    svc.approvals.approve(v1, "shadow", actor=BO)
    svc.lifecycle.promote(v1, "shadow", actor=CY, reason="mirror traffic")
    rows = svc.slots.status("chat")
    assert [(r.env, r.version, r.digest, r.promoted_by, r.reason, r.policy_digest,
             [g.gate for g in r.gates]) for r in rows] == [
        ("staging", 1, d1, "ana", "first try", svc.policy.digest, ["transition"]),
        ("shadow", 1, d1, "cy", "mirror traffic", svc.policy.digest, ["transition", "approvals"]),
    ]
    assert rows[0].since < rows[1].since
    report = svc.lifecycle.check_gates(v1, "production")
    assert (report.from_status, report.current_version, report.to_env) == (
        "shadow", None, "production")
    v2, _ = register(svc, "chat", 2)
    assert svc.lifecycle.check_gates(v2, "staging").current_version == 1
    blocked = svc.lifecycle.check_gates(v2, "production")
    assert [r.detail for r in blocked.results] == [
        "chat@2 is registered; the policy allows no registered -> production (from "
        "registered: staging)"]


def test_a_move_into_an_occupied_slot_rewrites_the_whole_slot(svc: RegistryService) -> None:
    v1, _ = register(svc, "chat", 1)
    v2, d2 = register(svc, "chat", 2)
    svc.lifecycle.promote(v1, "staging", actor=ANA, reason="first")
    before = svc.slots.status("chat", "staging")[0]
    svc.lifecycle.promote(v2, "staging", actor=BO, reason="second")
    [after] = svc.slots.status("chat", "staging")
    assert (after.version, after.digest, after.promoted_by, after.reason) == (
        2, d2, "bo", "second")
    assert after.since > before.since


def test_listings_filter_by_name_env_and_limit(svc: RegistryService) -> None:
    c1, _ = register(svc, "chat", 1)
    o1, _ = register(svc, "other", 1)
    for ref in (c1, o1):
        svc.lifecycle.promote(ref, "staging", actor=ANA, reason=f"stage {ref}")
    svc.approvals.approve(c1, "shadow", actor=BO)
    svc.approvals.approve(c1, "production", actor=CY)
    svc.approvals.approve(o1, "shadow", actor=CY)
    svc.lifecycle.promote(c1, "shadow", actor=ANA, reason="mirror")
    assert [a.approver for a in svc.approvals.list(c1, "shadow")] == ["bo"]
    assert [a.approver for a in svc.approvals.list(c1, "production")] == ["cy"]
    assert [(e.env, e.reason) for e in svc.slots.history("chat", "staging")] == [
        ("staging", "stage chat@1")]
    assert [e.reason for e in svc.slots.history("chat", "shadow")] == ["mirror"]
    assert [e.action for e in svc.audit.entries("other")] == [
        "register", "promote", "approval"]
    last_two = svc.audit.entries(limit=2)
    assert [(e.action, e.target) for e in last_two] == [("approval", "other@1"),
                                                         ("promote", "chat@1")]
    assert [s.name for s in svc.slots.status(env="staging")] == ["chat", "other"]
