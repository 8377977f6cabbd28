"""The bundle directory format: file references, encodings, path tricks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from llmreg.bundle.directory import load_bundle_dir
from llmreg.errors import InvalidBundleError


def write(folder: Path, manifest: str, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "llmreg.yaml").write_text(manifest)
    for name, text in files.items():
        (folder / name.replace("__", ".")).write_text(text)
    return folder


BASE = """
model: {provider: openai, id: gpt-4o-2024-08-06}
system_prompt: {file: system.md}
template: {file: user.j2, variables: [q]}
"""


def test_files_are_inlined_and_names_do_not_count(tmp_path: Path) -> None:
    a = write(tmp_path / "a", BASE, system__md="Hi.\n", user__j2="{{ q }}")
    b = write(tmp_path / "b", BASE.replace("system.md", "sys.txt"),
              sys__txt="Hi.\n", user__j2="{{ q }}")
    bundle_a, name = load_bundle_dir(a)
    assert name is None
    assert bundle_a.system_prompt == "Hi.\n"
    assert load_bundle_dir(b)[0].digest == bundle_a.digest


def test_crlf_and_bom_are_normalised(tmp_path: Path) -> None:
    a = write(tmp_path / "a", BASE, system__md="one\ntwo\n", user__j2="{{ q }}")
    b = write(tmp_path / "b", BASE, user__j2="{{ q }}")
    (b / "system.md").write_bytes(b"\xef\xbb\xbfone\r\ntwo\r\n")
    assert load_bundle_dir(a)[0].digest == load_bundle_dir(b)[0].digest


@pytest.mark.parametrize("ref", ["../outside.md", "/etc/passwd", "sub/../../outside.md"])
def test_paths_may_not_leave_the_folder(tmp_path: Path, ref: str) -> None:
    (tmp_path / "outside.md").write_text("secret")
    folder = write(tmp_path / "b", BASE.replace("system.md", ref), user__j2="{{ q }}")
    with pytest.raises(InvalidBundleError, match="inside the bundle directory"):
        load_bundle_dir(folder)


def test_symlink_escape_is_refused(tmp_path: Path) -> None:
    (tmp_path / "outside.md").write_text("secret")
    folder = write(tmp_path / "b", BASE, user__j2="{{ q }}")
    os.symlink(tmp_path / "outside.md", folder / "system.md")
    with pytest.raises(InvalidBundleError, match="leaves the bundle directory"):
        load_bundle_dir(folder)


def test_missing_file_and_manifest(tmp_path: Path) -> None:
    folder = write(tmp_path / "b", BASE, user__j2="{{ q }}")
    with pytest.raises(InvalidBundleError, match="system_prompt.file 'system.md' not found"):
        load_bundle_dir(folder)
    with pytest.raises(InvalidBundleError, match="has no manifest"):
        load_bundle_dir(tmp_path)
    with pytest.raises(InvalidBundleError, match="does not exist"):
        load_bundle_dir(tmp_path / "nope")


def test_bad_jsonl_names_the_line(tmp_path: Path) -> None:
    folder = write(tmp_path / "b", BASE + "few_shot: {file: ex.jsonl}\n", system__md="s",
                   user__j2="{{ q }}", ex__jsonl='{"input": "a", "output": "b"}\n\nnot json\n')
    with pytest.raises(InvalidBundleError, match="line 3 is not JSON"):
        load_bundle_dir(folder)


def test_non_utf8_and_bad_yaml(tmp_path: Path) -> None:
    folder = write(tmp_path / "b", BASE, user__j2="{{ q }}")
    (folder / "system.md").write_bytes(b"\xff\xfe bad")
    with pytest.raises(InvalidBundleError, match="not UTF-8"):
        load_bundle_dir(folder)
    (folder / "llmreg.yaml").write_text("model: [unclosed")
    with pytest.raises(InvalidBundleError, match="does not parse"):
        load_bundle_dir(folder)


def test_artifact_files_are_hashed(tmp_path: Path) -> None:
    folder = write(tmp_path / "b", BASE + "artifacts:\n  - {name: data, file: d.bin}\n",
                   system__md="s", user__j2="{{ q }}", d__bin="12345")
    bundle, _ = load_bundle_dir(folder)
    art = bundle.artifacts[0]
    assert art.size == 5
    assert art.digest == "sha256:5994471abb01112afcc18159f6cc74b4f511b99806da59b3caf5a9c173cacfc5"
    assert art.media_type == "application/octet-stream"


_HEAD = ("model: {provider: openai, id: gpt-4o-2024-08-06}\n"
         "template: {source: 'Q: {{ q }}', variables: [q]}\n")


def _folder(tmp_path: Path, manifest: str, files: dict[str, str] | None = None) -> Path:
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "llmreg.yaml").write_text(manifest)
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    return folder


@pytest.mark.parametrize(
    ("manifest", "files", "message"),
    [("- 1\n", {}, "llmreg.yaml must be a mapping of bundle sections"),
     ("name: 5\n" + _HEAD, {}, "name 5 must be a string"),
     (_HEAD.replace("{source: 'Q: {{ q }}',", "{file: 5,"), {},
      "template.file must be a relative file path (got 5)"),
     (_HEAD.replace("{source: 'Q: {{ q }}',", "{file: t.j2,"),
      {"t.j2": "x" * (4 * 1024 * 1024 + 1)},
      "t.j2 is 4194305 bytes; text files are limited to 4 MiB"),
     (_HEAD + "system_prompt: {file: s.md, other: 1}\n", {"s.md": "hi"},
      "system_prompt must be text or {file: PATH} (got keys ['file', 'other'])")],
)
def test_bad_folders_name_the_problem(tmp_path: Path, manifest: str, files: dict[str, str],
                                      message: str) -> None:
    with pytest.raises(InvalidBundleError) as caught:
        load_bundle_dir(_folder(tmp_path, manifest, files))
    assert str(caught.value) == message


def test_tool_parameters_can_live_in_a_file(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    folder = _folder(tmp_path, _HEAD + "tools:\n  - name: search\n"
                     "    parameters: {file: search.json}\n",
                     {"search.json": json.dumps(schema)})
    bundle = load_bundle_dir(folder)[0]
    assert [(t.name, t.parameters) for t in bundle.tools] == [("search", schema)]
