"""Tampering with the audit log is detected through the service (``svc.audit``): an
edited entry by its hash; a truncated log by the head a write printed, and by counting
entries against the state changes they record."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from llmreg.errors import AuditChainError
from llmreg.service import RegistryService
from tests.service.conftest import on_each_database
from tests.service.lifecycle.test_lifecycle import ready_for_production, register, to_staging

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
