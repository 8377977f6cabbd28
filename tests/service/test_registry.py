"""The core service: registration, idempotence, numbering, resolution, integrity."""

from __future__ import annotations

import os

import pytest

from llmreg.bundle.directory import load_bundle_dir
from llmreg.bundle.schema import Bundle
from llmreg.errors import (
    AmbiguousRefError,
    BlobNotFoundError,
    IntegrityError,
    InvalidBundleError,
    InvalidNameError,
    RefNotFoundError,
)
from llmreg.service import RegistryService
from llmreg.store import LocalStore
from tests.conftest import EXAMPLES, minimal
from tests.service.conftest import on_each_database

svc = pytest.fixture(on_each_database, name="svc")


def variant(i: int) -> Bundle:
    return Bundle.from_dict(minimal(system_prompt=f"variant {i}"))


def test_register_numbers_and_parents(svc: RegistryService) -> None:
    r1 = svc.versions.register(variant(1), name="chat", message="one", author="ana")
    r2 = svc.versions.register(variant(2), name="chat", message="two", author="bo")
    assert (r1.created, r1.version.version, r1.version.parent_digest) == (True, 1, None)
    assert (r2.version.version, r2.version.parent_digest) == (2, r1.version.digest)
    assert [v.version for v in svc.versions.history("chat")] == [1, 2]
    assert svc.versions.resolve("chat").version == 2
    assert svc.versions.resolve("chat@latest").version == 2


def test_same_content_is_idempotent(svc: RegistryService) -> None:
    first = svc.versions.register(variant(1), name="chat", message="one", author="ana")
    again = svc.versions.register(variant(1), name="chat", message="retry", author="bo")
    assert not again.created
    assert again.version == first.version
    assert len(svc.versions.history("chat")) == 1
    # The same content under another name is a version of that name too.
    other = svc.versions.register(variant(1), name="chat-eu", message="copy", author="ana")
    assert other.created and other.version.digest == first.version.digest


def test_resolve_by_every_ref_form(svc: RegistryService) -> None:
    info = svc.versions.register(variant(1), name="chat", message="one", author="ana").version
    hexdigits = info.digest.removeprefix("sha256:")
    for ref in ("chat@1", f"chat@{info.digest}", f"chat@{hexdigits[:12]}",
                f"chat@sha256:{hexdigits[:7]}", info.digest):
        assert svc.versions.resolve(ref) == info
    bundle = svc.versions.get("chat@1")
    assert (bundle.name, bundle.version, bundle.digest) == ("chat", 1, info.digest)
    assert bundle == variant(1)


def test_ambiguous_short_digest(svc: RegistryService) -> None:
    from llmreg.bundle.names import Ref

    # Register variants until two digests share their first hex digit, then resolve
    # that one-digit prefix (below the CLI's 7-digit minimum, so built as a Ref).
    digests: list[str] = []
    i = 0
    while len({d[7] for d in digests}) == len(digests):
        digests.append(svc.versions.register(variant(i), name="chat", message=f"v{i}",
                                    author="a").version.digest)
        i += 1
    first_hex = digests[-1][7]
    with pytest.raises(AmbiguousRefError, match="give more hex digits"):
        svc.versions.resolve(Ref("chat", digest_prefix=first_hex))


def test_unknown_refs_name_what_is_missing(svc: RegistryService) -> None:
    svc.versions.register(variant(1), name="chat", message="one", author="ana")
    with pytest.raises(RefNotFoundError, match="'nope' is not registered"):
        svc.versions.resolve("nope@1")
    with pytest.raises(RefNotFoundError, match="no version 5 .latest is 1"):
        svc.versions.resolve("chat@5")
    with pytest.raises(RefNotFoundError, match="no version matches"):
        svc.versions.resolve("chat@sha256:0000000")
    with pytest.raises(RefNotFoundError):
        svc.versions.history("nope")


def test_bad_input_changes_nothing(svc: RegistryService) -> None:
    with pytest.raises(InvalidBundleError, match="message is empty"):
        svc.versions.register(variant(1), name="chat", message="  ", author="ana")
    with pytest.raises(InvalidNameError):
        svc.versions.register(variant(1), name="../chat", message="x", author="ana")
    missing_artifact = Bundle.from_dict(minimal(artifacts=[{
        "name": "w", "media_type": "a/b", "digest": "sha256:" + "1" * 64, "size": 3}]))
    with pytest.raises(BlobNotFoundError, match="artifacts\\[0\\] 'w'"):
        svc.versions.register(missing_artifact, name="chat", message="x", author="ana")
    assert svc.versions.list_names() == []
    assert list(svc.blobs.iter_digests()) == []


def test_manifest_and_artifacts_are_blobs(svc: RegistryService) -> None:
    bundle, _ = load_bundle_dir(EXAMPLES / "ticket-classifier")
    svc.versions.register(bundle, name="tickets", message="first", author="ana")
    stored = set(svc.blobs.iter_digests())
    assert bundle.digest in stored
    assert bundle.artifacts[0].digest in stored
    assert svc.blobs.read(bundle.digest) == bundle.canonical_bytes()


def test_corrupted_manifest_is_never_served(svc: RegistryService) -> None:
    info = svc.versions.register(variant(1), name="chat", message="one", author="ana").version
    assert isinstance(svc.blobs.store, LocalStore)
    path = svc.blobs.store.path(info.digest)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes().replace(b"variant 1", b"variant 9"))
    with pytest.raises(IntegrityError, match=info.digest):
        svc.versions.get("chat@1")


def test_list_names(svc: RegistryService) -> None:
    svc.versions.register(variant(1), name="b-bot", message="x", author="ana")
    svc.versions.register(variant(2), name="a-bot", message="x", author="ana")
    svc.versions.register(variant(3), name="a-bot", message="y", author="ana")
    names = svc.versions.list_names()
    assert [(n.name, n.versions, n.latest_version) for n in names] == [
        ("a-bot", 2, 2), ("b-bot", 1, 1)]


def test_changelog_is_stored_at_registration(svc: RegistryService) -> None:
    svc.versions.register(variant(1), name="chat", message="one", author="ana")
    second = svc.versions.register(variant(2), name="chat", message="two", author="bo").version
    assert second.changes == ["system_prompt: +1 -1 lines"]
    stored = svc.versions.stored_diff(second)
    assert stored is not None and stored["system_prompt"]["lines"][-1] == "+variant 2"
    entries = svc.versions.changelog("chat")
    assert [(e.version.version, e.first) for e in entries] == [(2, False), (1, True)]
    assert svc.versions.stored_diff(entries[1].version) is None


def test_registering_again_repairs_a_corrupt_manifest(svc: RegistryService) -> None:
    info = svc.versions.register(variant(1), name="chat", message="one", author="ana").version
    store = svc.blobs.store
    assert isinstance(store, LocalStore)
    path = store.path(info.digest)
    path.chmod(0o644)
    good = path.read_bytes()
    path.write_bytes(good.replace(b"variant 1", b"variant 9"))  # a same-size flip
    with pytest.raises(IntegrityError):
        svc.versions.get("chat@1")
    again = svc.versions.register(variant(1), name="chat", message="again", author="ana")
    assert not again.created  # the same version...
    assert svc.versions.get("chat@1").digest == info.digest  # ...and its bytes are whole again
    assert path.read_bytes() == good
