"""Getting artifacts back, verified, and the integrity tools, on both clients."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

import llmreg
from llmreg.errors import IntegrityError
from llmreg_cli.main import app
from tests.conftest import EXAMPLES


@pytest.fixture
def registered(reg: llmreg.Client) -> llmreg.Bundle:
    return reg.log_bundle(EXAMPLES / "ticket-classifier", message="first")


def damage(reg: llmreg.Client, digest: str) -> None:
    path = reg._backend.service.blobs.store.path(digest)  # type: ignore[attr-defined]
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))


def test_pull_verifies_and_resumes(reg: llmreg.Client, registered: llmreg.Bundle,
                                   tmp_path: Path) -> None:
    (art,) = registered.artifacts
    source = (EXAMPLES / "ticket-classifier" / "eval" / "tickets.jsonl").read_bytes()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / f".{art.name}.partial").write_bytes(source[:100])  # an interrupted pull
    seen: list[int] = []
    (path,) = reg.pull("ticket-classifier@1", dest, progress=lambda n, d, t: seen.append(d))
    assert path == dest / "eval-set" and path.read_bytes() == source
    assert seen[-1] == len(source) and seen[0] > 100  # resumed after the first 100 bytes
    assert not (dest / f".{art.name}.partial").exists()
    assert reg.pull("ticket-classifier@1", dest) == [path]  # intact: nothing to do


def test_corruption_is_caught_by_pull_verify_and_fsck(reg: llmreg.Client,
                                                      registered: llmreg.Bundle,
                                                      tmp_path: Path) -> None:
    art = registered.artifacts[0]
    assert reg.verify("ticket-classifier@1") == []
    count, problems = reg.fsck()
    assert problems == [] and count == 2  # the manifest and the eval-set artifact
    damage(reg, art.digest)
    with pytest.raises(IntegrityError, match=art.digest):
        reg.pull("ticket-classifier@1", tmp_path / "out")
    assert not (tmp_path / "out" / "eval-set").exists()  # never under its final name
    (problem,) = reg.verify("ticket-classifier@1")
    assert (problem.digest, problem.problem) == (art.digest, "corrupt")
    _, problems = reg.fsck()
    assert [(p.digest, p.problem) for p in problems] == [(art.digest, "corrupt")]
    assert "artifact 'eval-set'" in problems[0].referenced_by
    result = CliRunner().invoke(app, ["fsck"])
    assert result.exit_code == 1 and art.digest in result.stdout
    verify = CliRunner().invoke(app, ["verify", "ticket-classifier@1"])
    assert verify.exit_code == 1 and art.digest in verify.stderr


def test_gc_lists_only_old_unreferenced_blobs(reg: llmreg.Client, registered: llmreg.Bundle
                                              ) -> None:
    store = reg._backend.service.blobs.store  # type: ignore[attr-defined]
    orphan = store.put_bytes(b"uploaded, never referenced").digest
    assert reg.gc(dry_run=True) == []  # younger than the grace period
    assert reg.gc(dry_run=True, grace=0) == [orphan]
    reg.archive("ticket-classifier@1")  # archived versions keep their blobs
    assert reg.gc(dry_run=False, grace=0) == [orphan]
    assert not store.exists(orphan)
    assert reg.verify("ticket-classifier@1") == []


def test_pull_over_http(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from llmreg.client.remote import RemoteClient
    from llmreg.server.app import create_app
    from llmreg.service import RegistryService
    from llmreg.settings import Settings

    svc = RegistryService.open_home(tmp_path / "srv")
    token, _ = svc.access.create_token("ci", "publisher", created_by="t")
    http = TestClient(create_app(Settings(read_auth="token"), service=svc),
                      base_url="http://r.test")
    client = RemoteClient("http://r.test", token=token, http=http, cache=tmp_path / "c")
    client.log_bundle(EXAMPLES / "ticket-classifier", message="first")
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / ".eval-set.partial").write_bytes(b"x" * 10)  # a wrong partial: caught at the end
    with pytest.raises(IntegrityError, match="nothing was kept"):
        client.pull("ticket-classifier@1", dest)
    (path,) = client.pull("ticket-classifier@1", dest)  # the bad partial was dropped
    assert path.read_bytes() == (EXAMPLES / "ticket-classifier" / "eval" /
                                 "tickets.jsonl").read_bytes()
    assert client.verify("ticket-classifier@1") == []
    svc.close()


@pytest.mark.s3
def test_registry_on_s3_catches_a_corrupted_object(tmp_path: Path, weed: object,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.s3 import BUCKET, aws_env, new_prefix

    aws_env(weed, monkeypatch)  # type: ignore[arg-type]
    monkeypatch.setenv("LLMREG_STORE", f"s3://{BUCKET}/{new_prefix()}")
    with llmreg.connect(tmp_path / "s3reg" / ".llmreg", create=True) as reg:
        bundle = reg.log_bundle(EXAMPLES / "ticket-classifier", message="on s3")
        store = reg._backend.service.blobs.store  # type: ignore[attr-defined]
        assert type(store).__name__ == "S3Store"
        assert reg.get("ticket-classifier@1").digest == bundle.digest
        (art,) = bundle.artifacts
        store.client.put_object(Bucket=store.bucket, Key=store.key(art.digest),
                                Body=b"tampered")
        _, problems = reg.fsck()
        assert [(p.digest, p.problem) for p in problems] == [(art.digest, "corrupt")]
        with pytest.raises(IntegrityError, match=art.digest):
            reg.pull("ticket-classifier@1", tmp_path / "out")


def test_fsck_and_gc_follow_every_kind_of_reference(reg: llmreg.Client, examples: Path,
                                                    tmp_path: Path) -> None:
    from llmreg.store import LocalStore

    reg.log_bundle(examples / "ticket-classifier", message="one")
    (examples / "ticket-classifier" / "system.md").write_text("Shorter.\n")
    reg.log_bundle(examples / "ticket-classifier", message="two")
    (report := tmp_path / "report.html").write_text("<p>all good</p>")
    ev = reg.log_eval("ticket-classifier@2", suite="regression", metrics={"accuracy": 0.9},
                      report=report)
    reg.promote("ticket-classifier@2", to="staging", reason="try")
    info = reg.info("ticket-classifier@2")
    store = LocalStore(Path(os.environ["LLMREG_HOME"]))
    orphan = store.put_bytes(b"nothing refers to me").digest
    count, problems = reg.fsck()
    assert problems == []
    assert count == len(list(store.iter_digests()))
    # gc keeps the changelog, the eval report and the enforced policy; only the orphan goes
    assert reg.gc(dry_run=False, grace=0) == [orphan]
    assert ev.report_digest is not None and info.diff_digest is not None
    policy_digest = reg.policy.digest
    for digest in (ev.report_digest, info.diff_digest, policy_digest, info.digest):
        store.path(digest).unlink()
    _, problems = reg.fsck()
    found = {p.digest: (p.problem, p.referenced_by) for p in problems}
    assert found == {
        ev.report_digest: ("missing", f"evidence #{ev.id}"),
        info.diff_digest: ("missing", f"the changelog of {info.digest[:19]}"),
        policy_digest: ("missing", "an enforced policy"),
        info.digest: ("missing", "version 2 of name #1"),
    }


def test_gc_keeps_the_dataset_listing_of_a_logged_model(reg: llmreg.Client,
                                                        tmp_path: Path) -> None:
    (weights := tmp_path / "adapter.safetensors").write_bytes(b"w" * 100)
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.jsonl").write_text('{"x": 1}\n')
    (data / "eval.jsonl").write_text('{"x": 2}\n')
    model = reg.log_model("lora", weights=weights, dataset=data, message="first")
    assert model.info is not None
    listing = model.info.provenance["dataset"]["manifest"]
    assert listing.startswith("sha256:")
    assert reg.gc(dry_run=False, grace=0) == []
    assert reg.reproduce_check("lora@1", weights=weights, dataset=data)["match"] is True
