"""Every route declares a role, and the role is enforced: a matrix from the route table."""

from __future__ import annotations

import re

import pytest

from llmreg.types import ROLES
from tests.server.conftest import Server

WHO = {"reader": "rita", "publisher": "pat", "approver": "ann", "admin": "ada"}


def routes(server: Server) -> list[tuple[str, str, str]]:
    """(method, path, role) for every /v1 operation, from the app's own OpenAPI schema
    (built from its route table, nested routers included)."""
    out = []
    schema = server.http.app.openapi()  # type: ignore[attr-defined]
    for path, operations in schema["paths"].items():
        if not path.startswith("/v1"):
            continue
        for method, operation in operations.items():
            role = operation.get("x-llmreg-role")
            assert role in ROLES, f"{method.upper()} {path} declares no role: every /v1 route must"
            out.append((method.upper(), path, role))
    return out


def test_every_v1_route_is_covered(server: Server) -> None:
    table = routes(server)
    assert len(table) >= 30
    assert ("GET", "/v1/resolve/{name}/{env}", "reader") in table
    assert ("POST", "/v1/promotions", "publisher") in table
    assert ("POST", "/v1/approvals", "approver") in table
    assert ("POST", "/v1/tokens", "admin") in table


def test_role_by_route_matrix(server: Server) -> None:
    for method, path, needed in routes(server):
        url = re.sub(r"\{digest\}", "sha256:" + "0" * 64, path)
        url = re.sub(r"\{[a-z_]+\}", "x", url)
        body = {} if method in ("POST", "PUT") else None
        anonymous = server.http.request(method, url, json=body)
        assert anonymous.status_code == 401, (method, path)
        assert anonymous.json()["errors"][0]["code"] == "UNAUTHORIZED"
        for role in ROLES:
            response = server.http.request(method, url, json=body,
                                           headers=server.headers(WHO[role]))
            allowed = ROLES.index(role) >= ROLES.index(needed)
            if allowed:
                # Past the role check the dummy request is refused for its content (or
                # served), never a crash: a 4xx in the one error shape, or a success.
                assert response.status_code not in (401, 403), (method, path, role)
                assert response.status_code < 500, (method, path, role, response.text)
                if response.status_code >= 400:
                    (error,) = response.json()["errors"]
                    assert set(error) == {"code", "message", "detail"}, (method, path)
                    assert error["code"] not in ("UNAUTHORIZED", "DENIED"), (method, path)
                    assert error["message"], (method, path)
            else:
                assert response.status_code == 403, (method, path, role)
                assert response.json()["errors"][0]["code"] == "DENIED"


def test_bad_and_revoked_tokens(server: Server) -> None:
    bad = server.http.get("/v1/names", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.headers["WWW-Authenticate"] == "Bearer"
    basic = server.http.get("/v1/names", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401
    tokens = server.service.access.list_tokens()
    rita = next(t for t in tokens if t.subject == "rita")
    assert server.http.get("/v1/names", headers=server.headers("rita")).status_code == 200
    revoked = server.http.delete(f"/v1/tokens/{rita.token_id}", headers=server.headers("ada"))
    assert revoked.status_code == 200
    assert revoked.json()["token_id"] == rita.token_id and revoked.json()["revoked_at"]
    after = server.http.get("/v1/names", headers=server.headers("rita"))
    assert after.status_code == 401 and after.headers["WWW-Authenticate"] == "Bearer"
    at = revoked.json()["revoked_at"][:19]
    assert after.json() == {"errors": [{
        "code": "UNAUTHORIZED",
        "message": f"token {rita.token_id} was revoked at {at}Z; it cannot be renewed: ask "
                   "an admin for a new one (`llmreg token create --subject rita --role "
                   "reader`)",
        "detail": None}]}
    assert server.tokens["rita"] not in after.text  # the secret is never echoed


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json"])
def test_probe_and_openapi_routes_are_open(server: Server, path: str) -> None:
    assert server.http.get(path).status_code == 200


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_pages_that_load_cdn_scripts_are_off_by_default(server: Server,
                                                            path: str) -> None:
    """Swagger UI and ReDoc load scripts from a CDN onto the registry's origin: served
    only with LLMREG_API_DOCS=1; the OpenAPI document is served either way."""
    off = server.http.get(path)
    assert off.status_code == 404 and off.json()["errors"][0]["code"] == "NOT_FOUND"
    from fastapi.testclient import TestClient

    from llmreg.server.app import create_app
    from llmreg.settings import Settings

    settings = Settings.from_env({"LLMREG_API_DOCS": "1", "LLMREG_READ_AUTH": "open"})
    with TestClient(create_app(settings, service=server.service)) as http:
        assert http.get(path).status_code == 200
        assert http.get("/openapi.json").status_code == 200
    for page in ("/", "/audit", "/signin"):
        assert 'href="/docs"' not in server.http.get(page).text
