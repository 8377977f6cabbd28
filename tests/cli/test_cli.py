"""The CLI: exit codes, stdout and stderr for the main flows and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmreg_cli.main import app
from tests.conftest import EXAMPLE_NAMES


@pytest.fixture
def run():
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), prog_name="llmreg")

    return invoke


@pytest.fixture
def registered(run, examples: Path) -> Path:
    assert run("init").exit_code == 0
    result = run("register", *(str(examples / n) for n in EXAMPLE_NAMES), "-m", "import")
    assert result.exit_code == 0, result.output
    return examples


def snapshot(home: Path) -> tuple[bytes, list[str]]:
    db = (home / "registry.db").read_bytes() if (home / "registry.db").exists() else b""
    blobs = sorted(p.name for p in (home / "blobs" / "sha256").glob("*"))
    return db, blobs


def test_register_twice_is_idempotent(run, registered: Path) -> None:
    again = run("register", str(registered / "support-rag"), "-m", "again", "--json")
    assert again.exit_code == 0
    data = json.loads(again.stdout)
    assert data["created"] is False and data["version"] == 1
    first = run("history", "support-rag", "--json")
    assert [v["version"] for v in json.loads(first.stdout)] == [1]


def test_reordered_yaml_and_crlf_copy_gives_the_same_digest(run, registered: Path,
                                                             tmp_path: Path) -> None:
    import yaml

    copy = tmp_path / "copy"
    shutil.copytree(registered / "ticket-classifier", copy)
    manifest = yaml.safe_load((copy / "llmreg.yaml").read_text())
    reordered = dict(reversed(list(manifest.items())))
    reordered["model"] = dict(reversed(list(manifest["model"].items())))
    (copy / "llmreg.yaml").write_bytes(
        yaml.safe_dump(reordered, sort_keys=False).replace("\n", "\r\n").encode())
    for name in ("system.md", "user.j2", "examples.jsonl"):
        (copy / name).write_bytes((copy / name).read_bytes().replace(b"\n", b"\r\n"))
    result = run("register", str(copy), "-m", "copy", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    original = json.loads(run("show", "ticket-classifier@1", "--json").stdout)
    assert data["digest"] == original["digest"]
    assert data["created"] is False


def test_show_json_has_identity_and_sections(run, registered: Path) -> None:
    result = run("show", "support-rag@1", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["name"] == "support-rag" and data["version"] == 1
    assert data["digest"].startswith("sha256:")
    for section in ("model", "system_prompt", "template", "few_shot", "tools",
                    "response_schema", "retrieval", "postprocess", "artifacts"):
        assert section in data
    assert data["retrieval"]["index"]["name"] == "help-centre-articles"
    assert data["provenance"]["user"] == "tester"


def test_human_output(run, registered: Path) -> None:
    shown = run("show", "ticket-classifier")
    assert "ticket-classifier@1" in shown.stdout
    assert "mistral-small-2409" in shown.stdout
    assert "strip → json_parse → json_schema_validate" in shown.stdout
    listed = run("list")
    for name in EXAMPLE_NAMES:
        assert name in listed.stdout
    assert "import" in run("history", "meeting-summariser").stdout


def test_show_and_render_a_local_folder(run, examples: Path) -> None:
    shown = run("show", str(examples / "ticket-classifier"), "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["version"] is None
    rendered = run("render", str(examples / "ticket-classifier"), "--var", "subject=Hi",
                   "--var", "body=Refund please", "--json")
    assert rendered.exit_code == 0, rendered.output
    assert json.loads(rendered.stdout)[-1] == {"role": "user",
                                               "content": "Subject: Hi\n\nRefund please\n"}


def test_render_with_vars_file(run, registered: Path, tmp_path: Path) -> None:
    values = tmp_path / "vars.json"
    values.write_text(json.dumps({"question": "Return?", "customer_tier": "standard",
                                  "documents": [{"id": "r1", "title": "T", "text": "30 days"}]}))
    result = run("render", "support-rag@1", "--vars", str(values), "--format", "anthropic",
                 "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["system"].startswith("You are Acme's support assistant")
    assert "[r1] T" in body["messages"][-1]["content"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: _sub(d / "llmreg.yaml", "mistral-small-2409", "mistral-small-latest"),
         "model.id 'mistral-small-latest' is a floating alias for mistral"),
        (lambda d: (d / "user.j2").write_text("{{ subject "), "template: line 1"),
        (lambda d: (d / "system.md").unlink(), "system_prompt.file 'system.md' not found"),
        (lambda d: _sub(d / "llmreg.yaml", "max_tokens: 200", "max_tokens: -5"),
         "model.parameters.max_tokens"),
    ],
)
def test_bad_bundles_exit_1_with_one_line_and_change_nothing(
    run, registered: Path, tmp_path: Path, edit, expected: str
) -> None:
    home = Path(json.loads(run("init", "--json").stdout)["home"])
    before = snapshot(home)
    bad = tmp_path / "bad"
    shutil.copytree(registered / "ticket-classifier", bad)
    edit(bad)
    result = run("register", str(bad), str(registered / "support-rag"), "-m", "bad")
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert expected in lines[0]
    assert snapshot(home) == before


@pytest.mark.parametrize("name", ["", " ", "\t", "\n", "  \r\n"])
def test_an_empty_name_is_refused_never_replaced_by_the_folders(
    run, registered: Path, tmp_path: Path, name: str
) -> None:
    """``--name ''`` once registered under the folder's name; an explicit name is used as
    given, so an empty one is refused, naming the option, the value and the fix."""
    home = Path(json.loads(run("init", "--json").stdout)["home"])
    before = snapshot(home)
    fresh = tmp_path / "fresh-bundle"
    shutil.copytree(registered / "ticket-classifier", fresh)
    _sub(fresh / "llmreg.yaml", "max_tokens: 200", "max_tokens: 201")
    for dirs in ([fresh], [fresh, registered / "support-rag"]):
        result = run("register", *map(str, dirs), "--name", name, "-m", "x")
        assert result.exit_code == 1, result.output
        line = result.stderr.strip()
        assert line.startswith("error: --name ") and "is empty; give a name such as" in line
        assert "\n" not in line and "\r" not in line
    assert snapshot(home) == before
    assert "fresh-bundle" not in run("list").stdout


@pytest.mark.parametrize("manifest_name", ["''", "' '", "'Support Bot'"])
def test_a_bad_manifest_name_is_refused_before_anything_is_written(
    run, registered: Path, tmp_path: Path, manifest_name: str
) -> None:
    home = Path(json.loads(run("init", "--json").stdout)["home"])
    before = snapshot(home)
    bad = tmp_path / "bad"
    shutil.copytree(registered / "ticket-classifier", bad)
    text = (bad / "llmreg.yaml").read_text()
    (bad / "llmreg.yaml").write_text(f"name: {manifest_name}\n" + text.replace(
        "name: ticket-classifier\n", ""))
    result = run("register", str(registered / "support-rag"), str(bad), "-m", "x")
    assert result.exit_code == 1, result.output
    assert "the manifest's name" in result.stderr
    assert snapshot(home) == before


def test_render_errors(run, registered: Path) -> None:
    result = run("render", "ticket-classifier@1", "--var", "subject=a", "--var", "body=b",
                 "--var", "sender=x")
    assert result.exit_code == 1
    assert "undeclared variable(s) sender" in result.stderr
    result = run("render", "ticket-classifier@1", "--var", "subject=a")
    assert result.exit_code == 1 and "missing variable(s) body" in result.stderr


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("nope@1", "'nope' is not registered"),
     ("support-rag@7", "'support-rag' has no version 7"),
     ("support-rag@sha256:0000000", "no version matches"),
     ("Bad Name", "not a valid name")],
)
def test_bad_refs(run, registered: Path, ref: str, expected: str) -> None:
    result = run("show", ref)
    assert result.exit_code == 1
    assert expected in result.stderr


def test_traceback_flag_reraises(run, registered: Path) -> None:
    result = run("--traceback", "show", "nope")
    assert result.exit_code == 1
    assert result.exception is not None
    assert type(result.exception).__name__ == "RefNotFoundError"


def test_no_registry_is_a_clear_error(run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      examples: Path) -> None:
    import llmreg.settings

    monkeypatch.delenv("LLMREG_HOME")
    real_find_home = llmreg.settings.find_home

    def find_home_below_tmp_path(start: Path) -> Path | None:
        # The upward search is real, but a .llmreg/ above the test's own folder (a
        # developer's home, say) must not decide the outcome.
        found = real_find_home(start)
        return found if found is not None and tmp_path in found.parents else None

    monkeypatch.setattr(llmreg.settings, "find_home", find_home_below_tmp_path)
    result = run("register", str(examples / "support-rag"), "-m", "x")
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(
        f"no .llmreg/ registry in {tmp_path} or any parent folder; "
        "run `llmreg init` here or set LLMREG_HOME")
    assert not (tmp_path / ".llmreg").exists()
    # A registry in a parent folder is found from a subfolder.
    assert run("init", str(tmp_path / "proj")).exit_code == 0
    (tmp_path / "proj" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "proj" / "sub")
    found = run("register", str(examples / "support-rag"), "-m", "x")
    assert found.exit_code == 0, found.stderr
    assert (tmp_path / "proj" / ".llmreg" / "registry.db").exists()


def test_message_is_required(run, registered: Path) -> None:
    result = run("register", str(registered / "support-rag"))
    assert result.exit_code == 1  # a usage error, from the argument parser: bad input too
    assert "--message" in result.output


def _sub(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(("args", "says"), [
    (("audit", "--limit", "0"), "Invalid value for '--limit'"),
    (("audit", "--limit", "ten"), "Invalid value for '--limit'"),
    (("alerts", "ack", str(2**64), "--reason", "x"), f"no alert #{2**64}"),
    (("webhook", "remove", str(10**30)), f"no webhook {10**30}"),
    (("webhook", "redeliver", str(2**63)), f"no delivery {2**63}"),
    (("serve", "--port", "99999"), "Invalid value for '--port'"),
    (("serve", "--workers", "0"), "Invalid value for '--workers'"),
])
def test_an_integer_out_of_range_is_one_error_and_exit_1(run, registered: Path,
                                                         args: tuple[str, ...],
                                                         says: str) -> None:
    before = snapshot(Path(".llmreg"))
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert says in result.output and "Traceback" not in result.output
    assert snapshot(Path(".llmreg")) == before


def test_a_limit_longer_than_the_log_shows_it_all(run, registered: Path) -> None:
    whole = run("audit", "--json")
    assert run("audit", "--limit", str(10**30), "--json").output == whole.output


@pytest.mark.parametrize("text", ['{"f1": 0.9, "f1": 0.1}', '{"a": {"b": 1, "b": 2}}',
                                  '{"x": [{"y": 1, "y": 1}]}'])
def test_json_files_the_cli_reads_refuse_a_key_named_twice(run, registered: Path,
                                                           tmp_path: Path, text: str) -> None:
    """--vars and --metrics files are parsed as manifests are: never "last one wins"."""
    home = Path(json.loads(run("init", "--json").stdout)["home"])
    before = snapshot(home)
    path = tmp_path / "twice.json"
    path.write_text(text)
    (tmp_path / "w.bin").write_bytes(b"w")
    for args in (["render", "support-rag@1", "--vars", str(path)],
                 ["eval", "attach", "support-rag@1", "--suite", "regression",
                  "--metrics", str(path)],
                 ["log-model", "lora", "--weights", str(tmp_path / "w.bin"), "-m", "x",
                  "--metrics", str(path)]):
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert "appears twice; keep one" in result.stderr, args
    assert snapshot(home) == before


@pytest.mark.parametrize("value", ["\x1b[31mred\x1b[0m", "x\nforged", "<script>x</script>",
                                   "y" * 10_000, "ab\u202ecd"])
def test_hostile_input_is_quoted_escaped_and_capped_on_stderr(run, registered: Path,
                                                              value: str) -> None:
    for args in (["show", f"support-rag@{value}"], ["history", value],
                 ["promote", f"support-rag@{value}", "--to", "staging", "--reason", "r"],
                 ["promote", "support-rag@1", "--to", value, "--reason", "r"],
                 ["register", str(registered / "support-rag"), "--name", value, "-m", "x"]):
        result = run(*args)
        assert result.exit_code == 1, (args, result.output[:300])
        line = result.stderr.strip()
        assert line.startswith("error: ") and line.isprintable(), (args, line[:300])
        assert len(line) < 1_000 and "\x1b" not in line, args
