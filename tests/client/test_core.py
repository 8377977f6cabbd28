"""The Python client on the embedded registry."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import llmreg
from llmreg.errors import InvalidBundleError, RegistryNotFoundError
from tests.conftest import EXAMPLE_NAMES, minimal


def test_log_bundle_captures_provenance(reg: llmreg.Client, examples: Path) -> None:
    subprocess.run(["git", "init", "-q", str(examples)], check=True)
    subprocess.run(["git", "-C", str(examples), "-c", "user.email=t@t", "-c", "user.name=t",
                    "commit", "-qam", "init", "--allow-empty"], check=True)
    subprocess.run(["git", "-C", str(examples), "add", "."], check=True)
    subprocess.run(["git", "-C", str(examples), "-c", "user.email=t@t", "-c", "user.name=t",
                    "commit", "-qm", "bundles"], check=True)
    sha = subprocess.run(["git", "-C", str(examples), "rev-parse", "HEAD"], check=True,
                         capture_output=True, text=True).stdout.strip()
    bundle = reg.log_bundle(examples / "support-rag", message="first",
                            provenance={"dataset": "sha256:" + "d" * 64, "metrics": {"f1": 0.8}})
    assert (bundle.name, bundle.version, bundle.newly_registered) == ("support-rag", 1, True)
    prov = bundle.info.provenance if bundle.info else {}
    assert prov["git"]["commit"] == sha
    assert prov["git"]["dirty"] is False
    assert prov["user"] == "tester"
    assert prov["llmreg_version"] == llmreg.__version__
    assert prov["python_version"]
    assert prov["host"]
    assert prov["metrics"] == {"f1": 0.8}
    # A tracked change makes the tree dirty.
    (examples / "support-rag" / "system.md").write_text("changed\n")
    changed = reg.log_bundle(examples / "support-rag", message="edit")
    assert changed.info is not None and changed.info.provenance["git"]["dirty"] is True
    assert changed.version == 2


def test_get_returns_name_version_digest(reg: llmreg.Client, examples: Path) -> None:
    for name in EXAMPLE_NAMES:
        reg.log_bundle(examples / name, message="import")
    bundle = reg.get("ticket-classifier@1")
    assert bundle.name == "ticket-classifier" and bundle.version == 1
    assert bundle == llmreg.load_bundle_dir(examples / "ticket-classifier")[0]
    assert reg.get(f"ticket-classifier@{bundle.short_digest}").version == 1
    assert [n.name for n in reg.list()] == sorted(EXAMPLE_NAMES)
    assert len(reg.history("support-rag")) == 1


def test_log_bundle_object_needs_a_name(reg: llmreg.Client) -> None:
    with pytest.raises(InvalidBundleError, match="name is required"):
        reg.log_bundle(llmreg.Bundle.from_dict(minimal()), message="x")
    b = reg.log_bundle(llmreg.Bundle.from_dict(minimal()), name="obj", message="x")
    assert b.version == 1


def test_connect_finds_the_registry_upward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMREG_HOME")
    project = tmp_path / "project"
    (project / "src" / "deep").mkdir(parents=True)
    with llmreg.connect(project / ".llmreg", create=True):
        pass
    monkeypatch.chdir(project / "src" / "deep")
    with llmreg.connect() as reg:
        assert reg.home.resolve() == (project / ".llmreg").resolve()


def test_connect_without_registry_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMREG_HOME")
    empty = tmp_path / "nowhere"
    empty.mkdir()
    monkeypatch.chdir(empty)
    if llmreg.settings.find_home(empty) is not None:
        pytest.skip("a .llmreg/ exists above the temp folder on this machine")
    with pytest.raises(RegistryNotFoundError, match="run `llmreg init`"):
        llmreg.connect()


def test_log_bundles_registers_folders_and_objects_as_one_batch(reg: llmreg.Client,
                                                               examples: Path) -> None:
    folders = [examples / n for n in EXAMPLE_NAMES]
    extra = llmreg.Bundle.from_dict(minimal())
    done = reg.log_bundles([*folders, extra, folders[0]], name="mixed", message="import",
                           provenance={"source": "old-registry"})
    assert [(b.version, b.newly_registered) for b in done] == [
        (1, True), (2, True), (3, True), (4, True), (1, False)]
    assert all(b.info is not None and b.info.provenance["source"] == "old-registry"
               for b in done)
    assert [v.version for v in reg.history("mixed")] == [1, 2, 3, 4]
    assert reg.fsck()[1] == []


@pytest.mark.parametrize("how", ["path", "env"])
def test_a_folder_that_is_not_a_registry_is_an_error_not_an_empty_registry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    folder = tmp_path / "typo"
    folder.mkdir()
    if how == "env":
        monkeypatch.setenv("LLMREG_HOME", str(folder))
    with pytest.raises(RegistryNotFoundError, match=r"typo' is not a registry; run `llmreg init`"):
        llmreg.connect(folder if how == "path" else None)
    assert list(folder.iterdir()) == []          # nothing was created there
    with llmreg.connect(folder, create=True) as reg:   # only an explicit create makes one
        assert reg.list() == []
    with llmreg.connect(folder if how == "path" else None) as reg:
        assert reg.list() == []


@pytest.mark.parametrize("name", ["", " ", "\n", "\t\t"])
def test_an_explicit_empty_name_is_refused_not_replaced(reg: llmreg.Client, examples: Path,
                                                         name: str) -> None:
    for call in (lambda: reg.log_bundle(examples / "support-rag", name=name, message="x"),
                 lambda: reg.log_bundles([examples / "support-rag"], name=name, message="x")):
        with pytest.raises(llmreg.InvalidNameError, match=r"^name '.*' is empty; give a name"):
            call()
    assert reg.list() == []


@pytest.mark.parametrize(("manifest", "field"), [
    ("name: ''\n", "the manifest's name"), ("name: ' x'\n", "the manifest's name"),
    ("", "the folder's name")])
def test_the_name_the_client_falls_back_to_is_checked_naming_where_it_came_from(
        reg: llmreg.Client, examples: Path, manifest: str, field: str) -> None:
    folder = examples / "Not A Name"
    (examples / "support-rag").rename(folder)
    text = (folder / "llmreg.yaml").read_text().replace("name: support-rag\n", "")
    (folder / "llmreg.yaml").write_text(manifest + text)
    with pytest.raises(llmreg.InvalidNameError, match=f"^{field} "):
        reg.log_bundle(folder, message="x")
    assert reg.list() == []


@pytest.mark.parametrize("extra", [1, 1 << 20], ids=["one byte", "a mebibyte"])
def test_pull_stops_at_the_artifacts_listed_size(reg: llmreg.Client, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 extra: int) -> None:
    """A backend that sends more than the manifest lists is cut there: nothing past the
    listed size is written, and nothing is kept."""
    from collections.abc import Iterator

    from llmreg.errors import IntegrityError

    weights = tmp_path / "w.bin"
    weights.write_bytes(b"w" * 1000)
    reg.log_model("tiny", weights=weights, message="first")
    backend = reg._backend
    genuine = backend.blob_chunks

    def longer(digest: str, offset: int) -> Iterator[bytes]:
        yield from genuine(digest, offset)
        while True:  # endless: only a cap ends it
            yield b"x" * extra

    monkeypatch.setattr(backend, "blob_chunks", longer)
    with pytest.raises(IntegrityError) as exc:
        reg.pull("tiny@1", tmp_path / "out")
    assert "is longer than its 1000 bytes; stopped there, nothing was kept" in str(exc.value)
    assert list((tmp_path / "out").iterdir()) == []
    monkeypatch.setattr(backend, "blob_chunks", genuine)
    assert [p.name for p in reg.pull("tiny@1", tmp_path / "out")] == ["w.bin"]
