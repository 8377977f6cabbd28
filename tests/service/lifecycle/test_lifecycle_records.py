"""What each lifecycle step records, exactly: audit entries, evidence and approval rows,
slot status and the status a version takes when it leaves a slot."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from sqlmodel import col, select

from llmreg.bundle.schema import Bundle
from llmreg.db.models import Approval
from llmreg.service import RegistryService
from llmreg.types import Actor
from tests.conftest import minimal

ANA, BO, CY = Actor("ana"), Actor("bo"), Actor("cy")


def register(svc: RegistryService, name: str, i: int) -> tuple[str, str]:
    bundle = Bundle.from_dict(minimal(system_prompt=f"{name} {i}"))
    info = svc.versions.register(bundle, name=name, message=f"v{i}", author="ana").version
    return info.ref, info.digest


def entries(svc: RegistryService, since: int) -> list[tuple[Any, ...]]:
    """The entries after ``since``, each detail without its ``rows`` (see :func:`rows`)."""
    return [(e.actor, e.action, e.name, e.target, e.env,
             {k: v for k, v in e.detail.items() if k != "rows"})
            for e in svc.audit.entries() if e.seq > since]


def rows(svc: RegistryService, since: int) -> list[list[str]]:
    """The covered rows each entry after ``since`` recorded (llmreg.service.audited)."""
    return [sorted(e.detail.get("rows", {})) for e in svc.audit.entries() if e.seq > since]


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
    with svc.db.read() as s:
        first, second = s.exec(select(Approval.id).order_by(col(Approval.id))).all()
    assert rows(svc, start) == [
        [f"evidence/{ev.id}"], ["policies/1"], ["slots/chat/staging", "versions/chat@1"],
        [f"approvals/{first}"], [f"approvals/{second}"],
        ["slots/chat/production", "versions/chat@1"]]
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
    # The rollback records the slot and the version it returns (the one that left holds
    # no slot now, so its status did not change).
    assert rows(svc, mark) == [["slots/chat/staging", "versions/chat@1"],
                               ["versions/chat@2"], ["versions/chat@2"]]
    archived = svc.audit.entries()[-1].detail["rows"]["versions/chat@2"]
    assert (archived["status"], archived["retire_rule"], archived["digest"]) == (
        "archived", "manual", digest2)
    # 2 versions, 2 slots, 1 evidence, 2 approvals, 1 policy: each equal to its entry
    assert (svc.audit.check().rows, svc.audit.check().unrecorded) == (8, 0)
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


# -- the events each move emits, the owner gate, rollback and retire refusals ----------------


def outbox(svc: RegistryService, since: int = 0) -> list[tuple[str, str | None, dict[str, Any]]]:
    from sqlmodel import col, select

    from llmreg.db.models import OutboxEvent

    with svc.db.read() as s:
        rows = s.exec(select(OutboxEvent).where(col(OutboxEvent.id) > since)
                      .order_by(col(OutboxEvent.id))).all()
        # Each event also carries the audit head (pinned in test_outbox.py), not its payload.
        for r in rows:  # (None on an empty log)
            assert set(r.data["audit"] or {"seq": 0, "head": None}) == {"seq", "head"}
        return [(r.type, r.name, {k: v for k, v in r.data.items() if k != "audit"})
                for r in rows]


def last_event_id(svc: RegistryService) -> int:
    from sqlmodel import col, func, select

    from llmreg.db.models import OutboxEvent

    with svc.db.read() as s:
        return int(s.exec(select(func.max(col(OutboxEvent.id)))).one() or 0)


def test_each_move_emits_its_exact_event(svc: RegistryService) -> None:
    ref1, digest1 = register(svc, "chat", 1)
    ref2, digest2 = register(svc, "chat", 2)
    register(svc, "other", 1)
    policy = svc.policy.digest
    long = "r" * 600
    start = last_event_id(svc)
    svc.lifecycle.promote(ref1, "staging", actor=ANA, reason=long)
    svc.lifecycle.promote(ref2, "staging", actor=BO, reason="next")
    svc.lifecycle.rollback("chat", "pre-prod", actor=CY, reason="worse")
    assert outbox(svc, start) == [
        ("promotion", "chat", {"name": "chat", "env": "staging", "version": 1,
                               "digest": digest1, "from_version": None, "actor": "ana",
                               "reason": "r" * 500, "policy_digest": policy}),
        ("promotion", "chat", {"name": "chat", "env": "staging", "version": 2,
                               "digest": digest2, "from_version": 1, "actor": "bo",
                               "reason": "next", "policy_digest": policy}),
        ("rollback", "chat", {"name": "chat", "env": "staging", "version": 1,
                              "digest": digest1, "from_version": 2, "actor": "cy",
                              "reason": "worse", "policy_digest": policy}),
    ]


def test_a_refused_promotion_emits_gate_failed_with_what_was_unmet(svc: RegistryService
                                                                   ) -> None:
    from llmreg.errors import GateFailedError

    ref, digest = register(svc, "chat", 1)
    svc.lifecycle.promote(ref, "staging", actor=ANA, reason="try")
    start = last_event_id(svc)
    with pytest.raises(GateFailedError) as info:
        svc.lifecycle.promote("chat@staging", "production", actor=BO, reason="x" * 700)
    unmet = [{"gate": r.gate, "detail": r.detail[:500]} for r in info.value.report.unmet()]
    assert [u["gate"] for u in unmet] == ["eval:regression", "approvals"]
    assert outbox(svc, start) == [
        ("gate_failed", "chat", {"name": "chat", "version": 1, "digest": digest,
                                 "env": "production", "actor": "bo", "reason": "x" * 500,
                                 "policy_digest": svc.policy.digest, "unmet": unmet})]


def test_gate_failed_keeps_at_most_twenty_unmet_gates_of_500_characters(
        svc: RegistryService) -> None:
    from llmreg.types import GateReport, GateResult

    report = GateReport(name="chat", version=1, digest="sha256:" + "0" * 64,
                        from_status="registered", to_env="production", current_version=None,
                        policy_digest="sha256:" + "1" * 64,
                        results=[GateResult(gate=f"g{i}", passed=False, detail="d" * 900)
                                 for i in range(25)])
    start = last_event_id(svc)
    svc.lifecycle._gate_failed(report, actor=ANA, reason="")
    [(kind, name, data)] = outbox(svc, start)
    assert (kind, name, data["reason"], data["actor"]) == ("gate_failed", "chat", "", "ana")
    assert data["unmet"] == [{"gate": f"g{i}", "detail": "d" * 500} for i in range(20)]


def owned_svc(tmp_path: Path) -> RegistryService:
    from llmreg.policy import Policy

    return RegistryService.open_home(tmp_path / "owned", policy=Policy.written_by_init())


def test_the_owner_gate_holds_a_names_first_move_until_it_has_an_owner(tmp_path: Path
                                                                       ) -> None:
    from llmreg.errors import GateFailedError
    from llmreg.types import GateResult

    svc = owned_svc(tmp_path)
    try:
        register(svc, "other", 1)
        svc.owners.set("other", team="ops", contacts=["ops@example.com"], actor=ANA)
        svc.lifecycle.promote("other@1", "staging", actor=ANA, reason="x")  # another name moved
        ref, _ = register(svc, "chat", 1)
        with pytest.raises(GateFailedError) as info:
            svc.lifecycle.promote(ref, "staging", actor=ANA, reason="x")
        assert info.value.report.results[0] == GateResult(
            gate="owner", passed=False,
            detail="'chat' has no owner and the policy requires one (require_owner); run "
                   "`llmreg owner set chat --team TEAM --contact ADDRESS`")
        svc.owners.set("chat", team="search", contacts=["search@example.com"], actor=ANA)
        _, report = svc.lifecycle.promote(ref, "staging", actor=ANA, reason="x")
        assert report.results[0] == GateResult(gate="owner", passed=True,
                                               detail="owned by search")
        # Once the name has moved, later versions are not asked again.
        ref2, _ = register(svc, "chat", 2)
        _, report = svc.lifecycle.promote(ref2, "staging", actor=ANA, reason="x")
        assert [r.gate for r in report.results] == ["transition"]
    finally:
        svc.close()


def test_rollback_refusals_name_the_slot_and_the_way_out(svc: RegistryService) -> None:
    from llmreg.errors import EmptySlotError, TransitionError

    with pytest.raises(EmptySlotError) as empty:
        register(svc, "chat", 1)
        svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="x")
    assert str(empty.value) == "'chat' has nothing in 'staging' to roll back"
    for i in (2, 3):
        register(svc, "chat", i)
    svc.lifecycle.promote("chat@1", "staging", actor=ANA, reason="x")
    with pytest.raises(TransitionError) as first:
        svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="x")
    assert str(first.value) == ("chat@1 is the first version staging has held; there is "
                                "nothing to roll back to")
    # The event that put the slot where it is, not an older one of the same version or
    # another environment's: 1 -> 2 -> 3 in staging, 3 also in shadow from nothing.
    svc.lifecycle.promote("chat@2", "staging", actor=ANA, reason="x")
    svc.lifecycle.promote("chat@3", "staging", actor=ANA, reason="x")
    svc.approvals.approve("chat@3", "shadow", actor=BO)
    svc.lifecycle.promote("chat@3", "shadow", actor=ANA, reason="x")
    assert svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="x").to_version == 2
    # Staging now holds @2 for the second time: the newest move into it (the rollback,
    # from @3) is the one undone, not the first (from @1).
    assert svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="x").to_version == 3
    for i in (1, 2):
        register(svc, "arch", i)
        svc.lifecycle.promote(f"arch@{i}", "staging", actor=ANA, reason="x")
    svc.lifecycle.deprecate("arch@1", actor=ANA, reason="x")
    svc.lifecycle.archive("arch@1", actor=ANA, reason="x")
    with pytest.raises(TransitionError) as archived:
        svc.lifecycle.rollback("arch", "staging", actor=ANA, reason="x")
    assert str(archived.value) == ("arch@1 is archived; an admin can take it out of the "
                                   "archive with `llmreg restore arch@1`, or promote another "
                                   "version")
    svc.lifecycle.restore("arch@1", actor=CY, reason="needed")
    assert svc.lifecycle.rollback("arch", "staging", actor=ANA, reason="x").to_version == 1


def test_rollback_reads_only_its_own_names_events(svc: RegistryService) -> None:
    for name in ("chat", "other"):
        for i in (1, 2):
            register(svc, name, i)
    svc.lifecycle.promote("chat@2", "staging", actor=ANA, reason="x")  # from nothing
    svc.lifecycle.promote("other@1", "staging", actor=ANA, reason="x")
    svc.lifecycle.promote("other@2", "staging", actor=ANA, reason="x")  # later, from @1
    from llmreg.errors import TransitionError

    with pytest.raises(TransitionError, match="chat@2 is the first version staging has"):
        svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="x")


def test_retire_refusals_are_exact(svc: RegistryService) -> None:
    from llmreg.errors import TransitionError

    register(svc, "chat", 1)
    register(svc, "other", 1)
    svc.lifecycle.promote("other@1", "staging", actor=ANA, reason="x")  # other@1, not chat@1
    with pytest.raises(TransitionError) as bad:
        svc.lifecycle.retire("chat@1", "frozen", actor=ANA, reason="x")
    assert str(bad.value) == "status 'frozen' is not 'deprecated' or 'archived'"
    svc.lifecycle.retire("chat@1", "deprecated", actor=ANA, reason="x")
    with pytest.raises(TransitionError) as again:
        svc.lifecycle.retire("chat@1", "deprecated", actor=ANA, reason="x")
    assert str(again.value) == "chat@1 is already deprecated"
    svc.lifecycle.retire("chat@1", "archived", actor=ANA, reason="x")
    for status in ("deprecated", "archived"):
        with pytest.raises(TransitionError) as frozen:
            svc.lifecycle.retire("chat@1", status, actor=ANA, reason="x")
        assert str(frozen.value) == "chat@1 is already archived"


def test_an_import_records_each_gate_it_bypassed(svc: RegistryService) -> None:
    from llmreg.errors import TransitionError
    from llmreg.types import GateResult

    register(svc, "chat", 1)
    _, digest2 = register(svc, "chat", 2)
    with svc.db.write() as s:
        event = svc.lifecycle.import_move_in(s, "chat", 2, "prod", actor=ANA,
                                             reason="imported from mlflow")
        assert svc.lifecycle.import_move_in(s, "chat", 2, "production", actor=ANA,
                                            reason="again") is None
    assert event is not None
    assert (event.env, event.to_version, event.to_digest, event.action) == (
        "production", 2, digest2, "import")
    assert event.gates == [
        GateResult(gate="bypassed-by-import", passed=True, detail="imported from mlflow"),
        *[GateResult(gate=f"{g} (bypassed-by-import)", passed=False,
                     detail="not judged: registered -> production was an import")
          for g in ("transition",)]]
    assert svc.versions.slot("chat", "production").version == 2
    # From staging, the policy's transition exists: each of its gates is named.
    svc.lifecycle.promote("chat@1", "staging", actor=ANA, reason="x")
    with svc.db.write() as s:
        event = svc.lifecycle.import_move_in(s, "chat", 1, "production", actor=ANA,
                                             reason="imported")
    assert event is not None and [g.gate for g in event.gates] == [
        "bypassed-by-import", "eval:regression (bypassed-by-import)",
        "approvals (bypassed-by-import)"]
    svc.lifecycle.deprecate("chat@2", actor=ANA, reason="x")
    svc.lifecycle.archive("chat@2", actor=ANA, reason="x")
    with pytest.raises(TransitionError) as frozen, svc.db.write() as s:
        svc.lifecycle.import_move_in(s, "chat", 2, "staging", actor=ANA, reason="x")
    assert str(frozen.value) == ("chat@2 is archived (frozen); the import cannot point "
                                 "staging at it; nothing was imported")


# --- restore: out of the archive, back to the status before it ----------------------


def test_restore_makes_an_archived_version_registered_again(svc: RegistryService
                                                                     ) -> None:
    from llmreg.errors import InvalidRefError, TransitionError

    for i in (1, 2, 3):
        register(svc, "chat", i)
    svc.lifecycle.archive("chat@1", actor=ANA, reason="old")
    svc.lifecycle.deprecate("chat@2", actor=ANA, reason="superseded")
    svc.lifecycle.archive("chat@2", actor=ANA, reason="older")
    since = svc.audit.entries()[-1].seq
    one = svc.lifecycle.restore("chat@1", actor=CY, reason="incident 42")
    two = svc.lifecycle.restore("chat@2", actor=CY, reason="incident 42")
    assert (one.status, two.status) == ("registered", "registered")  # @2 was deprecated
    assert svc.versions.resolve("chat@1").retire_rule is None
    assert svc.versions.resolve("chat@2").retired_at is None
    assert entries(svc, since) == [
        ("cy", "restore", "chat", "chat@1", None,
         {"digest": one.digest, "version": 1, "from": "archived", "to": "registered",
          "reason": "incident 42"}),
        ("cy", "restore", "chat", "chat@2", None,
         {"digest": two.digest, "version": 2, "from": "archived", "to": "registered",
          "reason": "incident 42"})]
    # A restored version takes evidence again, and moves only through the gates.
    svc.evidence.attach("chat@1", type="eval", suite="regression",
                        metrics={"accuracy": 0.95}, actor=ANA)
    svc.lifecycle.promote("chat@1", "staging", actor=ANA, reason="back")
    with pytest.raises(TransitionError, match=r"^chat@3 is registered, not archived; only an "
                                              r"archived version can be restored$"):
        svc.lifecycle.restore("chat@3", actor=CY, reason="nothing to undo")
    with pytest.raises(TransitionError, match="chat@1 is staging, not archived"):
        svc.lifecycle.restore("chat@1", actor=CY, reason="twice")
    svc.lifecycle.archive("chat@3", actor=ANA, reason="x")
    with pytest.raises(InvalidRefError, match="--reason is empty"):
        svc.lifecycle.restore("chat@3", actor=CY, reason="  ")
    assert svc.versions.resolve("chat@3").status == "archived"  # a refusal changes nothing
    assert svc.audit.verify() > 0


# --- rollback --to @N and the policy's rollback rules ---------------------------------


def test_rollback_to_any_version_the_slot_held_before(svc: RegistryService) -> None:
    from llmreg.errors import TransitionError

    for i in (1, 2, 3, 4):
        register(svc, "chat", i)
    for i in (1, 2, 3):
        svc.lifecycle.promote(f"chat@{i}", "staging", actor=ANA, reason=f"take {i}")
    event = svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="two back", to=1)
    assert (event.action, event.from_version, event.to_version) == ("rollback", 3, 1)
    assert event.gates[0].gate == "rollback"
    assert event.gates[0].detail == "chat@1 held staging before chat@3"
    assert svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="fwd", to=3
                                  ).to_version == 3
    with pytest.raises(TransitionError) as never:
        svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="x", to=4)
    assert str(never.value) == ("staging never held chat@4; a rollback returns to a version "
                                "the slot held before (`llmreg history chat --env staging`); "
                                "promote it instead")
    with pytest.raises(TransitionError, match=r"^chat/staging holds @3 already; nothing"):
        svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="x", to=3)
    svc.approvals.approve("chat@3", "shadow", actor=BO)
    svc.lifecycle.promote("chat@3", "shadow", actor=ANA, reason="x")
    with pytest.raises(TransitionError, match="^shadow never held chat@1;"):  # staging did
        svc.lifecycle.rollback("chat", "shadow", actor=ANA, reason="x", to=1)
    moves = [(e.action, e.from_version, e.to_version) for e in svc.slots.history("chat",
                                                                                "staging")]
    assert moves[-2:] == [("rollback", 3, 1), ("rollback", 1, 3)]


def rollback_policy(tmp_path: Path, rules: str) -> RegistryService:
    from llmreg.policy import DEFAULT_POLICY_YAML, parse_policy

    text = DEFAULT_POLICY_YAML.replace("rollback:\n  role: publisher\n  gates: false",
                                       f"rollback:\n{rules}")
    assert text != DEFAULT_POLICY_YAML
    return RegistryService.open_home(tmp_path / "r", policy=parse_policy(text, source="p.yaml"))


def test_the_policy_says_who_may_roll_back(tmp_path: Path) -> None:
    from llmreg.errors import PermissionDeniedError
    from llmreg.types import roles_of

    svc = rollback_policy(tmp_path, "  role: approver\n  gates: false")
    try:
        for i in (1, 2):
            register(svc, "chat", i)
            svc.owners.set("chat", team="chat-team", contacts=["chat@example.com"], actor=ANA)
            svc.lifecycle.promote(f"chat@{i}", "staging", actor=ANA, reason="x")
        publisher = Actor("pat", roles_of("publisher"))
        with pytest.raises(PermissionDeniedError) as denied:
            svc.lifecycle.rollback("chat", "staging", actor=publisher, reason="x")
        assert str(denied.value) == ("pat may not roll back 'chat'/staging: the policy's "
                                     "rollback.role is approver; ask someone with that role")
        assert svc.slots.status("chat")[0].version == 2  # a refusal changes nothing
        approver = Actor("al", roles_of("approver"))
        assert svc.lifecycle.rollback("chat", "staging", actor=approver, reason="x"
                                      ).to_version == 1
    finally:
        svc.close()


def test_with_gates_a_rollback_target_must_meet_the_gates_again(tmp_path: Path) -> None:
    from llmreg.errors import GateFailedError

    svc = rollback_policy(tmp_path, "  role: publisher\n  gates: true")
    try:
        for i in (1, 2):
            register(svc, "chat", i)
            svc.owners.set("chat", team="chat-team", contacts=["chat@example.com"], actor=ANA)
            svc.evidence.attach(f"chat@{i}", type="eval", suite="regression",
                                metrics={"accuracy": 0.95}, actor=ANA)
            for who in (BO, CY):
                svc.approvals.approve(f"chat@{i}", "production", actor=who)
            svc.lifecycle.promote(f"chat@{i}", "staging", actor=ANA, reason="x")
            svc.lifecycle.promote(f"chat@{i}", "production", actor=ANA, reason="x")
        # chat@1 meets the gates into production: it returns, with the gates recorded.
        event = svc.lifecycle.rollback("chat", "production", actor=ANA, reason="x")
        assert event.to_version == 1
        assert [g.gate for g in event.gates][0] == "rollback" and len(event.gates) > 1
        assert all(g.passed for g in event.gates)
        # chat@2's only eval now fails: it cannot come back to production.
        svc.evidence.attach("chat@2", type="eval", suite="regression",
                            metrics={"accuracy": 0.5}, actor=ANA)
        with pytest.raises(GateFailedError) as refused:
            svc.lifecycle.rollback("chat", "production", actor=ANA, reason="x", to=2)
        assert str(refused.value).startswith("chat@2 cannot return to production (the "
                                             "policy's rollback.gates is true): ")
        assert svc.slots.status("chat", "production")[0].version == 1
    finally:
        svc.close()
