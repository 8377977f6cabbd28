"""The one output helper: JSON for scripts, tables and lines for people, errors on stderr."""

from __future__ import annotations

import ast
import doctest
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from rich.progress import Progress, TaskID

import llmreg_cli
from llmreg_cli import _output
from llmreg_cli._output import BAR_ABOVE, Output

MOMENT = datetime(2026, 11, 26, 14, 3, tzinfo=UTC)


class Token(BaseModel):
    token_id: str
    created_at: datetime
    revoked_at: datetime | None = None


TOKENS = [Token(token_id="a1", created_at=MOMENT),
          Token(token_id="b2", created_at=MOMENT, revoked_at=MOMENT)]


def printed(capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_result_is_indented_sorted_json_for_scripts(capsys) -> None:
    Output(as_json=True).result({"z": TOKENS[0], "a": Path("x/y")}, "people only")
    out, err = printed(capsys)
    assert out == ('{\n  "a": "x/y",\n  "z": {\n    "created_at": "2026-11-26T14:03:00Z",\n'
                   '    "revoked_at": null,\n    "token_id": "a1"\n  }\n}\n')
    assert err == ""


def test_result_is_lines_with_markup_for_people(capsys) -> None:
    Output().result({"name": "chat"}, "registered [bold]chat[/]@1", "second line")
    assert printed(capsys) == ("registered chat@1\nsecond line\n", "")


def test_json_alone_prints_nothing_for_people(capsys) -> None:
    Output().json({"name": "chat"})
    Output(as_json=True).json([TOKENS[0]])
    out, _ = printed(capsys)
    assert json.loads(out) == [{"token_id": "a1", "created_at": "2026-11-26T14:03:00Z",
                                "revoked_at": None}]


def test_a_single_line_for_people_and_nothing_for_scripts(capsys) -> None:
    Output().line("[bold]chat@3[/] is deprecated")
    Output().line("[r1] a [bold] citation", markup=False)
    Output(as_json=True).line("never shown")
    Output(as_json=True).raw("never shown either")
    Output().raw("# Changelog\n\n- first")
    assert printed(capsys) == ("chat@3 is deprecated\n[r1] a [bold] citation\n"
                               "# Changelog\n\n- first", "")


def test_table_for_people_formats_dates_numbers_and_blanks(capsys) -> None:
    Output().table(TOKENS, ("id", "created", "revoked", "n"),
                   lambda t: (t.token_id, t.created_at, t.revoked_at, 7))
    out, _ = printed(capsys)
    assert [line.rstrip() for line in out.splitlines()] == [
        " id  created               revoked               n",
        " a1  2026-11-26 14:03 UTC                        7",
        " b2  2026-11-26 14:03 UTC  2026-11-26 14:03 UTC  7",
    ]


def test_table_for_scripts_is_the_items_as_json(capsys) -> None:
    Output(as_json=True).table(TOKENS, ("id",), lambda t: (t.token_id,), empty="none yet")
    out, _ = printed(capsys)
    assert json.loads(out) == [t.model_dump(mode="json") for t in TOKENS]


def test_an_empty_table(capsys) -> None:
    Output().table([], ("id",), lambda t: (t,), empty="no tokens yet")
    assert printed(capsys)[0] == "no tokens yet\n"
    Output().table([], ("id", "subject"), lambda t: (t,))  # no message: just the header
    assert printed(capsys)[0].split() == ["id", "subject"]
    Output(as_json=True).table([], ("id",), lambda t: (t,), empty="no tokens yet")
    assert printed(capsys)[0] == "[]\n"


def test_a_view_runs_only_for_people(capsys) -> None:
    seen: list[str] = []

    def show(out: Output, name: str, *, version: int) -> None:
        seen.append(name)
        out.line(f"{name}@{version}")

    Output(as_json=True).view(show, "chat", version=3)
    assert seen == [] and printed(capsys) == ("", "")
    Output().view(show, "chat", version=3)
    assert seen == ["chat"] and printed(capsys) == ("chat@3\n", "")


@pytest.mark.parametrize("as_json", [False, True])
def test_errors_and_warnings_are_one_stderr_line_in_both_modes(capsys, as_json: bool) -> None:
    Output(as_json).error("'chat' is not registered\nsee `llmreg list`")
    Output(as_json).warning("anyone can read")
    assert printed(capsys) == ("", "error: 'chat' is not registered see `llmreg list`\n"
                                   "warning: anyone can read\n")


def test_brackets_and_emoji_codes_in_messages_are_printed_as_text(capsys) -> None:
    Output(False).error("ref 'chat@[/x]' is not valid [see docs] :smile:")
    Output(False).warning("field [bold]x[/bold]")
    Output(False).line("prompt says :smile:", markup=False)
    assert printed(capsys) == (
        "prompt says :smile:\n",
        "error: ref 'chat@[/x]' is not valid [see docs] :smile:\n"
        "warning: field [bold]x[/bold]\n")


@pytest.mark.parametrize("as_json", [False, True])
def test_progress_callback_shows_bars_to_people_only(capsys, monkeypatch, as_json: bool
                                                     ) -> None:
    bars: list[str] = []
    add_task = Progress.add_task

    def recording(self: Progress, description: str, **kwargs: Any) -> TaskID:
        bars.append(description)
        return add_task(self, description, **kwargs)

    monkeypatch.setattr(Progress, "add_task", recording)
    with Output(as_json).progress("upload") as progress:
        progress("small.bin", 10, 100)  # under the threshold: never a bar
        progress("weights.bin", BAR_ABOVE, 2 * BAR_ABOVE)
        progress("weights.bin", 2 * BAR_ABOVE, 2 * BAR_ABOVE)
    assert bars == ["upload weights.bin"]  # one bar, for the big file only
    out, err = printed(capsys)
    assert err == ""
    # Piped, Rich leaves one blank line where the (transient) bar was; JSON stays clean.
    assert out == ("" if as_json else "\n")


def test_commands_never_branch_on_the_json_flag() -> None:
    """Only Output chooses between JSON and text: commands hand it both."""
    for path in Path(llmreg_cli.__file__).parent.glob("*.py"):
        tests = [node.test for node in ast.walk(ast.parse(path.read_text()))
                 if isinstance(node, ast.If | ast.IfExp | ast.While)]
        names = {n.id for t in tests for n in ast.walk(t) if isinstance(n, ast.Name)}
        assert "as_json" not in names, f"{path.name} branches on as_json; use Output"


def test_docstring_examples_run() -> None:
    result = doctest.testmod(_output)
    assert result.attempted >= 3 and result.failed == 0
