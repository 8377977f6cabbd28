"""The remote client's bounded reads, against a hostile server on loopback: an answer
longer than its cap or slower than the deadline is an outage served from the cache
(resolve), or a clean :class:`RegistryUnavailableError` (every other request)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmreg.bundle.digest import canonical_json, digest_bytes
from llmreg.bundle.schema import Bundle
from llmreg.client import remote
from llmreg.client.remote import RemoteClient
from llmreg.errors import RegistryUnavailableError
from llmreg.settings import Settings
from tests.client.hostile import Hostile, drip, endless, late, slow_headers
from tests.conftest import minimal

SLOT = "/v1/resolve/chat/production"
MANIFEST = canonical_json(Bundle.from_dict(minimal(system_prompt="hi")).canonical_dict())
DIGEST = digest_bytes(MANIFEST)


@pytest.fixture
def server() -> Iterator[Hostile]:
    h = Hostile()
    h.answers[SLOT] = (200, {"ETag": f'"{DIGEST}"', "X-Llmreg-Version": "3",
                             "X-Llmreg-Env": "production"}, MANIFEST)
    yield h
    h.stop()


def client(server: Hostile, tmp_path: Path, deadline: float = 30.0,
           http: httpx.Client | None = None) -> RemoteClient:
    reg = RemoteClient(server.url, settings=Settings(read_deadline=deadline),
                       cache=tmp_path / "cache", http=http)
    assert reg.resolve("chat", env="production").version == 3  # now cached
    return reg


def falls_back(reg: RemoteClient, said: str, caplog: pytest.LogCaptureFixture,
               within: float) -> None:
    for strict in (False, True):
        started = time.monotonic()
        caplog.clear()
        try:
            with caplog.at_level(logging.WARNING, logger="llmreg"):
                served = reg.resolve("chat", env="production", strict=strict)
            assert not strict and served.served_from_cache and served.version == 3
            assert said in caplog.text, caplog.text
        except RegistryUnavailableError as exc:
            assert strict and said in str(exc), str(exc)
        assert time.monotonic() - started < within


@pytest.mark.parametrize("fill", [b" ", b"\x00", b"{"], ids=["spaces", "nul", "json"])
def test_an_endless_resolve_answer_stops_at_the_manifest_cap(
        server: Hostile, tmp_path: Path, fill: bytes, caplog: pytest.LogCaptureFixture) -> None:
    reg = client(server, tmp_path)
    server.plays[SLOT] = endless(fill)
    falls_back(reg, f"sent {SLOT} is longer than 16777216 bytes (the most a manifest can "
                    "be); reading stopped there", caplog, within=10)
    reg.close()


def test_the_manifest_cap_is_exact(server: Hostile, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    reg = client(server, tmp_path)
    monkeypatch.setattr(remote, "MAX_MANIFEST", len(MANIFEST))
    assert not reg.resolve("chat", env="production", strict=True).served_from_cache
    monkeypatch.setattr(remote, "MAX_MANIFEST", len(MANIFEST) - 1)
    with pytest.raises(RegistryUnavailableError, match=rf"longer than {len(MANIFEST) - 1} "):
        reg.resolve("chat", env="production", strict=True)
    reg.close()


SLOW = [("drip", drip(0.3)), ("drip without a length", drip(0.3, declared=False)),
        ("headers that never end", slow_headers(0.2)), ("silence", late(10.0))]


@pytest.mark.parametrize(("label", "play"), SLOW, ids=[s[0] for s in SLOW])
def test_a_slow_resolve_answer_ends_at_the_deadline(
        server: Hostile, tmp_path: Path, label: str, play: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    reg = client(server, tmp_path, deadline=1.0)
    server.plays[SLOT] = play
    falls_back(reg, "no whole answer within the 1s deadline (LLMREG_READ_DEADLINE)", caplog,
               within=6.0)
    server.plays.clear()  # each request has a deadline of its own
    assert not reg.resolve("chat", env="production", strict=True).served_from_cache
    reg.close()


def test_an_injected_httpx_client_reads_capped_and_within_the_deadline(
        server: Hostile, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with httpx.Client(base_url=server.url) as http:
        reg = client(server, tmp_path, deadline=1.0, http=http)
        server.plays[SLOT] = drip(0.2)
        falls_back(reg, "no whole answer within the 1s deadline", caplog, within=6.0)
        server.plays[SLOT] = endless()
        falls_back(reg, "is longer than 16777216 bytes", caplog, within=10)


def test_every_other_request_reads_capped_and_within_the_deadline(
        server: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg = RemoteClient(server.url, settings=Settings(read_deadline=1.0), cache=tmp_path / "c")
    monkeypatch.setattr(remote, "MAX_ANSWER", 1 << 20)
    server.plays["/v1/names"] = endless()
    with pytest.raises(RegistryUnavailableError) as exc:
        reg.list()
    assert str(exc.value) == (f"cannot read the registry at {server.url}: the answer to GET "
                              "/v1/names is longer than 1048576 bytes")
    server.answers["/v1/names"] = (200, {}, b'{"items": []' + b" " * 40 + b"}")  # dripped:
    server.plays["/v1/names"] = drip(0.2, declared=False)
    started = time.monotonic()
    with pytest.raises(RegistryUnavailableError, match="within the 1s deadline"):
        reg.list()
    assert time.monotonic() - started < 6  # the whole drip takes about 10 s
    reg.close()
