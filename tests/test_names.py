"""Names and refs."""

from __future__ import annotations

import pytest

from llmreg.errors import InvalidNameError, InvalidRefError
from llmreg.names import Ref, check_name, parse_ref


@pytest.mark.parametrize("name", ["a", "support-bot", "team.chat_v2", "x" * 64])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "Support", "-x", "x-", "a/b", "../x", "a..b", "x" * 65,
                                  "a b", "é"])
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidNameError, match="not a valid name"):
        check_name(name)


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
     ("  ", InvalidRefError, "ref is empty"),
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
