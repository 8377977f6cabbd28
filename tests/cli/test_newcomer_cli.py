"""The stumbles a newcomer hit on the CLI (issue 12), each pinned by a test."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmreg_cli.main import app

runner = CliRunner()


def test_registry_option_on_a_plain_folder_is_one_line_error(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-registry"
    folder.mkdir()
    result = runner.invoke(app, ["--registry", str(folder), "list"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {str(folder)!r} is not a registry; run `llmreg init` to create one there"]
    assert list(folder.iterdir()) == []
    assert runner.invoke(app, ["--registry", str(folder), "init"]).exit_code == 0
    assert runner.invoke(app, ["--registry", str(folder), "list"]).exit_code == 0


def test_llmreg_home_is_where_init_creates_the_registry(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREG_HOME", str(tmp_path / "elsewhere" / ".llmreg"))
    assert runner.invoke(app, ["list"]).exit_code == 1
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert (tmp_path / "elsewhere" / ".llmreg" / "registry.db").is_file()
    assert runner.invoke(app, ["list"]).exit_code == 0


@pytest.mark.parametrize("missing", ["uvicorn", "fastapi"])
def test_serve_without_the_server_extra_prints_the_install_hint_whole(
        missing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    monkeypatch.setitem(sys.modules, missing, None)   # as if not installed
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 1
    assert "pip install 'llmreg[server]'" in result.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_traceback_is_accepted_before_and_after_the_subcommand(where: str) -> None:
    from llmreg.errors import RegistryNotFoundError
    args = ["--registry", "nowhere", "show", "x@1"]
    args = ["--traceback", *args] if where == "before" else [*args, "--traceback"]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, RegistryNotFoundError)   # re-raised, not a usage error
    assert result.exit_code == 1


OWNER = ["owner", "set", "support-rag", "--team", "search", "--contact", "search@example.com"]


def test_tables_and_help_have_no_trailing_spaces_or_python_types(examples: Path) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ["register", str(examples / "support-rag"), "-m", "x"]
                         ).exit_code == 0
    assert runner.invoke(app, OWNER).exit_code == 0
    assert runner.invoke(app, ["promote", "support-rag@1", "--to", "staging",
                               "--reason", "r"]).exit_code == 0
    for args in (["list"], ["status"], ["history", "support-rag"], ["show", "support-rag@1"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert [ln for ln in result.stdout.splitlines() if ln != ln.rstrip()] == [], args
    for args in (["register", "--help"], ["log-model", "--help"],
                 ["reproduce-check", "--help"]):
        text = runner.invoke(app, args).stdout
        assert "list[" not in text and "<Path>" in text or "directories..." in text, args


def _flow(examples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREG_USER", "ana")
    for args in (["init"], ["register", str(examples / "support-rag"), "-m", "first"],
                 OWNER,
                 ["promote", "support-rag@1", "--to", "staging", "--reason", "r"]):
        assert runner.invoke(app, args).exit_code == 0
    (examples / "support-rag" / "llmreg.yaml").write_text(
        (examples / "support-rag" / "llmreg.yaml").read_text().replace("top_k: 8", "top_k: 4"))
    for args in (["register", str(examples / "support-rag"), "-m", "second"],
                 ["eval", "attach", "support-rag@1", "--suite", "regression", "--metrics",
                  str(Path(__file__).parents[2] / "examples/evals/support-rag.regression.json")],
                 ["promote", "support-rag@2", "--to", "staging", "--reason", "r2"]):
        assert runner.invoke(app, args).exit_code == 0, args
    monkeypatch.setenv("LLMREG_USER", "bo")
    assert runner.invoke(app, ["approve", "support-rag@1", "--to", "production",
                               "--comment", "checked"]).exit_code == 0
    monkeypatch.setenv("LLMREG_USER", "ana")


def test_history_and_show_say_where_a_version_runs_now(
        examples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    _flow(examples, monkeypatch)
    rows = runner.invoke(app, ["history", "support-rag"]).stdout.splitlines()
    assert rows[0].split()[:4] == ["version", "digest", "runs", "in"]
    assert rows[1].split()[2] == "-"            # @1 left staging: it runs nowhere now
    assert rows[2].split()[2] == "staging"
    shown = runner.invoke(app, ["show", "support-rag@1"]).stdout
    assert "runs in        nowhere now" in shown
    assert "provenance: user ana" in shown and "llmreg " in shown
    assert "evidence       #1 eval regression: accuracy=0.93" in shown
    assert "approval       production by bo: checked" in shown
    data = json.loads(runner.invoke(app, ["show", "support-rag@2", "--json"]).stdout)
    assert data["environments"] == ["staging"] and data["evidence"] == []
    assert data["approvals"] == [] and data["provenance"]["user"] == "ana"


def test_whoami_and_evidence(examples: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    _flow(examples, monkeypatch)
    who = json.loads(runner.invoke(app, ["whoami", "--json"]).stdout)
    assert who["name"] == "ana" and who["roles"] is None and who["registry"].endswith(".llmreg")
    assert runner.invoke(app, ["whoami"]).stdout.startswith("ana  roles: all (embedded)")
    ev = json.loads(runner.invoke(app, ["evidence", "support-rag@1", "--json"]).stdout)
    assert [(e["type"], e["suite"], e["metrics"]["accuracy"]) for e in ev] == [
        ("eval", "regression", 0.93)]
    table = runner.invoke(app, ["evidence", "support-rag@1"]).stdout
    assert "regression" in table and "accuracy=0.93" in table
    none = runner.invoke(app, ["evidence", "support-rag@2"])
    assert none.exit_code == 0 and "no evidence is attached to support-rag@2" in none.stdout
