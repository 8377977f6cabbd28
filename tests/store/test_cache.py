"""The remote client's disk cache: verified manifests, authenticated slot records."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from llmreg.client.cache import ClientCache
from llmreg.errors import IntegrityError

SERVER = "http://registry.test"


@pytest.fixture()
def cache(tmp_path: Path) -> ClientCache:
    return ClientCache(tmp_path / "cache", SERVER)


def slot_file(cache: ClientCache, name: str) -> Path:
    [path] = (cache.root / "slots").glob(f"*/{name}/*.json")
    return path


def test_a_record_round_trips_and_is_bound_to_its_slot(cache: ClientCache) -> None:
    digest = cache.keep(b"{}")
    cache.remember("chat", "prod", digest, 4, "production")
    record = cache.last("chat", "prod")
    assert record is not None
    assert (record.name, record.env, record.canonical_env, record.digest, record.version) == (
        "chat", "prod", "production", digest, 4)
    assert abs(record.resolved_at - time.time()) < 5
    assert cache.last("chat", "production") is None  # another env: another record
    assert cache.last("other", "prod") is None


def test_a_record_pointed_at_another_names_manifest_is_ignored(
        cache: ClientCache, caplog: pytest.LogCaptureFixture) -> None:
    mine, theirs = cache.keep(b'{"a":1}'), cache.keep(b'{"b":2}')
    cache.remember("chat", "production", mine, 1)
    cache.remember("billing", "production", theirs, 9)
    path = slot_file(cache, "chat")
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "digest": theirs}))
    assert cache.last("chat", "production") is None
    assert "was edited" in caplog.text
    assert not any(r.getMessage().startswith("llmreg:") for r in caplog.records)  # no double prefix
    # Copying another slot's whole record (with its valid MAC) does not work either.
    path.write_text(slot_file(cache, "billing").read_text())
    assert cache.last("chat", "production") is None


@pytest.mark.parametrize("field,value", [("resolved_at", time.time() + 86_400 * 365),
                                         ("version", 99), ("canonical_env", "staging")],
                         ids=["resolved_at", "version", "canonical_env"])  # stable ids for xdist
def test_any_edited_field_is_detected(cache: ClientCache, field: str, value: object) -> None:
    cache.remember("chat", "production", cache.keep(b"{}"), 1)
    path = slot_file(cache, "chat")
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, field: value}))
    assert cache.last("chat", "production") is None


def test_a_record_from_the_future_is_refused_even_with_a_valid_mac(cache: ClientCache) -> None:
    from dataclasses import replace

    cache.remember("chat", "production", cache.keep(b"{}"), 1)
    path = slot_file(cache, "chat")
    record = cache.last("chat", "production")
    assert record is not None
    future = replace(record, resolved_at=time.time() + 3600)
    path.write_text(json.dumps({**future.__dict__, "mac": cache._mac(future)}))
    assert cache.last("chat", "production") is None


def test_the_key_is_private_and_shared_by_every_client_of_the_folder(cache: ClientCache) -> None:
    cache.remember("chat", "production", cache.keep(b"{}"), 1)
    assert (cache.root / "cache.key").stat().st_mode & 0o777 == 0o600
    again = ClientCache(cache.root, SERVER)
    assert again.last("chat", "production") is not None
    other_server = ClientCache(cache.root, "http://elsewhere.test")
    assert other_server.last("chat", "production") is None


def test_an_environment_never_names_a_path(cache: ClientCache) -> None:
    cache.remember("chat", "../../../escape", cache.keep(b"{}"), 1)
    assert not (cache.root.parent / "escape.json").exists()
    assert cache.last("chat", "../../../escape") is not None


def test_a_damaged_manifest_raises_and_can_be_dropped(cache: ClientCache) -> None:
    digest = cache.keep(b'{"x":1}')
    path = cache._blobs.path(digest)
    path.chmod(0o644)
    path.write_bytes(b'{"x":2}')
    with pytest.raises(IntegrityError, match="corrupt"):
        cache.read(digest)
    cache.drop(digest)
    assert not cache.has(digest)
