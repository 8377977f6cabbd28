"""Publishing the signed static mirror: layout, order, incremental writes, keys."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llmreg.errors import ConfigError
from llmreg.service import RegistryService
from llmreg.service.mirror.destinations import FolderDestination, open_destination
from llmreg.service.mirror.keys import keygen, load_root, load_signer, rotate
from llmreg.service.mirror.publisher import (
    AUDIT_HEAD,
    AutoPublisher,
    audit_head_bytes,
    publish,
    target_file_path,
)
from tests.mirror import ANA, make_keys, register, to_production


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return make_keys(tmp_path)


def test_a_publish_writes_targets_before_the_metadata_that_names_them(
        svc: RegistryService, keys: Path, tmp_path: Path) -> None:
    ref = register(svc, 1)
    to_production(svc, ref)
    report = publish(svc, tmp_path / "m", keys)
    written = report.written
    assert written[:2] == ["metadata/1.root.json", "metadata/root.json"]
    metadata = ["metadata/1.manifests.json", "metadata/1.targets.json",
                "metadata/1.snapshot.json", "metadata/timestamp.json"]
    assert written[-4:] == metadata  # the order readers follow them, reversed
    targets = written[2:-4]
    assert all(p.startswith("targets/") for p in targets)
    digest = svc.versions.slot("chat", "production").digest
    hexd = digest.removeprefix("sha256:")
    assert f"targets/blobs/sha256/{hexd}.{hexd}" in targets
    pointers = [p for p in targets if p.startswith("targets/pointers/chat/")]
    # production and its alias prod, staging and its aliases pre-prod, preprod
    assert sorted(p.rsplit(".", 2)[-2] for p in pointers) == [
        "pre-prod", "preprod", "prod", "production", "staging"]
    prod = next(p for p in pointers if p.endswith(".production.json"))
    assert json.loads((tmp_path / "m" / prod).read_text()) == {
        "digest": digest, "env": "production", "name": "chat", "version": 1}
    assert (report.targets_version, report.snapshot_version, report.timestamp_version) == (1, 1, 1)


def test_publishing_is_incremental(svc: RegistryService, keys: Path, tmp_path: Path) -> None:
    to_production(svc, register(svc, 1))
    v2 = register(svc, 2)
    first = publish(svc, tmp_path / "m", keys)
    assert publish(svc, tmp_path / "m", keys).written == []  # nothing changed
    svc.lifecycle.promote(v2, "staging", actor=ANA, reason="next")
    after_move = publish(svc, tmp_path / "m", keys).written
    # one slot moved: its pointers (and aliases), the audit head, targets, snapshot,
    # timestamp — no manifest
    assert [p for p in after_move if not p.startswith("targets/pointers/chat/")
            and not p.startswith("targets/audit/")] == [
        "metadata/2.targets.json", "metadata/2.snapshot.json", "metadata/timestamp.json"]
    assert sorted(p.rsplit(".", 2)[-2] for p in after_move if p.startswith("targets/")) == [
        "head", "pre-prod", "preprod", "staging"]
    assert not any("blobs" in p or "manifests" in p for p in after_move)
    register(svc, 3)
    after_register = publish(svc, tmp_path / "m", keys).written
    assert any(p.startswith("targets/blobs/sha256/") for p in after_register)
    assert "metadata/2.manifests.json" in after_register
    assert any(p.startswith("targets/names/") for p in after_register)
    assert len(first.written) > len(after_register)


def test_the_timestamp_is_re_signed_when_it_nears_expiry(
        svc: RegistryService, keys: Path, tmp_path: Path) -> None:
    publish(svc, tmp_path / "m", keys, timestamp_expiry=timedelta(hours=1))
    same = publish(svc, tmp_path / "m", keys, timestamp_expiry=timedelta(hours=1))
    assert same.written == []  # an hour left of an hour
    renewed = publish(svc, tmp_path / "m", keys, timestamp_expiry=timedelta(days=10))
    assert renewed.written == ["metadata/timestamp.json"]  # an hour left of ten days
    assert renewed.timestamp_version == 2 and renewed.snapshot_version == 1


def test_each_role_expires_when_it_should(svc: RegistryService, tmp_path: Path) -> None:
    """A stolen online key or a frozen mirror is bounded by these: the timestamp is
    valid one day (publish more often than that), snapshot and both targets roles 90
    days, the root a year."""
    from tuf.api.metadata import Metadata

    to_production(svc, register(svc, 1))
    before = datetime.now(UTC).replace(microsecond=0)
    keys = make_keys(tmp_path)
    publish(svc, tmp_path / "m", keys)
    after = datetime.now(UTC)

    def valid_for(path: str) -> tuple[timedelta, timedelta]:
        expires = Metadata.from_file(str(tmp_path / "m" / "metadata" / path)).signed.expires
        return expires - after, expires - before  # the span, within the publish's time

    expected = {"timestamp.json": timedelta(days=1), "1.snapshot.json": timedelta(days=90),
                "1.targets.json": timedelta(days=90), "1.manifests.json": timedelta(days=90),
                "1.root.json": timedelta(days=365)}
    for path, span in expected.items():
        low, high = valid_for(path)
        assert low <= span <= high, (path, low, high)
    assert high - low < timedelta(minutes=1)
    # A shorter timestamp on request (the CLI's --timestamp-expiry); the others keep theirs.
    register(svc, 2)
    before = datetime.now(UTC).replace(microsecond=0)
    publish(svc, tmp_path / "m", keys, timestamp_expiry=timedelta(hours=2))
    after = datetime.now(UTC)
    low, high = valid_for("timestamp.json")
    assert low <= timedelta(hours=2) <= high
    low, high = valid_for("2.snapshot.json")
    assert low <= timedelta(days=90) <= high


def test_keygen_writes_four_keys_and_root_v1_and_refuses_a_second_time(tmp_path: Path) -> None:
    keys = keygen(tmp_path / "k")
    root = load_root(keys)
    assert root.signed.version == 1 and root.signed.consistent_snapshot
    assert sorted(root.signed.roles) == ["root", "snapshot", "targets", "timestamp"]
    assert (keys / "timestamp.key").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ConfigError, match="already holds mirror keys"):
        keygen(keys)


def test_missing_keys_and_roots_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="timestamp key .* is missing"):
        load_signer(tmp_path, "timestamp")
    with pytest.raises(ConfigError, match="offline root key"):
        load_signer(tmp_path, "root")
    with pytest.raises(ConfigError, match="holds no signed root"):
        load_root(tmp_path)


def test_rotating_a_key_re_signs_what_it_signed(svc: RegistryService, keys: Path,
                                                tmp_path: Path) -> None:
    publish(svc, tmp_path / "m", keys)
    old = load_signer(keys, "timestamp").public_key.keyid
    root = rotate(keys, "timestamp")
    assert root.signed.version == 2 and old not in root.signed.roles["timestamp"].keyids
    report = publish(svc, tmp_path / "m", keys)
    assert report.written == ["metadata/2.root.json", "metadata/root.json",
                              "metadata/timestamp.json"]
    rotate(keys, "targets")
    report = publish(svc, tmp_path / "m", keys)
    assert "metadata/2.targets.json" in report.written
    assert "metadata/2.manifests.json" in report.written


def test_rotating_the_root_needs_the_offline_root_key(keys: Path) -> None:
    root = rotate(keys, "root")
    assert len(root.signatures) == 2  # the old root key and the new one
    (keys / "root.key").unlink()
    with pytest.raises(ConfigError, match="offline root key"):
        rotate(keys, "snapshot")
    with pytest.raises(ConfigError, match="not a mirror role"):
        rotate(keys, "admin")


def test_a_key_the_root_does_not_trust_is_refused(svc: RegistryService, keys: Path,
                                                  tmp_path: Path) -> None:
    stale = (keys / "snapshot.key").read_bytes()
    rotate(keys, "snapshot")
    (keys / "snapshot.key").write_bytes(stale)
    with pytest.raises(ConfigError, match="snapshot key in the keys folder is not the one"):
        publish(svc, tmp_path / "m", keys)


def test_destinations(tmp_path: Path) -> None:
    assert isinstance(open_destination(f"file://{tmp_path}"), FolderDestination)
    with pytest.raises(ConfigError, match="names no bucket"):
        open_destination("s3:///prefix")
    with pytest.raises(ConfigError, match="is not a folder"):
        open_destination("https://example.org/m")
    assert target_file_path("names/chat.json", "ab") == "targets/names/ab.chat.json"


def test_the_auto_publisher_logs_a_failure_and_never_raises(
        svc: RegistryService, keys: Path, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    good = AutoPublisher(svc, str(tmp_path / "m"), keys)
    assert good.after_move() is not None and good.failures == 0
    bad = AutoPublisher(svc, str(tmp_path / "m2"), tmp_path / "no-keys")
    with caplog.at_level(logging.ERROR, logger="llmreg"):
        assert bad.after_move() is None
    assert bad.failures == 1 and "publishing the mirror" in caplog.text


def test_the_audit_head_is_signed_with_the_pointers(svc: RegistryService, keys: Path,
                                                    tmp_path: Path) -> None:
    from tuf.api.metadata import Metadata

    empty = publish(svc, tmp_path / "m", keys)
    assert (empty.audit_seq, empty.audit_head) == (0, None)
    to_production(svc, register(svc, 1))
    report = publish(svc, tmp_path / "m", keys)
    seq, head = svc.audit.tail() or (0, None)
    assert (report.audit_seq, report.audit_head) == (seq, head) and seq > 1
    body = audit_head_bytes(seq, head)
    assert json.loads(body) == {"head": head, "seq": seq}
    targets = Metadata.from_bytes((tmp_path / "m" / "metadata" /
                                   f"{report.targets_version}.targets.json").read_bytes())
    info = targets.signed.targets[AUDIT_HEAD]  # listed in the top-level targets role
    stored = tmp_path / "m" / target_file_path(AUDIT_HEAD, info.hashes["sha256"])
    assert stored.read_bytes() == body and info.length == len(body)
    assert publish(svc, tmp_path / "m", keys).written == []  # the same head: nothing new
    svc.owners.set("chat", team="t", contacts=["t@example.com"], actor=ANA)
    moved = publish(svc, tmp_path / "m", keys)  # a new entry, no slot moved: a new head
    assert moved.audit_seq == seq + 1 and any(p.startswith("targets/audit/")
                                              for p in moved.written)


def test_the_audit_head_file_is_canonical() -> None:
    assert audit_head_bytes(0, None) == b'{"head":null,"seq":0}'
    assert audit_head_bytes(12, "sha256:ab") == b'{"head":"sha256:ab","seq":12}'
