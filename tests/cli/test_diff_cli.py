"""`llmreg diff` and `llmreg changelog` from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llmreg_cli.main import app


@pytest.fixture
def run():
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args), prog_name="llmreg")


@pytest.fixture
def two_versions(run, examples: Path, tmp_path: Path) -> Path:
    """meeting-summariser@1 from the examples, @2 with a new pin, temperature and prompt."""
    run("init")
    assert run("register", str(examples / "meeting-summariser"), "-m", "first").exit_code == 0
    work = tmp_path / "work"
    shutil.copytree(examples / "meeting-summariser", work)
    manifest = work / "llmreg.yaml"
    manifest.write_text(manifest.read_text()
                        .replace("claude-sonnet-4-5-20250929", "claude-3-7-sonnet-20250219")
                        .replace("temperature: 0.3", "temperature: 0.7"))
    prompt = work / "system.md"
    prompt.write_text(prompt.read_text().replace("busy colleagues", "colleagues"))
    return work


def test_diff_a_folder_against_a_version_before_registering(run, two_versions: Path) -> None:
    result = run("diff", "meeting-summariser@1", str(two_versions))
    assert result.exit_code == 0, result.output
    assert ("model pin changed claude-sonnet-4-5-20250929 → claude-3-7-sonnet-20250219"
            in result.stdout)
    assert "temperature: 0.3 → 0.7" in result.stdout
    assert "-You write meeting summaries for busy colleagues" in result.stdout
    assert "+You write meeting summaries for colleagues" in result.stdout
    assert json.loads(run("history", "meeting-summariser", "--json").stdout)[-1]["version"] == 1


def test_diff_json_stat_and_exit_code(run, two_versions: Path) -> None:
    data = json.loads(run("diff", "meeting-summariser@1", str(two_versions), "--json").stdout)
    assert data["schema"] == "llmreg.diff/v1"
    assert data["model"]["pin"]["new"] == "claude-3-7-sonnet-20250219"
    stat = run("diff", "meeting-summariser@1", str(two_versions), "--stat").stdout
    assert stat.splitlines() == [
        "model: pin claude-sonnet-4-5-20250929 -> claude-3-7-sonnet-20250219, "
        "1 parameter changed",
        "system_prompt: +1 -1 lines",
    ]
    assert run("diff", "meeting-summariser@1", str(two_versions), "--exit-code").exit_code == 1
    same = run("diff", "meeting-summariser@1", "meeting-summariser", "--exit-code")
    assert same.exit_code == 0
    assert same.stdout.startswith("identical: both are sha256:")


def test_changelog_records_the_diff_at_registration(run, two_versions: Path) -> None:
    assert run("register", str(two_versions), "--name", "meeting-summariser",
               "-m", "Try 3.7 Sonnet, warmer").exit_code == 0
    text = run("changelog", "meeting-summariser").stdout
    assert text.index("meeting-summariser@2") < text.index("meeting-summariser@1")
    assert "Try 3.7 Sonnet, warmer" in text
    assert "system_prompt: +1 -1 lines" in text
    assert "first version" in text
    md = run("changelog", "meeting-summariser", "--format", "markdown").stdout
    assert md.startswith("# Changelog: meeting-summariser\n")
    assert "## 2 — " in md and "- system_prompt: +1 -1 lines" in md
    entries = json.loads(run("changelog", "meeting-summariser", "--json").stdout)
    assert [e["version"] for e in entries] == [2, 1]
    assert entries[0]["diff_digest"].startswith("sha256:")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["diff", "nope@1", "meeting-summariser@1"], "'nope' is not registered"),
        (["diff", "meeting-summariser@1", "meeting-summariser@4"], "has no version 4"),
        (["diff", "meeting-summariser@1", "/no/such/folder"], "does not exist"),
        (["changelog", "nope"], "'nope' is not registered"),
        (["changelog", "meeting-summariser", "--format", "html"], "--format 'html'"),
    ],
)
def test_bad_refs_exit_1(run, two_versions: Path, args: list[str], expected: str) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert expected in result.stderr
