"""Full-match semantics wherever a name, ref, digest, environment, suite, subject or
token is checked: a trailing newline (which ``$`` accepts) is never part of a valid one."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmreg.bundle.digest import check_digest, is_digest, parse_prefix
from llmreg.bundle.names import check_name, parse_ref
from llmreg.errors import InvalidEvidenceError, InvalidNameError, InvalidRefError, LLMRegError
from llmreg.policy import DEFAULT_POLICY_YAML, parse_policy
from llmreg.service import RegistryService
from llmreg.store import MemoryStore
from llmreg.types import Actor

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize("tail", ["\n", "\r\n", " ", "\t"])
def test_names_refs_and_digests_with_a_trailing_character_are_refused(tail: str) -> None:
    with pytest.raises(InvalidNameError):
        check_name("support-rag" + tail)
    for ref in ("support-rag@3", "support-rag@production", f"support-rag@{DIGEST}"):
        with pytest.raises((InvalidRefError, InvalidNameError)):
            parse_ref(ref.replace("support-rag", "support-rag" + tail, 1))
    assert not is_digest(DIGEST + tail)
    with pytest.raises(InvalidRefError):
        check_digest(DIGEST + tail)


def test_a_version_or_label_with_a_newline_is_refused() -> None:
    for ref in ("chat@3\n1", "chat@prod\nx"):
        with pytest.raises((InvalidRefError, InvalidNameError)):
            parse_ref(ref)
    assert parse_prefix("abcdef1\nabc") is None


def test_an_environment_name_with_a_newline_is_refused_by_the_policy() -> None:
    text = DEFAULT_POLICY_YAML.replace("\n  staging:", '\n  "staging\\n":', 1)
    assert text != DEFAULT_POLICY_YAML
    with pytest.raises(LLMRegError, match=r"environment 'staging\\n' is not allowed"):
        parse_policy(text, source="p.yaml")


def test_the_service_refuses_newline_names_suites_subjects_and_tokens(tmp_path: Path) -> None:
    svc = RegistryService.open(f"sqlite:///{tmp_path / 'r.db'}", MemoryStore())
    try:
        with pytest.raises(InvalidNameError):
            svc.versions.history("chat\n")
        with pytest.raises(InvalidEvidenceError, match="suite"):
            svc.evidence.attach("chat@1", type="eval", suite="regression\n",
                                metrics={"a": 1.0}, actor=Actor("ana"))
        with pytest.raises(InvalidRefError, match="subject"):
            svc.access.create_token("c\ni", "reader", created_by="ana")
        secret, _ = svc.access.create_token("ci", "reader", created_by="ana")
        assert svc.access.authenticate(secret) is not None
        assert svc.access.authenticate(secret + "\n") is None
    finally:
        svc.close()
