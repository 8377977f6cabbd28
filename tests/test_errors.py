"""The error hierarchy's helper for quoting input: :func:`llmreg.errors.shown`."""

from __future__ import annotations

import json
from typing import Any

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


# --- the modules that quote what a user gave quote it with shown() --------------------

HOSTILE = "\x1b[31mred\u202e" + "x" * 5000  # an ANSI escape, a bidi override, and length


def _settings(value: str) -> None:
    from llmreg.settings import Settings

    Settings.from_env({"LLMREG_URL": value})


def _policy(value: str) -> None:
    from llmreg.policy import parse_policy

    parse_policy(f"version: 1\nenvironments:\n  ? {json.dumps(value)}\n  : {{}}\n"
                 "transitions: [{from: registered, to: x}]\n", source="p.yaml")


def _pinning(value: str) -> None:
    from llmreg.bundle.schema import Bundle

    Bundle.from_dict({"model": {"provider": "openai", "id": value},
                      "template": {"source": "Hi"}})


def _owner(value: str) -> None:
    from llmreg.service.hygiene.owners import check_contact

    check_contact(value)


def _mlflow(value: str) -> None:
    from llmreg.service.importers.mlflow import MlflowSource

    MlflowSource(value)


@pytest.mark.parametrize("refuse", [_settings, _policy, _pinning, _owner, _mlflow])
def test_a_refusal_quotes_the_input_escaped_and_capped(refuse: Any) -> None:
    from llmreg.errors import LLMRegError

    with pytest.raises((LLMRegError, ValueError)) as refused:
        refuse(HOSTILE)
    message = str(refused.value)
    assert "\x1b" not in message and "\u202e" not in message
    assert "\\x1b[31mred\\u202e" in message
    assert len(message) < 1500 and "characters)" in message
