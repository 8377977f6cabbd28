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
from llmreg.bundle.lineage import hash_dataset
from llmreg.errors import InvalidBundleError, RefNotFoundError
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
    llmreg.connect(create=True).close()  # `llmreg init`: the training job finds it
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
    llmreg.connect(create=True).close()
    home = Path(os.environ["LLMREG_HOME"])
    proc = subprocess.Popen([sys.executable, "killed.py"], cwd=tmp_path)
    blobs = home / "blobs" / "sha256"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the upload is under way
        if blobs.is_dir() and any(p.name.endswith(".incomplete") for p in blobs.iterdir()):
            break
        time.sleep(0.02)
    else:
        proc.kill()
        raise AssertionError("the upload never started: no .incomplete file within 60 s")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # killed mid-upload, not finished before the kill
    partial = [p for p in blobs.iterdir() if p.name.endswith(".incomplete")]
    assert len(partial) == 1  # the half-written upload, never renamed into place
    visible = [p.name for p in blobs.iterdir() if not p.name.startswith(".")]
    assert all((blobs / name).stat().st_size < 1024 ** 3 for name in visible)
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


def test_dataset_folders_skip_hidden_files_and_dangling_links(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / ".cache").mkdir()
    (data / "a.txt").write_text("a\n")
    (data / "sub" / "b.txt").write_text("b\n")
    (data / ".hidden").write_text("x")
    (data / ".cache" / "c.txt").write_text("c\n")
    (data / "link.txt").symlink_to(data / "a.txt")
    (data / "dangling.txt").symlink_to(data / "nowhere")
    info = hash_dataset(data)
    assert info.kind == "folder" and info.manifest is not None
    assert [f["path"] for f in info.manifest["files"]] == ["a.txt", "link.txt", "sub/b.txt"]
    assert (info.files, info.size) == (3, 6)
    assert info.provenance() == {"digest": info.digest, "kind": "folder", "files": 3,
                                 "size": 6}
    assert info.provenance("sha256:" + "0" * 64)["manifest"] == "sha256:" + "0" * 64
    given = hash_dataset("sha256:" + "a" * 64)
    assert (given.kind, given.files, given.manifest) == ("digest", 0, None)


def test_compare_datasets_names_each_differing_file(tmp_path: Path) -> None:
    from llmreg.bundle.lineage import compare_datasets

    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    for name, text in [("same.txt", "s"), ("changed.txt", "1"), ("gone.txt", "g")]:
        (tmp_path / "old" / name).write_text(text)
    for name, text in [("same.txt", "s"), ("changed.txt", "2"), ("added.txt", "a")]:
        (tmp_path / "new" / name).write_text(text)
    old, new = hash_dataset(tmp_path / "old"), hash_dataset(tmp_path / "new")
    assert compare_datasets(old.manifest, new) == [
        "added.txt: not in the registered dataset",
        "changed.txt: content differs",
        "gone.txt: missing from the rebuilt dataset"]
    assert compare_datasets(None, new) == []
    assert compare_datasets(old.manifest, hash_dataset(tmp_path / "new" / "same.txt")) == []


def test_weights_and_config_inputs_are_checked(tmp_path: Path) -> None:
    from llmreg.bundle.lineage import load_config, weights_files, weights_name

    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "b.bin").write_bytes(b"b")
    (tmp_path / "w" / "a.bin").write_bytes(b"a")
    (tmp_path / "w" / ".lock").write_bytes(b"")
    (tmp_path / "one.bin").write_bytes(b"1")
    assert weights_files([tmp_path / "w", str(tmp_path / "one.bin")]) == [
        tmp_path / "w" / "a.bin", tmp_path / "w" / "b.bin", tmp_path / "one.bin"]
    with pytest.raises(InvalidBundleError, match="weights '.*nope' does not exist"):
        weights_files(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidBundleError, match="weights: no files given"):
        weights_files(tmp_path / "empty")
    assert weights_name(tmp_path / "model.safetensors") == "model.safetensors"
    with pytest.raises(InvalidBundleError, match="weights file 'my model.bin': artifact names"):
        weights_name(tmp_path / "my model.bin")
    assert load_config(None) is None and load_config({"lr": 1}) == {"lr": 1}
    (tmp_path / "c.yaml").write_text("lr: 0.1\nlayers: [1, 2]\n")
    assert load_config(tmp_path / "c.yaml") == {"lr": 0.1, "layers": [1, 2]}
    (tmp_path / "c.json").write_text('{"lr": 0.2}')
    assert load_config(str(tmp_path / "c.json")) == {"lr": 0.2}
    with pytest.raises(InvalidBundleError, match="config '.*missing.json' cannot be read: "
                                                 "No such file or directory"):
        load_config(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{lr")
    with pytest.raises(InvalidBundleError, match="config '.*bad.json' is not JSON"):
        load_config(tmp_path / "bad.json")
    (tmp_path / "list.yml").write_text("- 1\n- 2\n")
    with pytest.raises(InvalidBundleError, match="config '.*list.yml' must hold a mapping"):
        load_config(tmp_path / "list.yml")
