"""Every shell and Python block of README.md and docs/*.md runs, in order, as written.

The runner and its convention are in tests/docs_runner.py. A new doc is picked up
without a change here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import docs_runner
from tests.docs_runner import DocsError, output_matches, parse, run_doc

DOCS = docs_runner.docs()


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_doc_runs_as_written(doc: Path) -> None:
    result = run_doc(doc)
    for block in result.skipped:
        assert block.skip, f"{doc.name}:{block.line}: skipped without a reason"


def test_every_doc_is_found() -> None:
    names = {p.name for p in DOCS}
    assert {"README.md", "walkthrough.md", "promotion.md", "server.md"} <= names


def test_docs_with_commands_run_some_of_them() -> None:
    """A doc whose every command is skipped or untagged is not tested at all."""
    for doc in ("README.md", "walkthrough.md", "promotion.md", "server.md",
                "python-client.md", "integrity.md", "models.md", "policy.md", "diff.md"):
        blocks = parse((docs_runner.ROOT / doc if doc == "README.md"
                        else docs_runner.ROOT / "docs" / doc).read_text(), doc)
        assert any(b.runs for b in blocks), f"{doc} has no block the runner executes"


# --- the runner itself ---------------------------------------------------------------

def _doc(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "doc.md"
    p.write_text(text)
    return p


def test_blocks_share_one_folder_in_order_and_output_is_checked(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "\n".join([
        "```bash", "echo one > f.txt", "```",
        "```python", "print(open('f.txt').read().strip() + ' two')", "```",
        "<!-- docs-runner: output -->", "```text", "one two", "```",
        "```bash", "echo \"$LLMREG_HOME\"; seq 1 5", "```",
        "<!-- docs-runner: output -->", "```text", "./.llmreg", "1", "...", "5", "```",
        "```yaml", "not: run", "```",
    ]))
    result = run_doc(doc)
    assert [b.lang for b, _ in result.ran] == ["bash", "python", "bash"]
    assert result.checked == 2


def test_a_failing_command_fails_the_doc_with_its_line(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "intro\n\n```bash\ntrue\nfalse\necho never\n```\n")
    with pytest.raises(DocsError, match=r"doc.md:3: ```bash block exited 1"):
        run_doc(doc)


def test_pipefail_and_unset_variables_fail(tmp_path: Path) -> None:
    with pytest.raises(DocsError, match="exited"):
        run_doc(_doc(tmp_path, "```bash\nfalse | cat\n```\n"))
    with pytest.raises(DocsError, match="exited"):
        run_doc(_doc(tmp_path, "```bash\necho \"$NOT_SET_ANYWHERE\"\n```\n"))


def test_output_that_drifted_fails(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "```bash\necho 2\n```\n<!-- docs-runner: output -->\n"
                         "```text\n1\n```\n")
    with pytest.raises(DocsError, match="differs from the doc"):
        run_doc(doc)


def test_skip_needs_a_reason_and_skips(tmp_path: Path) -> None:
    with pytest.raises(DocsError, match="needs a reason"):
        parse("<!-- docs-runner: skip -->\n```bash\nfalse\n```\n")
    result = run_doc(_doc(tmp_path, "<!-- docs-runner: skip — needs root -->\n"
                                    "```bash\nfalse\n```\n"))
    assert [b.skip for b in result.skipped] == ["needs root"]


def test_directives_must_sit_right_before_a_block() -> None:
    with pytest.raises(DocsError, match="immediately before"):
        parse("<!-- docs-runner: output -->\ntext between\n```text\nx\n```\n")
    with pytest.raises(DocsError, match="unknown directive"):
        parse("<!-- docs-runner: skipp — x -->\n```bash\nx\n```\n")
    with pytest.raises(DocsError, match="must be ```text"):
        parse("<!-- docs-runner: output -->\n```bash\nx\n```\n")
    with pytest.raises(DocsError, match="never closed"):
        parse("```bash\nx\n")


def test_a_background_server_does_not_hang_the_runner(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "```bash\nsleep 300 &\necho $! > pid\n```\n"
                         "```bash\ncat pid\n```\n")
    result = run_doc(doc)
    pid = int(result.ran[-1][1])
    import os
    import time
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)   # killed when the doc ended


@pytest.mark.parametrize(("expected", "actual", "ok"), [
    ("a\nb\n", "a\nb\n\n", True),
    ("a\n...\nd\n", "a\nb\nc\nd\n", True),
    ("a\n...\nd\n", "a\nd\n", True),
    ("registered x@1  ...\n", "registered x@1  75720cf65d5e\n", True),
    ("a\nb\n", "a\nc\n", False),
    ("a\n", "a\nb\n", False),
    ("...\n", "", True),
])
def test_output_wildcards(expected: str, actual: str, ok: bool) -> None:
    assert output_matches(expected, actual) is ok


def test_exports_carry_to_later_blocks_but_the_folder_resets(tmp_path: Path) -> None:
    doc = _doc(tmp_path, "```bash\nexport WHO=ana\nmkdir sub && cd sub\n```\n"
                         "```bash\necho \"$WHO $(basename \"$PWD\")\"; ls -d sub\n```\n"
                         "```python\nimport os; print(os.environ['WHO'])\n```\n")
    result = run_doc(doc)
    assert result.ran[1][1].split()[0] == "ana"
    assert result.ran[1][1].split()[2] == "sub"
    assert result.ran[2][1].strip() == "ana"
