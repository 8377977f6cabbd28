"""Approvals (``svc.approvals``): who may approve, and that an approval belongs to one
digest under one name for one environment, given once."""

from __future__ import annotations

import pytest

from llmreg.bundle.schema import Bundle
from llmreg.errors import ApprovalError
from llmreg.service import RegistryService
from llmreg.types import Actor
from tests.conftest import minimal
from tests.service.conftest import on_each_database
from tests.service.lifecycle.test_lifecycle_records import register

BO = Actor("bo")

svc = pytest.fixture(on_each_database, name="svc")


def test_approvals_are_idempotent_and_bound_to_the_digest(svc: RegistryService) -> None:
    ref, _ = register(svc, "chat", 1)
    _, created = svc.approvals.approve(ref, "production", actor=BO)
    _, again = svc.approvals.approve(ref, "production", actor=BO)
    assert (created, again) == (True, False)
    assert len(svc.approvals.list(ref, "production")) == 1


def test_an_approval_needs_the_role_and_counts_per_name(svc: RegistryService) -> None:
    ref, _ = register(svc, "chat", 1)
    same, _ = register(svc, "chat-eu", 1)  # other content, other name
    reader = Actor("rita", frozenset({"reader", "publisher"}))
    with pytest.raises(ApprovalError, match=r"^rita has roles \['publisher', 'reader'\], and "
                                            r"approving for production needs approver$"):
        svc.approvals.approve(ref, "production", actor=reader)
    assert svc.approvals.list(ref, "production") == []
    first = svc.approvals.approve(ref, "production", actor=BO)
    again = svc.approvals.approve(ref, "production", actor=BO, comment="twice")
    assert first[1] is True and again[1] is False and again[0].comment == ""
    assert svc.approvals.approve(same, "production", actor=BO)[1] is True
    assert [a.approver for a in svc.approvals.list(ref, "production")] == ["bo"]
    assert svc.approvals.list(ref, "staging") == []


def test_the_same_digest_under_two_names_is_approved_once_per_name(
        svc: RegistryService) -> None:
    bundle = Bundle.from_dict(minimal(system_prompt="shared"))
    a = svc.versions.register(bundle, name="chat", message="m", author="ana").version
    b = svc.versions.register(bundle, name="chat-eu", message="m", author="ana").version
    assert a.digest == b.digest
    assert svc.approvals.approve(a.ref, "production", actor=BO)[1] is True
    assert svc.approvals.approve(b.ref, "production", actor=BO)[1] is True


def test_an_approval_emits_its_exact_event_once(svc: RegistryService) -> None:
    from tests.service.lifecycle.test_lifecycle_records import last_event_id, outbox

    ref, digest = register(svc, "chat", 1)
    start = last_event_id(svc)
    svc.approvals.approve(ref, "prod", actor=BO, comment="c" * 600)
    svc.approvals.approve(ref, "production", actor=BO, comment="again")  # not new: no event
    assert outbox(svc, start) == [
        ("approval", "chat", {"name": "chat", "version": 1, "digest": digest,
                              "env": "production", "approver": "bo", "comment": "c" * 500})]


def test_approvals_are_listed_for_one_name_digest_and_environment_oldest_first(
        svc: RegistryService) -> None:
    ref, digest = register(svc, "chat", 1)
    register(svc, "chat", 2)
    svc.versions.register(Bundle.from_dict(minimal(system_prompt="chat 1")), name="twin",
                          message="same digest", author="ana")
    for who in ("bo", "cy", "di"):
        svc.approvals.approve(ref, "production", actor=Actor(who))
    svc.approvals.approve("chat@2", "production", actor=Actor("ed"))  # another digest
    svc.approvals.approve("twin@1", "production", actor=Actor("fay"))  # another name
    svc.approvals.approve(ref, "shadow", actor=Actor("gus"))  # another environment
    got = svc.approvals.list("chat@1", "prod")  # an alias of production
    assert [(a.approver, a.name, a.env, a.digest) for a in got] == [
        ("bo", "chat", "production", digest), ("cy", "chat", "production", digest),
        ("di", "chat", "production", digest)]


def test_approval_refusals_name_who_why_and_the_way_out(svc: RegistryService) -> None:
    ref, _ = register(svc, "chat", 1)
    with pytest.raises(ApprovalError) as own:
        svc.approvals.approve(ref, "production", actor=Actor("ana"))
    assert str(own.value) == ("ana is the author of chat@1 and cannot approve it for "
                              "production; ask another approver")
    reader = Actor("rita", frozenset({"reader", "publisher"}))
    with pytest.raises(ApprovalError) as role:
        svc.approvals.approve(ref, "production", actor=reader)
    assert str(role.value) == ("rita has roles ['publisher', 'reader'], and approving for "
                               "production needs approver")
