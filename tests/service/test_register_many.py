"""Registering many versions of one name in one transaction (Versions.register_many)."""

from __future__ import annotations

import pytest

from llmreg.bundle.schema import Bundle
from llmreg.errors import FloatingModelIdError, InvalidBundleError
from llmreg.service import RegistryService
from llmreg.service import versions as versions_module
from tests.conftest import minimal


def variant(i: int) -> Bundle:
    return Bundle.from_dict(minimal(system_prompt=f"You are bot {i}.\nBe brief."))


def test_a_batch_is_consecutive_versions_each_diffed_and_audited(svc: RegistryService) -> None:
    svc.versions.register(variant(0), name="chat", message="first", author="ana")
    batch = [variant(1), variant(2), variant(0), variant(2), variant(3)]
    done = svc.versions.register_many(batch, name="chat", message="import", author="bo",
                                      provenance=[{"i": i} for i in range(5)])
    assert [(r.version.version, r.created) for r in done] == [
        (2, True), (3, True), (1, False), (3, False), (4, True)]
    history = svc.versions.history("chat")
    assert [v.parent_digest for v in history] == [None] + [v.digest for v in history[:-1]]
    assert all(v.changes == ["system_prompt: +1 -1 lines"] for v in history[1:])
    assert [v.provenance for v in history[1:]] == [{"i": 0}, {"i": 1}, {"i": 4}]
    assert history[3].author == "bo" and history[3].message == "import"
    # The stored diff of each new version is there and is against its parent.
    stored = svc.versions.stored_diff(history[2])
    assert stored is not None and stored == svc.versions.diff(
        svc.versions.get("chat@2"), svc.versions.get("chat@3")).to_json()
    # One audit entry per new version; the chain and the counts verify; fsck is clean.
    log = svc.audit.entries("chat", None)
    assert [e.target for e in log] == ["chat@1", "chat@2", "chat@3", "chat@4"]
    assert svc.audit.verify(None) == 4
    assert svc.integrity.fsck()[1] == []
    again = svc.versions.register_many(batch, name="chat", message="again", author="bo")
    assert [r.created for r in again] == [False] * 5
    assert svc.versions.register_many([], name="chat", message="nothing", author="bo") == []


def test_a_bad_item_registers_nothing_and_is_named(svc: RegistryService) -> None:
    floating = Bundle.from_dict(minimal(model={"provider": "openai", "id": "gpt-4o"}),
                                allow_floating_model_ids=True)
    with pytest.raises(FloatingModelIdError, match=r"^bundles\[1\]: "):
        svc.versions.register_many([variant(1), floating], name="chat", message="m",
                                   author="ana")
    with pytest.raises(FloatingModelIdError) as one:
        svc.versions.register_many([floating], name="chat", message="m", author="ana")
    assert not str(one.value).startswith("bundles[")
    with pytest.raises(InvalidBundleError, match=r"bundles\[0\]: provenance"):
        svc.versions.register_many([variant(1), variant(2)], name="chat", message="m",
                                   author="ana", provenance=[{"x": float("nan")}, None])
    with pytest.raises(InvalidBundleError, match="1 provenance records for 2 bundles"):
        svc.versions.register_many([variant(1), variant(2)], name="chat", message="m",
                                   author="ana", provenance=[None])
    with pytest.raises(InvalidBundleError, match="message is empty"):
        svc.versions.register_many([variant(1)], name="chat", message=" ", author="ana")
    assert svc.versions.list_names() == []


def test_a_batch_is_bounded(svc: RegistryService, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(versions_module, "MAX_BATCH", 2)
    with pytest.raises(InvalidBundleError, match="3 bundles in one batch; the limit is 2"):
        svc.versions.register_many([variant(i) for i in range(3)], name="chat",
                                   message="m", author="ana")


def test_a_stale_plan_is_redone_under_the_lock(svc: RegistryService,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    svc.versions.register(variant(0), name="chat", message="one", author="ana")
    svc.versions.register(variant(1), name="chat", message="two", author="ana")
    # Another writer registered v2 after our look: we planned against v1 only.
    monkeypatch.setattr(svc.versions, "_state", lambda name, digests: (
        svc.versions.resolve("chat@1").digest, {}))
    done = svc.versions.register_many([variant(1), variant(2)], name="chat", message="m",
                                      author="ana")
    assert [(r.version.version, r.created) for r in done] == [(2, False), (3, True)]
    assert done[1].version.parent_digest == svc.versions.resolve("chat@2").digest
    assert svc.integrity.fsck()[1] == []


def test_each_distinct_provenance_record_is_checked(svc: RegistryService) -> None:
    odd = {1: "int key", "b": 2}  # no cheap identity: checked, and refused
    with pytest.raises(InvalidBundleError, match=r"bundles\[1\]: provenance"):
        svc.versions.register_many([variant(1), variant(2)], name="chat", message="m",
                                   author="ana", provenance=[{"same": 1}, odd])
    with pytest.raises(InvalidBundleError, match=r"bundles\[1\]: provenance"):
        svc.versions.register_many([variant(3), variant(4)], name="chat", message="m",
                                   author="ana", provenance=[{"x": 1.0}, {"x": float("inf")}])
