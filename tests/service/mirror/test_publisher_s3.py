"""Publishing the mirror to a real S3 server (SeaweedFS), and reading it back with
``s3://`` in the same process."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmreg
from llmreg.service import RegistryService
from llmreg.service.mirror.destinations import S3Destination, open_destination
from llmreg.service.mirror.publisher import publish
from llmreg.settings import Settings
from tests.mirror import make_keys, register, to_production
from tests.s3 import BUCKET, Weed, aws_env, new_prefix

pytestmark = pytest.mark.s3


def test_publish_to_a_bucket_and_resolve_from_it(
        weed: Weed, tmp_path: Path, svc: RegistryService,
        monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env(weed, monkeypatch)
    to_production(svc, register(svc, 1))
    keys = make_keys(tmp_path)
    url = f"s3://{BUCKET}/{new_prefix()}"
    dest = open_destination(url)
    assert isinstance(dest, S3Destination) and dest.url == url
    first = publish(svc, url, keys)
    assert "metadata/timestamp.json" in first.written
    assert publish(svc, url, keys).written == []  # read back from the bucket: unchanged
    head = dest.client.head_object(Bucket=BUCKET, Key=f"{dest.prefix}/metadata/timestamp.json")
    assert head["CacheControl"] == "no-cache"
    blob = next(p for p in first.written if p.startswith("targets/blobs/"))
    head = dest.client.head_object(Bucket=BUCKET, Key=f"{dest.prefix}/{blob}")
    assert "immutable" in head["CacheControl"]
    reg = llmreg.connect(url, trusted_root=keys / "root.json",
                         settings=Settings(cache=tmp_path / "cache"))
    assert reg.resolve("chat", env="production").version == 1
    assert reg.get("chat@1").version == 1
    missing = llmreg.connect(f"s3://{BUCKET}/{new_prefix()}", trusted_root=keys / "root.json",
                             settings=Settings(cache=tmp_path / "cache2"))
    with pytest.raises(llmreg.errors.RegistryUnavailableError, match="not found"):
        missing.resolve("chat", env="production")
    assert not dest.exists("metadata/nothing.json") and dest.read("nothing") is None
    bare = S3Destination(BUCKET, "", client=dest.client)
    assert bare.url == f"s3://{BUCKET}" and bare._key("a/b") == "a/b"
