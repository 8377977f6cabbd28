"""Tokens that expire, over HTTP: the server's token check refuses an expired token (401,
one line naming it, when, and the fix) from the moment it expires, even while its answer
is cached; creating, rotating and whoami carry the expiry; web sessions end with it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from llmreg.errors import AuthError
from tests.clock import Clock, frozen_clock
from tests.server.conftest import Server

START = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)


@pytest.fixture
def clock() -> Iterator[Clock]:
    with frozen_clock(START) as c:
        yield c


def create(server: Server, subject: str, role: str, expires: str | None) -> dict[str, str]:
    body = {"subject": subject, "role": role} | ({"expires": expires} if expires else {})
    r = server.http.post("/v1/tokens", json=body, headers=server.headers("ada"))
    assert r.status_code == 201, r.text
    answer: dict[str, str] = r.json()
    return answer


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def stamp(at: datetime) -> str:
    return f"{at:%Y-%m-%dT%H:%M:%SZ}"


@pytest.mark.parametrize(("expires", "lifetime"), [
    ("30m", timedelta(minutes=30)),
    ("12h", timedelta(hours=12)),
    ("7d", timedelta(days=7)),
    ("90d", timedelta(days=90)),
])
def test_an_expiring_token_works_until_the_second_it_expires(
        server: Server, clock: Clock, expires: str, lifetime: timedelta) -> None:
    new = create(server, "ci", "publisher", expires)
    end = START + lifetime
    assert new["expires_at"] is not None
    assert datetime.fromisoformat(new["expires_at"]) == end
    clock.now = end - timedelta(seconds=1)  # not yet: it works (and is now cached)
    assert server.http.get("/v1/names", headers=bearer(new["token"])).status_code == 200
    clock.now = end  # expired, though the cache still holds the token's answer
    r = server.http.get("/v1/names", headers=bearer(new["token"]))
    assert r.status_code == 401 and r.headers["WWW-Authenticate"] == "Bearer"
    assert r.json() == {"errors": [{
        "code": "UNAUTHORIZED",
        "message": f"token {new['token_id']} expired at {stamp(end)}; an admin renews it "
                   f"with `llmreg token rotate {new['token_id']}` (or creates a new one with "
                   "`llmreg token create`)",
        "detail": None}]}
    clock.now = end + timedelta(seconds=1)
    assert server.http.post("/v1/gc", json={}, headers=bearer(new["token"])).status_code == 401


def test_an_expired_token_is_refused_when_the_server_first_sees_it(
        server: Server, clock: Clock) -> None:
    new = create(server, "ci", "reader", "1m")
    clock.now = START + timedelta(minutes=1, seconds=1)  # never seen before it expired
    r = server.http.get("/v1/whoami", headers=bearer(new["token"]))
    assert r.status_code == 401
    assert r.json()["errors"][0]["message"].startswith(f"token {new['token_id']} expired at ")


def test_a_token_without_expires_never_expires(server: Server, clock: Clock) -> None:
    new = create(server, "ci", "reader", None)
    assert new["expires_at"] is None
    clock.now = START + timedelta(days=3650)
    assert server.http.get("/v1/names", headers=bearer(new["token"])).status_code == 200


@pytest.mark.parametrize(("expires", "why"), [
    ("0d", "is not a positive duration"),
    ("-1h", "is not a positive duration"),
    ("2000d", "is more than 5 years ahead"),
    ("2001-01-01", f"is not in the future (it is now {START:%Y-%m-%dT%H:%M:%SZ})"),
    ("forever", "is neither a duration nor an ISO date"),
], ids=["zero", "negative", "too-far", "past", "words"])  # stable across workers: no clock
def test_a_bad_expiry_is_a_400_and_creates_nothing(
        server: Server, clock: Clock, expires: str, why: str) -> None:
    before = server.service.access.list_tokens()
    r = server.http.post("/v1/tokens", json={"subject": "ci", "role": "reader",
                                             "expires": expires},
                         headers=server.headers("ada"))
    assert r.status_code == 400
    [error] = r.json()["errors"]
    assert error["message"].startswith(f"expires {expires!r} {why}")
    assert error["message"].endswith("; leave --expires out for a token that never expires")
    assert server.service.access.list_tokens() == before


def test_whoami_shows_the_token_and_its_expiry(server: Server, clock: Clock) -> None:
    new = create(server, "ci", "approver", "2h")
    who = server.http.get("/v1/whoami", headers=bearer(new["token"])).json()
    assert who == {"subject": "ci", "roles": ["approver", "publisher", "reader"],
                   "token_id": new["token_id"], "expires_at": new["expires_at"],
                   "teams": {"*": "approver"}}
    rita = server.client("rita").actor
    assert rita.name == "rita" and rita.expires_at is None and rita.token_id is not None
    server.tokens["ci"] = new["token"]
    actor = server.client("ci").actor
    assert (actor.token_id, actor.expires_at) == (new["token_id"],
                                                  START + timedelta(hours=2))


def test_rotate_hands_out_a_new_secret_and_the_old_one_stops_at_once(
        server: Server, clock: Clock) -> None:
    old = create(server, "deploy", "publisher", "1h")
    assert server.http.get("/v1/names", headers=bearer(old["token"])).status_code == 200
    clock.now = START + timedelta(hours=2)  # expired: the fix the refusal names
    r = server.http.post(f"/v1/tokens/{old['token_id']}/rotate", json={"expires": "30d"},
                         headers=server.headers("ada"))
    assert r.status_code == 201, r.text
    new = r.json()
    assert (new["subject"], new["role"]) == ("deploy", "publisher")
    assert new["token_id"] != old["token_id"] and new["token"] != old["token"]
    assert datetime.fromisoformat(new["expires_at"]) == clock.now + timedelta(days=30)
    assert server.http.get("/v1/names", headers=bearer(new["token"])).status_code == 200
    refused = server.http.get("/v1/names", headers=bearer(old["token"]))
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["message"] == (
        f"token {old['token_id']} was revoked at {stamp(clock.now)}; it cannot be renewed: "
        "ask an admin for a new one (`llmreg token create --subject deploy --role "
        "publisher`)")
    actions = [(e.action, e.target) for e in server.service.audit.entries()[-2:]]
    assert actions == [("token-create", new["token_id"]), ("token-revoke", old["token_id"])]


def test_rotate_is_refused_for_a_revoked_or_unknown_token_and_for_non_admins(
        server: Server, clock: Clock) -> None:
    old = create(server, "deploy", "publisher", None)
    path = f"/v1/tokens/{old['token_id']}/rotate"
    assert server.http.post(path, json={}, headers=server.headers("pat")).status_code == 403
    assert server.http.post(path, json={}, headers=bearer(old["token"])).status_code == 403
    assert server.http.delete(f"/v1/tokens/{old['token_id']}",
                              headers=server.headers("ada")).status_code == 200
    before = len(server.service.audit.entries())
    revoked = server.http.post(path, json={}, headers=server.headers("ada"))
    assert revoked.status_code == 409
    assert revoked.json()["errors"][0]["message"] == (
        f"token {old['token_id']} was revoked at {stamp(clock.now)} and cannot be rotated; "
        "create a new one with `llmreg token create --subject deploy --role publisher`")
    unknown = server.http.post("/v1/tokens/ffffffffffff/rotate", json={},
                               headers=server.headers("ada"))
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["message"] == (
        "no token 'ffffffffffff'; see `llmreg token list`")
    bad = server.http.post(path, json={"expires": "0m"}, headers=server.headers("ada"))
    assert bad.status_code == 400
    assert len(server.service.audit.entries()) == before


def test_the_revoke_answer_says_whether_it_revoked(server: Server, clock: Clock) -> None:
    old = create(server, "job", "reader", None)
    first = server.http.delete(f"/v1/tokens/{old['token_id']}", headers=server.headers("ada"))
    second = server.http.delete(f"/v1/tokens/{old['token_id']}", headers=server.headers("ada"))
    assert (first.json()["revoked_now"], second.json()["revoked_now"]) == (True, False)
    assert first.json()["revoked_at"] == second.json()["revoked_at"]


def test_a_web_session_ends_when_its_token_expires(server: Server, clock: Clock) -> None:
    new = create(server, "ana", "approver", "1h")
    sessions = server.service.sessions
    cookie, info = sessions.start(new["token"])
    assert info.actor.expires_at == START + timedelta(hours=1)
    clock.now = START + timedelta(minutes=59, seconds=59)
    assert sessions.lookup(cookie) is not None
    clock.now = START + timedelta(hours=1)
    assert sessions.lookup(cookie) is None
    with pytest.raises(AuthError, match=rf"^token {new['token_id']} expired at "):
        sessions.start(new["token"])
