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


@pytest.mark.parametrize("text", ["", "chat@", "chat@0", "chat@sha256:xyz", "Chat@1",
                                  "chat@a b", "sha256:abc"])
def test_bad_refs(text: str) -> None:
    with pytest.raises((InvalidRefError, InvalidNameError)):
        parse_ref(text)
