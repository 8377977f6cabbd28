"""What each lifecycle step records, exactly: audit entries, evidence and approval rows,
slot status and the status a version takes when it leaves a slot."""

from __future__ import annotations

from typing import Any
from unittest.mock import ANY

import pytest

from llmreg.bundle.schema import Bundle
from llmreg.errors import ApprovalError, InvalidEvidenceError
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
            for e in svc.lifecycle.audit_log() if e.seq > since]


def test_each_step_writes_its_exact_audit_entry_and_rows(svc: RegistryService) -> None:
    ref, digest = register(svc, "chat", 1)
    policy = svc.policy.digest
    start = len(svc.lifecycle.audit_log())
    report = svc.blobs.put_bytes(b"<p>report</p>").digest
    ev = svc.lifecycle.attach_evidence(ref, type="eval", suite="regression",
                                       metrics={"accuracy": 0.95}, actor=ANA,
                                       links=["https://ci.example/run/7"], passed=True,
                                       report_digest=report)
    assert (ev.digest, ev.links, ev.report_digest, ev.created_by, ev.passed) == (
        digest, ["https://ci.example/run/7"], report, "ana", True)
    svc.lifecycle.promote(ref, "staging", actor=ANA, reason="try it")
    approver = Actor("bo", frozenset({"reader", "approver"}))
    approval, created = svc.lifecycle.approve(ref, "production", actor=approver,
                                              comment="read the evals")
    assert created and (approval.roles, approval.comment) == (["approver", "reader"],
                                                              "read the evals")
    svc.lifecycle.approve(ref, "production", actor=CY)
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
    mark = len(svc.lifecycle.audit_log())
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
    [event] = [e for e in svc.lifecycle.slot_history("chat", "staging")
               if e.action == "rollback"]
    assert [(g.gate, g.passed, g.detail) for g in event.gates] == [
        ("rollback", True, "chat@1 held staging before chat@2")]


def test_an_approval_needs_the_role_and_counts_per_name(svc: RegistryService) -> None:
    ref, _ = register(svc, "chat", 1)
    same, _ = register(svc, "chat-eu", 1)  # other content, other name
    reader = Actor("rita", frozenset({"reader", "publisher"}))
    with pytest.raises(ApprovalError, match=r"^rita has roles \['publisher', 'reader'\], and "
                                            r"approving for production needs approver$"):
        svc.lifecycle.approve(ref, "production", actor=reader)
    assert svc.lifecycle.approvals_for(ref, "production") == []
    first = svc.lifecycle.approve(ref, "production", actor=BO)
    again = svc.lifecycle.approve(ref, "production", actor=BO, comment="twice")
    assert first[1] is True and again[1] is False and again[0].comment == ""
    assert svc.lifecycle.approve(same, "production", actor=BO)[1] is True
    assert [a.approver for a in svc.lifecycle.approvals_for(ref, "production")] == ["bo"]
    assert svc.lifecycle.approvals_for(ref, "staging") == []


def test_the_same_digest_under_two_names_is_approved_once_per_name(
        svc: RegistryService) -> None:
    bundle = Bundle.from_dict(minimal(system_prompt="shared"))
    a = svc.versions.register(bundle, name="chat", message="m", author="ana").version
    b = svc.versions.register(bundle, name="chat-eu", message="m", author="ana").version
    assert a.digest == b.digest
    assert svc.lifecycle.approve(a.ref, "production", actor=BO)[1] is True
    assert svc.lifecycle.approve(b.ref, "production", actor=BO)[1] is True


@pytest.mark.parametrize("link", ["ftp://x/y", "https://", "https://a b", "http://" + "a" * 2001])
def test_links_must_be_short_http_urls(svc: RegistryService, link: str) -> None:
    ref, _ = register(svc, "chat", 1)
    with pytest.raises(InvalidEvidenceError, match="is not an http\\(s\\) URL of at most"):
        svc.lifecycle.attach_evidence(ref, type="eval", suite="s", metrics={"a": 1.0},
                                      actor=ANA, links=["https://ok.example", link])
    assert svc.lifecycle.evidence_for(svc.versions.resolve(ref).digest) == []


def test_a_report_must_be_uploaded_first(svc: RegistryService) -> None:
    ref, _ = register(svc, "chat", 1)
    missing = "sha256:" + "0" * 64
    with pytest.raises(InvalidEvidenceError, match=f"report {missing} is not in the blob "
                                                   "store; upload it first"):
        svc.lifecycle.attach_evidence(ref, type="eval", suite="s", metrics={"a": 1.0},
                                      actor=ANA, report_digest=missing)


def test_a_version_leaving_a_slot_takes_the_furthest_slot_it_still_holds(
        svc: RegistryService) -> None:
    # Another name holds the same version numbers in other slots: nothing leaks across.
    o1, _ = register(svc, "other", 1)
    o2, _ = register(svc, "other", 2)
    for ref in (o1, o2):
        svc.lifecycle.promote(ref, "staging", actor=ANA, reason="x")
    svc.lifecycle.approve(o2, "shadow", actor=BO)
    svc.lifecycle.promote(o2, "shadow", actor=ANA, reason="x")
    v1, _ = register(svc, "chat", 1)
    v2, _ = register(svc, "chat", 2)
    svc.lifecycle.promote(v1, "staging", actor=ANA, reason="a")
    svc.lifecycle.approve(v1, "shadow", actor=BO)
    svc.lifecycle.promote(v1, "shadow", actor=ANA, reason="b")
    svc.lifecycle.promote(v2, "staging", actor=ANA, reason="c")
    svc.lifecycle.approve(v2, "shadow", actor=BO)
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
    svc.lifecycle.approve(v1, "shadow", actor=BO)
    svc.lifecycle.promote(v1, "shadow", actor=CY, reason="mirror traffic")
    rows = svc.lifecycle.status("chat")
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
    before = svc.lifecycle.status("chat", "staging")[0]
    svc.lifecycle.promote(v2, "staging", actor=BO, reason="second")
    [after] = svc.lifecycle.status("chat", "staging")
    assert (after.version, after.digest, after.promoted_by, after.reason) == (
        2, d2, "bo", "second")
    assert after.since > before.since


def test_listings_filter_by_name_env_and_limit(svc: RegistryService) -> None:
    c1, _ = register(svc, "chat", 1)
    o1, _ = register(svc, "other", 1)
    for ref in (c1, o1):
        svc.lifecycle.promote(ref, "staging", actor=ANA, reason=f"stage {ref}")
    svc.lifecycle.approve(c1, "shadow", actor=BO)
    svc.lifecycle.approve(c1, "production", actor=CY)
    svc.lifecycle.approve(o1, "shadow", actor=CY)
    svc.lifecycle.promote(c1, "shadow", actor=ANA, reason="mirror")
    assert [a.approver for a in svc.lifecycle.approvals_for(c1, "shadow")] == ["bo"]
    assert [a.approver for a in svc.lifecycle.approvals_for(c1, "production")] == ["cy"]
    assert [(e.env, e.reason) for e in svc.lifecycle.slot_history("chat", "staging")] == [
        ("staging", "stage chat@1")]
    assert [e.reason for e in svc.lifecycle.slot_history("chat", "shadow")] == ["mirror"]
    assert [e.action for e in svc.lifecycle.audit_log("other")] == [
        "register", "promote", "approval"]
    last_two = svc.lifecycle.audit_log(limit=2)
    assert [(e.action, e.target) for e in last_two] == [("approval", "other@1"),
                                                         ("promote", "chat@1")]
    assert [s.name for s in svc.lifecycle.status(env="staging")] == ["chat", "other"]
