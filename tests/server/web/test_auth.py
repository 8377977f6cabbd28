"""Sign-in through the app in-process: each cookie's attributes, read one Set-Cookie
header at a time, and CSRF tokens that belong to one session (or one sign-in form)."""

from __future__ import annotations

import html
import re
from http.cookies import SimpleCookie
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server.web.conftest import Web, csrf_of

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # 32 random bytes, or a SHA-256, base64url


def cookies_set(response: Any) -> dict[str, dict[str, str]]:
    """Each cookie a response sets: its value and attributes (lowercase names; flags
    such as HttpOnly map to "true")."""
    out: dict[str, dict[str, str]] = {}
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        [(name, morsel)] = jar.items()
        out[name] = {"value": morsel.value,
                     **{k: "true" if v is True else str(v) for k, v in morsel.items() if v}}
    return out


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_both_sign_in_cookies_are_httponly_strict_and_secure_over_https(
        web: Web, scheme: str) -> None:
    c = TestClient(web.app, base_url=f"{scheme}://registry.test",  # type: ignore[arg-type]
                   follow_redirects=False)
    form = c.get("/signin")
    signin = cookies_set(form)["llmreg_signin"]
    secure = {"secure": "true"} if scheme == "https" else {}
    assert signin == {"value": csrf_of(form.text), "httponly": "true", "samesite": "strict",
                      "path": "/", "max-age": "3600", **secure}
    r = c.post("/signin", data={"csrf": csrf_of(form.text), "token": web.tokens["rita"]})
    assert r.status_code == 303
    got = cookies_set(r)
    session = got["llmreg_session"]
    assert {k: v for k, v in session.items() if k != "value"} == {
        "httponly": "true", "samesite": "strict", "path": "/", "max-age": str(12 * 3600),
        **secure}
    assert got["llmreg_signin"]["value"] == "" and got["llmreg_signin"]["max-age"] == "0"


def test_each_sign_in_form_has_its_own_csrf_value(web: Web) -> None:
    a, b = web.client(), web.client()
    form_a, form_b = a.get("/signin"), b.get("/signin")
    token_a, token_b = csrf_of(form_a.text), csrf_of(form_b.text)
    assert TOKEN_RE.match(token_a) and TOKEN_RE.match(token_b) and token_a != token_b
    assert csrf_of(a.get("/signin").text) != token_a  # a fresh one per form shown
    # B's value with A's cookie (a page of another site posting its own value) fails.
    r = a.post("/signin", data={"csrf": token_b, "token": web.tokens["rita"]})
    assert r.status_code == 403 and "llmreg_session" not in cookies_set(r)
    for forged in ("None", "null", ""):
        r = a.post("/signin", data={"csrf": forged, "token": web.tokens["rita"]})
        assert r.status_code == 403, forged
    # Without the cookie nothing passes, not even an empty value matching no cookie.
    fresh = web.client()
    assert fresh.post("/signin", data={"csrf": "", "token": web.tokens["rita"]}
                      ).status_code == 403
    r = a.post("/signin", data={"csrf": csrf_of(a.get("/signin").text),
                                "token": web.tokens["rita"]})
    assert r.status_code == 303 and "llmreg_session" in cookies_set(r)


def test_a_sessions_csrf_token_is_its_own_and_unguessable(web: Web) -> None:
    one, two = web.signed_in("ada"), web.signed_in("ada")  # the same token, twice
    page_one, page_two = one.get("/names/chat/versions/2"), two.get("/names/chat/versions/2")
    csrf_one, csrf_two = csrf_of(page_one.text), csrf_of(page_two.text)
    assert TOKEN_RE.match(csrf_one) and TOKEN_RE.match(csrf_two) and csrf_one != csrf_two
    cookie = one.cookies.get("llmreg_session") or ""
    assert csrf_one not in cookie and cookie.split(".")[-1] not in csrf_one
    assert csrf_of(one.get("/").text) == csrf_one  # stable for the session
    before = web.service.audit.head()
    form = {"env": "staging", "expect": "1", "reason": "x"}
    for forged in (csrf_two, "None", "null", ""):
        r = one.post("/names/chat/versions/2/promote", data={**form, "csrf": forged})
        assert r.status_code == 403, forged
        assert "CSRF token is missing or wrong" in r.text
    assert web.service.audit.head() == before
    assert web.service.versions.slot("chat", "staging").version == 1
    ok = one.post("/names/chat/versions/2/promote", data={**form, "csrf": csrf_one})
    assert ok.status_code == 303
    assert web.service.versions.slot("chat", "staging").version == 2


def test_safe_next_keeps_only_local_paths() -> None:
    from llmreg.server.web.auth import safe_next

    for local in ("/", "/names/chat", "/names/chat?tab=diff#top"):
        assert safe_next(local) == local
    for foreign in (None, "", "names/chat", "//evil.example/", "/\\evil.example",
                    "/names\\..\\x", "https://evil.example/", "javascript:alert(1)"):
        assert safe_next(foreign) == "/", foreign


def test_a_form_post_without_a_session_is_told_to_sign_in(web: Web) -> None:
    r = web.client().post("/names/chat/versions/2/promote",
                          data={"csrf": "x", "env": "staging", "expect": "1", "reason": "x"})
    assert r.status_code == 401
    assert "sign in first: this action needs a session" in html.unescape(r.text)


def test_forms_are_read_as_urlencoded_text_of_at_most_twenty_fields(web: Web) -> None:
    c = web.signed_in("ada")
    csrf = csrf_of(c.get("/names/chat/versions/2").text)
    url = "/names/chat/versions/2/promote"
    before = web.service.audit.head()

    def post(body: bytes, content_type: str | None) -> Any:
        headers = {"content-type": content_type} if content_type is not None else {}
        return c.post(url, content=body, headers=headers)

    form = f"csrf={csrf}&env=staging&expect=1&reason=x".encode()
    for content_type, shown in ((None, ""), ("text/plain", "text/plain"),
                                ("multipart/form-data; boundary=x", "multipart/form-data")):
        r = post(form, content_type)
        assert r.status_code == 400, content_type
        assert (f"Content-Type {shown!r}: a web form must be sent as "
                "application/x-www-form-urlencoded") in html.unescape(r.text)
    too_many = form + b"".join(b"&f%d=1" % i for i in range(17))  # 21 fields
    not_utf8 = form + b"&reason=\xff"
    for body in (too_many, not_utf8):
        r = post(body, "application/x-www-form-urlencoded")
        assert r.status_code == 400
        assert ("the form is not UTF-8 urlencoded text with at most 20 fields"
                in html.unescape(r.text))
    assert web.service.audit.head() == before  # nothing was done
    # A charset parameter is fine, and so is a field written without "=" (a checkbox
    # some clients send bare): twenty fields in all still pass.
    ok = post(form + b"&confirm" + b"".join(b"&f%d=1" % i for i in range(15)),
              "application/x-www-form-urlencoded; charset=utf-8")
    assert ok.status_code == 303, ok.text
    assert web.service.versions.slot("chat", "staging").version == 2
