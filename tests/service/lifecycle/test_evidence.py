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
