"""Names and refs."""

from __future__ import annotations

import pytest

from llmreg.bundle.names import Ref, check_name, parse_ref
from llmreg.errors import InvalidNameError, InvalidRefError, shown


@pytest.mark.parametrize("name", ["a", "support-bot", "team.chat_v2", "x" * 64])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["Support", "-x", "x-", "a/b", "../x", "a..b", "x" * 65,
                                  "a b", "é"])
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidNameError, match="not a valid name"):
        check_name(name)


@pytest.mark.parametrize("name", ["", " ", "\t", "\n", " \r\n ", "\u3000"])
def test_an_empty_name_is_refused_naming_the_field_the_value_and_the_fix(name: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        check_name(name, field="--name")
    assert str(info.value) == (f"--name {shown(name)} is empty; give a name such as "
                               "'support-bot'")


UNTRIMMED = ("has surrounding whitespace or control characters; give the name alone "
             "(e.g. 'support-bot')")


@pytest.mark.parametrize("name", ["chat\n", " chat", "chat ", "\tchat", "chat\r", "chat\x00",
                                  "\x1b[31mchat", "ch\u202eat", "chat\u00a0", "chat\x7f"])
def test_a_name_is_never_stripped(name: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        check_name(name)
    assert str(info.value) == f"name {shown(name)} {UNTRIMMED}"
    assert "\x1b" not in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("chat", Ref("chat")),
        ("chat@7", Ref("chat", version=7)),
        ("chat@latest", Ref("chat", label="latest")),
        ("chat@production", Ref("chat", label="production")),
        ("chat@sha256:abcdef0", Ref("chat", digest_prefix="abcdef0")),
        ("chat@ABCDEF012345", Ref("chat", digest_prefix="abcdef012345")),
        ("chat@1234567", Ref("chat", digest_prefix="1234567")),
        ("sha256:" + "a" * 64, Ref(None, digest_prefix="a" * 64)),
    ],
)
def test_parse_ref(text: str, ref: Ref) -> None:
    assert parse_ref(text) == ref


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [("", InvalidRefError, "ref is empty; use 'name', 'name@7' or 'name@sha256:…'"),
     ("  ", InvalidRefError, "ref '  ' is empty"),
     ("chat@", InvalidRefError, "ref 'chat@': '' is neither a version number, a digest nor "
                                "a label; use 'name@7', 'name@sha256:…' or 'name@latest'"),
     ("chat@0", InvalidRefError, "ref 'chat@0': versions start at 1"),
     ("chat@sha256:xyz", InvalidRefError, "ref 'chat@sha256:xyz': 'sha256:xyz' is not a "
                                          "digest; use 'sha256:' and at least 7 hex digits"),
     ("Chat@1", InvalidNameError, "ref 'Chat@1': name 'Chat' is not a valid name; use 1-64 "
                                  "lowercase letters"),
     ("Chat", InvalidNameError, "ref name 'Chat' is not a valid name"),
     ("chat@a b", InvalidRefError, "ref 'chat@a b': 'a b' is neither a version number"),
     ("sha256:abc", InvalidRefError, "ref 'sha256:abc' is not a digest; use 'sha256:' and "
                                     "at least 7 hex digits")],
)
def test_bad_refs(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as caught:
        parse_ref(text)
    assert type(caught.value) is error
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize("text", ["chat", "chat@7", "chat@latest", "chat@sha256:abcdef0",
                                  "sha256:" + "a" * 64])
def test_a_ref_prints_as_it_parses(text: str) -> None:
    assert str(parse_ref(text)) == text
    assert parse_ref(str(parse_ref(text))) == parse_ref(text)


HINT = ("is not a valid name; use 1-64 lowercase letters, digits, '.', '_' or '-', starting and "
        "ending with a letter or digit (e.g. 'support-bot')")


def test_bad_name_message_names_the_field_and_the_fix() -> None:
    with pytest.raises(InvalidNameError) as info:
        check_name("Support")
    assert str(info.value) == f"name 'Support' {HINT}"
    with pytest.raises(InvalidNameError) as info:
        check_name("a..b", field="bundle name")
    assert str(info.value) == f"bundle name 'a..b' {HINT}"


@pytest.mark.parametrize(
    ("ref", "text"),
    [
        (Ref("chat"), "chat"),
        (Ref("chat", version=7), "chat@7"),
        (Ref("chat", digest_prefix="abcdef0"), "chat@sha256:abcdef0"),
        (Ref("chat", label="production"), "chat@production"),
        (Ref(None, digest_prefix="a" * 64), "sha256:" + "a" * 64),
    ],
)
def test_str_of_every_ref_form_parses_back(ref: Ref, text: str) -> None:
    assert str(ref) == text
    assert parse_ref(text) == ref


def test_refs_are_split_at_the_first_at() -> None:
    assert parse_ref("chat@1") == Ref("chat", version=1)
    assert parse_ref("chat@999999") == Ref("chat", version=999999)
    assert parse_ref("chat@" + "p" * 32) == Ref("chat", label="p" * 32)


EMPTY = "ref is empty; use 'name', 'name@7' or 'name@sha256:…'"
REF_UNTRIMMED = ("has surrounding whitespace or control characters; give the ref alone, "
                 "e.g. 'chat@1'")


@pytest.mark.parametrize("text", [
    "support-rag@1\n", "support-rag@1\r\n", " support-rag@1", "support-rag@1 ", "\tchat",
    "chat@production\n", "chat@sha256:abcdef0 ", "sha256:" + "a" * 64 + "\n",
    "chat\x00@1", "chat@1\x1b[2J", "chat@\u202e1", "chat@1\u2028", "\ufeffchat@1"])
def test_a_ref_is_never_stripped(text: str) -> None:
    """Whitespace or a control character anywhere is refused, never trimmed into a ref
    that moves a slot; the message shows the value escaped."""
    with pytest.raises(InvalidRefError) as info:
        parse_ref(text)
    assert str(info.value) == f"ref {shown(text)} {REF_UNTRIMMED}"
    assert str(info.value).isprintable()
NOT_DIGEST = "is not a digest; use 'sha256:' and at least 7 hex digits"
NEITHER = ("is neither a version number, a digest nor a label; use 'name@7', "
           "'name@sha256:…' or 'name@latest'")


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("", InvalidRefError, EMPTY),
        ("   ", InvalidRefError, "ref '   ' is empty; use 'name', 'name@7' or 'name@sha256:…'"),
        (None, InvalidRefError, EMPTY),
        ("sha256:abc", InvalidRefError, f"ref 'sha256:abc' {NOT_DIGEST}"),
        ("Chat", InvalidNameError, f"ref name 'Chat' {HINT}"),
        ("Chat@1", InvalidNameError, f"ref 'Chat@1': name 'Chat' {HINT}"),
        ("@7", InvalidNameError, "ref '@7': name '' is empty; give a name such as 'support-bot'"),
        ("chat@0", InvalidRefError, "ref 'chat@0': versions start at 1"),
        ("chat@000000", InvalidRefError, "ref 'chat@000000': versions start at 1"),
        ("chat@sha256:xyz", InvalidRefError, f"ref 'chat@sha256:xyz': 'sha256:xyz' {NOT_DIGEST}"),
        ("chat@sha256:abc", InvalidRefError, f"ref 'chat@sha256:abc': 'sha256:abc' {NOT_DIGEST}"),
        ("chat@", InvalidRefError, f"ref 'chat@': '' {NEITHER}"),
        ("chat@a b", InvalidRefError, f"ref 'chat@a b': 'a b' {NEITHER}"),
        ("chat@x@y", InvalidRefError, f"ref 'chat@x@y': 'x@y' {NEITHER}"),
        ("chat@Prod", InvalidRefError, f"ref 'chat@Prod': 'Prod' {NEITHER}"),
        ("chat@" + "p" * 33, InvalidRefError, f"ref 'chat@{'p' * 33}': '{'p' * 33}' {NEITHER}"),
    ],
)
def test_bad_refs_say_what_is_wrong(text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        parse_ref(text)
    assert type(info.value) is error
    assert str(info.value) == message
