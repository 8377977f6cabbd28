"""The client's disk cache: verified manifests, and slot records authenticated by a key
kept outside the cache folder."""

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


def test_the_key_is_private_outside_the_folder_and_shared_by_its_clients(
        cache: ClientCache, state_home: Path) -> None:
    cache.remember("chat", "production", cache.keep(b"{}"), 1)
    key = state_home / "llmreg" / "cache.key"
    assert cache.key_file == key and len(key.read_bytes()) == 32
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.parent.stat().st_mode & 0o777 == 0o700
    assert not list(cache.root.rglob("*.key"))  # nothing in the folder it protects
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


def test_a_folder_alone_cannot_forge_a_record(cache: ClientCache, tmp_path: Path) -> None:
    """Whoever can write the whole cache folder — records, manifests and an old in-folder
    key — still cannot make the client serve a record: the key is not there."""
    import hashlib
    import hmac

    mine, theirs = cache.keep(b'{"a":1}'), cache.keep(b'{"b":2}')
    cache.remember("chat", "production", mine, 1)
    path = slot_file(cache, "chat")
    forged_key = b"k" * 32
    (cache.root / "cache.key").write_bytes(forged_key)  # where the key used to live
    data = json.loads(path.read_text())
    data["digest"] = theirs
    message = json.dumps([SERVER, data["name"], data["env"], data["canonical_env"],
                          data["digest"], data["version"], data["resolved_at"]])
    data["mac"] = hmac.new(forged_key, message.encode(), hashlib.sha256).hexdigest()
    path.write_text(json.dumps(data))
    assert ClientCache(cache.root, SERVER).last("chat", "production") is None
    assert cache.last("chat", "production") is None


@pytest.mark.parametrize("inside", ["cache.key", "sub/k", "."], ids=["key", "nested", "root"])
def test_a_key_inside_the_cache_folder_is_refused(tmp_path: Path, inside: str) -> None:
    from llmreg.errors import ConfigError

    root = tmp_path / "cache"
    with pytest.raises(ConfigError) as exc:
        ClientCache(root, SERVER, key=root / inside)
    assert str(exc.value) == (f"LLMREG_CACHE_KEY={str(root / inside)!r} is inside the cache "
                              f"folder {str(root)!r} it protects; keep the key elsewhere "
                              "(docs/security.md)")
    assert ClientCache(root, SERVER, key=tmp_path / "cache.key").key_file == \
        tmp_path / "cache.key"  # beside it is fine


def test_the_key_follows_the_setting_and_the_platform(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    import sys

    from llmreg.client.transport import default_key
    from llmreg.settings import Settings

    assert Settings.from_env({"LLMREG_CACHE_KEY": "~/k"}).cache_key == Path.home() / "k"
    assert Settings.from_env({}).cache_key is None
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_key() == tmp_path / ".local" / "state" / "llmreg" / "cache.key"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert default_key() == tmp_path / "Library" / "Application Support" / "llmreg" / "cache.key"
