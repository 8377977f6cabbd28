"""The error hierarchy's helper for quoting input: :func:`llmreg.errors.shown`."""

from __future__ import annotations

import pytest

from llmreg.errors import SHOWN_LIMIT, shown

HOSTILE = [
    "\x1b[31mred\x1b[0m",  # ANSI colour
    "\x1b]0;pwned\x07",  # OSC: set the terminal's title
    "\x1b[2J\x1b[H",  # clear the screen
    "line one\nline two",  # a forged second log line
    "a\r\nb",
    "\x00nul",
    "abc\u202eevil",  # right-to-left override
    "zero\u200bwidth",
    "<script>alert(1)</script>",
    "x" * 10_000,
    "\n" * 10_000,
    "\x1b" * 10_000,
    "é" * 300,
    "quote ' and \\ backslash",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_shown_is_printable_single_quoted_and_bounded(value: str) -> None:
    text = shown(value)
    assert text.isprintable()
    assert text.startswith("'")
    assert len(text) <= SHOWN_LIMIT + len("'…' (10000 characters)")
    for raw in ("\x1b", "\n", "\r", "\x00", "\u202e", "\u200b", "\x07"):
        assert raw not in text


@pytest.mark.parametrize(("value", "expected"), [
    ("support-rag@1", "'support-rag@1'"),
    ("support-rag@1\n", "'support-rag@1\\n'"),
    ("\x1b[31m", "'\\x1b[31m'"),
    ("a\u202eb", "'a\\u202eb'"),
    ("it's", "'it\\'s'"),
    ("a\\b", "'a\\\\b'"),
    ("", "''"),
    ("<script>", "'<script>'"),  # HTML is the page's to escape (Jinja2 autoescapes)
])
def test_shown_writes_escapes_as_repr_does(value: str, expected: str) -> None:
    assert shown(value) == expected


@pytest.mark.parametrize("size", [161, 1_000, 10_000, 1_000_000])
def test_a_long_value_is_cut_and_its_length_said(size: int) -> None:
    text = shown("y" * size)
    assert text == "'" + "y" * SHOWN_LIMIT + f"…' ({size} characters)"


@pytest.mark.parametrize("limit", [1, 5, 20])
def test_an_escape_is_never_cut_in_half(limit: int) -> None:
    text = shown("\x1b" * 50, limit=limit)
    inner = text[1:text.index("…")]
    assert inner == "\\x1b" * (limit // 4)


@pytest.mark.parametrize(("value", "expected"), [
    (3, "3"), (2.5, "2.5"), (None, "None"), (True, "True"), (b"\x1b", "b'\\x1b'"),
    (["a\n"], "['a\\n']")])
def test_values_that_are_not_strings_are_quoted_by_repr(value: object, expected: str) -> None:
    assert shown(value) == expected


def test_a_long_value_that_is_not_a_string_is_cut_too() -> None:
    text = shown(list(range(1000)))
    assert text.startswith("'[0, 1, 2,") and text.endswith("…' (4890 characters)")
    assert len(text) < SHOWN_LIMIT + 30
