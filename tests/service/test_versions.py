"""Registration and reads in the service's versions part: slots, weights references,
paging, limits, the changelog and the entry each registration writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmreg.bundle.directory import load_bundle_dir
from llmreg.bundle.schema import Bundle
from llmreg.errors import (
    BlobNotFoundError,
    DigestInvalidError,
    EmptySlotError,
    InvalidBundleError,
    InvalidNameError,
    RefNotFoundError,
)
from llmreg.service import RegistryService
from llmreg.service.versions import MAX_MESSAGE, MAX_PROVENANCE
from llmreg.types import Actor
from tests.conftest import minimal

ANA = Actor("ana")


def variant(i: int, **more: object) -> Bundle:
    return Bundle.from_dict(minimal(system_prompt=f"variant {i}", **more))


def test_slot_reads_an_environment_by_any_of_its_names(svc: RegistryService) -> None:
    first = svc.versions.register(variant(1), name="chat", message="one", author="ana").version
    svc.versions.register(variant(2), name="chat", message="two", author="ana")
    svc.versions.register(variant(9), name="other", message="x", author="ana")
    with pytest.raises(EmptySlotError, match="^'chat' has nothing in 'staging'; see "
                                             "`llmreg status chat`$"):
        svc.versions.slot("chat", "pre-prod")
    svc.lifecycle.promote("chat@1", "staging", actor=ANA, reason="try")
    for env in ("staging", "pre-prod", "preprod"):
        assert svc.versions.slot("chat", env) == first.model_copy(update={"status": "staging"})
    with pytest.raises(RefNotFoundError, match="^'nobody' is not registered"):
        svc.versions.slot("nobody", "staging")
    with pytest.raises(InvalidNameError, match="name 'Chat!' is not a valid name"):
        svc.versions.slot("Chat!", "staging")
    with pytest.raises(Exception, match="moon"):
        svc.versions.slot("chat", "moon")
    with pytest.raises(EmptySlotError, match="'other' has nothing in 'staging'"):
        svc.versions.slot("other", "staging")


def test_a_self_hosted_model_needs_a_weights_bundle_here(svc: RegistryService) -> None:
    data = svc.blobs.put_bytes(b"weights!")
    weights = Bundle.from_dict({"kind": "weights", "artifacts": [
        {"name": "adapter", "media_type": "application/octet-stream", "digest": data.digest,
         "size": data.size}]})
    llm = variant(1)
    svc.versions.register(llm, name="plain", message="m", author="ana")

    def hosted(digest: str) -> Bundle:
        return Bundle.from_dict(minimal(model={"provider": "self-hosted", "id": "llama-ft",
                                               "weights": digest}))

    for digest in (weights.digest, llm.digest):  # missing, then not a weights bundle
        with pytest.raises(InvalidBundleError, match=f"^model.weights {digest} is not a "
                                                     "weights bundle in this registry"):
            svc.versions.register(hosted(digest), name="ft", message="m", author="ana")
    svc.versions.register(weights, name="lora", message="m", author="ana")
    assert svc.versions.register(hosted(weights.digest), name="ft", message="m",
                                 author="ana").created


def test_artifacts_are_stored_checked_and_required(svc: RegistryService, tmp_path: Path
                                                   ) -> None:
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "llmreg.yaml").write_text(
        "model: {provider: openai, id: gpt-4o-2024-08-06}\ntemplate: {source: hi}\n"
        "artifacts: [{name: eval-set, file: eval.jsonl}]\n")
    (folder / "eval.jsonl").write_text('{"q": 1}\n')
    bundle, _ = load_bundle_dir(folder)
    (folder / "eval.jsonl").write_text('{"q": 2}\n')  # changed after it was hashed
    with pytest.raises(DigestInvalidError):
        svc.versions.register(bundle, name="chat", message="m", author="ana")
    assert svc.versions.list_names() == []
    bundle._sources = {}  # known by digest only, and not uploaded
    with pytest.raises(BlobNotFoundError, match=r"artifacts\[0\] 'eval-set' refers to"):
        svc.versions.register(bundle, name="chat", message="m", author="ana")
    (folder / "eval.jsonl").write_text('{"q": 1}\n')
    again, _ = load_bundle_dir(folder)
    assert svc.versions.register(again, name="chat", message="m", author="ana").created
    assert svc.blobs.intact(again.artifacts[0].digest)


def test_message_and_provenance_limits_are_inclusive(svc: RegistryService) -> None:
    ok = svc.versions.register(variant(1), name="chat", message="m" * MAX_MESSAGE,
                               author="ana")
    assert ok.created
    with pytest.raises(InvalidBundleError, match=f"message is {MAX_MESSAGE + 1} characters; "
                                                 f"the limit is {MAX_MESSAGE}"):
        svc.versions.register(variant(2), name="chat", message="m" * (MAX_MESSAGE + 1),
                              author="ana")
    with pytest.raises(InvalidBundleError, match="message is empty"):
        svc.versions.register(variant(2), name="chat", message="  \n", author="ana")
    overhead = len(b'{"x":""}')
    fits = {"x": "p" * (MAX_PROVENANCE - overhead)}
    assert svc.versions.register(variant(2), name="chat", message="m", author="ana",
                                 provenance=fits).created
    with pytest.raises(InvalidBundleError, match=f"provenance is {MAX_PROVENANCE + 1} bytes"):
        svc.versions.register(variant(3), name="chat", message="m", author="ana",
                              provenance={"x": "p" * (MAX_PROVENANCE - overhead + 1)})


def test_a_floating_model_id_is_refused_unless_the_policy_allows_it(
        svc: RegistryService) -> None:
    floating = Bundle.from_dict(minimal(model={"provider": "openai", "id": "gpt-4o"}),
                                allow_floating_model_ids=True)
    with pytest.raises(InvalidBundleError, match="gpt-4o"):
        svc.versions.register(floating, name="chat", message="m", author="ana")


def test_registration_writes_one_exact_entry_and_the_changelog(svc: RegistryService) -> None:
    one = svc.versions.register(variant(1), name="chat", message="one", author="ana").version
    two = svc.versions.register(variant(2), name="chat", message=" two ", author="bo").version
    *_, first, second = svc.audit.entries()
    recorded = first.detail.pop("rows")["versions/chat@1"]
    assert (first.actor, first.action, first.name, first.target, first.detail) == (
        "ana", "register", "chat", "chat@1", {"digest": one.digest, "message": "one",
                                              "changes": []})
    # The version's row as registered, bound by the entry's hash (llmreg.service.audited).
    assert (recorded["digest"], recorded["status"], recorded["author"], recorded["message"],
            recorded["retired_at"]) == (one.digest, "registered", "ana", "one", None)
    assert sorted(second.detail.pop("rows")) == ["versions/chat@2"]
    assert (second.actor, second.target, second.detail) == (
        "bo", "chat@2", {"digest": two.digest, "message": "two",
                         "changes": ["system_prompt: +1 -1 lines"]})
    assert two.changes == ["system_prompt: +1 -1 lines"] and two.parent_digest == one.digest
    stored = svc.versions.stored_diff(two)
    assert stored is not None
    assert stored["system_prompt"]["lines"] == ["@@ -1 +1 @@", "-variant 1", "+variant 2"]
    assert svc.versions.stored_diff(one) is None
    diff = svc.versions.diff(svc.versions.get("chat@1"), svc.versions.get("chat@2"))
    assert diff.stat() == ["system_prompt: +1 -1 lines"]


def test_the_changelog_is_against_the_real_parent_when_a_guess_went_stale(
        svc: RegistryService, monkeypatch: pytest.MonkeyPatch) -> None:
    svc.versions.register(variant(1), name="chat", message="one", author="ana")
    svc.versions.register(variant(2), name="chat", message="two", author="ana")
    # Another writer registered v2 between our guess and our lock: the guess is v1.
    monkeypatch.setattr(svc.versions, "_state",
                        lambda name, digests: (svc.versions.resolve("chat@1").digest, {}))
    three = svc.versions.register(variant(2, template={"source": "A: {{ q }}",
                                                       "variables": ["q"]}),
                                  name="chat", message="three", author="ana").version
    assert three.parent_digest == svc.versions.resolve("chat@2").digest
    assert three.changes == ["template: +1 -1 lines"]  # not the system prompt too


def test_pages_are_cut_by_the_database(svc: RegistryService) -> None:
    for i in range(5):
        svc.versions.register(variant(i), name="chat", message=f"v{i}", author="ana")
    for name in ("alpha", "zeta", "mid"):
        svc.versions.register(variant(9), name=name, message="m", author="ana")
    page = svc.versions.history_page("chat", offset=1, limit=2)
    assert ([v.version for v in page.items], page.total, page.offset, page.next) == (
        [2, 3], 5, 1, 3)
    last = svc.versions.history_page("chat", offset=4, limit=2)
    assert ([v.version for v in last.items], last.next) == ([5], None)
    assert [v.version for v in svc.versions.history("chat")] == [1, 2, 3, 4, 5]
    names = svc.versions.names_page(offset=1, limit=2)
    assert ([n.name for n in names.items], names.total, names.next) == (["chat", "mid"], 4, 3)
    summary = {n.name: (n.versions, n.latest_version) for n in svc.versions.list_names()}
    assert summary == {"alpha": (1, 1), "chat": (5, 5), "mid": (1, 1), "zeta": (1, 1)}
    with pytest.raises(RefNotFoundError, match="'nobody' is not registered"):
        svc.versions.history_page("nobody")


def test_the_latest_guess_is_per_name(svc: RegistryService) -> None:
    svc.versions.register(variant(1), name="chat", message="m", author="ana")
    other = svc.versions.register(variant(2), name="other", message="m", author="ana").version
    svc.versions.register(variant(3), name="other", message="m", author="ana")
    latest = svc.versions.resolve("other").digest
    assert svc.versions._state("chat", [])[0] == svc.versions.resolve("chat").digest
    assert svc.versions._state("other", [other.digest, latest]) == (
        latest, {other.digest: 1, latest: 2})
    assert svc.versions._state("nobody", [other.digest]) == (None, {})
    # One new-looking digest of a name this service just registered: no read, a guess.
    assert svc.versions._state("other", [other.digest]) == (latest, {})
    # The guess is checked under the lock: old content keeps its version, no new one.
    again = svc.versions.register(variant(2), name="other", message="m", author="ana")
    assert (again.created, again.version.version) == (False, 1)
    assert svc.versions.resolve("other").version == 2


def test_load_refuses_bytes_this_llmreg_cannot_reproduce(svc: RegistryService) -> None:
    blob = svc.blobs.put_bytes(b'{"kind":"llm","model":{"provider":"openai","id":'
                               b'"gpt-4o-2024-08-06"},"schema":"llmreg.bundle/v1",'
                               b'"template":{"source":"hi","variables":[]}}')
    with pytest.raises(InvalidBundleError, match=f"manifest {blob.digest} re-canonicalises"):
        svc.versions.load(blob.digest)
