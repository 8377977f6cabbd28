"""The OpenAPI states the real contract: every error status a route returns is declared,
with the one error schema, and the bearer scheme is declared and applied."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from llmreg.bundle.directory import load_bundle_dir
from llmreg.contract.models import ErrorBody
from llmreg.server.app import create_app
from llmreg.settings import Settings
from llmreg.types import ROLES
from tests.conftest import EXAMPLES
from tests.server.conftest import Server
from tests.server.test_routes import WHO, routes

ERROR_SCHEMA = "#/components/schemas/ErrorBody"
UNKNOWN = {"ref": "nope@1", "name": "nope", "env": "staging", "digest": "sha256:" + "0" * 64,
           "token_id": "000000000000", "old": "nope@1", "new": "nope@2", "to": "production",
           "webhook_id": "999", "delivery_id": "999", "alert_id": "999", "a": "staging",
           "b": "production"}


def manifest_with_a_missing_artifact() -> dict[str, Any]:
    bundle, _ = load_bundle_dir(EXAMPLES / "ticket-classifier")
    assert bundle.artifacts, "the example must have an artifact for this test"
    return bundle.canonical_dict()


# A body for every JSON operation that names something unknown to the registry.
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/names/{name}/versions"): {"manifest": manifest_with_a_missing_artifact(),
                                            "message": "m"},
    ("POST", "/v1/names/{name}/version-batches"): {
        "items": [{"manifest": manifest_with_a_missing_artifact()}], "message": "m"},
    ("POST", "/v1/evidence"): {"ref": "nope@1", "type": "eval", "suite": "s",
                               "metrics": {"accuracy": 1.0}},
    ("POST", "/v1/approvals"): {"ref": "nope@1", "env": "production"},
    ("POST", "/v1/promotions"): {"ref": "nope@1", "env": "staging", "reason": "r"},
    ("POST", "/v1/rollbacks"): {"name": "nope", "env": "staging", "reason": "r"},
    ("POST", "/v1/deprecations"): {"ref": "nope@1"},
    ("POST", "/v1/archives"): {"ref": "nope@1"},
    ("POST", "/v1/restores"): {"ref": "nope@1", "reason": "x"},
    ("POST", "/v1/heartbeats"): {"beats": [{"name": "nope", "env": "production",
                                            "digest": UNKNOWN["digest"]}]},
    ("POST", "/v1/gc"): {"dry_run": True},
    ("POST", "/v1/tokens"): {"subject": "s", "role": "reader"},
    ("POST", "/v1/tokens/{token_id}/rotate"): {"expires": "90d"},
    ("POST", "/v1/names/{name}/owner"): {"team": "t", "contacts": ["t@example.com"]},
    ("POST", "/v1/alerts/{alert_id}/ack"): {"reason": "r"},
    ("POST", "/v1/jobs/run"): {"jobs": ["alerts"]},
    ("POST", "/v1/webhooks"): {"url": "http://10.0.0.1/hook", "events": ["promotion"]},
}


def operations(server: Server) -> dict[tuple[str, str], dict[str, Any]]:
    schema = server.http.app.openapi()  # type: ignore[attr-defined]
    return {(m.upper(), p): op for p, ops in schema["paths"].items() if p.startswith("/v1")
            for m, op in ops.items()}


def declared(operation: dict[str, Any]) -> set[int]:
    return {int(s) for s in operation["responses"]}


def url_for(path: str, operation: dict[str, Any]) -> str:
    url = re.sub(r"\{(\w+)\}", lambda m: UNKNOWN[m.group(1)], path)
    query = [f"{p['name']}={UNKNOWN[p['name']]}" for p in operation.get("parameters", [])
             if p["in"] == "query" and (p.get("required") or p["name"] in UNKNOWN)]
    return url + ("?" + "&".join(query) if query else "")


def request(server: Server, method: str, path: str, who: str | None,
            operation: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {"headers": server.headers(who)}
    if method == "PUT":
        kwargs["content"] = b"not what the digest says"
    elif "requestBody" in operation:
        kwargs["json"] = BODIES[(method, path)]
    return server.http.request(method, url_for(path, operation), **kwargs)


def test_openapi_declares_the_bearer_scheme_and_the_error_shape(server: Server) -> None:
    schema = server.http.app.openapi()  # type: ignore[attr-defined]
    schemes = schema["components"]["securitySchemes"]
    [(scheme_name, scheme)] = schemes.items()
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    error = schema["components"]["schemas"]["ErrorBody"]
    assert error["properties"]["errors"]["items"]["$ref"] == "#/components/schemas/ErrorItem"
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # 400 is used instead
    for (method, path), operation in operations(server).items():
        where = f"{method} {path}"
        assert operation["security"] == [{scheme_name: []}], where
        statuses = declared(operation)
        assert 401 in statuses, where
        assert (403 in statuses) == (operation["x-llmreg-role"] != "reader"), where
        for status, response in operation["responses"].items():
            if 400 <= int(status) < 500 and status != "416":
                content = response["content"]["application/json"]["schema"]
                assert content == {"$ref": ERROR_SCHEMA}, (where, status)
            elif 200 <= int(status) < 300 and status != "206" and "/blobs/" not in path \
                    and "/resolve/" not in path:
                assert response["content"]["application/json"]["schema"], (where, status)


def test_every_json_operation_has_a_sample_body(server: Server) -> None:
    needing = {key for key, op in operations(server).items()
               if "application/json" in op.get("requestBody", {}).get("content", {})}
    assert needing == set(BODIES)


def test_declared_statuses_match_what_routes_return(server: Server) -> None:
    ops = operations(server)
    seen: dict[int, int] = {}
    for method, path, role in routes(server):
        operation = ops[(method, path)]
        allowed = declared(operation)
        where = f"{method} {path}"
        # No token: 401 with the challenge (reads are token-only in this fixture).
        anonymous = request(server, method, path, None, operation)
        assert anonymous.status_code == 401, where
        assert anonymous.headers["WWW-Authenticate"] == "Bearer", where
        # A role too low: 403.
        below = ROLES.index(role) - 1
        if below >= 0:
            denied = request(server, method, path, WHO[ROLES[below]], operation)
            assert denied.status_code == 403 and 403 in allowed, where
            assert denied.json()["errors"][0]["code"] == "DENIED", where
        # The right role, naming things the registry does not have: 404 where declared.
        answer = request(server, method, path, WHO[role], operation)
        status = answer.status_code
        assert status in allowed, f"{where} returned {status}, declares {sorted(allowed)}"
        if 404 in allowed:
            assert status == 404, f"{where} declares 404 but returned {status}: {answer.text}"
        if status >= 400:
            assert ErrorBody.model_validate(answer.json()).errors, where
        seen[status] = seen.get(status, 0) + 1
    assert seen[404] >= 20


@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/v1/promotions", {"ref": "x@1"}),
    ("POST", "/v1/gc", {"grace": -1}),
    ("GET", "/v1/names?limit=0", None),
    ("GET", "/v1/names?offset=9223372036854775808", None),  # found by schemathesis: was 500
    ("GET", "/v1/refs/not a ref", None),
])
def test_bad_input_is_a_declared_400(server: Server, method: str, path: str,
                                     body: dict[str, Any] | None) -> None:
    response = server.http.request(method, path, json=body, headers=server.headers("ada"))
    assert response.status_code == 400, response.text
    template = next(key for key in operations(server)
                    if key[0] == method and re.fullmatch(
                        re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(key[1])), path.split("?")[0]))
    assert 400 in declared(operations(server)[template])


def test_open_reads_need_no_token_but_refuse_a_bad_one(server: Server) -> None:
    app = create_app(Settings(read_auth="open", resolve_ttl=0), service=server.service)
    with TestClient(app) as http:
        assert http.get("/v1/whoami").json() == {"subject": "anonymous", "roles": ["reader"],
                                                 "token_id": None, "expires_at": None,
                                                 "teams": None}
        assert http.get("/v1/names", headers={"Authorization": "Bearer nope"}
                        ).status_code == 401
        assert http.post("/v1/gc", json={}).status_code == 401


def test_answers_parse_as_the_contract_models(server: Server) -> None:
    """What the remote client will do: validate each answer with the shared model."""
    from llmreg.bundle.diff import BundleDiff
    from llmreg.contract.models import (
        ApprovalResult,
        BundleResponse,
        GateVerdict,
        NewToken,
        PromotionResult,
        WhoAmI,
    )
    from llmreg.types import Page, VersionInfo

    pat = server.client("pat")
    pat.log_bundle(EXAMPLES / "ticket-classifier", message="first")
    pat.log_bundle(EXAMPLES / "ticket-classifier", message="again")

    def get(path: str, who: str = "rita") -> Any:
        response = server.http.get(path, headers=server.headers(who))
        assert response.status_code == 200, response.text
        return response.json()

    def post(path: str, body: dict[str, Any], who: str) -> Any:
        response = server.http.post(path, json=body, headers=server.headers(who))
        assert response.status_code == 201, response.text
        return response.json()

    ref = "ticket-classifier@1"
    assert BundleResponse.model_validate(get(f"/v1/bundles/{ref}")).version.ref == ref
    page = Page[VersionInfo].model_validate(get("/v1/names/ticket-classifier/versions"))
    assert (page.total, page.next, page.items[0].ref) == (1, None, ref)
    assert WhoAmI.model_validate(get("/v1/whoami")).subject == "rita"
    gates = get(f"/v1/gates?ref={ref}&to=staging")
    assert gates["passed"] is True and GateVerdict.model_validate(gates).passed
    moved = PromotionResult.model_validate(post(
        "/v1/promotions", {"ref": ref, "env": "staging", "reason": "r"}, "pat"))
    assert moved.event.to_version == 1 and moved.report.passed
    approval = ApprovalResult.model_validate(post(
        "/v1/approvals", {"ref": ref, "env": "production"}, "ann"))
    assert approval.created and approval.approver == "ann"
    token = NewToken.model_validate(post("/v1/tokens", {"subject": "s", "role": "reader"}, "ada"))
    assert token.token.startswith("llmreg_") and token.subject == "s"
    diff = BundleDiff.model_validate(get(f"/v1/diff?old={ref}&new={ref}"))
    assert diff.identical and diff.to_json()["schema"] == "llmreg.diff/v1"
