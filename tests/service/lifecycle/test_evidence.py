"""Evidence (``svc.evidence``): what is refused before anything is written, and what a
digest holds afterwards. What an attached record writes (its row, its audit entry) is in
``test_lifecycle_records.py``; how the gates count it, in ``test_lifecycle.py``."""

from __future__ import annotations

import pytest

from llmreg.errors import InvalidEvidenceError
from llmreg.service import RegistryService
from llmreg.types import Actor
from tests.service.conftest import on_each_database
from tests.service.lifecycle.test_lifecycle_records import register

ANA = Actor("ana")

svc = pytest.fixture(on_each_database, name="svc")


@pytest.mark.parametrize("metrics", [{}, {"accuracy": "high"}, {"accuracy": True},
                                     {"accuracy": float("nan")}, [0.9], {"": 1}])
def test_bad_metrics_are_refused(svc: RegistryService, metrics: object) -> None:
    ref, _ = register(svc, "chat", 1)
    with pytest.raises(InvalidEvidenceError, match="metric"):
        svc.evidence.attach(ref, type="eval", suite="regression", metrics=metrics,  # type: ignore[arg-type]
                            actor=ANA)
    assert svc.evidence.of_digest(svc.versions.resolve(ref).digest) == []


@pytest.mark.parametrize("link", ["ftp://x/y", "https://", "https://a b", "http://" + "a" * 2001])
def test_links_must_be_short_http_urls(svc: RegistryService, link: str) -> None:
    ref, _ = register(svc, "chat", 1)
    with pytest.raises(InvalidEvidenceError, match="is not an http\\(s\\) URL of at most"):
        svc.evidence.attach(ref, type="eval", suite="s", metrics={"a": 1.0},
                            actor=ANA, links=["https://ok.example", link])
    assert svc.evidence.of_digest(svc.versions.resolve(ref).digest) == []


def test_a_report_must_be_uploaded_first(svc: RegistryService) -> None:
    ref, _ = register(svc, "chat", 1)
    missing = "sha256:" + "0" * 64
    with pytest.raises(InvalidEvidenceError, match=f"report {missing} is not in the blob "
                                                   "store; upload it first"):
        svc.evidence.attach(ref, type="eval", suite="s", metrics={"a": 1.0},
                            actor=ANA, report_digest=missing)


def test_each_refusal_of_attach_is_exact_and_changes_nothing(svc: RegistryService) -> None:
    ref, _ = register(svc, "chat", 1)
    cases = [
        (dict(type="vibes"), "evidence type 'vibes' is not one of ('eval', 'shadow-metrics')"),
        (dict(suite="bad suite"), "suite 'bad suite' is not a valid suite name; use letters, "
                                  "digits, '.', '_', '-'"),
        (dict(suite=""), "suite '' is not a valid suite name; use letters, digits, '.', "
                         "'_', '-'"),
        (dict(links=["ftp://" + "x" * 100]),
         "link 'ftp://" + "x" * 74 + "…' (106 characters) is not an http(s) URL of at most "
         "2,000 characters"),
    ]
    for change, message in cases:
        args = {"type": "eval", "suite": "regression", "metrics": {"a": 1.0}, **change}
        with pytest.raises(InvalidEvidenceError) as info:
            svc.evidence.attach(ref, actor=ANA, **args)  # type: ignore[arg-type]
        assert str(info.value) == message
    assert svc.evidence.of_digest(svc.versions.resolve(ref).digest) == []


def test_evidence_is_attached_through_an_environment_alias_and_read_in_order(
        svc: RegistryService) -> None:
    ref, digest = register(svc, "chat", 1)
    register(svc, "chat", 2)
    svc.lifecycle.promote(ref, "staging", actor=ANA, reason="x")
    first = svc.evidence.attach("chat@pre-prod", type="eval", suite="a", metrics={"m": 1.0},
                                actor=ANA)
    second = svc.evidence.attach(ref, type="shadow-metrics", suite="b", metrics={"m": 2.0},
                                 actor=ANA, links=["https://ci.example/1"])
    svc.evidence.attach("chat@2", type="eval", suite="c", metrics={"m": 3.0}, actor=ANA)
    assert first.digest == digest
    got = svc.evidence.of_digest(digest)
    assert [(e.id, e.suite, e.links) for e in got] == [
        (first.id, "a", []), (second.id, "b", ["https://ci.example/1"])]
