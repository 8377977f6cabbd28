"""Refs resolved inside a session: every form, environments and their aliases, short
digests across names, and the exact message for each miss."""

from __future__ import annotations

import pytest

from llmreg.bundle.names import parse_ref
from llmreg.bundle.schema import Bundle
from llmreg.errors import AmbiguousRefError, EmptySlotError, InvalidRefError, RefNotFoundError
from llmreg.service import RegistryService
from llmreg.service.refs import prefix_filter, resolve_in
from llmreg.types import Actor
from tests.conftest import minimal

ANA = Actor("ana")


def register(svc: RegistryService, name: str, text: str) -> str:
    bundle = Bundle.from_dict(minimal(system_prompt=text))
    return svc.versions.register(bundle, name=name, message="m", author="ana").version.digest


def resolve(svc: RegistryService, ref: str) -> tuple[str, int]:
    with svc.db.read() as session:
        row, version = resolve_in(session, ref, svc.policy)
        return row.name, version.number


def test_environment_refs_read_that_names_slot(svc: RegistryService) -> None:
    for i in (1, 2):
        register(svc, "other", f"other {i}")
        register(svc, "chat", f"chat {i}")
    svc.lifecycle.promote("other@2", "staging", actor=ANA, reason="x")
    with pytest.raises(EmptySlotError, match="^'chat' has nothing in 'staging'; see "
                                             "`llmreg status chat`$"):
        resolve(svc, "chat@pre-prod")
    svc.lifecycle.promote("chat@1", "staging", actor=ANA, reason="x")
    assert resolve(svc, "chat@staging") == ("chat", 1)
    assert resolve(svc, "chat@preprod") == ("chat", 1)
    assert resolve(svc, "other@staging") == ("other", 2)
    assert resolve(svc, "chat@latest") == resolve(svc, "chat") == ("chat", 2)
    with pytest.raises(EmptySlotError, match="'chat' has nothing in 'production'"):
        resolve(svc, "chat@prod")


def test_a_label_that_is_no_environment_names_the_choices(svc: RegistryService) -> None:
    register(svc, "chat", "x")
    with pytest.raises(InvalidRefError, match=r"^ref 'chat@moon': 'moon' is not a version, a "
                                              r"digest, 'latest' or an environment \(staging "):
        resolve(svc, "chat@moon")


def test_versions_and_digests_within_a_name(svc: RegistryService) -> None:
    d1 = register(svc, "chat", "one")
    register(svc, "chat", "two")
    assert resolve(svc, f"chat@{d1}") == ("chat", 1)
    assert resolve(svc, f"chat@{d1[:15]}") == ("chat", 1)
    with pytest.raises(RefNotFoundError, match=r"^'chat' has no version 3 \(latest is 2\); see "
                                               r"`llmreg history chat`$"):
        resolve(svc, "chat@3")
    missing = "sha256:" + ("0" if d1[7] != "0" else "1") * 12
    with pytest.raises(RefNotFoundError, match=f"^no version matches 'chat@{missing}'; see "
                                               "`llmreg history`$"):
        resolve(svc, f"chat@{missing}")
    with pytest.raises(RefNotFoundError, match="^'nobody' is not registered; see `llmreg list`"):
        resolve(svc, "nobody@1")


def test_a_bare_digest_finds_its_first_name(svc: RegistryService) -> None:
    digest = register(svc, "chat", "shared")
    register(svc, "chat-eu", "shared")
    assert resolve(svc, digest) == ("chat", 1)
    assert resolve(svc, digest[:14]) == ("chat", 1)
    absent = "sha256:" + "f" * 64 if digest[7] != "f" else "sha256:" + "e" * 64
    with pytest.raises(RefNotFoundError, match=f"^no bundle has digest '{absent}'$"):
        resolve(svc, absent)


def make_clash(svc: RegistryService, names: list[str]) -> tuple[str, list[str]]:
    """Register bundles until several digests share a 1-hex-digit prefix."""
    by_first: dict[str, list[str]] = {}
    i = 0
    while True:
        name = names[i % len(names)]
        digest = register(svc, name, f"text {i}")
        by_first.setdefault(digest[7], []).append(digest)
        i += 1
        for first, digests in by_first.items():
            if len(digests) >= 6:
                return first, sorted(digests)


def test_an_ambiguous_prefix_lists_five_and_asks_for_more(svc: RegistryService) -> None:
    first, digests = make_clash(svc, ["chat", "other"])
    prefix = first  # one hex digit: below the 7 a ref needs, so query the filter directly
    with svc.db.read() as session:
        from sqlmodel import select

        from llmreg.db.models import Version

        found = sorted({v.digest for v in session.exec(
            prefix_filter(select(Version), prefix)).all()})
    assert found == digests and len(found) >= 6
    ref = parse_ref(digests[0][:14])
    assert ref.digest_prefix is not None
    shorter = type(ref)(name=None, digest_prefix=prefix)
    with pytest.raises(AmbiguousRefError) as caught, svc.db.read() as session:
        resolve_in(session, shorter, svc.policy)
    message = str(caught.value)
    assert message.startswith(f"'sha256:{prefix}' matches {len(digests)} bundles (")
    assert message.endswith("); give more hex digits")
    assert message.count(", ") == 4  # five shown


def test_the_prefix_range_stops_at_the_prefix(svc: RegistryService) -> None:
    digest = register(svc, "chat", "x")
    with svc.db.read() as session:
        from sqlmodel import select

        from llmreg.db.models import Version

        def hits(prefix: str) -> int:
            return len(session.exec(prefix_filter(select(Version), prefix)).all())

        assert hits(digest[7:]) == 1  # the full hex
        assert hits(digest[7:20]) == 1
        nxt = format(int(digest[7:20], 16) + 1, "013x")
        assert hits(nxt) == 0
