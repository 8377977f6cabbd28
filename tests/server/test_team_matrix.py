"""The held matrix of teams' authority (issue 21, item 7): every write operation on a
name owned by team search, by each kind of identity, over HTTP and through the web
forms, on SQLite and PostgreSQL. An allowed write answers 2xx; a refused one answers
403 (401 for an expired token) with one line, and changes nothing (the audit log, which
every write extends, keeps its length)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from llmreg.bundle.schema import Bundle
from llmreg.policy import IdentityRule, Policy
from llmreg.server.app import create_app
from llmreg.service import RegistryService
from llmreg.settings import Settings
from llmreg.types import Actor
from tests.conftest import minimal
from tests.server.conftest import Issuer
from tests.server.web.conftest import CSRF_RE, csrf_of

ADMIN = Actor("setup", teams={"*": "admin"})

# identity -> (registry-wide role, teams); "expired" is search's publisher, expired;
# the OIDC identities are CI workloads: "oidc-mapped" is mapped by the policy to search's
# publisher, "oidc-unmapped" comes from a repository no identity rule names.
IDENTITIES: dict[str, tuple[str, dict[str, str]]] = {
    "search-pub": ("reader", {"search": "publisher"}),
    "search-appr": ("reader", {"search": "approver"}),
    "support-pub": ("reader", {"support": "publisher"}),
    "support-appr": ("reader", {"support": "approver"}),
    "admin": ("admin", {}),
    "unscoped-pub": ("publisher", {}),
    "expired": ("reader", {"search": "publisher"}),
    "oidc-mapped": ("reader", {"search": "publisher"}),
    "oidc-unmapped": ("reader", {}),
}
A, D, E = "allow", "deny", "expired"  # E: a 401 (an expired or unmapped identity)
#     search-pub search-appr support-pub support-appr admin unscoped expired oidc oidc-unmapped
MATRIX: dict[str, tuple[str, ...]] = {
    "register":     (A, A, D, D, A, A, E, A, E),
    "evidence":     (A, A, D, D, A, A, E, A, E),
    "approve":      (D, A, D, A, A, D, E, D, E),  # another team's: recorded, not counted
    "promote":      (A, A, D, D, A, A, E, A, E),
    "rollback":     (A, A, D, D, A, A, E, A, E),
    "deprecate":    (A, A, D, D, A, A, E, A, E),
    "archive":      (A, A, D, D, A, A, E, A, E),
    "owner":        (A, A, D, D, A, A, E, A, E),
    "restore":      (D, D, D, D, A, D, E, D, E),
    "heartbeats":   (A, A, D, D, A, A, E, A, E),
    "create_token": (D, D, D, D, A, D, E, D, E),  # registry-wide: admins only
    "gc":           (D, D, D, D, A, D, E, D, E),
}


@dataclass
class Registry:
    service: RegistryService
    http: TestClient
    tokens: dict[str, str]
    digest: str  # chat@1's

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def registry(tmp_path: Path, database_url: str | None, issuer: Issuer) -> Iterator[Registry]:
    """chat@1..@5 owned by search: @2 in staging (after @1), @3 to promote, @4 to
    deprecate, @5 to archive (and restore); one token per identity (an OIDC ID token
    from the test's issuer for the workloads)."""
    policy = Policy.default().model_copy(update={"identities": [IdentityRule(
        issuer=issuer.url, claims={"repository": "acme/search-*"}, subject="oidc-mapped",
        teams={"search": "publisher"})]})
    service = RegistryService.open_home(tmp_path / "srv" / ".llmreg", database_url=database_url,
                                        policy=policy)
    app = create_app(Settings(read_auth="token", resolve_ttl=0, oidc_issuers=(issuer.url,)),
                     service=service)
    for i in range(1, 6):
        service.versions.register(
            Bundle.from_dict(minimal(system_prompt=f"version {i}")), name="chat",
            message=f"v{i}", author="setup", actor=ADMIN, team="search")
    service.owners.set("chat", team="search", contacts=["search@example.com"], actor=ADMIN)
    for ref in ("chat@1", "chat@2"):
        service.lifecycle.promote(ref, "staging", actor=ADMIN, reason="setup")
    tokens = {"oidc-mapped": issuer.token(),
              "oidc-unmapped": issuer.token(repository="acme/billing-bot")}
    for who, (role, teams) in IDENTITIES.items():
        if who not in tokens:
            tokens[who], _ = service.access.create_token(who, role, teams=teams,
                                                         created_by="setup")
    with service.db.write_engine.begin() as conn:  # expired a minute ago
        conn.execute(sa.text("UPDATE tokens SET expires_at = :at WHERE subject = 'expired'"),
                     {"at": datetime.now(UTC) - timedelta(minutes=1)})
    digest = service.versions.resolve("chat@1").digest
    with TestClient(app, base_url="http://registry.test") as http:
        yield Registry(service, http, tokens, digest)
    service.close()


def request(reg: Registry, op: str, who: str) -> Any:
    """Send ``op`` as ``who``; return the response."""
    h = reg.headers(who)
    post = reg.http.post
    if op == "register":
        return post("/v1/names/chat/versions", headers=h, json={
            "manifest": minimal(system_prompt=f"by {who}"), "message": f"by {who}"})
    if op == "evidence":
        return post("/v1/evidence", headers=h, json={
            "ref": "chat@3", "type": "eval", "suite": "regression",
            "metrics": {"accuracy": 0.95}})
    if op == "approve":
        return post("/v1/approvals", headers=h, json={"ref": "chat@3", "env": "production"})
    if op == "promote":
        return post("/v1/promotions", headers=h, json={"ref": "chat@3", "env": "staging",
                                                         "reason": "try it"})
    if op == "rollback":
        return post("/v1/rollbacks", headers=h, json={"name": "chat", "env": "staging",
                                                        "reason": "bad answers"})
    if op == "deprecate":
        return post("/v1/deprecations", headers=h, json={"ref": "chat@4", "reason": "old"})
    if op == "archive":
        return post("/v1/archives", headers=h, json={"ref": "chat@5", "reason": "unused"})
    if op == "owner":
        return post("/v1/names/chat/owner", headers=h, json={
            "team": "search", "contacts": ["oncall@example.com"]})
    if op == "restore":
        return post("/v1/restores", headers=h, json={"ref": "chat@5", "reason": "needed"})
    if op == "create_token":
        return post("/v1/tokens", headers=h, json={"subject": "new", "teams": {"x": "reader"}})
    if op == "gc":
        return post("/v1/gc", headers=h, json={"dry_run": False})
    assert op == "heartbeats"
    return post("/v1/heartbeats", headers=h, json={"beats": [
        {"name": "chat", "env": "staging", "digest": reg.digest, "count": 2}]})


def check(registry: Registry, op: str, who: str, verdict: str) -> None:
    """Send ``op`` as ``who`` and check the answer and the audit log against ``verdict``."""
    if op == "restore":  # an archived version to restore
        if registry.service.versions.resolve("chat@5").status != "archived":
            registry.service.lifecycle.archive("chat@5", actor=ADMIN, reason="setup")
    before = len(registry.service.audit.entries())
    r = request(registry, op, who)
    after = len(registry.service.audit.entries())
    if verdict == A:
        assert r.status_code in (200, 201, 202), (op, r.text)
        assert after > before or op in ("heartbeats", "gc"), op
        return
    assert r.status_code == (401 if verdict == E else 403), (op, r.text)
    [error] = r.json()["errors"]
    assert "\n" not in error["message"]
    assert after == before, op  # nothing written
    if verdict == D and op in ("register", "evidence", "promote", "deprecate", "owner"):
        assert error["message"] == (
            f"chat is owned by team search; {who} is {IDENTITIES[who][1]['support']} in team "
            "support and reader elsewhere, and this needs publisher in team search (or an "
            "admin)"), op
    if who == "oidc-unmapped":
        assert error["message"].startswith("no identity rule of the policy maps this ID token")


@pytest.mark.parametrize("who", list(IDENTITIES))
def test_the_matrix_over_http(registry: Registry, who: str) -> None:
    """Every write operation in turn, as one identity: each targets its own version, so
    what an allowed one changes leaves the next one's case as it was."""
    column = list(IDENTITIES).index(who)
    for op, verdicts in MATRIX.items():
        check(registry, op, who, verdicts[column])


def test_the_gate_report_names_the_approval_that_does_not_count(registry: Registry) -> None:
    for who in ("support-appr", "search-appr"):
        r = registry.http.post("/v1/approvals", headers=registry.headers(who),
                               json={"ref": "chat@2", "env": "production"})
        assert r.status_code == 201, r.text
    r = registry.http.get("/v1/gates", params={"ref": "chat@2", "to": "production"},
                          headers=registry.headers("search-pub"))
    [gate] = [g for g in r.json()["results"] if g["gate"] == "approvals"]
    assert gate["passed"] is False
    assert ("not counted: support-appr (in team support; production needs approvals from "
            "team search)") in gate["detail"]


# --- the web forms ------------------------------------------------------------------------

WEB: dict[str, dict[str, str]] = {
    # form -> identity -> verdict
    "approve": {"search-appr": A, "support-appr": A, "search-pub": D, "support-pub": D},
    "promote": {"search-pub": A, "admin": A, "support-pub": D, "support-appr": D},
    "rollback": {"search-pub": A, "admin": A, "support-pub": D, "support-appr": D},
}
WEB_CASES = [(form, who, v) for form, whom in WEB.items() for who, v in whom.items()]


def signed_in(reg: Registry, who: str) -> TestClient:
    c = TestClient(reg.http.app, base_url="http://registry.test", follow_redirects=False)
    csrf = CSRF_RE.search(c.get("/signin").text)
    assert csrf is not None
    r = c.post("/signin", data={"csrf": csrf.group(1), "token": reg.tokens[who], "next": "/"})
    assert r.status_code == 303, r.text
    return c


@pytest.mark.parametrize(("form", "who", "verdict"), WEB_CASES,
                         ids=[f"{f}-{w}" for f, w, _ in WEB_CASES])
def test_the_matrix_through_the_web_forms(registry: Registry, form: str, who: str,
                                          verdict: str) -> None:
    c = signed_in(registry, who)
    number = 2 if form == "rollback" else 3  # staging holds @2 (after @1)
    csrf = csrf_of(c.get(f"/names/chat/versions/{number}").text)
    data = {"csrf": csrf, "env": "production" if form == "approve" else "staging",
            "reason": "from the page"}
    if form == "promote":
        data |= {"expect": "2"}
    before = len(registry.service.audit.entries())
    r = c.post(f"/names/chat/versions/{number}/{form}", data=data)
    after = len(registry.service.audit.entries())
    if verdict == A:
        assert r.status_code == 303, r.text
        assert after > before
    else:
        assert r.status_code == 403, r.text
        assert after == before
        assert "owned by team search" in r.text or "needs approver" in r.text or \
            "this needs" in r.text
