"""The resolve fast path answers cache hits exactly as the route would, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llmreg.bundle.directory import load_bundle_dir
from llmreg.server.app import create_app
from llmreg.server.state import ResolveCache
from llmreg.service import RegistryService
from llmreg.settings import Settings
from llmreg.types import Actor
from tests.conftest import EXAMPLES


@pytest.fixture
def warm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, dict]]:
    svc = RegistryService.open_home(tmp_path / ".llmreg")
    bundle, _ = load_bundle_dir(EXAMPLES / "ticket-classifier")
    svc.versions.register(bundle, name="tc", message="m", author="ana")
    svc.lifecycle.promote("tc@1", "staging", actor=Actor("ana"), reason="r")
    token, _ = svc.access.create_token("app", "reader", created_by="t")
    calls = {"lookup": 0}
    real = ResolveCache.lookup

    def counting(self: ResolveCache, *args: object) -> object:
        calls["lookup"] += 1
        return real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ResolveCache, "lookup", counting)
    app = create_app(Settings(read_auth="token", resolve_ttl=60), service=svc)
    with TestClient(app) as http:
        http.headers["Authorization"] = f"Bearer {token}"
        yield http, calls
    svc.close()


def test_fast_path_matches_the_route(warm: tuple[TestClient, dict]) -> None:
    http, calls = warm
    slow = http.get("/v1/resolve/tc/pre-prod")
    assert calls["lookup"] == 1
    fast = http.get("/v1/resolve/tc/pre-prod")
    assert calls["lookup"] == 1  # answered from the cache, before the framework
    assert fast.status_code == slow.status_code == 200
    assert fast.content == slow.content
    for header in ("etag", "x-llmreg-version", "x-llmreg-env", "content-type", "cache-control"):
        assert fast.headers[header] == slow.headers[header], header
    not_modified = http.get("/v1/resolve/tc/pre-prod",
                            headers={"If-None-Match": slow.headers["etag"]})
    assert not_modified.status_code == 304 and calls["lookup"] == 1


def test_fast_path_never_answers_an_unauthorised_caller(warm: tuple[TestClient, dict]) -> None:
    http, calls = warm
    http.get("/v1/resolve/tc/staging")
    anonymous = http.get("/v1/resolve/tc/staging", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    forged = http.get("/v1/resolve/tc/staging",
                      headers={"Authorization": "Bearer llmreg_000000000000_" + "x" * 43})
    assert forged.status_code == 401


def test_a_promotion_through_this_replica_is_seen_at_once(warm: tuple[TestClient, dict],
                                                          tmp_path: Path) -> None:
    http, _ = warm
    first = http.get("/v1/resolve/tc/staging")
    svc: RegistryService = http.app.state.llmreg.service  # type: ignore[attr-defined]
    from llmreg.bundle.schema import Bundle

    b2 = Bundle.from_dict({"model": {"provider": "openai", "id": "gpt-4o-2024-08-06"},
                           "template": {"source": "x"}})
    svc.versions.register(b2, name="tc", message="v2", author="ana")
    token, _ = svc.access.create_token("ci", "publisher", created_by="t")
    moved = http.post("/v1/promotions", json={"ref": "tc@2", "env": "staging", "reason": "r"},
                      headers={"Authorization": f"Bearer {token}"})
    assert moved.status_code == 201, moved.text
    second = http.get("/v1/resolve/tc/staging")
    assert second.headers["etag"] != first.headers["etag"]
    assert second.headers["x-llmreg-version"] == "2"
