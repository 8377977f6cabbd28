"""The one error shape for the framework's own refusals: 405 with ``Allow``, read from
the app's routes (``llmreg/server/errors.py``, ``llmreg/server/declared.py``)."""

from __future__ import annotations

import pytest

from llmreg.server.declared import allowed_methods, declared_routes
from tests.server.conftest import Server

CASES = [
    # (method, path, what Allow lists): every route on that path, together
    ("DELETE", "/v1/names", "GET"),
    ("PUT", "/v1/tokens", "GET, POST"),
    ("BREW", "/v1/tokens", "GET, POST"),
    ("HEAD", "/v1/names", "GET"),  # API routes do not answer HEAD, so Allow does not say so
    ("GET", "/v1/promotions", "POST"),
    ("POST", "/v1/tokens/abc", "DELETE"),
    ("PATCH", "/healthz", "GET"),
    ("POST", "/static/style.css", "GET, HEAD"),
    ("DELETE", "/openapi.json", "GET, HEAD"),
    ("OPTIONS", "/v1/resolve/support-rag/production", "GET"),
]


@pytest.mark.parametrize(("method", "path", "allow"), CASES)
def test_every_405_says_allow_in_the_one_error_shape(server: Server, method: str, path: str,
                                                     allow: str) -> None:
    answer = server.http.request(method, path, headers=server.headers("ada"))
    assert answer.status_code == 405, answer.text
    assert answer.headers["allow"] == allow
    assert answer.headers["cache-control"] == "no-store"
    if method == "HEAD":
        return  # no body, by definition
    body = answer.json()
    assert list(body) == ["errors"] and body["errors"][0]["code"] == "METHOD_NOT_ALLOWED"
    assert body["errors"][0]["message"] == (f"method '{method}' is not allowed here; this "
                                            f"path answers {allow}")


@pytest.mark.parametrize("method", ["\x1b[31mX", "A" * 5000])
def test_a_405_quotes_the_method_escaped_and_capped(server: Server, method: str) -> None:
    import httpx

    try:
        answer = server.http.request(method, "/v1/names")
    except (httpx.HTTPError, ValueError):  # the client refuses to send it: nothing to show
        return
    message = answer.json()["errors"][0]["message"]
    assert message.isprintable() and len(message) < 300


def test_allow_lists_what_each_route_on_the_path_answers(server: Server) -> None:
    routes = declared_routes(server.http.app.routes)
    for d in routes:
        sample = d.path.replace("{path}", "x.css")
        for param in ("{name}", "{env}", "{ref}", "{token_id}", "{digest}", "{alert_id}",
                      "{webhook_id}", "{delivery_id}", "{number}", "{span}"):
            sample = sample.replace(param, "x")
        assert d.methods <= set(allowed_methods(routes, sample)), d.path
    # Every method Allow lists is one the path really answers (no 405 for it).
    for method in allowed_methods(routes, "/v1/tokens"):
        got = server.http.request(method, "/v1/tokens", headers=server.headers("ada"))
        assert got.status_code != 405


HOSTILE = ["\x1b[31mred\x1b[0m", "x\nforged: line", "<script>alert(1)</script>",
           "y" * 10_000, "ab\u202ecd", "\x00", "prod\r\n"]


def _twice(key: str) -> str:
    """A JSON object naming ``key`` twice."""
    import json

    return "{" + f"{json.dumps(key)}: 1, {json.dumps(key)}: 2" + "}"


def _safe(message: str) -> None:
    assert message.isprintable(), message[:200]
    assert len(message) < 1_000
    for raw in ("\x1b", "\n", "\r", "\x00", "\u202e"):
        assert raw not in message


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_input_is_quoted_escaped_and_capped_through_http(server: Server,
                                                                 value: str) -> None:
    from urllib.parse import quote

    auth = server.headers("ada")
    answers = [
        server.http.get(f"/v1/refs/{quote(value, safe='')}", headers=auth),
        server.http.get(f"/v1/refs/{quote('support-rag@' + value, safe='')}", headers=auth),
        server.http.post("/v1/promotions", json={"ref": value, "env": "staging",
                                                 "reason": "r"}, headers=auth),
        server.http.post("/v1/promotions", json={"ref": "a@1", "env": value, "reason": "r"},
                         headers=auth),
        server.http.post("/v1/tokens", json={"subject": value, "role": "reader"},
                         headers=auth),
        server.http.post("/v1/tokens", json={"subject": "x", "role": value}, headers=auth),
        server.http.post("/v1/tokens", content=_twice(value),
                         headers={**auth, "content-type": "application/json"}),
    ]
    for answer in answers:
        assert 400 <= answer.status_code < 500, answer.text[:300]
        _safe(answer.json()["errors"][0]["message"])


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_input_is_quoted_escaped_and_capped_through_the_client(server: Server,
                                                                       value: str) -> None:
    import llmreg

    client = server.client("ada")
    for call in (lambda: client.get(value), lambda: client.get(f"support-rag@{value}"),
                 lambda: client.promote(f"support-rag@{value}", to="staging", reason="r"),
                 lambda: client.promote("support-rag@1", to=value, reason="r")):
        with pytest.raises(llmreg.LLMRegError) as info:
            call()
        _safe(str(info.value))
