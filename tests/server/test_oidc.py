"""OIDC ID tokens as bearer tokens (issue 21, item 5): an issuer the test runs on
127.0.0.1 (its keys generated here, its JWKS served locally), a server that trusts it,
and the policy's identity rules. A mapped workload acts as its team; every forged,
expired, misdirected or unmapped token is a one-line 401 and changes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from llmreg.bundle.schema import Bundle
from llmreg.policy import IdentityRule, Policy
from llmreg.server import oidc
from llmreg.server.app import create_app
from llmreg.service import RegistryService
from llmreg.settings import Settings
from llmreg.types import Actor
from tests.conftest import minimal
from tests.server.conftest import Issuer


@dataclass
class Server:
    service: RegistryService
    http: TestClient

    def call(self, method: str, path: str, token: str, **kw: Any) -> Any:
        return self.http.request(method, path, headers={"Authorization": f"Bearer {token}"},
                                 **kw)


@pytest.fixture
def server(tmp_path: Path, issuer: Issuer) -> Iterator[Server]:
    policy = Policy.default().model_copy(update={"identities": [
        IdentityRule(issuer=issuer.url, claims={"repository": "acme/search-*"},
                     subject="ci:{repository}", teams={"search": "publisher"})]})
    service = RegistryService.open_home(tmp_path / "srv" / ".llmreg", policy=policy)
    app = create_app(Settings(read_auth="token", resolve_ttl=0, oidc_issuers=(issuer.url,),
                              oidc_audience="llmreg"), service=service)
    with TestClient(app, base_url="http://registry.test") as http_client:
        yield Server(service, http_client)
    service.close()


def register(server: Server, token: str, name: str = "search-rag") -> Any:
    return server.call("POST", f"/v1/names/{name}/versions", token, json={
        "manifest": minimal(), "message": "from CI", "provenance": {"workload": "forged"}})


def test_a_mapped_workload_acts_as_its_team_and_is_recorded(server: Server,
                                                            issuer: Issuer) -> None:
    token = issuer.token()
    who = server.call("GET", "/v1/whoami", token).json()
    assert (who["subject"], who["teams"]) == ("ci:acme/search-rag",
                                              {"*": "reader", "search": "publisher"})
    r = register(server, token)
    assert r.status_code == 201, r.text
    workload = {"issuer": issuer.url, "subject": "repo:acme/search-rag:ref:refs/heads/main",
                "repository": "acme/search-rag", "workflow": "release", "run_id": "42"}
    version = server.service.versions.resolve("search-rag@1")
    assert version.author == "ci:acme/search-rag"
    assert version.provenance["workload"] == workload  # the caller's own value is dropped
    assert server.service.owners.get("search-rag").team == "search"  # type: ignore[union-attr]
    registered = [e for e in server.service.audit.entries() if e.action == "register"]
    assert registered[0].detail["workload"] == workload
    assert server.service.audit.verify() == len(server.service.audit.entries())


def test_a_workload_is_scoped_like_any_teams_token(server: Server, issuer: Issuer) -> None:
    server.service.versions.register(Bundle.from_dict(minimal()), name="billing-bot",
                                     message="m", author="ada", team="billing",
                                     actor=Actor("ada", teams={"*": "admin"}))
    r = register(server, issuer.token(), name="billing-bot")
    assert r.status_code == 403
    assert r.json()["errors"][0]["message"].startswith(
        "billing-bot is owned by team billing; ci:acme/search-rag is publisher in team search")


def refused(server: Server, token: str) -> str:
    before = len(server.service.audit.entries())
    r = register(server, token)
    assert r.status_code == 401, r.text
    assert len(server.service.audit.entries()) == before
    [error] = r.json()["errors"]
    assert error["code"] == "UNAUTHORIZED" and "\n" not in error["message"]
    return str(error["message"])


def test_a_wrong_audience_is_refused(server: Server, issuer: Issuer) -> None:
    assert refused(server, issuer.token(aud="someone-else")) == (
        "the ID token is for audience 'someone-else', not 'llmreg'; request it with that "
        "audience")


def test_an_expired_token_is_refused(server: Server, issuer: Issuer) -> None:
    past = int(time.time()) - 3600
    assert refused(server, issuer.token(iat=past - 300, exp=past)) == (
        f"the ID token from {issuer.url} has expired; ask your CI for a fresh one")


def test_a_token_not_valid_yet_is_refused(server: Server, issuer: Issuer) -> None:
    assert refused(server, issuer.token(nbf=int(time.time()) + 3600)).startswith(
        "the ID token is not valid yet")


def test_an_unknown_key_id_is_refused(server: Server, issuer: Issuer) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert refused(server, issuer.token(kid="stolen", key=other)) == (
        f"issuer {issuer.url} has no key 'stolen'; the token was not signed by it")


def test_a_known_key_id_with_another_key_fails_the_signature(server: Server,
                                                             issuer: Issuer) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert refused(server, issuer.token(key=other)) == (
        f"the ID token from {issuer.url} is refused: Signature verification failed")


def test_alg_none_is_refused(server: Server, issuer: Issuer) -> None:
    token = issuer.token(key="", alg="none")
    assert refused(server, token) == (
        "ID token algorithm 'none' is refused; only asymmetric signatures are accepted "
        "(RS256, RS384, RS512, …)")


def test_hs256_signed_with_the_public_key_is_refused(server: Server, issuer: Issuer) -> None:
    import base64
    import hashlib
    import hmac

    public = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode())
    body = b64(json.dumps({"iss": issuer.url, "aud": "llmreg", "iat": now, "exp": now + 300,
                           "repository": "acme/search-rag"}).encode())
    mac = hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert refused(server, f"{head}.{body}.{b64(mac)}").startswith(
        "ID token algorithm 'HS256' is refused")


def test_an_issuer_not_configured_is_refused(server: Server, issuer: Issuer) -> None:
    token = issuer.token(iss="https://evil.example.com")
    assert refused(server, token) == (
        "ID tokens of issuer 'https://evil.example.com' are not accepted here; the "
        f"server's LLMREG_OIDC_ISSUERS names {issuer.url}")
    assert issuer.fetches == []  # nothing fetched for an issuer it does not trust


def test_an_unmapped_workload_is_refused(server: Server, issuer: Issuer) -> None:
    assert refused(server, issuer.token(repository="acme/billing-bot")) == (
        f"no identity rule of the policy maps this ID token (issuer {issuer.url}, "
        "'acme/billing-bot'); add one under `identities:` (docs/teams.md)")


def test_unknown_key_ids_refetch_the_keys_at_most_once_a_minute(
        server: Server, issuer: Issuer) -> None:
    assert register(server, issuer.token()).status_code == 201  # discovery + JWKS
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for i in range(20):
        refused(server, issuer.token(kid=f"k{i}", key=other))
    assert issuer.fetches == ["/.well-known/openid-configuration", "/jwks"]


def test_the_verifier_bounds_what_it_reads(issuer: Issuer, monkeypatch: pytest.MonkeyPatch
                                           ) -> None:
    monkeypatch.setattr(oidc, "MAX_DOCUMENT", 64)
    verifier = oidc.OIDCVerifier((issuer.url,), "llmreg")
    why = verifier.identify(issuer.token(), Policy.default())
    assert why == (f"the keys of issuer {issuer.url} could not be fetched ({issuer.url}/.well-"
                   "known/openid-configuration sent more than 64 bytes); try again shortly")
