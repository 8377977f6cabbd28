"""The request-body guard: one value per key in every JSON body (``strict_json`` and the
``StrictJSONRoute`` every API route is)."""

from __future__ import annotations

import json

import pytest
from fastapi.routing import APIRoute

from llmreg.errors import InvalidRequestError
from llmreg.server.guard import StrictJSONRoute, strict_json
from tests.server.conftest import Server
from tests.server.test_bounds import manifest, one_error


def _register_body() -> str:
    return json.dumps({"manifest": manifest(), "message": "m", "provenance": {}})


def _twice(body: str, anchor: str, key: str, value: str) -> str:
    """``body`` with ``"key": value`` inserted again right after ``anchor`` (an opening
    brace), so the object names ``key`` twice."""
    assert anchor in body
    return body.replace(anchor, f'{anchor}"{key}": {value}, ', 1)


M = json.dumps(manifest())
REGISTER = "/v1/names/support-rag/versions"
CASES = [
    # (path, body): a key named twice at the top, in the manifest, deep inside it
    (REGISTER, _twice(_register_body(), "{", "message", '"first"')),
    (REGISTER, _twice(_register_body(), '"manifest": {', "model", json.dumps(
        manifest()["model"]))),
    (REGISTER, '{"manifest": ' + _twice(M, '"model": {', "id", '"gpt-4o-2024-05-13"')
     + ', "message": "m"}'),
    (REGISTER, '{"manifest": ' + M + ', "message": "m", "provenance": {"a": {"b": '
     '[{"c": 1, "c": 2}]}}}'),
    (REGISTER, '{"manifest": ' + M + ', "message": "m", "message": "m"}'),
    ("/v1/promotions", '{"ref": "support-rag@1", "env": "staging", "env": "production", '
     '"reason": "r"}'),
    ("/v1/heartbeats", '{"beats": [{"name": "a", "name": "b"}]}'),
    ("/v1/tokens", '{"subject": "x", "role": "reader", "role": "admin"}'),
    ("/v1/evidence", '{"ref": "support-rag@1", "metrics": {"f1": 0.9, "f1": 0.1}}'),
]


@pytest.mark.parametrize(("path", "body"), CASES)
def test_a_json_body_that_names_a_key_twice_is_refused_and_changes_nothing(
        server: Server, path: str, body: str) -> None:
    before = server.service.audit.entries()
    answer = server.http.post(path, content=body, headers={
        **server.headers("ada"), "content-type": "application/json"})
    message = one_error(answer, 400, "REQUEST_INVALID")
    assert message.startswith("the JSON body names the key '")
    assert message.endswith("' twice in one object; send each key once")
    assert answer.headers["cache-control"] == "no-store"
    assert server.service.audit.entries() == before
    assert server.service.versions.names_page().items == []


@pytest.mark.parametrize("content_type", ["application/json", "application/json; "
                                          "charset=utf-8", "application/merge-patch+json"])
def test_every_json_content_type_is_parsed_strictly(server: Server,
                                                     content_type: str) -> None:
    headers = {**server.headers("ada"), "content-type": content_type}
    body = '{"subject": "x", "role": "reader", "role": "admin"}'
    answer = server.http.post("/v1/tokens", content=body, headers=headers)
    assert "'role' twice" in one_error(answer, 400, "REQUEST_INVALID")


def test_the_same_bodies_without_the_second_key_are_accepted(server: Server) -> None:
    answer = server.http.post(REGISTER, content=_register_body(), headers={
        **server.headers("pat"), "content-type": "application/json"})
    assert answer.status_code in (200, 201), answer.text


def test_the_client_gets_the_refusal_as_its_class(server: Server) -> None:
    answer = server.http.post("/v1/tokens", content='{"a": 1, "a": 2}',
                              headers=server.headers("ada"))
    from llmreg.client.transport import CODES

    assert CODES[answer.json()["errors"][0]["code"]] is InvalidRequestError


@pytest.mark.parametrize("text", [
    '{"a": 1, "a": 1}', '[{"x": {"y": {"z": 1, "z": 1}}}]', '{"": 1, "": 2}',
    '{"\\u001b[31m": 1, "\\u001b[31m": 2}', '{"k": {"k": 1}, "k": 2}'])
def test_strict_json_refuses_a_repeated_key_at_any_depth(text: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        strict_json(text)
    assert str(info.value).isprintable()


@pytest.mark.parametrize("text", ['{"a": 1, "b": {"a": 2}}', '[{"a": 1}, {"a": 2}]',
                                  '{"a": {"a": {"a": 1}}}', '{}', '[]'])
def test_strict_json_keeps_the_same_key_in_different_objects(text: str) -> None:
    assert strict_json(text) == json.loads(text)


def test_every_api_route_with_a_body_parses_it_strictly(server: Server) -> None:
    """By construction: every route added through ``endpoint`` is a StrictJSONRoute;
    the only APIRoutes that are not take no body."""
    routes = [r for top in server.http.app.routes
              for r in getattr(getattr(top, "original_router", None), "routes", [top])]
    api = [r for r in routes if isinstance(r, APIRoute)]
    assert sum(isinstance(r, StrictJSONRoute) for r in api) > 50
    for route in api:
        if route.body_field is not None:
            assert isinstance(route, StrictJSONRoute), route.path
