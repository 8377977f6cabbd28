"""Trained models: log_model, deterministic dataset digests, weights references,
reproduce-check, and a crash in the middle of a large upload."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import llmreg
from llmreg.errors import InvalidBundleError, RefNotFoundError
from llmreg.lineage import hash_dataset
from llmreg_cli.main import app

GIB = 1024**3


def dataset(root: Path) -> Path:
    (root / "train").mkdir(parents=True)
    (root / "train" / "a.jsonl").write_text('{"q": 1}\n')
    (root / "train" / "b.jsonl").write_text('{"q": 2}\n')
    (root / "train" / "sub").mkdir()
    (root / "train" / "sub" / "c.csv").write_text("x,y\n1,2\n")
    return root / "train"


def test_dataset_digest_rules(tmp_path: Path) -> None:
    data = dataset(tmp_path)
    first = hash_dataset(data)
    assert (first.kind, first.files) == ("folder", 3)
    (data / ".DS_Store").write_text("noise")  # hidden files do not count
    (data / ".cache").mkdir()
    (data / ".cache" / "x").write_text("noise")
    os.chmod(data / "a.jsonl", 0o600)  # nor do permissions
    assert hash_dataset(data).digest == first.digest
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "big.bin").write_text("elsewhere")
    os.symlink(outside, data / "linked-dir")  # symlinked folders are not followed
    assert hash_dataset(data).digest == first.digest
    os.symlink(outside / "big.bin", data / "linked.bin")  # a symlinked file counts
    assert hash_dataset(data).digest != first.digest
    assert hash_dataset(data / "a.jsonl").kind == "file"
    assert hash_dataset("sha256:" + "a" * 64).kind == "digest"
    with pytest.raises(InvalidBundleError, match="neither a file, a folder"):
        hash_dataset(tmp_path / "nope")


def git_repo(path: Path) -> str:
    for cmd in (["init", "-q"], ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q",
                                 "--allow-empty", "-m", "init"]):
        subprocess.run(["git", "-C", str(path), *cmd], check=True)
    return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()


TRAIN = """
import llmreg
reg = llmreg.connect()
reg.log_model("ticket-lora", weights="out/adapter.safetensors", dataset="train",
              config="train.yaml", metrics={{"eval_loss": 0.41, "accuracy": 0.91}},
              framework="pytorch", base_model="mistral-7b-v0.3", message="lr 2e-4")
"""


@pytest.mark.slow
def test_a_training_script_logs_1gib_weights_and_a_dataset(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    sha = git_repo(tmp_path)
    dataset(tmp_path)
    (tmp_path / "out").mkdir()
    with open(tmp_path / "out" / "adapter.safetensors", "wb") as fh:
        fh.truncate(GIB)  # sparse: 1 GiB to stream and hash, cheap to create
        fh.seek(GIB // 2)
        fh.write(b"trained")
    (tmp_path / "train.yaml").write_text("lr: 0.0002\nepochs: 3\n")
    (tmp_path / "train.py").write_text(TRAIN.format())
    env = dict(os.environ, LLMREG_USER="trainer")
    subprocess.run([sys.executable, "train.py"], cwd=tmp_path, env=env, check=True)

    result = CliRunner().invoke(app, ["show", "ticket-lora@1", "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    prov = shown["provenance"]
    assert prov["git"]["commit"] == sha
    assert prov["dataset"]["digest"] == hash_dataset(tmp_path / "train").digest
    assert prov["dataset"]["files"] == 3
    assert prov["config"] == {"lr": 0.0002, "epochs": 3}
    assert prov["metrics"] == {"eval_loss": 0.41, "accuracy": 0.91}
    assert shown["kind"] == "weights" and shown["framework"] == "pytorch"
    (weights,) = shown["artifacts"]
    assert weights["size"] == GIB and weights["name"] == "adapter.safetensors"
    human = CliRunner().invoke(app, ["show", "ticket-lora@1"]).stdout
    assert "dataset" in human and "eval_loss=0.41" in human and sha[:12] in human


def test_llm_bundle_refers_to_weights_and_diff_show_follow(reg: llmreg.Client,
                                                           tmp_path: Path) -> None:
    (tmp_path / "w1.bin").write_bytes(b"weights one")
    (tmp_path / "w2.bin").write_bytes(b"weights two!")
    v1 = reg.log_model("ft", weights=tmp_path / "w1.bin", message="run 1")
    (tmp_path / "w1.bin").write_bytes(b"weights two!")
    v2 = reg.log_model("ft", weights=tmp_path / "w1.bin", message="run 2")

    def chat(weights: str) -> llmreg.Bundle:
        return llmreg.Bundle.from_dict({
            "model": {"provider": "self-hosted", "id": "llama-ft", "weights": weights},
            "template": {"source": "{{ q }}", "variables": ["q"]}})

    with pytest.raises(InvalidBundleError, match="is not a weights bundle in this registry"):
        reg.log_bundle(chat("sha256:" + "9" * 64), name="chat", message="dangling")
    reg.log_bundle(chat(v1.digest), name="chat", message="on run 1")
    second = reg.log_bundle(chat(v2.digest), name="chat", message="on run 2")
    d = reg.diff("chat@1", "chat@2")
    assert d.model is not None and d.model.weights is not None
    (swap,) = d.model.weights_artifacts
    assert (swap.name, swap.kind, swap.old_size, swap.new_size) == ("w1.bin", "swapped", 11, 12)
    assert second.info is not None
    assert second.info.changes == [f"model: weights {v1.digest[:19]} -> {v2.digest[:19]}"]
    shown = CliRunner().invoke(app, ["show", "chat@2"])
    assert "weights bundle" in shown.stdout and "ft@2" in shown.stdout


def test_reproduce_check_names_what_differs(reg: llmreg.Client, tmp_path: Path) -> None:
    data = dataset(tmp_path)
    (tmp_path / "model.bin").write_bytes(b"deterministic weights")
    reg.log_model("m", weights=tmp_path / "model.bin", dataset=data, message="run")
    same = reg.reproduce_check("m@1", weights=tmp_path / "model.bin", dataset=data)
    assert same["match"] is True
    (tmp_path / "model.bin").write_bytes(b"nondeterministic weights")
    (data / "b.jsonl").write_text('{"q": 3}\n')
    (data / "new.jsonl").write_text("{}\n")
    report = reg.reproduce_check("m@1", weights=tmp_path / "model.bin", dataset=data)
    assert report["match"] is False
    assert report["weights"][0]["match"] is False
    assert report["dataset"]["differing_files"] == ["b.jsonl: content differs",
                                                    "new.jsonl: not in the registered dataset"]
    cli = CliRunner().invoke(app, ["reproduce-check", "m@1", "--weights",
                                   str(tmp_path / "model.bin"), "--dataset", str(data)])
    assert cli.exit_code == 1 and "DIFFER dataset" in cli.stdout and "b.jsonl" in cli.stdout


KILLED = """
import llmreg
reg = llmreg.connect()
reg.log_model("big", weights="big.bin", message="never finishes")
"""


@pytest.mark.slow
def test_sigkill_mid_upload_leaves_no_partial_blob_or_reference(tmp_path: Path) -> None:
    with open(tmp_path / "big.bin", "wb") as fh:
        block = os.urandom(1024 * 1024)
        for _ in range(1024):  # 1 GiB of real bytes: the upload takes a while
            fh.write(block)
    (tmp_path / "killed.py").write_text(KILLED)
    home = Path(os.environ["LLMREG_HOME"])
    proc = subprocess.Popen([sys.executable, "killed.py"], cwd=tmp_path)
    blobs = home / "blobs" / "sha256"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the upload is under way
        if blobs.is_dir() and any(p.name.endswith(".incomplete") for p in blobs.iterdir()):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    visible = [p.name for p in blobs.iterdir() if not p.name.startswith(".")]
    with llmreg.connect() as reg:
        blobs = reg._backend.service.blobs  # type: ignore[attr-defined]
        assert all(blobs.exists(f"sha256:{name}") for name in visible)
        assert list(blobs.iter_digests()) == [f"sha256:{n}" for n in sorted(visible)]
        with pytest.raises(RefNotFoundError):
            reg.history("big")
        count, problems = reg.fsck()
        assert problems == []


def test_gc_sweeps_leftovers_of_killed_uploads(reg: llmreg.Client) -> None:
    store = reg._backend.service.blobs.store  # type: ignore[attr-defined]
    store.dir.mkdir(parents=True, exist_ok=True)
    leftover = store.dir / ".0123abcd.incomplete"
    leftover.write_bytes(b"half a blob")
    old = time.time() - 3 * 24 * 3600
    os.utime(leftover, (old, old))
    assert reg.gc(dry_run=True) == ["(incomplete upload) .0123abcd.incomplete"]
    reg.gc(dry_run=False)
    assert not leftover.exists()
