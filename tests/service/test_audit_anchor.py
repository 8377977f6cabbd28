"""Tampering with the audit log is detected through the service (``svc.audit``): an
edited entry by its hash; a truncated log by the head a write printed, and by counting
entries against the state changes they record. An edited slot history is named: each
row must equal the audited move it records."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from llmreg.db.models import SlotEvent
from llmreg.errors import AuditChainError
from llmreg.service import RegistryService
from tests.service.conftest import on_each_database
from tests.service.lifecycle.test_lifecycle import (
    ANA,
    ready_for_production,
    register,
    to_staging,
)

svc = pytest.fixture(on_each_database, name="svc")


def delete_entries(svc: RegistryService, where: str) -> None:
    with svc.db.write_engine.begin() as conn:  # someone with database access
        conn.execute(text(f"DELETE FROM audit_log WHERE {where}"))


def test_audit_chain_detects_an_edited_row(svc: RegistryService) -> None:
    ref = register(svc, 1)
    to_staging(svc, ref)
    # register, policy, promote
    assert svc.audit.verify() == len(svc.audit.entries()) == 3
    with svc.db.write_engine.begin() as conn:  # someone with database access edits a row
        conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))
    with pytest.raises(AuditChainError, match=r"audit entry #2 .* was altered"):
        svc.audit.verify()
    with svc.db.write_engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'ana' WHERE seq = 2"))
        conn.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    with pytest.raises(AuditChainError, match="audit entry #2 is missing"):
        svc.audit.verify()



def test_an_intact_log_verifies_with_and_without_its_head(svc: RegistryService) -> None:
    ref = register(svc, 1)
    to_staging(svc, ref)
    head = svc.audit.head()
    assert head == svc.audit.entries()[-1].hash
    assert svc.audit.verify() == svc.audit.verify(head) == 3
    register(svc, 2)  # later writes keep an earlier head in the chain
    assert svc.audit.verify(head) == 4


def test_deleting_the_newest_entries_is_detected(svc: RegistryService) -> None:
    ref = register(svc, 1)
    to_staging(svc, ref)
    ready_for_production(svc, ref)
    head = svc.audit.head()
    count = svc.audit.verify()
    delete_entries(svc, f"seq > {count - 2}")  # the last approval and the one before
    with pytest.raises(AuditChainError, match=r"records 0 approval entries but the registry "
                                              r"holds 2 approvals"):
        svc.audit.verify()
    with pytest.raises(AuditChainError, match=rf"does not contain head {head} \(it has "
                                              rf"{count - 2} entries\)"):
        svc.audit.verify(head)


def test_deleting_every_entry_is_detected(svc: RegistryService) -> None:
    register(svc, 1)
    register(svc, 2)
    delete_entries(svc, "1 = 1")
    with pytest.raises(AuditChainError, match="records 0 register entries but the registry "
                                              "holds 2 versions"):
        svc.audit.verify()


def test_cutting_entries_and_their_rows_is_caught_by_the_head(svc: RegistryService) -> None:
    register(svc, 1)
    head = svc.audit.head()
    with svc.db.write_engine.begin() as conn:  # erase the version and its entry together
        conn.execute(text("DELETE FROM audit_log"))
        conn.execute(text("DELETE FROM versions"))
    assert svc.audit.verify() == 0  # consistent with itself...
    with pytest.raises(AuditChainError, match="does not contain head"):
        svc.audit.verify(head)  # ...but not with the head noted earlier


# --- the slot history against the moves the log records --------------------------------


def slot_history(svc: RegistryService) -> list[tuple[int, str, str, int | None, int]]:
    with svc.db.read() as s:
        return [(e.id or 0, e.env, e.action, e.from_version, e.to_version)
                for e in s.exec(select(SlotEvent).order_by(col(SlotEvent.id)))]


def import_to(svc: RegistryService, number: int, env: str) -> None:
    with svc.db.write() as s:
        svc.lifecycle.import_move_in(s, "chat", number, env, actor=ANA, reason="as mlflow had it")


def test_every_kind_of_move_is_matched_to_its_own_entry(svc: RegistryService) -> None:
    # Four moves of one slot: the n-th row is checked against the n-th move entry of
    # that slot, whatever its action, and from_version too.
    v1, v2 = register(svc, 1), register(svc, 2)
    to_staging(svc, v1)
    to_staging(svc, v2)
    svc.lifecycle.rollback("chat", "staging", actor=ANA, reason="v2 misbehaves")
    import_to(svc, 2, "staging")
    assert [h[1:] for h in slot_history(svc)] == [
        ("staging", "promote", None, 1), ("staging", "promote", 1, 2),
        ("staging", "rollback", 2, 1), ("staging", "import", 1, 2)]
    assert svc.audit.verify() == len(svc.audit.entries())


def test_an_altered_slot_history_row_is_named_with_what_differs(svc: RegistryService) -> None:
    to_staging(svc, register(svc, 1))
    entry = svc.audit.entries()[-1].seq
    with svc.db.write() as s:  # someone with database access rewrites who moved it, and when
        event = s.exec(select(SlotEvent)).one()
        event.actor, event.at = "mallory", event.at + timedelta(hours=1)
        s.add(event)
    ((row, *_),) = slot_history(svc)
    with pytest.raises(AuditChainError) as info:
        svc.audit.verify()
    assert str(info.value) == (
        f"slot history row #{row} (chat/staging promote to @1 by mallory) was altered: "
        f"actor, at differ from audit entry #{entry}; the slot history was edited")


def test_a_slot_history_row_without_its_entry_is_named(svc: RegistryService) -> None:
    ref = register(svc, 1)
    to_staging(svc, ref)
    import_to(svc, 1, "production")
    (_, (row, *_)) = slot_history(svc)
    # The production move relabelled: staging has two rows for one entry...
    with svc.db.write_engine.begin() as conn:
        conn.execute(text(f"UPDATE slot_events SET env = 'staging' WHERE id = {row}"))
    with pytest.raises(AuditChainError) as info:
        svc.audit.verify()
    assert str(info.value) == (
        f"slot history row #{row} (chat/staging import to @1 by ana) has no audit entry; "
        "the slot history was edited")
    # ...or a slot that never moved has one.
    with svc.db.write_engine.begin() as conn:
        conn.execute(text(f"UPDATE slot_events SET env = 'shadow' WHERE id = {row}"))
    with pytest.raises(AuditChainError, match=rf"^slot history row #{row} \(chat/shadow "
                                              r"import to @1 by ana\) has no audit entry"):
        svc.audit.verify()


def test_the_service_reads_entries_by_name_environment_alias_and_limit(
        svc: RegistryService) -> None:
    from llmreg.bundle.schema import Bundle
    from tests.conftest import minimal

    ref = register(svc, 1)
    to_staging(svc, ref)
    svc.versions.register(Bundle.from_dict(minimal(system_prompt="other")), name="other",
                          message="v1", author="ana")
    svc.lifecycle.promote("other@1", "staging", actor=ANA, reason="x")
    everything = [(e.action, e.name) for e in svc.audit.entries()]
    assert everything == [("register", "chat"), ("policy", None), ("promote", "chat"),
                          ("register", "other"), ("promote", "other")]
    assert [(e.action, e.name) for e in svc.audit.entries("chat")] == [
        ("register", "chat"), ("promote", "chat")]
    assert [(e.action, e.name) for e in svc.audit.entries(limit=2)] == everything[-2:]
    assert [(e.action, e.name) for e in svc.audit.entries("chat", limit=1)] == [
        ("promote", "chat")]
    by_alias = [(e.action, e.name, e.env) for e in svc.audit.entries(env="pre-prod")]
    assert by_alias == [("promote", "chat", "staging"), ("promote", "other", "staging")]
    assert svc.audit.entries(env="production") == []
